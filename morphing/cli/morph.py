"""The morph command: ``morph -s SOURCE -t TARGET [options]``.

Flags and files only: parsing, validation, progress and messages; the work is
``morphing.sequence``'s. Inputs are checked (with Pillow alone) before
TensorFlow is even imported, so mistakes are reported in a fraction of a second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from morphing.io.images import (WHITE, ImageFileError, LoadedImage, aspect_crop, composite, fit_to_size, load_image,
                      working_shape)
from morphing.model.maps import MapsFileError, MorphMaps, Scales, load_maps_for
from morphing.io.output import ANIMATION_SUFFIXES, ENCODER_OPTIONS_BY_SUFFIX, FfmpegWriter, frames_folder_problem
from morphing.model.points import PointPairs
from morphing.model.settings import (BLENDS, EASINGS, RENDER_ENGINES, WARP_INTERPOLATIONS, X264_PRESETS, EncoderSettings,
                        FitSettings, FrameSettings, OutputSize)
from .common import (PROGRAM, Console, HelpFormatter, Parser, RunError, StageTimer, UsageError, add_fit_flags,
                     check_outputs, flag_fit_settings, flag_scales, flag_working_size, float_in, found_face_points,
                     int_in, new_default_output, read_leg_points, resolved, run_checked, start_tensorflow, step_bar)

if TYPE_CHECKING:  # only for annotations: TensorFlow is imported late, on purpose
    from tqdm import tqdm

    from ..morph import Morph
    from ..sequence import ProgramCache
    from morphing.fit.polish import Polished
    from morphing.fit.starts import Candidate, StartChoice
    from morphing.runtime.concurrency import SpawnedWork

__all__ = ["DEFAULT_OUTPUT", "Job", "build_parser", "validate", "run_morph", "LegBars", "fit_with_progress"]

DEFAULT_OUTPUT = "morph.gif"
#: GIF stores each frame's delay as a 16-bit count of 1/100 s.
MAX_GIF_DELAY_CENTISECONDS = 65535
MAX_FRAMES = 10_000
OUTPUT_SUFFIXES_BY_FLAG = {"--output": ANIMATION_SUFFIXES, "--save-maps": (".npz",), "--maps-png": (".png",)}
FRAME_DEFAULTS = FrameSettings()
ENCODER_DEFAULTS = EncoderSettings()
ENCODER_FLAGS = {"crf": "--crf", "preset": "--preset", "quality": "--quality", "colors": "--colors",
                 "dither": "--dither/--no-dither", "loop_count": "--loop-count"}

def _shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)`` with ``0 <= I < N``."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"need 0 <= I < N, got {text!r}")
    return index, count


def colour(text: str) -> tuple[int, int, int]:
    """``"white"``, ``"#336699"`` or ``"51,102,153"`` → ``(r, g, b)``."""
    from PIL import ImageColor

    try:
        if "," in text:
            values = tuple(int(part) for part in text.split(","))
            if len(values) != 3 or not all(0 <= v <= 255 for v in values):
                raise ValueError
            return values  # type: ignore[return-value]
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a colour name, #rrggbb or r,g,b (0-255), got {text!r}") from None


def build_parser(*, allow_abbrev: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``--help`` shows every default. A batch row's flags are read with
    ``allow_abbrev=False``: a row names each flag in full."""
    parser = Parser(
        prog=PROGRAM,
        allow_abbrev=allow_abbrev,
        description=(
            "Morph one image into another without reference points: gradient descent "
            "finds multiply, add and warp maps, and scaling them by alpha from 0 to 1 "
            "gives the transition, written as an animated GIF."
        ),
        epilog=(
            "Sibling tools on the same core: 'morph hybrid', 'morph shift', 'morph align' and "
            "'morph warp'; 'morph ui' serves a local web page (each with --help)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-s", "--source", type=Path, help="image to start from (required without --batch)")
    parser.add_argument("-t", "--target", type=Path, nargs="+", metavar="TARGET",
                        help="image to end at; several morph through each in turn (a -> b -> c ...)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help=f"animation to write; the suffix picks the format: .gif, .mp4 (H.264) or .webp "
                             f"[default {DEFAULT_OUTPUT}, which is never replaced: name an existing file to replace it]")
    fitting = parser.add_argument_group("fitting")
    add_fit_flags(fitting, legs="several")
    fitting.add_argument("--cpu", action="store_true", help="fit and render on the CPU even if a GPU is present")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--frames", type=int_in(2, MAX_FRAMES), default=FRAME_DEFAULTS.frames,
                        help="frames per transition, both ends included (a sequence shares its key frames)")
    frames.add_argument("--hold", type=int_in(0, MAX_FRAMES), default=FRAME_DEFAULTS.hold, help="extra frames to hold on each key image")
    frames.add_argument("--easing", choices=EASINGS, default=FRAME_DEFAULTS.easing, help="how alpha runs over a transition")
    frames.add_argument("--even-pacing", action=argparse.BooleanOptionalAction, default=FRAME_DEFAULTS.even_pacing,
                        help="re-time each transition so consecutive frames change by equal amounts")
    ends = frames.add_mutually_exclusive_group()
    ends.add_argument("--loop", action="store_true", help="morph back from the last image to the source")
    ends.add_argument("--boomerang", action="store_true", help="play forward, then backward")
    frames.add_argument("--interpolation", choices=WARP_INTERPOLATIONS, default=FRAME_DEFAULTS.interpolation,
                        help="how frames sample the warped images (fitting always uses bilinear)")
    frames.add_argument("--blend", choices=BLENDS, default=FRAME_DEFAULTS.blend,
                        help="'detail' rescales the blended frame's fine detail to the endpoints' local strength, "
                             "so middle frames stay sharp; 'linear' is the plain (1-alpha, alpha) blend")
    frames.add_argument("--preview", type=int_in(16, 4096), nargs="?", const=256, default=None, metavar="PX",
                        help="render the frames with the long side at PX pixels (default 256) instead of the "
                             "source's size: a quick look at settings (the fit is the same)")
    frames.add_argument("--render-engine", choices=RENDER_ENGINES, default=FRAME_DEFAULTS.engine,
                        help="what computes the frames: 'opencv' (CPU), 'tensorflow' (XLA; GPU if present); "
                             "'auto' takes TensorFlow when it sees a GPU, else OpenCV (same frames either way)")
    frames.add_argument("--fps", type=float_in(0.0, 100.0, low_open=True), default=25.0,
                        help="frames per second (GIF stores delays in whole 1/100 s: the rounding is spread "
                             "over the frames so the total duration is right)")
    frames.add_argument("--frames-dir", type=Path, default=None, help="also write every frame as DIR/0000.png, ...")
    output = parser.add_argument_group("output file")
    output.add_argument("--crf", type=int_in(0, 51), default=None,
                        help="MP4: H.264 quality, 0 (lossless) to 51 (worst) [default 18]")
    output.add_argument("--preset", choices=X264_PRESETS, default=None,
                        help="MP4: H.264 encoder preset; slower ones make smaller files [default veryfast, "
                             "superfast above a megapixel]")
    output.add_argument("--quality", type=int_in(0, 100), default=None, help="WebP: quality 0-100 [default 90]")
    output.add_argument("--colors", type=int_in(2, 255), default=ENCODER_DEFAULTS.colors,
                        help="GIF: colours in the palette")
    output.add_argument("--dither", action=argparse.BooleanOptionalAction, default=None,
                        help="GIF: Floyd-Steinberg dithering (--no-dither: each pixel takes its nearest colour) "
                             "[default on]")
    output.add_argument("--loop-count", type=int_in(0, 65535), default=None,
                        help="GIF, WebP: how many times the animation plays, 0 for forever [default 0]")
    output.add_argument("--background", type=colour, default=None, metavar="COLOUR",
                        help="composite transparent inputs on this colour (a name, #rrggbb or r,g,b) instead of "
                             "keeping their transparency (GIF, WebP, PNG frames keep it; MP4 cannot: white "
                             "unless given)")
    sizes = output.add_mutually_exclusive_group()
    sizes.add_argument("--width", type=int_in(1, 65536), default=None, metavar="W",
                       help="write frames W pixels wide (the height follows; never larger than rendered)")
    sizes.add_argument("--height", type=int_in(1, 65536), default=None, metavar="H",
                       help="write frames H pixels high (the width follows; never larger than rendered)")
    sizes.add_argument("--scale", type=float_in(0.0, 1.0, low_open=True), default=None, metavar="F",
                       help="write frames at F times the rendered size (0 < F <= 1)")
    maps = parser.add_argument_group("maps")
    maps.add_argument("--save-maps", type=Path, default=None, metavar="F.npz", help="save the fitted maps")
    maps.add_argument("--load-maps", type=Path, default=None, metavar="F.npz",
                      help="render from saved maps instead of fitting")
    maps.add_argument("--maps-png", type=Path, default=None, metavar="F.png", help="write a labelled picture of the six maps")
    batch = parser.add_argument_group("batch")
    batch.add_argument("--batch", type=Path, default=None, metavar="FILE.csv",
                       help="morph every row of a CSV with columns source, target (several separated by ';'), "
                            "output and optionally flags and points (one file per transition, separated by ';'); "
                            "paths are relative to the CSV's folder")
    batch.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                       help="with --batch: only rows whose index (from 0) is I modulo N [default: all rows]")
    batch.add_argument("--overwrite", action="store_true",
                       help="with --batch: redo rows whose output exists (they are skipped otherwise)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--timings", action="store_true",
                        help="print the seconds each stage took and the peak memory at the end")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


@dataclass(frozen=True)
class Job:
    """A validated request: decoded images and everything needed to run.

    ``keys`` are the key images, all ``[H, W, 3] uint8`` of the source's size:
    the source, each target, and the source again with ``--loop``.
    """

    keys: tuple[np.ndarray, ...]
    scales: Scales
    loaded_maps: MorphMaps | None
    working_size: int
    notices: tuple[str, ...]
    points: tuple[PointPairs | None, ...] = ()
    alphas: tuple[np.ndarray | None, ...] | None = None
    """The opacity (``[H, W] uint8`` at the key size, ``None`` for an opaque one) of the source and of each
    target, as ``Morph`` takes them; ``None`` when all are opaque or they were composited."""


def validate(args: argparse.Namespace) -> Job:
    """Check flags and files, decode the images; raise UsageError or RunError.

    Without ``-o`` the output is ``DEFAULT_OUTPUT`` (set on ``args``), which must not exist yet.
    """
    args.output = new_default_output(args.output, DEFAULT_OUTPUT)
    if args.output.suffix.lower() in (".mp4", ".webp") and args.fps < FfmpegWriter.MIN_FPS:
        raise UsageError(f"--fps {args.fps:g} is too slow for {args.output.suffix.lower()[1:].upper()} (at least "
                         f"{FfmpegWriter.MIN_FPS:g}: a frame every {1 / FfmpegWriter.MIN_FPS:g} s)")
    if args.output.suffix.lower() == ".gif" and 100.0 / args.fps > MAX_GIF_DELAY_CENTISECONDS:
        raise UsageError(f"--fps {args.fps:g} is too slow for a GIF (at most {MAX_GIF_DELAY_CENTISECONDS / 100:g} s "
                         f"a frame: --fps {100.0 / MAX_GIF_DELAY_CENTISECONDS:.4f} or more)")
    suffix = args.output.suffix.lower()
    for field, flag in ENCODER_FLAGS.items():
        given = getattr(args, field) != (ENCODER_DEFAULTS.colors if field == "colors" else None)
        if given and field not in ENCODER_OPTIONS_BY_SUFFIX.get(suffix, ()):
            takers = [s[1:].upper() for s, fields in ENCODER_OPTIONS_BY_SUFFIX.items() if field in fields]
            raise UsageError(f"{flag} applies to {' and '.join(takers)} output, not {suffix[1:].upper() or suffix}")
    if args.frames_dir is not None:
        frames_folder = resolved(args.frames_dir)
        for flag, path in (("--output", args.output), ("--save-maps", args.save_maps), ("--maps-png", args.maps_png)):
            # The folder is replaced whole when the frames are written: nothing else may live in it.
            if path is not None and (resolved(path) == frames_folder or frames_folder in resolved(path).parents):
                raise UsageError(f"{flag} {path} is inside --frames-dir {args.frames_dir}, which is replaced "
                                 "whole by the frames; write it elsewhere")
    inputs = [("--source", args.source), ("--load-maps", args.load_maps)] + [("--target", t) for t in args.target]
    check_outputs({"--output": args.output, "--save-maps": args.save_maps, "--maps-png": args.maps_png}, inputs,
                  OUTPUT_SUFFIXES_BY_FLAG)
    if args.frames_dir is not None:
        problem = frames_folder_problem(args.frames_dir)
        if problem is not None:
            raise UsageError(f"--frames-dir {args.frames_dir}: {problem}")
        parent = args.frames_dir.absolute().parent
        while not parent.exists() and parent != parent.parent:  # missing folders above are made
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"--frames-dir {args.frames_dir}: cannot create it in {parent} (not a writable folder)")
    if args.load_maps is not None and args.save_maps is not None:
        raise UsageError("--load-maps and --save-maps together would only copy the file; give one")
    if args.load_maps is not None and args.points is not None:
        raise UsageError("--points guides a fit; with --load-maps nothing is fitted (drop one of them)")
    several_legs = len(args.target) > 1 or args.loop
    for flag, value in (("--save-maps", args.save_maps), ("--load-maps", args.load_maps)):
        if value is not None and several_legs:
            raise UsageError(f"{flag} works with one target and no --loop (maps describe one transition)")

    try:
        source: LoadedImage = load_image(args.source)
        targets: list[LoadedImage] = [load_image(path) for path in args.target]
    except ImageFileError as error:
        raise RunError(str(error)) from None
    notices = [f"source {args.source}: {note}" for note in source.notes]
    height, width = source.pixels.shape[:2]
    keys = [source.pixels]
    # Each key image's file, shape in the file, and the crop that brought it to the source's size.
    originals = [(args.source, (height, width), (0, 0, height, width))]
    for path, target in zip(args.target, targets):
        notices += [f"target {path}: {note}" for note in target.notes]
        pixels, resized = fit_to_size(target.pixels, height, width)
        if resized:
            notices.append(f"target {path}: {resized} to match the source")
        keys.append(pixels)
        originals.append((path, target.pixels.shape[:2], aspect_crop(*target.pixels.shape[:2], height, width)))
    if args.loop:
        keys.append(source.pixels)
        originals.append(originals[0])
    alphas: tuple[np.ndarray | None, ...] | None = None
    if any(image.alpha is not None for image in (source, *targets)):
        # Each image's opacity brought to the key size as its colours were.
        alphas = tuple(None if image.alpha is None else fit_to_size(image.alpha, height, width)[0]
                       for image in (source, *targets))
        if args.background is not None or args.output.suffix.lower() == ".mp4":
            if args.background is None:
                notices.append("MP4 has no transparency: transparent inputs composited on white (--background "
                               "COLOUR to choose)")
            key_alphas = alphas + (alphas[:1] if args.loop else ())
            keys = [composite(key, alpha, args.background or WHITE) for key, alpha in zip(keys, key_alphas)]
            alphas = None

    working_size = flag_working_size(args, height, width)
    rendered = (height, width) if args.preview is None else working_shape(height, width, args.preview)
    try:
        output_size(args).of(*rendered)
    except ValueError as error:
        raise UsageError(f"--width/--height/--scale: {error}") from None

    loaded_maps = None
    if args.load_maps is not None:
        try:
            loaded_maps = load_maps_for(args.load_maps, height, width)
        except MapsFileError as error:
            raise RunError(str(error)) from None
    scales = flag_scales(args, None if loaded_maps is None else loaded_maps.scales)
    return Job(
        keys=tuple(keys),
        scales=scales,
        loaded_maps=loaded_maps,
        working_size=working_size,
        notices=tuple(notices),
        points=read_leg_points(args.points, originals, (height, width)),
        alphas=alphas,
    )

LARGE_FRAME_MEGAPIXELS = 16
LARGE_WORK_MEGAPIXELS = 1500


def _large_work_notice(args: argparse.Namespace, job: Job) -> str:
    """A line saying how long and how much memory a large render will roughly take, or ``""``."""
    from morphing.render.opencv import expected_work

    height, width = job.keys[0].shape[:2]
    if args.preview is not None:
        height, width = working_shape(height, width, args.preview)
    frames = (len(job.keys) - 1) * (args.frames + args.hold) * (2 if args.boomerang else 1)
    megapixels = height * width / 1e6
    if megapixels <= LARGE_FRAME_MEGAPIXELS and megapixels * frames <= LARGE_WORK_MEGAPIXELS:
        return ""
    seconds, memory = expected_work(height, width, frames)
    duration = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    return (f"large job: {frames} frames of {width}x{height} ({megapixels:.0f} MP each); rendering takes "
            f"roughly {duration} on 2 CPU cores and {memory / 2**30:.1f} GB of memory beside TensorFlow's "
            f"(Ctrl-C stops it cleanly)")

def encoder_settings(args: argparse.Namespace) -> EncoderSettings:
    """How the flags ask to encode."""
    return EncoderSettings(crf=args.crf, preset=args.preset, quality=args.quality, colors=args.colors,
                           dither=True if args.dither is None else args.dither,
                           loop_count=0 if args.loop_count is None else args.loop_count)


def output_size(args: argparse.Namespace) -> OutputSize:
    """The size the flags ask frames to be written at."""
    return OutputSize(width=args.width, height=args.height, scale=args.scale)


def frame_settings(args: argparse.Namespace) -> FrameSettings:
    """The frames the flags ask for."""
    return FrameSettings(
        frames=args.frames, hold=args.hold, easing=args.easing, even_pacing=args.even_pacing, loop=args.loop,
        boomerang=args.boomerang, interpolation=args.interpolation, blend=args.blend, engine=args.render_engine,
    )


class LegBars:
    """One progress bar per leg of the fit (``step_bar``): the first's shown at once (the fit compiles
    before its first step), each next one from its leg's first step."""

    def __init__(self, legs: int, total: int, console: Console) -> None:
        self.legs, self.total, self.console = legs, total, console
        self.leg, (self.bar, self._on_step) = 0, self._open(0)

    def _open(self, leg: int) -> tuple[tqdm, Callable[[int, float], None]]:
        label = "fitting" if self.legs == 1 else f"fitting {leg + 1}/{self.legs}"
        return step_bar(self.console, self.total, label, digits=4)

    def on_step(self, leg: int, step: int, loss: float) -> None:
        if leg != self.leg:
            self.bar.close()
            self.leg, (self.bar, self._on_step) = leg, self._open(leg)
        self._on_step(step + 1, loss)

    def close(self) -> None:
        self.bar.close()


STILL_START_HINT = ("nothing lined the pictures up, so the fit starts from no motion; if the middle frame "
                    "shows two of something (two faces, two dogs), give two or three --points pairs (eyes, nose)")


def fit_with_progress(morph: Morph, console: Console, start_candidates: list[list[Candidate]] | None = None) -> None:
    """Fit every leg of ``morph``, one after another, with a progress bar per leg and the start each took
    in the log; ``start_candidates`` as ``Morph.fit`` takes them. A diverged fit is a ``RunError``."""
    from morphing.fit.fitter import FitDivergedError

    bars = LegBars(morph.legs, morph.total_steps, console)

    def on_start(leg: int, choice: StartChoice) -> None:
        console.say(f"{PROGRAM}: {'' if morph.legs == 1 else f'leg {leg + 1}: '}{choice.describe()}")
        if choice.kept_still:
            console.say(f"{PROGRAM}: {STILL_START_HINT}")

    def on_polish(leg: int, polished: Polished) -> None:
        console.say(f"{PROGRAM}: {'' if morph.legs == 1 else f'leg {leg + 1}: '}{polished.describe()}")

    try:
        morph.fit(bars.on_step, check=console.check, on_start=on_start, start_candidates=start_candidates,
                  on_polish=on_polish)
    except FitDivergedError as error:
        raise RunError(str(error)) from None
    finally:
        bars.close()


def fit_settings_of(args: argparse.Namespace, job: Job) -> FitSettings:
    """How the flags ask to fit."""
    return flag_fit_settings(args, job.working_size)


def start_global_stage(args: argparse.Namespace, job: Job, tensorflow_started: bool
                       ) -> SpawnedWork[list[list[Candidate]]] | None:
    """The fit's start candidates for every leg (``starts.leg_start_candidates``: the global search,
    matched features and matched regions), started in a helper process when TensorFlow is still to be
    imported (they need none, and the import keeps one core of this process busy for seconds);
    ``None`` when the maps are loaded, TensorFlow is running already (a batch's rows) or no helper
    process starts (the fit then does the stage itself)."""
    if job.loaded_maps is not None or tensorflow_started:
        return None
    from morphing.fit.starts import leg_start_candidates  # numpy and OpenCV: not needed for --help
    from morphing.runtime.concurrency import SpawnedWork

    try:
        return SpawnedWork(leg_start_candidates, job.keys, fit_settings_of(args, job), job.scales, job.points or None)
    except (OSError, RuntimeError, ValueError):
        return None


def _new_morph(args: argparse.Namespace, job: Job, console: Console, cache: ProgramCache | None) -> Morph:
    """The morph the flags describe: its key images, points, settings and (found here, with messages) face
    points."""
    from ..morph import Morph

    settings = fit_settings_of(args, job)
    targets = job.keys[1:-1] if args.loop else job.keys[1:]
    morph = Morph(job.keys[0], list(targets), points=job.points or None, settings=settings, scales=job.scales,
                  loop=args.loop, alphas=job.alphas, cache=cache)
    if job.loaded_maps is None:
        if settings.face_points and job.scales.warp > 0:
            morph.prepare()  # the fit's programs compile while the faces are looked for
            morph.face_points = found_face_points(job.keys, job.points, console)
        else:
            morph.face_points = [None] * morph.legs
    return morph


def run_morph(
    args: argparse.Namespace,
    job: Job,
    console: Console,
    timer: StageTimer,
    cache: ProgramCache | None = None,
    tensorflow_started: bool = False,
) -> None:
    """Fit (or load) the maps, then render and encode; TensorFlow is imported here (``tensorflow_started``:
    it was already, as in a batch, so no helper process is worth starting before it).

    ``cache`` is kept between the rows of a batch (see ``ProgramCache``).
    """
    global_stage = start_global_stage(args, job, tensorflow_started)
    # Nothing to fit and frames by OpenCV: TensorFlow is not needed at all.
    opencv_only = job.loaded_maps is not None and args.render_engine == "opencv"
    if not opencv_only:
        with timer.stage("tensorflow import"):
            tf = start_tensorflow(args.cpu)
    from morphing.runtime.backend import device_description
    from morphing.io.output import (
        animation_writer,
        atomic_folder,
        atomic_path,
        frames_to_folder,
        resized_frames,
        write_png,
    )
    from morphing.io.visualize import maps_picture

    console.say(f"{PROGRAM}: running on {'CPU' if opencv_only else device_description(tf)}")
    for notice in job.notices:
        console.say(f"{PROGRAM}: {notice}")
    large = _large_work_notice(args, job)
    if large:
        console.say(f"{PROGRAM}: {large}")

    console.check()
    with timer.stage("fit"):
        morph = _new_morph(args, job, console, cache)
        if job.loaded_maps is not None:
            morph.maps = [job.loaded_maps]
        else:
            candidates = None
            if global_stage is not None:
                try:
                    candidates = global_stage.result(console.check)
                except (RuntimeError, ValueError, MemoryError):
                    candidates = None  # the fit finds them itself, and reports a real problem
            fit_with_progress(morph, console, candidates)
    if args.save_maps is not None:
        morph.save_maps(args.save_maps)
        console.say(f"{PROGRAM}: wrote maps to {args.save_maps}")
    if args.maps_png is not None:
        pictures = [maps_picture(maps, points=job.points[leg] if job.points else None)
                    for leg, maps in enumerate(morph.maps)]
        write_png(np.concatenate(pictures, axis=0), args.maps_png)
        console.say(f"{PROGRAM}: wrote maps picture to {args.maps_png}")

    with timer.stage("render"), console.bar(morph.legs, "preparing frames", "leg") as preparing:
        animation = morph.animation(frame_settings(args), long_side=args.preview, check=console.check,
                                    on_leg_ready=lambda leg: preparing.update(1))
    writer = animation_writer(args.output.suffix, args.fps, encoder_settings(args))
    written_shape = output_size(args).of(*animation.shape)
    with console.bar(len(animation), "rendering", "frame") as bar:
        def counted(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for frame in frames:
                console.check()
                yield frame
                bar.update(1)

        # The writer pulls frames through PNG writing and rendering; each
        # layer is timed, and what the writer spent beyond that is encoding
        # (a GIF's palette included: it renders its sample frames first).
        render_before = timer.seconds["render"]
        rendered = resized_frames(timer.timed("render", iter(animation)), *written_shape)
        with contextlib.ExitStack() as outputs:
            frames_folder = None if args.frames_dir is None else outputs.enter_context(atomic_folder(args.frames_dir))
            with_pngs = timer.timed("render+png", frames_to_folder(rendered, frames_folder))
            with timer.stage("write"), atomic_path(args.output) as temporary:
                # In a helper thread, so that a signal is acted on within 0.1 s even while
                # an encoder spends seconds on one huge frame.
                samples = resized_frames(animation.samples(), *written_shape)
                run_checked(lambda: writer.write(counted(with_pngs), temporary, count=len(animation),
                                                 samples=samples), console.check)
        produced = timer.seconds.pop("render+png")
        if args.frames_dir is not None:
            timer.add("png frames", produced - (timer.seconds["render"] - render_before))
        timer.add("encode", timer.seconds.pop("write") - produced)
    height, width = written_shape
    console.say(f"{PROGRAM}: wrote {args.output} ({len(animation)} frames, {width}x{height})")

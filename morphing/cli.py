"""Command line: ``python morph.py -s SOURCE -t TARGET [options]``.

Flags and files only: parsing, validation, progress and messages. Inputs are
checked (with Pillow alone) before TensorFlow is even imported, so mistakes are
reported in a fraction of a second. Exit status: 0 success, 1 runtime error,
2 usage error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from . import __version__
from .images import ImageFileError, LoadedImage, aspect_crop, fit_to_size, load_image
from .maps import MapsFileError, MorphMaps, Scales, load_maps_for
from .output import frames_folder_problem
from .cli_common import (
    DEFAULT_EPOCHS,
    DEFAULT_SCALES,
    DEFAULT_SIZE,
    MIN_SIZE,
    PROGRAM,
    ExitStatus,
    HelpFormatter,
    Parser,
    RunError,
    UsageError,
    check_writable_file,
    float_in,
    int_in,
    new_default_output,
    read_leg_points,
    same_file,
)
from .cli_tools import TOOL_NAMES, build_tool_parser, run_tool
from .points import PointPairs
from .settings import ANIMATION_SUFFIXES, BLENDS, RENDER_ENGINES, WARP_INTERPOLATIONS, FitSettings
from .timeline import EASINGS

if TYPE_CHECKING:  # only for annotations: TensorFlow is imported late, on purpose
    from .fit import MapFitter
    from .render import RenderProgram

__all__ = ["ExitStatus", "build_parser", "main"]

DEFAULT_OUTPUT = "morph.gif"
#: GIF stores each frame's delay as a 16-bit count of 1/100 s.
MAX_GIF_DELAY_CENTISECONDS = 65535
MAX_FRAMES = 10_000
OUTPUT_SUFFIXES_BY_FLAG = {"--output": ANIMATION_SUFFIXES, "--save-maps": (".npz",), "--maps-png": (".png",)}


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like KeyboardInterrupt so temp files are removed."""


class StopRequest:
    """Ctrl-C and SIGTERM, acted on at safe points of our own code.

    A handler that raised at once could fire inside TensorFlow, where an
    exception may be swallowed; instead the first signal is recorded and
    ``check()`` (called after every fitting step, between the strips of every
    frame, and every 0.1 s while the fit compiles) raises it. Until the first
    ``check()`` (decoding the images, importing TensorFlow: nothing to lose)
    a signal acts at once, and so does a second signal.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.immediate = True

    def handle(self, signum: int, frame: object) -> None:
        self.received = signum
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else _raise_terminated)
        if self.immediate:
            self.check()

    def check(self) -> None:
        self.immediate = False
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is not None:
            raise Terminated()


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``--help`` shows every default."""
    parser = Parser(
        prog=PROGRAM,
        description=(
            "Morph one image into another without reference points: gradient descent "
            "finds multiply, add and warp maps, and scaling them by alpha from 0 to 1 "
            "gives the transition, written as an animated GIF."
        ),
        epilog=(
            "Sibling tools on the same core: 'morph hybrid', 'morph shift', 'morph align' and "
            "'morph warp' (each with --help)."
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
    fitting.add_argument("-e", "--epochs", type=int_in(1, 100_000), default=DEFAULT_EPOCHS, help="gradient descent steps")
    fitting.add_argument("-a", "--add-scale", type=float_in(0.0, 10.0), default=None,
                         help=f"add map multiplier [default {DEFAULT_SCALES.add}; with --load-maps, the fitted one]")
    fitting.add_argument("-m", "--mult-scale", type=float_in(0.0, 10.0), default=None,
                         help=f"multiply map multiplier [default {DEFAULT_SCALES.mult}; with --load-maps, the fitted one]")
    fitting.add_argument("-w", "--warp-scale", type=float_in(0.0, 10.0), default=None,
                         help=f"warp map multiplier [default {DEFAULT_SCALES.warp}; with --load-maps, the fitted one]")
    fitting.add_argument("--size", type=int_in(MIN_SIZE, 8192), default=None,
                         help=f"working resolution for fitting, long side in pixels [default {DEFAULT_SIZE}, "
                              "or the source's if smaller]")
    fitting.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="random seed of the fit")
    fitting.add_argument("--points", type=Path, nargs="+", default=None, metavar="F.csv",
                         help="matching points to pull the warp through, one file per transition: CSV rows "
                              "x_source,y_source,x_target,y_target in each image's own pixels ('#' comments)")
    fitting.add_argument("--cpu", action="store_true", help="fit and render on the CPU even if a GPU is present")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--frames", type=int_in(2, MAX_FRAMES), default=100,
                        help="frames per transition, both ends included (a sequence shares its key frames)")
    frames.add_argument("--hold", type=int_in(0, MAX_FRAMES), default=0, help="extra frames to hold on each key image")
    frames.add_argument("--easing", choices=EASINGS, default="linear", help="how alpha runs over a transition")
    frames.add_argument("--even-pacing", action=argparse.BooleanOptionalAction, default=False,
                        help="re-time each transition so consecutive frames change by equal amounts")
    ends = frames.add_mutually_exclusive_group()
    ends.add_argument("--loop", action="store_true", help="morph back from the last image to the source")
    ends.add_argument("--boomerang", action="store_true", help="play forward, then backward")
    frames.add_argument("--interpolation", choices=WARP_INTERPOLATIONS, default="bicubic",
                        help="how frames sample the warped images (fitting always uses bilinear)")
    frames.add_argument("--blend", choices=BLENDS, default="detail",
                        help="'detail' rescales the blended frame's fine detail to the endpoints' local strength, "
                             "so middle frames stay sharp; 'linear' is the plain (1-alpha, alpha) blend")
    frames.add_argument("--preview", type=int_in(16, 4096), nargs="?", const=256, default=None, metavar="PX",
                        help="render the frames with the long side at PX pixels (default 256) instead of the "
                             "source's size: a quick look at settings (the fit is the same)")
    frames.add_argument("--render-engine", choices=RENDER_ENGINES, default="auto",
                        help="what computes the frames: 'opencv' (CPU), 'tensorflow' (XLA; GPU if present); "
                             "'auto' takes TensorFlow when it sees a GPU, else OpenCV (same frames either way)")
    frames.add_argument("--fps", type=float_in(0.0, 100.0, low_open=True), default=25.0,
                        help="frames per second (GIF stores delays in whole 1/100 s: the rounding is spread "
                             "over the frames so the total duration is right)")
    frames.add_argument("--frames-dir", type=Path, default=None, help="also write every frame as DIR/0000.png, ...")
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


class StageTimer:
    """Wall seconds spent per named stage, for ``--timings``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def timed(self, name: str, items: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass ``items`` through, counting the time spent producing them as ``name``."""
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.add(name, time.perf_counter() - start)
                return
            self.add(name, time.perf_counter() - start)
            yield item

    def summary(self) -> str:
        stages = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.seconds.items())
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return f"timings: {stages}; peak RSS {peak_mib:.0f} MiB"


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


def _validate(args: argparse.Namespace) -> Job:
    """Check flags and files, decode the images; raise UsageError or RunError.

    Without ``-o`` the output is ``DEFAULT_OUTPUT`` (set on ``args``), which must not exist yet.
    """
    args.output = new_default_output(args.output, DEFAULT_OUTPUT)
    if args.output.suffix.lower() == ".gif" and 100.0 / args.fps > MAX_GIF_DELAY_CENTISECONDS:
        raise UsageError(f"--fps {args.fps:g} is too slow for a GIF (at most {MAX_GIF_DELAY_CENTISECONDS / 100:g} s "
                         f"a frame: --fps {100.0 / MAX_GIF_DELAY_CENTISECONDS:.4f} or more)")
    outputs = {
        flag: path
        for flag, path in (("--output", args.output), ("--save-maps", args.save_maps), ("--maps-png", args.maps_png))
        if path is not None
    }
    inputs = [("--source", args.source), ("--load-maps", args.load_maps)] + [("--target", t) for t in args.target]
    for flag, path in outputs.items():
        for name, source in inputs:
            if source is not None and (same_file(path, source) or path.resolve() == source.resolve()):
                raise UsageError(f"{flag} {path} is the same file as {name}; refusing to overwrite an input")
    for flag, path in outputs.items():
        check_writable_file(path, flag, OUTPUT_SUFFIXES_BY_FLAG[flag])
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

    long_side = max(height, width)
    if args.size is not None and args.size > long_side:
        raise UsageError(f"--size {args.size} is larger than the source ({width}x{height}); use at most {long_side}")
    working_size = args.size if args.size is not None else min(DEFAULT_SIZE, long_side)

    loaded_maps = None
    fitted = DEFAULT_SCALES
    if args.load_maps is not None:
        try:
            loaded_maps = load_maps_for(args.load_maps, height, width)
        except MapsFileError as error:
            raise RunError(str(error)) from None
        fitted = loaded_maps.scales
    scales = Scales(
        mult=fitted.mult if args.mult_scale is None else args.mult_scale,
        add=fitted.add if args.add_scale is None else args.add_scale,
        warp=fitted.warp if args.warp_scale is None else args.warp_scale,
    )
    return Job(
        keys=tuple(keys),
        scales=scales,
        loaded_maps=loaded_maps,
        working_size=working_size,
        notices=tuple(notices),
        points=read_leg_points(args.points, originals, (height, width)),
    )


def _frames_to_folder(frames: Iterator[np.ndarray], folder: Path | None) -> Iterator[np.ndarray]:
    """Pass frames through, writing each as ``folder/NNNN.png`` on the way."""
    from .output import write_png

    for index, frame in enumerate(frames):
        if folder is not None:
            write_png(frame, folder / f"{index:04d}.png")
        yield frame


@dataclass
class Compiled:
    """Fitters and render programs kept between the legs and rows of one process.

    Each traces and compiles once per working shape or frame shape (seconds on
    2 CPU cores), so the legs of a multi-key morph and the rows of a batch of
    one size pay for it once. Only the ``kept_shapes`` most recently used frame
    sizes are kept (each holds tens of MB of compiled code), so a batch that
    alternates between a few sizes compiles each once, and a batch of many
    sizes does not grow in memory.
    """

    kept_shapes: int = 3
    frame_shape: tuple[int, int] = (0, 0)
    recent_shapes: list[tuple[int, int]] = field(default_factory=list)
    fitters: dict[tuple[tuple[int, int], FitSettings, Scales], MapFitter] = field(default_factory=dict)
    programs: dict[tuple[tuple[int, int], str, str], RenderProgram] = field(default_factory=dict)

    def use_shape(self, frame_shape: tuple[int, int]) -> None:
        """Build for frames of ``frame_shape`` next; forget the least recently used shapes beyond ``kept_shapes``."""
        self.frame_shape = frame_shape
        if frame_shape in self.recent_shapes:
            self.recent_shapes.remove(frame_shape)
        self.recent_shapes.append(frame_shape)
        del self.recent_shapes[: -self.kept_shapes]
        self.fitters = {key: value for key, value in self.fitters.items() if key[0] in self.recent_shapes}
        self.programs = {key: value for key, value in self.programs.items() if key[0] in self.recent_shapes}

    def fitter(self, settings: FitSettings, scales: Scales) -> MapFitter:
        from .fit import MapFitter

        key = (self.frame_shape, settings, scales)
        if key not in self.fitters:
            self.fitters[key] = MapFitter(scales, settings)
        return self.fitters[key]

    def program(self, interpolation: str, blend: str) -> RenderProgram:
        from .render import RenderProgram

        key = (self.frame_shape, interpolation, blend)
        if key not in self.programs:
            self.programs[key] = RenderProgram(interpolation, blend)
        return self.programs[key]


def _fit_legs(
    args: argparse.Namespace,
    job: Job,
    err: TextIO,
    timer: StageTimer,
    check: Callable[[], None],
    compiled: Compiled,
) -> list[MorphMaps]:
    """Maps for every leg: loaded, or fitted one leg after another."""
    from tqdm import tqdm

    from .fit import FitDivergedError, FitSettings, reduce_for_fit

    if job.loaded_maps is not None:
        return [job.loaded_maps]
    legs = len(job.keys) - 1
    settings = FitSettings(epochs=args.epochs, working_size=job.working_size, seed=args.seed)
    fitter = compiled.fitter(settings, job.scales)
    all_maps = []
    for leg in range(legs):
        label = "fitting" if legs == 1 else f"fitting {leg + 1}/{legs}"
        with tqdm(total=settings.total_steps, desc=label, unit="step", file=err, disable=args.quiet,
                  dynamic_ncols=True, leave=False) as bar:
            def on_step(step: int, loss: float) -> None:
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(step + 1 - bar.n)
                check()

            try:
                with timer.stage("fit"):
                    all_maps.append(fitter.fit(*reduce_for_fit(job.keys[leg], job.keys[leg + 1], job.working_size),
                                               on_step, image_shape=job.keys[0].shape[:2],
                                               points=job.points[leg] if job.points else None, check=check))
            except FitDivergedError as error:
                raise RunError(f"leg {leg + 1}: {error}" if legs > 1 else str(error)) from None
    return all_maps


def _leg_alphas(
    args: argparse.Namespace, job: Job, all_maps: list[MorphMaps], compiled: Compiled
) -> list[np.ndarray]:
    """Each leg's alphas: eased, and re-timed for even change if asked."""
    from .render import even_pacing_alphas, frame_alphas
    from .timeline import ease

    progress = ease(frame_alphas(args.frames), args.easing)
    if not args.even_pacing:
        return [progress] * len(all_maps)
    leg_alphas = []
    for leg, maps in enumerate(all_maps):
        even = even_pacing_alphas(
            job.keys[leg], job.keys[leg + 1], maps, job.scales, count=args.frames,
            program=compiled.program(args.interpolation, args.blend), engine=args.render_engine,
        )
        # Easing applies to progress; even pacing maps progress to alpha.
        alphas = np.interp(progress, np.linspace(0.0, 1.0, len(even)), even)
        alphas[0], alphas[-1] = 0.0, 1.0
        leg_alphas.append(alphas)
    return leg_alphas


def _preview_keys(keys: tuple[np.ndarray, ...], long_side: int) -> tuple[np.ndarray, ...]:
    """The key images reduced to ``long_side`` pixels on their long side (never enlarged): maps are
    resolution-free, so the same fit renders at any size."""
    from .images import resize_image, working_shape

    small = working_shape(*keys[0].shape[:2], long_side)
    return tuple(resize_image(key, *small) for key in keys)


#: Frames of more megapixels than this, or work of more frame-megapixels in all, get a notice.
LARGE_FRAME_MEGAPIXELS = 16
LARGE_WORK_MEGAPIXELS = 1500


def _large_work_notice(args: argparse.Namespace, job: Job) -> str:
    """A line saying how long and how much memory a large render will roughly take, or ``""``."""
    from .images import working_shape
    from .render_cv import expected_work

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


def _run(
    args: argparse.Namespace,
    job: Job,
    say: Callable[[str], None],
    err: TextIO,
    timer: StageTimer,
    check: Callable[[], None] = lambda: None,
    compiled: Compiled | None = None,
) -> None:
    """Fit (or load) the maps, then render and encode; TensorFlow is imported here.

    ``check`` is called at safe points and raises to stop (see ``StopRequest``).
    ``compiled`` is kept between the rows of a batch (see ``Compiled``).
    """
    from tqdm import tqdm

    from .backend import BackendError, device_description, load_tensorflow

    try:
        with timer.stage("tensorflow import"):
            tf = load_tensorflow(force_cpu=args.cpu)
    except BackendError as error:
        raise RunError(str(error)) from None
    from .maps import save_maps
    from .output import animation_writer, atomic_folder, atomic_path, write_png
    from .render import FrameRenderer, timeline_frames
    from .timeline import build_timeline
    from .visualize import maps_picture

    say(f"{PROGRAM}: running on {device_description(tf)}")
    for notice in job.notices:
        say(f"{PROGRAM}: {notice}")
    large = _large_work_notice(args, job)
    if large:
        say(f"{PROGRAM}: {large}")

    compiled = Compiled() if compiled is None else compiled
    compiled.use_shape(job.keys[0].shape[:2])
    check()
    all_maps = _fit_legs(args, job, err, timer, check, compiled)
    if args.save_maps is not None:
        with atomic_path(args.save_maps) as temporary:
            save_maps(all_maps[0], temporary)
        say(f"{PROGRAM}: wrote maps to {args.save_maps}")
    if args.maps_png is not None:
        pictures = [maps_picture(maps, points=job.points[leg] if job.points else None) for leg, maps in enumerate(all_maps)]
        write_png(np.concatenate(pictures, axis=0), args.maps_png)
        say(f"{PROGRAM}: wrote maps picture to {args.maps_png}")

    keys = job.keys if args.preview is None else _preview_keys(job.keys, args.preview)
    with timer.stage("render"), tqdm(total=len(all_maps), desc="preparing frames", unit="leg", file=err,
                                     disable=args.quiet, dynamic_ncols=True, leave=False) as preparing:
        renderers = []
        for leg, maps in enumerate(all_maps):
            renderers.append(FrameRenderer(
                keys[leg], keys[leg + 1], maps, job.scales,
                program=compiled.program(args.interpolation, args.blend), engine=args.render_engine, check=check,
            ))
            preparing.update(1)
        timeline = build_timeline(
            _leg_alphas(args, job, all_maps, compiled), hold=args.hold, boomerang=args.boomerang, loop=args.loop
        )
    with timer.stage("encode"):  # a GIF's global palette is chosen here, from frames rendered for it
        # Lazy: only the GIF writer reads them. Through frames(): padded to the frames' batch, so a
        # compiled renderer is reused.
        palette_samples = itertools.chain(keys, renderers[0].frames([0.25, 0.5, 0.75]))
        writer = animation_writer(args.output.suffix, palette_samples, fps=args.fps, frame_count=len(timeline))
    with tqdm(total=len(timeline), desc="rendering", unit="frame", file=err, disable=args.quiet,
              dynamic_ncols=True, leave=False) as bar:
        def counted(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for frame in frames:
                check()
                yield frame
                bar.update(1)

        # The writer pulls frames through PNG writing and rendering; each
        # layer is timed, and what the writer spent beyond that is encoding.
        render_before = timer.seconds["render"]
        rendered = timer.timed("render", timeline_frames(renderers, timeline))
        with contextlib.ExitStack() as outputs:
            frames_folder = None if args.frames_dir is None else outputs.enter_context(atomic_folder(args.frames_dir))
            with_pngs = timer.timed("render+png", _frames_to_folder(rendered, frames_folder))
            with timer.stage("write"), atomic_path(args.output) as temporary:
                writer.write(counted(with_pngs), temporary)
        produced = timer.seconds.pop("render+png")
        if args.frames_dir is not None:
            timer.add("png frames", produced - (timer.seconds["render"] - render_before))
        timer.add("encode", timer.seconds.pop("write") - produced)
    height, width = keys[0].shape[:2]
    say(f"{PROGRAM}: wrote {args.output} ({len(timeline)} frames, {width}x{height})")


BATCH_ONLY_FLAGS = {"--batch": 1, "--shard": 1, "--overwrite": 0}
#: Flags of a batch row whose values are paths: relative ones are taken from the CSV's folder, like its columns.
ROW_PATH_FLAGS = ("save_maps", "load_maps", "maps_png", "frames_dir", "points")


@dataclass(frozen=True)
class BatchRow:
    """One row of a batch manifest, paths resolved against the manifest's folder."""

    index: int
    source: Path
    targets: tuple[Path, ...]
    output: Path
    flags: tuple[str, ...]
    points: tuple[Path, ...] = ()
    problem: str | None = None  # why the row cannot run (reported as the row's error)


def read_manifest(path: Path) -> list[BatchRow]:
    """Rows of a batch CSV (header: source, target, output[, flags][, points])."""
    import csv
    import shlex

    try:
        # utf-8-sig: spreadsheet programs' "CSV UTF-8" starts with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            read_header = list(reader.fieldnames or [])
            reader.fieldnames = [name.strip().lower() for name in read_header]
            rows = list(reader)
    except FileNotFoundError:
        raise UsageError(f"--batch {path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"--batch {path}: cannot read it as CSV ({error})") from None
    missing = {"source", "target", "output"} - {name.strip().lower() for name in read_header}
    if missing:
        raise UsageError(f"--batch {path}: the header must name source, target, output (and optionally flags, "
                         f"points); read {', '.join(map(repr, read_header)) or 'nothing'}")
    if not rows:
        raise UsageError(f"--batch {path}: no rows after the header")
    folder = path.parent
    manifest = []
    for index, row in enumerate(rows):
        targets = tuple(folder / t.strip() for t in (row["target"] or "").split(";") if t.strip())
        try:
            flags = tuple(shlex.split(row.get("flags") or ""))
        except ValueError as error:
            raise UsageError(f"--batch {path}: row {index + 1}: bad flags ({error})") from None
        problem = None
        if any(token in ("-o", "--output") or token.startswith(("-o", "--output=")) for token in flags):
            problem = "-o/--output in its flags; the output column names the row's output"
        points = tuple(folder / p.strip() for p in (row.get("points") or "").split(";") if p.strip())
        manifest.append(BatchRow(index, folder / (row["source"] or "").strip(), targets,
                                 folder / (row["output"] or "").strip(), flags, points, problem))
    return manifest


def _without_batch_flags(argv: Sequence[str]) -> list[str]:
    """The command line minus --batch/--shard/--overwrite: the flags every row shares."""
    kept: list[str] = []
    skip = 0
    for token in argv:
        if skip:
            skip -= 1
            continue
        name = token.split("=", 1)[0]
        if name in BATCH_ONLY_FLAGS:
            skip = BATCH_ONLY_FLAGS[name] if "=" not in token else 0
            continue
        kept.append(token)
    return kept


def _rebase_row_paths(row_args: argparse.Namespace, flags_alone: argparse.Namespace, folder: Path) -> None:
    """Take the path flags that a row's own flags set (``flags_alone``) from the CSV's ``folder``."""
    def rebased(path: Path) -> Path:
        return path if path.is_absolute() else folder / path

    for name in ROW_PATH_FLAGS:
        value = getattr(flags_alone, name)
        if value is not None:
            setattr(row_args, name, [rebased(p) for p in value] if isinstance(value, list) else rebased(value))


def _run_batch(
    args: argparse.Namespace,
    argv: list[str],
    say: Callable[[str], None],
    err: TextIO,
    timer: StageTimer,
    check: Callable[[], None],
) -> int:
    """Every row of the manifest in this process; failed rows are reported and skipped."""
    if args.source is not None or args.target is not None:
        raise UsageError("--batch takes sources and targets from the CSV; drop -s/-t")
    rows = read_manifest(args.batch)
    shard_index, shard_count = args.shard or (0, 1)
    shared = _without_batch_flags(argv)
    compiled = Compiled()  # fitters and renderers, shared by the rows
    done = skipped = 0
    failed: list[int] = []
    for row in rows:
        if row.index % shard_count != shard_index:
            continue
        label = f"row {row.index + 1} ({row.source.name} -> {', '.join(t.name for t in row.targets)})"
        if row.problem is not None:
            print(f"{PROGRAM}: {label}: error: {row.problem}", file=err)
            failed.append(row.index + 1)
            continue
        if row.output.exists() and not args.overwrite:
            say(f"{PROGRAM}: {label}: skipped, {row.output} exists (--overwrite to redo)")
            skipped += 1
            continue
        row_argv = [*shared, "-s", str(row.source), "-t", *map(str, row.targets), "-o", str(row.output), *row.flags]
        if row.points:
            row_argv += ["--points", *map(str, row.points)]
        try:
            row_args = build_parser().parse_args(row_argv)
            flags_alone = build_parser().parse_args(list(row.flags))
            _rebase_row_paths(row_args, flags_alone, args.batch.parent)
            if row_args.frames_dir is not None and flags_alone.frames_dir is None:
                # A --frames-dir given to the whole batch: one subfolder per row, named after its output.
                row_args.frames_dir = row_args.frames_dir / row.output.stem
            if not row.targets:
                raise UsageError("no target")
            job = _validate(row_args)
            _run(row_args, job, say, err, timer, check, compiled)
            done += 1
        except (UsageError, RunError) as error:
            print(f"{PROGRAM}: {label}: error: {error}", file=err)
            failed.append(row.index + 1)
        except SystemExit:  # --help or --version inside a row's flags
            print(f"{PROGRAM}: {label}: error: flags must not ask for --help or --version", file=err)
            failed.append(row.index + 1)
        except OSError as error:  # a full disk, an unwritable file: this row fails, the next may not
            print(f"{PROGRAM}: {label}: error: {describe_os_error(error)}", file=err)
            failed.append(row.index + 1)
        except Exception as error:  # noqa: BLE001 - one bad row must not stop the others
            print(f"{PROGRAM}: {label}: error: unexpected {type(error).__name__}: {error}", file=err)
            failed.append(row.index + 1)
    summary = f"{PROGRAM}: batch: {done} done, {skipped} skipped, {len(failed)} failed"
    if failed:
        summary += f" (rows {', '.join(map(str, failed))})"
        print(summary, file=err)  # shown even with --quiet: something went wrong
    else:
        say(summary)
    if args.timings:
        print(f"{PROGRAM}: {timer.summary()}", file=err)
    return ExitStatus.ERROR if failed else ExitStatus.OK


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: a full disk by name, else its reason and file."""
    if error.errno == errno.ENOSPC:
        return f"no space left on the device writing {error.filename}"
    if error.filename is not None:
        return f"{error.strerror or error}: {error.filename}"
    return f"unexpected OSError: {error} (set MORPH_DEBUG=1 for a traceback)"


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    debug = bool(os.environ.get("MORPH_DEBUG"))
    arguments = list(sys.argv[1:] if argv is None else argv)

    is_tool = bool(arguments) and arguments[0] in TOOL_NAMES
    try:
        args = (build_tool_parser() if is_tool else build_parser()).parse_args(arguments)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.USAGE
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=err, flush=True)

    stop = StopRequest()
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in watched}
    in_main_thread = _in_main_thread()
    if in_main_thread:
        for number in watched:
            signal.signal(number, stop.handle)
    timer = StageTimer()
    try:
        if is_tool:
            run_tool(args, say, err, out, stop.check)
            return ExitStatus.OK
        if args.batch is not None:
            return _run_batch(args, arguments, say, err, timer, stop.check)
        for flag, given in (("--shard", args.shard is not None), ("--overwrite", args.overwrite)):
            if given:
                raise UsageError(f"{flag} works only with --batch")
        if args.source is None or args.target is None:
            raise UsageError("the following arguments are required: -s/--source, -t/--target (or --batch)")
        with timer.stage("load"):
            job = _validate(args)
        _run(args, job, say, err, timer, stop.check)
        if args.timings:
            print(f"{PROGRAM}: {timer.summary()}", file=err)
        return ExitStatus.OK
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.USAGE
    except RunError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted; no output written for the run in progress", file=err)
        return ExitStatus.INTERRUPTED
    except Terminated:
        print(f"{PROGRAM}: terminated; no output written for the run in progress", file=err)
        return ExitStatus.TERMINATED
    except MemoryError:
        print(f"{PROGRAM}: error: out of memory; try a smaller --size or fewer --frames", file=err)
        return ExitStatus.ERROR
    except OSError as error:
        if debug and error.errno != errno.ENOSPC:
            raise
        print(f"{PROGRAM}: error: {describe_os_error(error)}", file=err)
        return ExitStatus.ERROR
    except Exception as error:  # noqa: BLE001 - one line unless debugging
        if debug:
            raise
        print(f"{PROGRAM}: error: unexpected {type(error).__name__}: {error} "
              "(set MORPH_DEBUG=1 for a traceback)", file=err)
        return ExitStatus.ERROR
    finally:
        if in_main_thread:
            for number, handler in previous.items():
                signal.signal(number, handler)
        out.flush()


def console_main() -> None:
    """Entry point of the installed ``morph`` command (and of ``morph.py``).

    Once TensorFlow is loaded, the process ends with ``os._exit`` after the
    output streams are flushed: tearing TensorFlow's modules down at
    interpreter exit takes over a second and does nothing a finished run
    needs (every output was already written and closed, atomically).
    """
    status = main()
    if "tensorflow" not in sys.modules:
        sys.exit(status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

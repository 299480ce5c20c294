"""What the command's modules share: exit codes, errors, signals, the parser and its
value checks, output checks, progress and messages.

Flags and messages only: nothing here imports TensorFlow (``start_tensorflow``
does, when a command has checked its flags and files).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import errno
import math
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import numpy as np

from morphing.io.images import ImageFileError, LoadedImage, fit_to_size, load_image
from morphing.model.maps import Scales
from morphing.io.output import probe_temporary_beside
from morphing.model.points import PointPairs, PointsFileError, read_points
from morphing.model.settings import FitSettings, PolishSettings

if TYPE_CHECKING:  # only for annotations: TensorFlow is imported late, on purpose
    from tqdm import tqdm

T = TypeVar("T")

__all__ = [
    "FACE_POINTS_HELP", "POLISH_HELP", "found_face_points", "resolved", "add_fit_flags", "flag_scales", "flag_working_size",
    "flag_fit_settings",
    "DEFAULT_EPOCHS", "DEFAULT_SCALES", "DEFAULT_SIZE", "MIN_SIZE", "PROGRAM",
    "ExitStatus", "HelpFormatter", "Parser", "RunError", "UsageError", "Terminated", "StopRequest", "Console",
    "StageTimer", "add_tool_flags", "check_outputs", "describe_unexpected", "check_writable_file", "describe_os_error", "float_in", "int_in", "load_pixels", "run_checked",
    "matched", "new_default_output", "read_leg_points", "same_file", "start_tensorflow", "start_tool", "step_bar",
]

PROGRAM = "morph"
DEFAULT_SCALES = Scales()
DEFAULT_EPOCHS = FitSettings().epochs
DEFAULT_SIZE = FitSettings().working_size
MIN_SIZE = 16


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143


class UsageError(Exception):
    """A bad flag or flag combination (exit status 2)."""


class RunError(Exception):
    """A failure while running (exit status 1)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones (None, False) that say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "[default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors raised instead of printed-and-exited."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def float_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            sign = ">" if low_open else ">="
            raise argparse.ArgumentTypeError(f"must be a number {sign} {low} and <= {high}, got {text}")
        return value

    return parse


def check_writable_file(path: Path, flag: str, suffixes: Sequence[str]) -> None:
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {path}: folder {folder} is not writable")
    if path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{flag} {path}: unknown file type {path.suffix or '(none)'!r}; use {', '.join(suffixes)}"
        )
    # os.access says yes to root everywhere, even on read-only or virtual file
    # systems: so try, before any work, what the writer will do at the end.
    try:
        probe_temporary_beside(path)
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot create a file in {folder} ({error.strerror or error})") from None


def new_default_output(given: Path | None, default: str) -> Path:
    """The output path: ``given`` (-o) as it is, else ``default``, which must not exist yet.

    A name the user typed may replace a file; a default name never does.
    """
    if given is not None:
        return given
    if Path(default).exists():
        raise UsageError(f"{default} exists and -o was not given; refusing to replace it "
                         "(name the output with -o: a file named there is replaced)")
    return Path(default)


def resolved(path: Path) -> Path:
    """``path`` with links and ``..`` resolved; where a link loops, the absolute path as written."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # a symbolic link loop
        return Path(os.path.abspath(path))


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


FACE_POINTS_HELP = ("'on' finds the largest face in each image (eyes, nose, mouth corners) and pulls the warp "
                    "through them when both have one; --points win where they disagree [default on]")


POLISH_HELP = ("'on' refines the fitted warp at the image's size (up to 512 px) with the optical flow where "
               "both pictures show one scene and the flow lines them up better [default on]")


def add_fit_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, legs: str) -> None:
    """The fit's flags, one definition for ``morph``, its batch rows and ``morph warp``: -e, -a, -m, -w,
    --size, --seed, --points, --face-points, --polish. ``legs``: ``"several"`` (one --points file per
    transition) or ``"one"``."""
    parser.add_argument("-e", "--epochs", type=int_in(1, 100_000), default=DEFAULT_EPOCHS, help="gradient descent steps")
    for short, name, default in (("-a", "add", DEFAULT_SCALES.add), ("-m", "mult", DEFAULT_SCALES.mult),
                                 ("-w", "warp", DEFAULT_SCALES.warp)):
        word = {"add": "add", "mult": "multiply", "warp": "warp"}[name]
        parser.add_argument(short, f"--{name}-scale", type=float_in(0.0, 10.0), default=None,
                            help=f"{word} map multiplier [default {default}; with --load-maps, the fitted one]")
    parser.add_argument("--size", type=int_in(MIN_SIZE, 8192), default=None,
                        help=f"working resolution for fitting, long side in pixels [default {DEFAULT_SIZE}, "
                             "or the source's if smaller]")
    parser.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="random seed of the fit")
    rows = "x_source,y_source,x_target,y_target in each image's own pixels ('#' comments)"
    if legs == "several":
        parser.add_argument("--points", type=Path, nargs="+", default=None, metavar="F.csv",
                            help=f"matching points to pull the warp through, one file per transition: CSV rows {rows}")
    else:
        parser.add_argument("--points", type=Path, default=None, metavar="F.csv",
                            help=f"matching points to pull the warp through: CSV rows {rows}")
    parser.add_argument("--face-points", choices=("on", "off"), default="on", help=FACE_POINTS_HELP)
    parser.add_argument("--polish", choices=("on", "off"), default="on", help=POLISH_HELP)


def flag_scales(args: argparse.Namespace, fitted: Scales | None = None) -> Scales:
    """The multipliers -a/-m/-w ask for; those not given are ``fitted``'s (loaded maps) or the defaults."""
    base = DEFAULT_SCALES if fitted is None else fitted
    return Scales(mult=base.mult if args.mult_scale is None else args.mult_scale,
                  add=base.add if args.add_scale is None else args.add_scale,
                  warp=base.warp if args.warp_scale is None else args.warp_scale)


def flag_working_size(args: argparse.Namespace, height: int, width: int) -> int:
    """The fit's working long side (--size, checked against the source's ``height`` x ``width``)."""
    long_side = max(height, width)
    if args.size is not None and args.size > long_side:
        raise UsageError(f"--size {args.size} is larger than the source ({width}x{height}); use at most {long_side}")
    return args.size if args.size is not None else min(DEFAULT_SIZE, long_side)


def flag_fit_settings(args: argparse.Namespace, working_size: int) -> FitSettings:
    """How the fit flags ask to fit."""
    return FitSettings(epochs=args.epochs, working_size=working_size, seed=args.seed,
                       face_points=args.face_points == "on", polish=PolishSettings(enabled=args.polish == "on"))


def found_face_points(
    keys: Sequence[np.ndarray], user_points: Sequence[PointPairs | None] | None, console: Console,
) -> list[PointPairs | None]:
    """Each leg's face key points (``morphing.fit.keypoints``, the bundled detector), with one line per leg
    saying what was found and used. TensorFlow must be started (the detector runs on it). The detector runs
    in a helper thread (``run_checked``), so a Ctrl-C or SIGTERM is acted on within 0.1 s while it looks."""
    from morphing.fit.keypoints import (
        default_face_detector,
        default_second_look,
        describe_face_points,
        leg_face_points,
        merge_point_pairs,
    )

    try:
        found = run_checked(lambda: leg_face_points(keys, default_face_detector(), default_second_look()),
                            console.check)
    except RuntimeError as error:  # the detector's package is missing: its message names the fix
        raise RunError(str(error)) from None
    for leg, face in enumerate(found):
        user = None if not user_points else user_points[leg]
        _, dropped = merge_point_pairs(user, face)
        label = "" if len(found) == 1 else f"leg {leg + 1}: "
        console.say(f"{PROGRAM}: {label}{describe_face_points(face, dropped)}")
    return found


def read_leg_points(
    paths: Sequence[Path] | None,
    originals: Sequence[tuple[Path, tuple[int, int], tuple[int, int, int, int]]],
    shape: tuple[int, int],
) -> tuple[PointPairs | None, ...]:
    """Each transition's user points (``--points``), in pixels of the key images as the fit sees them.

    ``originals``: each key image's file, its shape in the file, and the crop that
    brought it to ``shape``.
    """
    legs = len(originals) - 1
    if paths is None:
        return (None,) * legs
    if len(paths) != legs:
        raise UsageError(f"--points needs one file per transition: {legs} for this morph, got {len(paths)}")
    leg_points = []
    for leg, path in enumerate(paths):
        (_, source_shape, source_crop), (_, target_shape, target_crop) = originals[leg], originals[leg + 1]
        try:
            points = read_points(path, source_shape, target_shape)
            leg_points.append(points.cropped(source_crop, target_crop, shape))
        except PointsFileError as error:
            raise RunError(str(error)) from None
        except ValueError as error:
            raise RunError(f"{path}: {error}") from None
    return tuple(leg_points)


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived; unwinds like KeyboardInterrupt so temp files are removed."""


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


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
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else raise_terminated)
        if self.immediate:
            self.check()

    def check(self) -> None:
        self.immediate = False
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is not None:
            raise Terminated()


@dataclass(frozen=True)
class Console:
    """Where a command talks: ``err`` for messages and progress (nothing but errors when
    ``quiet``), ``out`` for results; ``check`` is called at safe points and raises to stop."""

    err: TextIO
    out: TextIO
    quiet: bool = False
    check: Callable[[], None] = lambda: None

    def say(self, message: str) -> None:
        """Print ``message`` on ``err`` unless quiet."""
        if not self.quiet:
            print(message, file=self.err, flush=True)

    def error(self, message: str) -> None:
        """Print ``message`` on ``err``, even when quiet."""
        print(message, file=self.err)

    def bar(self, total: int, label: str, unit: str) -> tqdm:
        """A progress bar on ``err`` (none when quiet) that leaves no line behind."""
        from tqdm import tqdm

        return tqdm(total=total, desc=label, unit=unit, file=self.err, disable=self.quiet, dynamic_ncols=True,
                    leave=False)


def step_bar(console: Console, total: int, label: str, digits: int = 5) -> tuple[tqdm, Callable[[int, float], None]]:
    """A bar of ``total`` steps and an ``on_step(done, loss)`` that moves it to ``done`` steps and checks for a stop."""
    bar = console.bar(total, label, "step")

    def on_step(done: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.{digits}f}", refresh=False)
        bar.update(done - bar.n)
        console.check()

    return bar, on_step


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


def run_checked(work: Callable[[], T], check: Callable[[], None], poll_seconds: float = 0.1) -> T:
    """``work()`` in a helper thread, calling ``check`` every ``poll_seconds`` meanwhile; its result.

    For long calls into libraries that cannot be stopped half-way (Pillow
    encoding one huge GIF frame takes many seconds): when ``check`` raises
    (Ctrl-C, SIGTERM), that is raised here at once and ``work`` is left to
    finish on its own in the (daemon) thread, its result unused; the command
    line then exits. An exception raised by ``work`` is raised here.
    """
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run, name="checked work", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_seconds)
        check()
    if failure:
        raise failure[0]
    return outcome[0]


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: a full disk by name, else its reason and file."""
    if error.errno == errno.ENOSPC:
        return f"no space left on the device writing {error.filename}"
    if error.filename is not None:
        return f"{error.strerror or error}: {error.filename}"
    return f"unexpected OSError: {error} (set MORPH_DEBUG=1 for a traceback)"


def describe_unexpected(error: Exception) -> str:
    """One line for an error nobody foresaw: the compile cache's failure by name, else its type and text."""
    from morphing.runtime.compile_cache import failure_hint

    return failure_hint(str(error)) or f"unexpected {type(error).__name__}: {error}"


def start_tensorflow(force_cpu: bool) -> Any:
    """Import TensorFlow (on the CPU alone with ``force_cpu``); ``RunError`` if it cannot start."""
    from morphing.runtime.backend import BackendError, load_tensorflow

    try:
        return load_tensorflow(force_cpu=force_cpu)
    except BackendError as error:
        raise RunError(str(error)) from None


def add_tool_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every sibling tool has."""
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (and results)")


def start_tool(args: argparse.Namespace, console: Console) -> Any:
    """Start TensorFlow for the tool ``args.tool`` and say where it runs."""
    from morphing.runtime.backend import device_description

    tf = start_tensorflow(args.cpu)
    console.say(f"{PROGRAM} {args.tool}: running on {device_description(tf)}")
    return tf


def load_pixels(path: Path, role: str, console: Console) -> np.ndarray:
    """The ``[H, W, 3] uint8`` pixels of an image file; its notes said as ``ROLE PATH: note``."""
    try:
        loaded: LoadedImage = load_image(path)
    except ImageFileError as error:
        raise RunError(str(error)) from None
    for note in loaded.notes:
        console.say(f"{PROGRAM}: {role} {path}: {note}")
    return loaded.pixels


def matched(pixels: np.ndarray, like: np.ndarray, role: str, path: Path, console: Console) -> np.ndarray:
    """``pixels`` brought to ``like``'s size (centre-cropped to its aspect), with a notice."""
    resized, action = fit_to_size(pixels, *like.shape[:2])
    if action:
        console.say(f"{PROGRAM}: {role} {path}: {action} to match")
    return resized


def check_outputs(
    outputs: dict[str, Path | None],
    inputs: Sequence[tuple[str, Path | None]],
    suffixes: Sequence[str] | dict[str, Sequence[str]],
) -> None:
    """Each output: a writable file of a known type (``suffixes``, or per flag) that is none of the
    ``(flag, path)`` inputs, and no two the same."""
    for flag, path in outputs.items():
        if path is None:
            continue
        for name, source in inputs:
            if source is not None and (same_file(path, source) or resolved(path) == resolved(source)):
                raise UsageError(f"{flag} {path} is the same file as {name}; refusing to overwrite an input")
    for flag, path in outputs.items():
        if path is not None:
            check_writable_file(path, flag, suffixes[flag] if isinstance(suffixes, dict) else suffixes)
    named = [resolved(path) for path in outputs.values() if path is not None]
    if len(set(named)) < len(named):
        raise UsageError("two outputs name the same file; give each its own")

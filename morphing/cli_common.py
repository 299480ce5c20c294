"""What the command line's modules share: exit codes, errors, the parser and its
value checks, output checks, the points files of a morph.

Flags and messages only: nothing here imports TensorFlow. ``morphing.cli`` (the
morph) and ``morphing.cli_tools`` (the sibling tools) both build on it and do
not import each other's internals.
"""

from __future__ import annotations

import argparse
import enum
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .maps import Scales
from .output import probe_temporary_beside
from .points import PointPairs, PointsFileError, read_points
from .settings import FitSettings

__all__ = [
    "DEFAULT_EPOCHS", "DEFAULT_SCALES", "DEFAULT_SIZE", "MIN_SIZE", "PROGRAM",
    "ExitStatus", "HelpFormatter", "Parser", "RunError", "UsageError",
    "check_writable_file", "float_in", "int_in", "new_default_output", "read_leg_points", "same_file",
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


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


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

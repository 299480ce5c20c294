"""The morph command's batch mode: ``morph --batch rows.csv [shared flags]``.

Every row of a CSV (columns source, target, output, optionally flags and
points) is one morph run in this process, sharing its compiled programs; a row
that fails is reported and the others go on.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from pathlib import Path

from .common import (PROGRAM, Console, ExitStatus, RunError, StageTimer, UsageError, describe_os_error,
    describe_unexpected, resolved, start_tensorflow)
from .morph import build_parser, run_morph, validate

__all__ = ["BatchRow", "read_manifest", "row_arguments", "run_batch"]

BATCH_ONLY_FLAGS = ("--batch", "--shard", "--overwrite")
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
    outputs: dict[Path, int] = {}  # each output (resolved) and the first row that names it
    for index, row in enumerate(rows):
        targets = tuple(folder / t.strip() for t in (row["target"] or "").split(";") if t.strip())
        problem = None
        try:
            flags = tuple(shlex.split(row.get("flags") or ""))
        except ValueError as error:  # this row fails; the others run
            flags, problem = (), f"bad flags ({error})"
        if problem is None and any(token in ("-o", "--output") or token.startswith(("-o", "--output="))
                                   for token in flags):
            problem = "-o/--output in its flags; the output column names the row's output"
        if problem is None and any(token.split("=", 1)[0] in BATCH_ONLY_FLAGS for token in flags):
            problem = "--batch/--shard/--overwrite in its flags; they belong to the whole batch's command line"
        for column in ("output", "source"):
            if problem is None and not (row.get(column) or "").strip():
                problem = f"its {column} cell is empty (each row names its source, target(s) and output)"
        if problem is None and any(token in ("-h", "--help", "--version") for token in flags):
            problem = "flags must not ask for --help or --version"
        output = folder / (row["output"] or "").strip()
        if problem is None:
            earlier = outputs.setdefault(resolved(output), index)
            if earlier != index:
                problem = f"its output {output} is also row {earlier + 1}'s; each row needs its own"
        points = tuple(folder / p.strip() for p in (row.get("points") or "").split(";") if p.strip())
        manifest.append(BatchRow(index, folder / (row["source"] or "").strip(), targets, output, flags, points,
                                 problem))
    return manifest


class _Unset:
    """Marks a path flag that a row's own flags did not give (see ``row_arguments``)."""


def row_arguments(batch_args: argparse.Namespace, row: BatchRow, folder: Path) -> argparse.Namespace:
    """A row's flags: the batch's command line (``batch_args``, parsed once) with the row's own flags
    parsed over it by the same parser (full flag names only), its source, targets, output and points; the
    path flags the row gives are taken from the CSV's ``folder``, like its columns.

    Raises ``UsageError`` for flags that are not the row's to give or cannot be parsed.
    """
    row_args = copy.copy(batch_args)
    row_args.batch, row_args.shard, row_args.overwrite = None, None, False
    shared_paths = {name: getattr(row_args, name) for name in ROW_PATH_FLAGS}
    for name in ROW_PATH_FLAGS:
        setattr(row_args, name, _Unset)
    # argparse fills in a default only where the namespace has no value yet: what the row does not give
    # stays the batch's.
    build_parser(allow_abbrev=False).parse_args(list(row.flags), namespace=row_args)
    for name, value in (("--batch", row_args.batch), ("--shard", row_args.shard)):
        if value is not None:
            raise UsageError(f"{name} in its flags; it belongs to the whole batch's command line")
    if row_args.overwrite:
        raise UsageError("--overwrite in its flags; it belongs to the whole batch's command line")
    if row_args.cpu and not batch_args.cpu:
        raise UsageError("--cpu in its flags; TensorFlow starts once for the whole batch: give --cpu on the "
                         "batch's command line")
    if row_args.output is not None or row_args.source is not None or row_args.target is not None:
        raise UsageError("-s/-t/-o in its flags; the source, target and output columns name them")

    def rebased(path: Path) -> Path:
        return path if path.is_absolute() else folder / path

    for name in ROW_PATH_FLAGS:
        value = getattr(row_args, name)
        if value is _Unset:
            setattr(row_args, name, shared_paths[name])
        elif value is not None:
            setattr(row_args, name, [rebased(p) for p in value] if isinstance(value, list) else rebased(value))
    row_args.source, row_args.target, row_args.output = row.source, list(row.targets), row.output
    if row.points:
        row_args.points = list(row.points)
    return row_args


def run_batch(args: argparse.Namespace, console: Console, timer: StageTimer) -> int:
    """Every row of the manifest in this process; failed rows are reported and skipped."""
    if args.source is not None or args.target is not None:
        raise UsageError("--batch takes sources and targets from the CSV; drop -s/-t")
    for flag, value in (("-o/--output", args.output), ("--save-maps", args.save_maps), ("--maps-png", args.maps_png)):
        if value is not None:  # one file for every row: each would replace the last
            raise UsageError(f"--batch with a shared {flag} would write every row to one file; give it in a row's "
                             "flags (or, for -o, the output column)")
    rows = read_manifest(args.batch)
    shard_index, shard_count = args.shard or (0, 1)
    # TensorFlow is started here, quietly (its C++ start-up log silenced, as in a single run), before
    # anything that imports it: the row cache does.
    start_tensorflow(args.cpu)
    from ..sequence import ProgramCache

    cache = ProgramCache()  # fitters and renderers, shared by the rows
    frames_folders: dict[Path, int] = {}  # each row's frames subfolder (resolved) and the row that claimed it
    done = skipped = 0
    failed: list[int] = []
    for row in rows:
        if row.index % shard_count != shard_index:
            continue
        label = f"row {row.index + 1} ({row.source.name} -> {', '.join(t.name for t in row.targets)})"
        if row.problem is not None:
            console.error(f"{PROGRAM}: {label}: error: {row.problem}")
            failed.append(row.index + 1)
            continue
        if row.output.exists() and not args.overwrite:
            console.say(f"{PROGRAM}: {label}: skipped, {row.output} exists (--overwrite to redo)")
            skipped += 1
            continue
        try:
            row_args = row_arguments(args, row, args.batch.parent)
            if row_args.frames_dir is not None and row_args.frames_dir is args.frames_dir:
                # A --frames-dir given to the whole batch: one subfolder per row, named after its output.
                row_args.frames_dir = row_args.frames_dir / row.output.stem
                claimed = frames_folders.setdefault(resolved(row_args.frames_dir), row.index)
                if claimed != row.index:
                    raise UsageError(f"its frames would go to {row_args.frames_dir}, row {claimed + 1}'s; give "
                                     "the rows' outputs different names")
            if not row.targets:
                raise UsageError("no target")
            job = validate(row_args)
            run_morph(row_args, job, console, timer, cache, tensorflow_started=True)
            done += 1
        except (UsageError, RunError) as error:
            console.error(f"{PROGRAM}: {label}: error: {error}")
            failed.append(row.index + 1)
        except SystemExit:  # --help or --version inside a row's flags
            console.error(f"{PROGRAM}: {label}: error: flags must not ask for --help or --version")
            failed.append(row.index + 1)
        except OSError as error:  # a full disk, an unwritable file: this row fails, the next may not
            console.error(f"{PROGRAM}: {label}: error: {describe_os_error(error)}")
            failed.append(row.index + 1)
        except Exception as error:  # noqa: BLE001 - one bad row must not stop the others
            console.error(f"{PROGRAM}: {label}: error: {describe_unexpected(error)}")
            failed.append(row.index + 1)
    summary = f"{PROGRAM}: batch: {done} done, {skipped} skipped, {len(failed)} failed"
    if failed:
        summary += f" (rows {', '.join(map(str, failed))})"
        console.error(summary)  # shown even with --quiet: something went wrong
    else:
        console.say(summary)
    if args.timings:
        console.error(f"{PROGRAM}: {timer.summary()}")
    return ExitStatus.ERROR if failed else ExitStatus.OK

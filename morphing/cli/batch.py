"""The morph command's batch mode: ``morph --batch rows.csv [shared flags]``.

Every row of a CSV (columns source, target, output, optionally flags and
points) is one morph run in this process, sharing its compiled programs; a row
that fails is reported and the others go on.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import (PROGRAM, Console, ExitStatus, RunError, StageTimer, UsageError, describe_os_error,
    describe_unexpected, resolved, start_tensorflow)
from .morph import build_parser, run_morph, validate

__all__ = ["BatchRow", "read_manifest", "run_batch"]

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


def run_batch(args: argparse.Namespace, argv: list[str], console: Console, timer: StageTimer) -> int:
    """Every row of the manifest in this process; failed rows are reported and skipped."""
    if args.source is not None or args.target is not None:
        raise UsageError("--batch takes sources and targets from the CSV; drop -s/-t")
    for flag, value in (("-o/--output", args.output), ("--save-maps", args.save_maps), ("--maps-png", args.maps_png)):
        if value is not None:  # one file for every row: each would replace the last
            raise UsageError(f"--batch with a shared {flag} would write every row to one file; give it in a row's "
                             "flags (or, for -o, the output column)")
    rows = read_manifest(args.batch)
    shard_index, shard_count = args.shard or (0, 1)
    shared = _without_batch_flags(argv)
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
                claimed = frames_folders.setdefault(resolved(row_args.frames_dir), row.index)
                if claimed != row.index:
                    raise UsageError(f"its frames would go to {row_args.frames_dir}, row {claimed + 1}'s; give "
                                     "the rows' outputs different names")
            if not row.targets:
                raise UsageError("no target")
            job = validate(row_args)
            run_morph(row_args, job, console, timer, cache)
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

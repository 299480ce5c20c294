"""The morph command's batch mode (``morphing.cli.batch``): manifests, rows, shards, resuming."""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import pytest

from morphing.cli import ExitStatus, main
from morphing.cli.batch import BatchRow, row_arguments
from morphing.cli.common import UsageError
from morphing.cli.morph import build_parser
from tests.cli.conftest import TINY
from tests.helpers import run_cli


def _manifest(folder: Path, toy_pair, rows: int = 3, bad_row: int | None = 1) -> Path:
    lines = ["source,target,output,flags"]
    for index in range(rows):
        source = "missing.png" if index == bad_row else str(toy_pair[0])
        lines.append(f'{source},{toy_pair[1]},out_{index}.gif,"--size 32 -e 2 --frames 3"')
    manifest = folder / "pairs.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_batch_finishes_good_rows_reports_bad_ones_and_resumes(toy_pair, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, toy_pair)
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.ERROR
    assert (tmp_path / "out_0.gif").exists() and (tmp_path / "out_2.gif").exists()
    assert not (tmp_path / "out_1.gif").exists()
    lines = err.strip().splitlines()
    assert any(line.startswith("morph: row 2 (missing.png") and "no such file" in line for line in lines)
    assert lines[-1] == "morph: batch: 2 done, 0 skipped, 1 failed (rows 2)"
    assert len(iio.imread(tmp_path / "out_0.gif", index=None)) == 3
    status, err = run_cli("--batch", manifest, "-q")  # resume: finished rows are skipped
    assert err.strip().splitlines()[-1] == "morph: batch: 0 done, 2 skipped, 1 failed (rows 2)"
    (tmp_path / "pairs.csv").write_text(manifest.read_text().replace("missing.png", str(toy_pair[0])))
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.OK and err == ""  # all good and quiet: nothing printed
    assert (tmp_path / "out_1.gif").exists()


def test_shards_partition_the_rows_with_no_overlap_and_no_gap(toy_pair, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, toy_pair, rows=7, bad_row=None)
    for index in range(7):
        (tmp_path / f"out_{index}.gif").write_bytes(b"done")  # all skipped: no fitting needed
    seen: list[int] = []
    for shard in range(3):
        status, err = run_cli("--batch", manifest, "--shard", f"{shard}/3")
        assert status == ExitStatus.OK, err
        rows = [int(line.split()[2]) for line in err.splitlines() if line.startswith("morph: row ")]
        assert all((row - 1) % 3 == shard for row in rows)
        seen += rows
    assert sorted(seen) == list(range(1, 8))


@pytest.mark.parametrize(
    "argv, message",
    [(["--shard", "3/3"], "--shard"), (["--shard", "x"], "--shard"), (["-s", "a.png"], "drop -s/-t")],
)
def test_bad_batch_flags_are_usage_errors(argv, message: str, toy_pair, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, toy_pair)
    status, err = run_cli("--batch", manifest, *argv)
    assert status == ExitStatus.USAGE and message in err and err.count("\n") == 1


def test_manifest_without_the_needed_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    status, err = run_cli("--batch", tmp_path / "bad.csv")
    assert status == ExitStatus.USAGE and "must name source, target, output" in err and "read 'a', 'b'" in err


def test_batch_points_column(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    (tmp_path / "p.csv").write_text("14, 14, 22, 21\n")
    (tmp_path / "bad.csv").write_text("14, 14\n")
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"source,target,output,points\n{source},{target},a.gif,p.csv\n{source},{target},b.gif,bad.csv\n")
    status, err = run_cli("--batch", manifest, "--size", "32", "-e", "2", "--frames", "3", "-q")
    assert (tmp_path / "a.gif").exists() and not (tmp_path / "b.gif").exists()
    assert status == ExitStatus.ERROR and "row 2" in err and "expected 4 values" in err


@pytest.mark.parametrize("flag", [["--shard", "0/2"], ["--overwrite"]])
def test_batch_only_flags_without_batch_are_usage_errors(flag, toy_pair, tmp_path: Path) -> None:
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif", *flag, *TINY)
    assert status == ExitStatus.USAGE and "only with --batch" in err and not (tmp_path / "o.gif").exists()


def test_manifest_with_bom_spaces_and_capitals_is_read(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    manifest = tmp_path / "rows.csv"
    manifest.write_bytes(("\ufeffSource, Target , OUTPUT, Flags\n"
                          f"{source}, {target}, a.gif, --size 32 -e 2 --frames 3\n").encode("utf-8"))
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.OK, err
    assert len(iio.imread(tmp_path / "a.gif", index=None)) == 3


def test_batch_row_flags_cannot_name_the_output_and_their_paths_follow_the_csv(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    folder = tmp_path / "csv"
    folder.mkdir()
    owned = tmp_path / "precious.gif"
    owned.write_bytes(b"mine")
    manifest = folder / "rows.csv"
    manifest.write_text("source,target,output,flags\n"
                        f'{source},{target},a.gif,"--size 32 -e 2 --frames 3 -o {owned}"\n'
                        f'{source},{target},b.gif,"--size 32 -e 2 --frames 3 --save-maps b.npz"\n')
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.ERROR and "row 1" in err and "-o/--output in its flags" in err
    assert owned.read_bytes() == b"mine" and not (folder / "a.gif").exists()
    assert (folder / "b.gif").exists() and (folder / "b.npz").exists()
    assert err.strip().splitlines()[-1] == "morph: batch: 1 done, 0 skipped, 1 failed (rows 1)"


def test_batch_frames_dir_gets_a_subfolder_per_row(toy_pair, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, toy_pair, rows=2, bad_row=None)
    status, err = run_cli("--batch", manifest, "-q", "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    for row in ("out_0", "out_1"):
        assert sorted(p.name for p in (tmp_path / "frames" / row).iterdir()) == ["0000.png", "0001.png", "0002.png"]


def test_rows_with_an_empty_output_a_missing_cell_or_bad_flags_fail_alone(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("\n".join([
        "source,target,output,flags",
        f'{source},{target},,"--size 32"',  # empty output cell
        f"{source},{target}",  # only two columns
        f'{source},{target},bad.gif,"--size 32 --seed \'unclosed"',  # malformed flags
        f'{source},{target},good.gif,"--size 32 -e 2 --frames 3"',
    ]) + "\n")
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.ERROR
    lines = err.strip().splitlines()
    assert any(line.startswith("morph: row 1 ") and "output cell is empty" in line for line in lines)
    assert any(line.startswith("morph: row 2 ") and "output cell is empty" in line for line in lines)
    assert any(line.startswith("morph: row 3 ") and "bad flags" in line for line in lines)
    assert lines[-1] == "morph: batch: 1 done, 0 skipped, 3 failed (rows 1, 2, 3)"
    assert (tmp_path / "good.gif").exists() and not (tmp_path / "bad.gif").exists()


@pytest.mark.parametrize("flags", [["-o", "all.gif"], ["--save-maps", "m.npz"], ["--maps-png", "m.png"]])
def test_shared_outputs_that_every_row_would_overwrite_are_refused(flags, toy_pair, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, toy_pair, rows=2, bad_row=None)
    status, err = run_cli("--batch", manifest, *(str(tmp_path / f) if "." in f else f for f in flags), "-q")
    assert status == ExitStatus.USAGE and "would write every row to one file" in err
    assert not (tmp_path / "out_0.gif").exists()


def test_batch_flags_inside_a_row_fail_that_row(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f'source,target,output,flags\n{source},{target},x.gif,"--size 32 --overwrite"\n')
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.ERROR and "--batch/--shard/--overwrite in its flags" in err


def test_rows_may_not_share_an_output_a_frames_subfolder_or_ask_for_help(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("\n".join([
        "source,target,output,flags",
        f'{source},{target},a/x.gif,"--size 32 -e 2 --frames 3"',
        f'{source},{target},a/x.gif,"--size 32 -e 2 --frames 3"',  # the same output again
        f'{source},{target},b/x.gif,"--size 32 -e 2 --frames 3"',  # another output, the same frames subfolder
        f'{source},{target},c.gif,"--help"',
    ]) + "\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out, err = io.StringIO(), io.StringIO()
    status = main(["--batch", str(manifest), "--overwrite", "--frames-dir", str(tmp_path / "frames"), "-q"],
                  stdout=out, stderr=err)
    lines = err.getvalue().strip().splitlines()
    assert status == ExitStatus.ERROR and out.getvalue() == ""  # no help text mid-batch
    assert any(line.startswith("morph: row 2 ") and "also row 1's" in line for line in lines)
    assert any(line.startswith("morph: row 3 ") and "row 1's" in line and "frames" in line for line in lines)
    assert any(line.startswith("morph: row 4 ") and "--help" in line for line in lines)
    assert lines[-1] == "morph: batch: 1 done, 0 skipped, 3 failed (rows 2, 3, 4)"
    assert sorted(p.name for p in (tmp_path / "frames" / "x").iterdir()) == ["0000.png", "0001.png", "0002.png"]


def test_a_quiet_batch_prints_nothing_not_even_tensorflows_start_up(toy_pair, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    manifest = _manifest(tmp_path, toy_pair, rows=2, bad_row=None)
    done = subprocess.run([sys.executable, str(ROOT / "morph.py"), "--batch", str(manifest), "-q"],
                          capture_output=True, text=True, timeout=600,
                          env={**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
                               "MORPH_CACHE_DIR": "off"})  # as a user's shell has it
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr[-2000:]
    assert (tmp_path / "out_0.gif").exists() and (tmp_path / "out_1.gif").exists()


class TestRowArguments:
    """A row's flags are parsed by the command's own parser, over the batch's command line."""

    @staticmethod
    def _row(tmp_path: Path, *flags: str, points: tuple[Path, ...] = ()) -> BatchRow:
        return BatchRow(0, tmp_path / "a.png", (tmp_path / "b.png",), tmp_path / "out.gif", flags, points)

    def test_a_row_flag_wins_even_when_it_repeats_the_default(self, tmp_path: Path) -> None:
        batch_args = build_parser().parse_args(["--batch", "rows.csv", "-e", "5", "--frames", "7"])
        row_args = row_arguments(batch_args, self._row(tmp_path, "-e", "120"), tmp_path)
        assert (row_args.epochs, row_args.frames) == (120, 7)
        assert (row_args.batch, row_args.shard, row_args.overwrite) == (None, None, False)
        assert row_args.source == tmp_path / "a.png" and row_args.target == [tmp_path / "b.png"]

    def test_path_flags_a_row_gives_follow_the_csv_and_the_batchs_stay(self, tmp_path: Path) -> None:
        batch_args = build_parser().parse_args(["--batch", "rows.csv", "--frames-dir", "shared_frames"])
        row_args = row_arguments(batch_args, self._row(tmp_path, "--save-maps", "m.npz"), tmp_path / "csv")
        assert row_args.save_maps == tmp_path / "csv" / "m.npz"
        assert row_args.frames_dir == Path("shared_frames")

    @pytest.mark.parametrize("flags, message", [
        (("--epoch", "3"), "unrecognized arguments"),  # full names only: no abbreviation slips through
        (("--cpu",), "--cpu"),
        (("--shard", "0/2"), "--shard"),
        (("-o", "x.gif"), "-s/-t/-o"),
    ])
    def test_flags_that_are_not_the_rows_are_refused(self, flags: tuple[str, ...], message: str,
                                                     tmp_path: Path) -> None:
        batch_args = build_parser().parse_args(["--batch", "rows.csv"])
        with pytest.raises(UsageError, match=message):
            row_arguments(batch_args, self._row(tmp_path, *flags), tmp_path)

    def test_cpu_on_the_batchs_command_line_is_every_rows(self, tmp_path: Path) -> None:
        batch_args = build_parser().parse_args(["--batch", "rows.csv", "--cpu"])
        assert row_arguments(batch_args, self._row(tmp_path, "--cpu"), tmp_path).cpu


def test_a_rows_cpu_flag_fails_that_row_with_the_fix(toy_pair, tmp_path: Path) -> None:
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f'source,target,output,flags\n{toy_pair[0]},{toy_pair[1]},out.gif,"--cpu -e 2 --size 32"\n')
    status, err = run_cli("--batch", manifest, "-q")
    assert status == ExitStatus.ERROR
    assert "give --cpu on the batch's command line" in err
    assert not (tmp_path / "out.gif").exists()

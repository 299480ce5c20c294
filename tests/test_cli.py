"""The command line, in-process and as a user runs it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from morphing.cli import ExitStatus, main
from tests.conftest import ROOT

TINY = ["--size", "32", "-e", "4", "--frames", "6", "-q"]

def run_cli(*argv: str | Path) -> tuple[int, str]:
    err = io.StringIO()
    status = main([str(a) for a in argv], stdout=io.StringIO(), stderr=err)
    return status, err.getvalue()

@pytest.fixture(scope="module")
def first_run(toy_pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny real run, with every output, shared by the tests below."""
    folder = tmp_path_factory.mktemp("run")
    source, target = toy_pair
    status, err = run_cli(
        "-s", source, "-t", target, "-o", folder / "out.gif", *TINY,
        "--frames-dir", folder / "frames", "--save-maps", folder / "maps.npz", "--maps-png", folder / "maps.png",
    )
    assert status == ExitStatus.OK, err
    assert err == ""  # --quiet prints nothing, TensorFlow's start-up chatter included
    return folder

def test_tiny_run_writes_a_gif_with_all_frames_at_the_source_size(first_run: Path, toy_pair) -> None:
    frames = iio.imread(first_run / "out.gif", index=None)
    assert frames.shape[:3] == (6, 48, 64)
    pngs = sorted((first_run / "frames").iterdir())
    assert [p.name for p in pngs] == [f"{i:04d}.png" for i in range(6)]
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[0])), np.asarray(Image.open(toy_pair[0])))
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[-1])), np.asarray(Image.open(toy_pair[1])))
    assert Image.open(first_run / "maps.png").size[0] > 100

def test_load_maps_renders_the_same_frames_without_fitting(first_run: Path, toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    status, err = run_cli(
        "-s", source, "-t", target, "-o", tmp_path / "again.gif", "--frames", "6", "-q",
        "--load-maps", first_run / "maps.npz", "--frames-dir", tmp_path / "frames",
    )
    assert status == ExitStatus.OK, err
    for name in (f"{i:04d}.png" for i in range(6)):
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "frames" / name)), np.asarray(Image.open(first_run / "frames" / name))
        )

def test_same_seed_gives_byte_identical_output(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    for name in ("a.gif", "b.gif"):
        status, err = run_cli("-s", source, "-t", target, "-o", tmp_path / name, *TINY, "--seed", "3")
        assert status == ExitStatus.OK, err
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()

def test_notices_and_progress_when_not_quiet(toy_pair, tmp_path: Path) -> None:
    source, _ = toy_pair
    Image.open(source).resize((128, 96)).save(tmp_path / "big_target.png")
    status, err = run_cli("-s", source, "-t", tmp_path / "big_target.png", "-o", tmp_path / "o.gif",
                          "--size", "32", "-e", "2", "--frames", "3")
    assert status == ExitStatus.OK, err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("morph:")]
    assert lines[0].startswith("morph: running on ")
    assert any("resized from 128x96 to 64x48" in line for line in lines)
    assert "fitting" in err and "rendering" in err

def _bad_cases(source: Path, target: Path, folder: Path) -> dict[str, tuple[list, str]]:
    text = folder / "text.jpg"
    text.write_text("not an image")
    wrong_maps = folder / "wrong.npz"
    np.savez(wrong_maps, something=np.zeros(3))
    base = ["-s", source, "-t", target]
    return {
        "missing source": (["-s", folder / "nope.png", "-t", target], "no such file"),
        "directory target": (["-s", source, "-t", folder], "is a directory"),
        "text as jpg": (["-s", text, "-t", target], "not an image"),
        "unknown extension": ([*base, "-o", folder / "out.xyz"], "unknown file type"),
        "missing output folder": ([*base, "-o", folder / "no" / "out.gif"], "does not exist"),
        "output is an input": ([*base, "-o", source], "same file"),
        "one frame": ([*base, "--frames", "1"], "--frames"),
        "zero epochs": ([*base, "-e", "0"], "--epochs"),
        "negative scale": ([*base, "-w", "-1"], "--warp-scale"),
        "nan scale": ([*base, "-a", "nan"], "--add-scale"),
        "size too small": ([*base, "--size", "4"], "--size"),
        "size above source": ([*base, "--size", "500"], "larger than the source"),
        "not a maps file": ([*base, "--load-maps", wrong_maps], "not a maps file"),
        "missing required": (["-s", source], "required"),
    }

CASES = list(_bad_cases.__code__.co_consts)  # placeholder so the names below stay readable

@pytest.mark.parametrize(
    "case",
    ["missing source", "directory target", "text as jpg", "unknown extension", "missing output folder",
     "output is an input", "one frame", "zero epochs", "negative scale", "nan scale", "size too small",
     "size above source", "not a maps file", "missing required"],
)
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(case: str, toy_pair, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    argv, message = _bad_cases(*toy_pair, inputs)[case]
    out = tmp_path / "out"
    out.mkdir()
    if "-o" not in argv:
        argv = [*argv, "-o", out / "morph.gif"]
    before = sorted(os.listdir(inputs))
    status, err = run_cli(*argv)
    assert status in (ExitStatus.ERROR, ExitStatus.USAGE)
    assert err.count("\n") == 1 and err.startswith("morph: error: ") and message in err, err
    assert os.listdir(out) == [] and sorted(os.listdir(inputs)) == before

def test_subprocess_run_is_quiet_and_bad_input_is_one_line(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    done = subprocess.run(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target),
         "-o", str(tmp_path / "o.gif"), *TINY],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
    assert iio.imread(tmp_path / "o.gif", index=None).shape[:3] == (6, 48, 64)
    bad = subprocess.run(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(tmp_path / "missing.png"), "-t", str(target),
         "-o", str(tmp_path / "p.gif")],
        capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "missing.png" in bad.stderr
    assert not (tmp_path / "p.gif").exists()


@pytest.mark.parametrize("signal_number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_keeps_the_previous_output_and_leaves_no_temporary_files(
    toy_pair, tmp_path: Path, signal_number: int, status: int
) -> None:
    source, target = toy_pair
    output = tmp_path / "out.gif"
    output.write_bytes(b"previous result")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target), "-o", str(output),
         "--size", "32", "-e", "100000", "--frames", "4"],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    # Wait (by reading, not sleeping) until fitting has started, then interrupt.
    seen = ""
    while "fitting" not in seen:
        character = process.stderr.read(1)
        assert character, f"morph.py ended early: {seen}"
        seen += character
    process.send_signal(signal_number)
    remaining = process.communicate(timeout=120)[1]
    assert process.returncode == status, seen + remaining
    assert output.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.gif"]
    assert "no output written" in remaining.strip().splitlines()[-1]

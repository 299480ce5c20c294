"""The sibling tools' command line: ``morph hybrid|shift|align|warp``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphing.cli import ExitStatus, main
from morphing.cli import tools as cli_tools
from morphing.scenes import shifted_pair


def run_tool(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(a) for a in argv], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def textures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 48x48 PNG textures, the second the first moved by dx = 2.5, dy = -1.25 (rolled)."""
    folder = tmp_path_factory.mktemp("textures")
    moving, fixed = shifted_pair(np.random.default_rng(0), 48, -1.25, 2.5, wrap=True)
    paths = []
    for name, image in (("a.png", moving), ("b.png", fixed)):
        Image.fromarray(np.clip(np.rint((image + 1) * 127.5), 0, 255).astype(np.uint8)).save(folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]


def test_shift_with_wrap_by_whole_pixels_rolls_the_file(textures, tmp_path: Path) -> None:
    status, _, err = run_tool("shift", "-i", textures[0], "--dx", "3", "--dy", "-2", "--wrap", "-o",
                              tmp_path / "rolled.png", "-q")
    assert status == ExitStatus.OK, err
    np.testing.assert_array_equal(pixels(tmp_path / "rolled.png"), np.roll(pixels(textures[0]), (-2, 3), axis=(0, 1)))


def test_align_prints_the_shift_and_writes_the_aligned_source(textures, tmp_path: Path) -> None:
    status, out, err = run_tool("align", "-s", textures[0], "-t", textures[1], "--wrap", "-o",
                                tmp_path / "aligned.png", "-q")
    assert status == ExitStatus.OK, err
    assert err == ""
    fields = dict(item.split("=") for item in out.split())
    assert abs(float(fields["dx"]) - 2.5) <= 0.05 and abs(float(fields["dy"]) + 1.25) <= 0.05, out
    aligned, target = pixels(tmp_path / "aligned.png").astype(float), pixels(textures[1]).astype(float)
    before = np.abs(pixels(textures[0]).astype(float) - target).mean()
    assert np.abs(aligned - target).mean() < 0.2 * before


def test_hybrid_writes_an_image_of_the_near_size(textures, tmp_path: Path) -> None:
    status, _, err = run_tool("hybrid", "--near", textures[0], "--far", textures[1], "--sigma", "2",
                              "--steps", "5", "-o", tmp_path / "hybrid.jpg", "-q")
    assert status == ExitStatus.OK, err
    assert pixels(tmp_path / "hybrid.jpg").shape == (48, 48, 3)


def test_warp_writes_the_warped_source_and_the_flow_picture(toy_pair, tmp_path: Path) -> None:
    status, _, err = run_tool("warp", "-s", toy_pair[0], "-t", toy_pair[1], "-e", "3", "--size", "32",
                              "-o", tmp_path / "warped.png", "--flow-png", tmp_path / "flow.png", "-q")
    assert status == ExitStatus.OK, err
    assert pixels(tmp_path / "warped.png").shape == pixels(toy_pair[0]).shape
    assert pixels(tmp_path / "flow.png").shape == pixels(toy_pair[0]).shape


def test_warp_with_zero_warp_scale_returns_the_source(toy_pair, tmp_path: Path) -> None:
    status, _, err = run_tool("warp", "-s", toy_pair[0], "-t", toy_pair[1], "-e", "2", "--size", "32", "-w", "0",
                              "-o", tmp_path / "same.png", "-q")
    assert status == ExitStatus.OK, err
    np.testing.assert_array_equal(pixels(tmp_path / "same.png"), pixels(toy_pair[0]))


def test_warp_refuses_maps_fitted_for_another_aspect_ratio(toy_pair, tmp_path: Path) -> None:
    status = main(["-s", str(toy_pair[0]), "-t", str(toy_pair[1]), "-o", str(tmp_path / "o.gif"), "--size", "32",
                    "-e", "2", "--frames", "2", "--save-maps", str(tmp_path / "maps.npz"), "-q"],
                   stdout=io.StringIO(), stderr=io.StringIO())
    assert status == ExitStatus.OK
    square = tmp_path / "square.png"
    Image.new("RGB", (48, 48), "white").save(square)
    status, _, err = run_tool("warp", "-s", square, "-t", square, "--load-maps", tmp_path / "maps.npz",
                              "-o", tmp_path / "w.png", "-q")
    assert status == ExitStatus.ERROR and "another aspect ratio" in err and not (tmp_path / "w.png").exists()


def _bad_cases(a: Path, b: Path, folder: Path) -> dict[str, tuple[list, str]]:
    small = folder / "small.png"
    Image.new("RGB", (20, 20)).save(small)
    text = folder / "notes.png"
    text.write_text("not an image")
    return {
        "hybrid missing near": (["hybrid", "--near", folder / "nope.png", "--far", b], "no such file"),
        "hybrid not an image": (["hybrid", "--near", text, "--far", b], "notes.png"),
        "hybrid output is an input": (["hybrid", "--near", a, "--far", b, "-o", a], "refusing to overwrite"),
        "hybrid unknown suffix": (["hybrid", "--near", a, "--far", b, "-o", folder / "x.gif"], "unknown file type"),
        "hybrid even kernel": (["hybrid", "--near", a, "--far", b, "--kernel-size", "4"], "must be odd"),
        "hybrid no weights": (["hybrid", "--near", a, "--far", b, "--near-weight", "0", "--far-weight", "0"],
                              "nothing to fit"),
        "hybrid kernel too wide": (["hybrid", "--near", a, "--far", b, "--sigma", "20"], "too wide"),
        "hybrid negative sigma": (["hybrid", "--near", a, "--far", b, "--sigma", "-1"], "--sigma"),
        "hybrid size too big": (["hybrid", "--near", a, "--far", b, "--size", "64"], "larger than"),
        "shift nan": (["shift", "-i", a, "--dx", "nan"], "--dx"),
        "shift unknown interpolation": (["shift", "-i", a, "--interpolation", "nearest"], "invalid choice"),
        "align different sizes": (["align", "-s", a, "-t", small], "one size"),
        "fourier without wrap": (["align", "-s", a, "-t", b, "--interpolation", "fourier"], "add --wrap"),
        "align missing target": (["align", "-s", a], "required"),
        "warp missing maps": (["warp", "-s", a, "-t", b, "--load-maps", folder / "nope.npz"], "nope.npz"),
        "warp flow png is output": (["warp", "-s", a, "-t", b, "-o", folder / "o.png", "--flow-png",
                                     folder / "o.png"], "same file"),
        "warp flow not png": (["warp", "-s", a, "-t", b, "--flow-png", folder / "flow.jpg"], "unknown file type"),
        "warp zero epochs": (["warp", "-s", a, "-t", b, "-e", "0"], "--epochs"),
        "unknown flag": (["shift", "-i", a, "--roll"], "unrecognized"),
    }


BAD_CASES = [
    "hybrid missing near", "hybrid not an image", "hybrid output is an input", "hybrid unknown suffix",
    "hybrid even kernel", "hybrid no weights", "hybrid kernel too wide", "hybrid negative sigma",
    "hybrid size too big", "shift nan", "shift unknown interpolation", "align different sizes", "fourier without wrap",
    "align missing target", "warp missing maps", "warp flow png is output", "warp flow not png",
    "warp zero epochs", "unknown flag",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(case: str, textures, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    cases = _bad_cases(*textures, inputs)
    assert set(cases) == set(BAD_CASES)
    argv, message = cases[case]
    out = tmp_path / "out"
    out.mkdir()
    if "-o" not in argv:
        argv = [*argv, "-o", out / "result.png"]
    before = sorted(os.listdir(inputs))
    status, stdout, err = run_tool(*argv)
    assert status in (ExitStatus.ERROR, ExitStatus.USAGE)
    assert err.count("\n") == 1 and err.startswith("morph: error: ") and message in err, err
    assert stdout == "" and os.listdir(out) == [] and sorted(os.listdir(inputs)) == before


def test_help_of_the_morph_names_the_tools_and_each_tool_has_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tool("--help")[0] == ExitStatus.OK
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"morph {name}" in help_text for name in cli_tools.TOOL_NAMES), help_text
    for name in cli_tools.TOOL_NAMES:
        assert run_tool(name, "--help")[0] == ExitStatus.OK
        assert f"usage: morph {name}" in capsys.readouterr().out


def test_a_tools_default_output_is_never_replaced(textures, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run_tool("shift", "-i", textures[0], "--dx", "1", "-q")
    assert status == ExitStatus.OK, err
    written = (tmp_path / "shifted.png").read_bytes()
    status, _, err = run_tool("shift", "-i", textures[0], "--dx", "2", "-q")
    assert status == ExitStatus.USAGE and "shifted.png exists" in err
    assert (tmp_path / "shifted.png").read_bytes() == written
    status, _, err = run_tool("shift", "-i", textures[0], "--dx", "2", "-o", "shifted.png", "-q")
    assert status == ExitStatus.OK and (tmp_path / "shifted.png").read_bytes() != written

"""The registry of sibling tools (``morphing.cli.tools``): help, one-line errors, default outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from morphing.cli import ExitStatus
from morphing.cli import tools as cli_tools
from tests.helpers import run_tool


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

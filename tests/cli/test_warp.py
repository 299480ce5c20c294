"""``morph warp`` (``morphing.cli.warp``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from morphing.cli import ExitStatus, main
from tests.helpers import run_tool, tool_pixels


def test_warp_writes_the_warped_source_and_the_flow_picture(toy_pair, tmp_path: Path) -> None:
    status, _, err = run_tool("warp", "-s", toy_pair[0], "-t", toy_pair[1], "-e", "3", "--size", "32",
                              "-o", tmp_path / "warped.png", "--flow-png", tmp_path / "flow.png", "-q")
    assert status == ExitStatus.OK, err
    assert tool_pixels(tmp_path / "warped.png").shape == tool_pixels(toy_pair[0]).shape
    assert tool_pixels(tmp_path / "flow.png").shape == tool_pixels(toy_pair[0]).shape


def test_warp_with_zero_warp_scale_returns_the_source(toy_pair, tmp_path: Path) -> None:
    status, _, err = run_tool("warp", "-s", toy_pair[0], "-t", toy_pair[1], "-e", "2", "--size", "32", "-w", "0",
                              "-o", tmp_path / "same.png", "-q")
    assert status == ExitStatus.OK, err
    np.testing.assert_array_equal(tool_pixels(tmp_path / "same.png"), tool_pixels(toy_pair[0]))


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

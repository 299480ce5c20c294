"""``morph align`` (``morphing.cli.align``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from morphing.cli import ExitStatus
from tests.helpers import run_tool, tool_pixels


def test_align_prints_the_shift_and_writes_the_aligned_source(textures, tmp_path: Path) -> None:
    status, out, err = run_tool("align", "-s", textures[0], "-t", textures[1], "--wrap", "-o",
                                tmp_path / "aligned.png", "-q")
    assert status == ExitStatus.OK, err
    assert err == ""
    fields = dict(item.split("=") for item in out.split())
    assert abs(float(fields["dx"]) - 2.5) <= 0.05 and abs(float(fields["dy"]) + 1.25) <= 0.05, out
    aligned, target = tool_pixels(tmp_path / "aligned.png").astype(float), tool_pixels(textures[1]).astype(float)
    before = np.abs(tool_pixels(textures[0]).astype(float) - target).mean()
    assert np.abs(aligned - target).mean() < 0.2 * before

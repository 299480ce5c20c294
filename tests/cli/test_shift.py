"""``morph shift`` (``morphing.cli.shift``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from morphing.cli import ExitStatus
from tests.helpers import run_tool, tool_pixels


def test_shift_with_wrap_by_whole_pixels_rolls_the_file(textures, tmp_path: Path) -> None:
    status, _, err = run_tool("shift", "-i", textures[0], "--dx", "3", "--dy", "-2", "--wrap", "-o",
                              tmp_path / "rolled.png", "-q")
    assert status == ExitStatus.OK, err
    np.testing.assert_array_equal(tool_pixels(tmp_path / "rolled.png"), np.roll(tool_pixels(textures[0]), (-2, 3), axis=(0, 1)))

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


def test_a_large_image_gets_a_notice_of_what_it_will_cost(textures, tmp_path: Path, monkeypatch) -> None:
    from morphing.cli import shift
    from tests.helpers import run_cli

    monkeypatch.setattr(shift, "LARGE_IMAGE_MEGAPIXELS", 0.001)  # the 48x48 texture counts as large
    status, err = run_cli("shift", "-i", textures[0], "--dx", "1", "--wrap", "--interpolation", "fourier",
                          "-o", tmp_path / "s.png")
    assert status == ExitStatus.OK, err
    assert "large image: 48x48 (0 MP); fourier takes roughly" in err and "GB of memory" in err

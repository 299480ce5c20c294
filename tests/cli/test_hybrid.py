"""``morph hybrid`` (``morphing.cli.hybrid``)."""

from __future__ import annotations

from pathlib import Path

from morphing.cli import ExitStatus
from tests.helpers import run_tool, tool_pixels


def test_hybrid_writes_an_image_of_the_near_size(textures, tmp_path: Path) -> None:
    status, _, err = run_tool("hybrid", "--near", textures[0], "--far", textures[1], "--sigma", "2",
                              "--steps", "5", "-o", tmp_path / "hybrid.jpg", "-q")
    assert status == ExitStatus.OK, err
    assert tool_pixels(tmp_path / "hybrid.jpg").shape == (48, 48, 3)


def test_a_sigma_too_small_to_blur_is_a_usage_error(textures, tmp_path: Path) -> None:
    from tests.helpers import run_cli

    status, err = run_cli("hybrid", "--near", textures[0], "--far", textures[1], "-o", tmp_path / "h.png",
                          "--sigma", "1e-200")
    assert status == ExitStatus.USAGE and "--sigma" in err and err.count("\n") == 1

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


def test_a_closed_standard_output_or_a_reader_that_goes_does_not_fail_a_finished_run(toy_pair) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    source = str(toy_pair[0])
    command = f'"{sys.executable}" "{ROOT / "morph.py"}" align -s "{source}" -t "{source}" -q'
    closed = subprocess.run(["bash", "-c", f"{command} >&-"], capture_output=True, text=True, timeout=300)
    assert closed.returncode == 0 and closed.stderr == "", closed.stderr
    # The reader closes the pipe before the result line is written: the run still ends quietly.
    gone = subprocess.run(["bash", "-c", f"{command} | true; exit ${{PIPESTATUS[0]}}"], capture_output=True, text=True,
                          timeout=300)
    assert gone.returncode == 0 and gone.stderr == "", gone.stderr


def test_a_blur_too_wide_or_too_narrow_for_the_image_is_refused(textures) -> None:
    status, out, err = run_tool("align", "-s", textures[0], "-t", textures[1], "--blur-sigma", "20")
    assert status == ExitStatus.USAGE and "too wide for a 48x48 image" in err and out == ""
    status, out, err = run_tool("align", "-s", textures[0], "-t", textures[1], "--blur-sigma", "1e-200")
    assert status == ExitStatus.USAGE and "below 0.1 pixels" in err

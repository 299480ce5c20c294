"""Fixtures of the command-line tests: one tiny real morph, and two textures a known shift apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphing.cli import ExitStatus
from morphing.testing.scenes import shifted_pair
from tests.helpers import run_cli

TINY = ["--size", "32", "-e", "4", "--frames", "6", "-q"]


@pytest.fixture(scope="session")
def first_run(toy_pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny real run, with every output, shared by the tests."""
    folder = tmp_path_factory.mktemp("run")
    source, target = toy_pair
    status, err = run_cli(
        "-s", source, "-t", target, "-o", folder / "out.gif", *TINY,
        "--frames-dir", folder / "frames", "--save-maps", folder / "maps.npz", "--maps-png", folder / "maps.png",
    )
    assert status == ExitStatus.OK, err
    assert err == ""  # --quiet prints nothing, TensorFlow's start-up chatter included
    return folder


@pytest.fixture(scope="session")
def textures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 48x48 PNG textures, the second the first moved by dx = 2.5, dy = -1.25 (rolled)."""
    folder = tmp_path_factory.mktemp("textures")
    moving, fixed = shifted_pair(np.random.default_rng(0), 48, -1.25, 2.5, wrap=True)
    paths = []
    for name, image in (("a.png", moving), ("b.png", fixed)):
        Image.fromarray(np.clip(np.rint((image + 1) * 127.5), 0, 255).astype(np.uint8)).save(folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]

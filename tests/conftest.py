"""Shared test set-up: the repository on sys.path, TensorFlow started as the command line starts it, no
compile cache, and small synthetic images written to temporary files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Runs started by the tests keep no compiled programs in the user's cache (tests that want one set their own).
os.environ["MORPH_CACHE_DIR"] = "off"

from morphing.runtime.backend import load_tensorflow
from morphing.testing.scenes import toy_scene  # noqa: E402

# TensorFlow started as the command line starts it (on a machine without a GPU: no graph rewriting, which
# would cost each of the tests' many small fits up to a second the first time its step runs).
load_tensorflow()


def disc_image(height: int, width: int, centre: tuple[float, float], radius: float,
               disc: tuple[float, float, float] = (150.0, 30.0, 40.0),
               background: tuple[float, float, float] = (220.0, 220.0, 210.0)) -> np.ndarray:
    """``[height, width, 3] uint8``: a disc (dark red by default) on a ground (light grey), antialiased by 4x
    supersampling."""
    sub = 4
    ys = (np.arange(height * sub) + 0.5) / sub - 0.5
    xs = (np.arange(width * sub) + 0.5) / sub - 0.5
    inside = (ys[:, None] - centre[0]) ** 2 + (xs[None, :] - centre[1]) ** 2 <= radius**2
    coverage = inside.reshape(height, sub, width, sub).mean(axis=(1, 3))[..., None]
    return np.rint(np.array(background) * (1 - coverage) + np.array(disc) * coverage).astype(np.uint8)


@pytest.fixture(scope="session")
def toy_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The toy scene at 48x64 as two PNG files (source, target)."""
    folder = tmp_path_factory.mktemp("toy")
    scene = toy_scene(48, 64)
    paths = []
    for name, alpha in (("a.png", 0.0), ("b.png", 1.0)):
        Image.fromarray(scene.render(alpha)).save(folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]

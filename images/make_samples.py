#!/usr/bin/env python3
"""Regenerate the sample pairs in this folder from the synthetic scenes.

    python images/make_samples.py

Writes ``shapes_a.png``/``shapes_b.png`` (the seed's toy scene: a circle, a
triangle and a square that move, shrink, turn and change colour, 320x240) and
``gradient_a.png``/``gradient_b.png`` (a seeded random scene on a gradient
background, 256x256) and ``texture_a.png``/``texture_b.png`` (a random texture and
the same view moved right by 3.25 and up by 1.5 pixels, 256x256, for
``morph align``) beside this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from morphing.testing.scenes import random_scene, shifted_pair, toy_scene  # noqa: E402

TEXTURE_SHIFT = (-1.5, 3.25)  # (dy, dx)


def main() -> int:
    folder = Path(__file__).resolve().parent
    pairs = {
        "shapes": toy_scene(240, 320),
        "gradient": random_scene(np.random.default_rng(7), 256, 256, shapes=4, gradient=True),
    }
    for name, scene in pairs.items():
        for suffix, alpha in (("a", 0.0), ("b", 1.0)):
            path = folder / f"{name}_{suffix}.png"
            Image.fromarray(scene.render(alpha), "RGB").save(path, optimize=True)
            print(f"wrote {path}")
    moving, fixed = shifted_pair(np.random.default_rng(3), 256, *TEXTURE_SHIFT, wrap=False)
    for suffix, texture in (("a", moving), ("b", fixed)):
        path = folder / f"texture_{suffix}.png"
        pixels = np.clip(np.rint((texture + 1.0) * 127.5), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(path, optimize=True)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

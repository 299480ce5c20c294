#!/usr/bin/env python3
"""Regenerate the README's example pictures of the sibling tools.

    python docs/make_examples.py

Runs ``morph hybrid``, ``morph align`` and ``morph warp`` (in-process, as a
user would from the shell) on the sample images in ``images/`` and writes
labelled sheets ``docs/hybrid.png``, ``docs/align.png`` and ``docs/warp.png``.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morphing.cli import main as morph  # noqa: E402

IMAGES = ROOT / "images"
LABEL_HEIGHT = 18


def run(*argv: str | Path) -> str:
    """Run the command line; return its standard output, raise on failure."""
    out, err = io.StringIO(), io.StringIO()
    status = morph([str(a) for a in argv], stdout=out, stderr=err)
    if status != 0:
        raise SystemExit(f"morph {' '.join(map(str, argv))} failed: {err.getvalue()}")
    return out.getvalue()


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def sheet(tiles: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Tiles side by side on white, each with a label above, padded to one height."""
    height = max(t.shape[0] for _, t in tiles)
    pad = 6
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    columns = [max(tile.shape[1], int(measure.textlength(label, font=font)) + 2) for label, tile in tiles]
    canvas = Image.new("RGB", (sum(columns) + pad * (len(tiles) + 1), height + LABEL_HEIGHT + 2 * pad), "white")
    draw = ImageDraw.Draw(canvas)
    left = pad
    for (label, tile), column in zip(tiles, columns):
        draw.text((left, pad), label, fill="black", font=font)
        top = pad + LABEL_HEIGHT + (height - tile.shape[0]) // 2
        canvas.paste(Image.fromarray(tile), (left + (column - tile.shape[1]) // 2, top))
        left += column + pad
    canvas.save(path, optimize=True)
    print(f"wrote {path}")


def main() -> None:
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)

        near, far = IMAGES / "shapes_a.png", IMAGES / "gradient_b.png"
        run("hybrid", "--near", near, "--far", far, "-o", work / "hybrid.png", "-q")
        hybrid = load(work / "hybrid.png")
        small = np.asarray(Image.fromarray(hybrid).resize((hybrid.shape[1] // 5, hybrid.shape[0] // 5),
                                                          Image.Resampling.LANCZOS))
        sheet([("near", load(near)), ("far", np.asarray(Image.open(far).convert("RGB").resize((320, 240)))),
               ("hybrid", hybrid), ("hybrid, from afar", small)], docs / "hybrid.png")

        source, target = IMAGES / "texture_a.png", IMAGES / "texture_b.png"
        found = run("align", "-s", source, "-t", target, "-o", work / "aligned.png", "-q").strip()
        a, b, aligned = load(source), load(target), load(work / "aligned.png")

        def difference(x: np.ndarray) -> np.ndarray:
            return np.clip(np.abs(x.astype(int) - b.astype(int)) * 3, 0, 255).astype(np.uint8)

        sheet([("source", a), ("target", b), ("|source - target| x3", difference(a)),
               (f"aligned ({found})", aligned), ("|aligned - target| x3", difference(aligned))], docs / "align.png")

        source, target = IMAGES / "shapes_a.png", IMAGES / "shapes_b.png"
        run("warp", "-s", source, "-t", target, "-o", work / "warped.png", "--flow-png", work / "flow.png", "-q")
        sheet([("source", load(source)), ("target", load(target)), ("source in target's geometry",
               load(work / "warped.png")), ("warp field", load(work / "flow.png"))], docs / "warp.png")


if __name__ == "__main__":
    main()

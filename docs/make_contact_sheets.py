#!/usr/bin/env python3
"""Regenerate the README's contact sheet: frames at alpha 0, ¼, ½, ¾, 1.

    python docs/make_contact_sheets.py --samples ../shared/samples

For the face pair (``img_3`` → ``img_4``) and the car pair (``img_1`` →
``img_2``) of the development samples, runs the command line as a user would
(defaults, ``--frames 5 --frames-dir``, so its five frames are exactly those
alphas) and, for comparison, the OpenCV DIS flow morph of ``benchmarks/``.
Writes ``docs/contact_sheet.png``: one labelled row per pair and method.
Needs ``pip install -r requirements-bench.txt`` (OpenCV).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import flow_morph  # noqa: E402

from morphing.cli import main as morph  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
TILE = 200
LABEL_WIDTH = 150
PAIRS = {"faces": ("img_3.jpg", "img_4.jpg"), "car": ("img_1.jpg", "img_2.jpg")}


def ours(source: Path, target: Path, work: Path) -> list[np.ndarray]:
    """The command line's frames at ``ALPHAS`` (default settings)."""
    frames = work / f"{source.stem}_{target.stem}"
    err = io.StringIO()
    status = morph(["-s", str(source), "-t", str(target), "-o", str(work / "morph.gif"), "--frames", "5",
                    "--frames-dir", str(frames), "-q"], stdout=io.StringIO(), stderr=err)
    if status != 0:
        raise SystemExit(f"morph failed: {err.getvalue()}")
    return [np.asarray(Image.open(path).convert("RGB")) for path in sorted(frames.glob("*.png"))]


def rows_picture(rows: list[tuple[str, list[np.ndarray]]]) -> Image.Image:
    """Each row: a label, then its frames shrunk to ``TILE`` px, side by side."""
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (LABEL_WIDTH + TILE * len(ALPHAS), TILE * len(rows) + 16), "white")
    draw = ImageDraw.Draw(canvas)
    for column, alpha in enumerate(ALPHAS):
        draw.text((LABEL_WIDTH + column * TILE + TILE // 2 - 12, 2), f"alpha {alpha:g}", fill="black", font=font)
    for row, (label, frames) in enumerate(rows):
        top = 16 + row * TILE
        draw.multiline_text((6, top + TILE // 2 - 12), label, fill="black", font=font)
        for column, frame in enumerate(frames):
            tile = Image.fromarray(frame).resize((TILE, TILE), Image.Resampling.LANCZOS)
            canvas.paste(tile, (LABEL_WIDTH + column * TILE, top))
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, required=True, help="folder with img_1.jpg … img_4.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "contact_sheet.png")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (source_name, target_name) in PAIRS.items():
            source, target = args.samples / source_name, args.samples / target_name
            rows.append((f"{name}:\nours (defaults)", ours(source, target, Path(folder))))
            images = [np.asarray(Image.open(path).convert("RGB")) for path in (source, target)]
            render, _ = flow_morph(*images)
            rows.append((f"{name}:\noptical flow\n(OpenCV DIS)", [np.asarray(f) for f in render(list(ALPHAS))]))
    rows_picture(rows).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

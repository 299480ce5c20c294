#!/usr/bin/env python3
"""Hybrid images: the fitted hybrid against the classic low-pass + high-pass sum.

    python benchmarks/hybrid.py [--samples ../shared/samples] [--sigma 4] [--out DIR]

For each pair (near, far), at 256x256, in the same run:

- *far error*: RMS difference between the hybrid's blur and the far image's
  blur (what is seen from afar; lower is better);
- *near error*: RMS difference between the hybrid's fine detail (image minus
  its blur) and the near image's (what is seen up close; lower is better);
- *out of range*: share of values the method produced outside [0, 1], which a
  file cannot hold (they are clipped before scoring);
- wall seconds.

Methods: ``classic`` = blur(far) + near - blur(near) with the same linear-light
Gaussian; ``ours`` at the defaults (detail near term, start grey, weights 1:1);
``ours, pixel near term`` = the loss as first specified (whole-image near term,
far weight 10, start from near). With ``--out``, writes a sheet per pair:
near, far, classic, ours, and each result reduced 8x (the view from afar).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from morphing.runtime.backend import load_tensorflow  # noqa: E402

load_tensorflow()
from morphing.render.filters import gaussian_kernel  # noqa: E402
from morphing.tools.hybrid import (  # noqa: E402
    HybridSettings,
    blur_in_linear_light,
    classic_hybrid,
    fit_hybrid,
)

SIDE = 256


def load(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255.0


def pairs(samples: Path | None) -> list[tuple[str, Path, Path]]:
    found = [("shapes", ROOT / "images" / "shapes_a.png", ROOT / "images" / "shapes_b.png"),
             ("gradient", ROOT / "images" / "gradient_a.png", ROOT / "images" / "gradient_b.png")]
    if samples is not None:
        found += [("car", samples / "img_1.jpg", samples / "img_2.jpg"),
                  ("faces", samples / "img_3.jpg", samples / "img_4.jpg")]
    return found


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=None, help="folder with img_1..img_4.jpg")
    parser.add_argument("--sigma", type=float, default=HybridSettings().sigma)
    parser.add_argument("--out", type=Path, default=None, help="folder for the sheets")
    args = parser.parse_args()
    kernel = gaussian_kernel(args.sigma)

    def blur(image: np.ndarray) -> np.ndarray:
        return blur_in_linear_light(image[np.newaxis], kernel)[0].numpy()

    methods = {
        "classic": None,
        "ours": HybridSettings(sigma=args.sigma),
        "ours, pixel near term": HybridSettings(sigma=args.sigma, near_term="pixels", far_weight=10.0, start="near"),
    }
    totals: dict[str, dict[str, list[float]]] = {m: {"far": [], "near": [], "out": [], "s": []} for m in methods}
    print(f"{'pair':<10}{'method':<24}{'far error':>10}{'near error':>11}{'out of range':>13}{'seconds':>9}")
    for name, near_path, far_path in pairs(args.samples):
        near, far = load(near_path), load(far_path)
        results = {}
        for method, settings in methods.items():
            start = time.perf_counter()
            raw = classic_hybrid(near, far, kernel) if settings is None else fit_hybrid(near, far, settings)
            seconds = time.perf_counter() - start
            outside = float(np.mean((raw < 0.0) | (raw > 1.0)))
            stored = np.clip(raw, 0.0, 1.0)
            results[method] = stored
            far_error = rms(blur(stored) - blur(far))
            near_error = rms((stored - blur(stored)) - (near - blur(near)))
            for key, value in (("far", far_error), ("near", near_error), ("out", outside), ("s", seconds)):
                totals[method][key].append(value)
            print(f"{name:<10}{method:<24}{far_error:>10.4f}{near_error:>11.4f}{outside:>12.2%}{seconds:>9.2f}",
                  flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            tiles = [near, far, results["classic"], results["ours"]]
            row = np.concatenate(tiles, axis=1)
            small = [np.asarray(Image.fromarray((t * 255).round().astype(np.uint8)).resize(
                (SIDE // 8, SIDE // 8), Image.Resampling.LANCZOS)) for t in tiles[2:]]
            strip = np.full((SIDE // 8, row.shape[1], 3), 255, np.uint8)
            for index, picture in enumerate(small):
                left = (2 + index) * SIDE + SIDE // 2 - SIDE // 16
                strip[:, left:left + SIDE // 8] = picture
            sheet = np.concatenate([(row * 255).round().astype(np.uint8), strip], axis=0)
            Image.fromarray(sheet).save(args.out / f"hybrid_{name}.png")
    print()
    print(f"{'mean':<10}{'method':<24}{'far error':>10}{'near error':>11}{'out of range':>13}{'seconds':>9}")
    for method, values in totals.items():
        print(f"{'':<10}{method:<24}{statistics.mean(values['far']):>10.4f}{statistics.mean(values['near']):>11.4f}"
              f"{statistics.mean(values['out']):>12.2%}{statistics.mean(values['s']):>9.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Sub-pixel alignment accuracy: ours (gradient descent through the shift)
against scikit-image's phase correlation, in the same run.

    python benchmarks/align.py [--size 256] [--seeds 2]

Textured images (random phases, 1/f^1.5 spectrum, band-limited) are moved by
known sub-pixel amounts exactly (a Fourier phase ramp): rolled around
(``wrap``) or cropped from a larger texture so that new texture enters at the
borders (``crop``); both images are then stored as uint8, as files are. The
error is the distance in pixels between the found and the true shift.
``phase_cross_correlation`` runs with ``upsample_factor=100`` (0.01 px steps)
on the channel mean. ``ours fourier`` (a phase-ramp shift, exact for periodic
band-limited images) runs on the rolled cases only. Needs ``pip install -r requirements-bench.txt``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from morphing.runtime.backend import load_tensorflow  # noqa: E402

load_tensorflow()
from skimage.registration import phase_cross_correlation  # noqa: E402

from morphing.io.images import to_float  # noqa: E402
from morphing.testing.scenes import shifted_pair  # noqa: E402
from morphing.tools.shift import AlignSettings, Shift, align_shift, pixel_error  # noqa: E402

SHIFTS = [Shift(dy=0.0, dx=3.5), Shift(dy=-0.25, dx=0.25), Shift(dy=2.5, dx=-7.75), Shift(dy=5.283, dx=1.137)]  # the last off the 0.01 grid


def as_stored(image: np.ndarray) -> np.ndarray:
    """[-1, 1] float → uint8 → [-1, 1] float: what a file holds."""
    return to_float(np.clip(np.rint((image + 1.0) * 127.5), 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()

    methods = ["ours bicubic", "ours bilinear", "ours fourier", "phase correlation"]
    errors: dict[str, list[float]] = {m: [] for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    print(f"{'case':<30}" + "".join(f"{m:>20}" for m in methods))
    for wrap in (True, False):
        for true in SHIFTS:
            for seed in range(args.seeds):
                moving, fixed = shifted_pair(np.random.default_rng(seed), args.size, true.dy, true.dx, wrap=wrap)
                moving, fixed = as_stored(moving), as_stored(fixed)
                row = []
                for method in methods:
                    if method == "ours fourier" and not wrap:
                        row.append(float("nan"))  # periodic model only
                        continue
                    start = time.perf_counter()
                    if method.startswith("ours"):
                        settings = AlignSettings(interpolation=method.split()[1], wrap=wrap)  # type: ignore[arg-type]
                        found = align_shift(moving, fixed, settings)
                    else:
                        found = Shift(*phase_cross_correlation(fixed.mean(-1), moving.mean(-1), upsample_factor=100)[0])
                    seconds[method].append(time.perf_counter() - start)
                    error = pixel_error(found, true)
                    errors[method].append(error)
                    row.append(error)
                label = f"{'wrap' if wrap else 'crop'} dx={true.dx:+.2f} dy={true.dy:+.2f} #{seed}"
                print(f"{label:<30}" + "".join(f"{e:>20.4f}" if not math.isnan(e) else f"{'-':>20}" for e in row), flush=True)
    print()
    print(f"{'summary (px / s)':<30}" + "".join(f"{m:>20}" for m in methods))
    half = len(SHIFTS) * args.seeds
    for label, part in (("mean error, wrap", slice(0, half)), ("max error, wrap", slice(0, half)),
                        ("mean error, crop", slice(half, None)), ("max error, crop", slice(half, None))):
        pick = max if label.startswith("max") else statistics.mean
        cells = [errors[m][part] for m in methods]
        print(f"{label:<30}" + "".join(f"{pick(c):>20.4f}" if c else f"{'-':>20}" for c in cells))
    print(f"{'median seconds':<30}" + "".join(f"{statistics.median(seconds[m]):>20.3f}" for m in methods))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Peak memory of morph.py: flat in the frame count, bounded for big photos.

    python benchmarks/memory.py --samples ../shared/samples

1. The 512x512 car pair with 50 and with 400 frames (frames are streamed to the
   encoder, so the peak should barely move; the baseline in the same run is
   the 50-frame figure).
2. The same pair upscaled to 4000x3000, fitted at the default working size and
   rendered at full resolution (target: under 2.5 GB).
Each is a fresh process, as a user runs it; fitting is shortened with -e.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def peak_rss(argv: list[str], cache: Path) -> tuple[float, float]:
    """Run morph.py with ``argv`` and the compile cache in ``cache``: (peak RSS in MiB, wall seconds)."""
    start = time.perf_counter()
    environment = {**os.environ, "MORPH_CACHE_DIR": str(cache)}  # the benchmark's own, not the user's
    process = subprocess.Popen([sys.executable, str(ROOT / "morph.py"), *argv, "-q"], stderr=subprocess.PIPE,
                               env=environment)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"morph.py failed: {process.stderr.read().decode() if process.stderr else ''}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "samples")
    parser.add_argument("--epochs", type=int, default=30, help="fitting steps per run (memory does not depend on it)")
    args = parser.parse_args()
    source, target = args.samples / "img_1.jpg", args.samples / "img_2.jpg"
    if not source.exists():
        raise SystemExit(f"{source} not found: pass --samples FOLDER with img_1.jpg and img_2.jpg")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        common = ["-s", str(source), "-t", str(target), "-e", str(args.epochs)]
        print("512x512 pair, peak RSS by frame count:")
        results = {}
        for frames in (50, 400):
            rss, wall = peak_rss([*common, "--frames", str(frames), "-o", str(work / f"f{frames}.gif")], work / "cache")
            results[frames] = rss
            print(f"  {frames:4d} frames: {rss:6.0f} MiB  ({wall:.1f}s)")
        print(f"  growth from 50 to 400 frames: {results[400] - results[50]:+.0f} MiB")
        big_source, big_target = work / "big_1.jpg", work / "big_2.jpg"
        for small, big in ((source, big_source), (target, big_target)):
            Image.open(small).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(big, quality=92)
        rss, wall = peak_rss(["-s", str(big_source), "-t", str(big_target), "-e", str(args.epochs),
                              "--frames", "20", "-o", str(work / "big.gif")], work / "cache")
        print(f"4000x3000 pair, 20 frames at full resolution: {rss:.0f} MiB ({wall:.1f}s), "
              f"GIF {os.path.getsize(work / 'big.gif') / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

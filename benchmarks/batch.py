#!/usr/bin/env python3
"""Ten pairs as one --batch run against ten separate morph.py runs.

    python benchmarks/batch.py [--pairs 10] [--epochs N]

Uses the sample pairs in images/ (repeated to make ``--pairs`` rows) with the
default flags but for ``--frames`` (and ``--epochs``, if given). The separate runs are the baseline,
measured in the same run: each pays Python and TensorFlow start-up again.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [("shapes_a.png", "shapes_b.png"), ("gradient_a.png", "gradient_b.png")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=None, help="default: the morph's own default")
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    flags = ["--frames", str(args.frames), "-q", *(["-e", str(args.epochs)] if args.epochs else [])]
    rows = [PAIRS[i % len(PAIRS)] for i in range(args.pairs)]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        environment = {**os.environ, "MORPH_CACHE_DIR": str(work / "cache")}  # the benchmark's own, not the user's
        start = time.perf_counter()
        for index, (source, target) in enumerate(rows):
            subprocess.run([sys.executable, str(ROOT / "morph.py"), "-s", str(ROOT / "images" / source),
                            "-t", str(ROOT / "images" / target), "-o", str(work / f"single_{index}.gif"), *flags],
                           check=True, env=environment)
        separate = time.perf_counter() - start

        manifest = work / "pairs.csv"
        manifest.write_text("source,target,output\n" + "".join(
            f"{ROOT / 'images' / s},{ROOT / 'images' / t},batch_{i}.gif\n" for i, (s, t) in enumerate(rows)))
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "morph.py"), "--batch", str(manifest), *flags], check=True,
                       env=environment)
        batched = time.perf_counter() - start
    epochs = f"{args.epochs} epochs" if args.epochs else "default epochs"
    print(f"{args.pairs} pairs ({epochs}, {args.frames} frames each):")
    print(f"  {args.pairs} separate runs: {separate:.1f}s ({separate / args.pairs:.1f}s per pair)")
    print(f"  one --batch run:  {batched:.1f}s ({batched / args.pairs:.1f}s per pair)")
    print(f"  saving: {separate - batched:.1f}s ({100 * (1 - batched / separate):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

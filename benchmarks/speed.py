#!/usr/bin/env python3
"""Speed of one default morph, stage by stage, against baselines in the same run.

    python benchmarks/speed.py --samples ../shared/samples

Runs ``morph.py`` as a user would (a fresh process, defaults, 100 frames) on a
512x512 photo pair and prints total wall time, each stage's time and the peak
RSS, for the defaults and for the formula's plain render (``--interpolation
bilinear --blend linear``). Baselines measured in the same run:

- the seed's configuration (1024x1024 working size, a 96x96 network of 64
  features) on our code: seconds per epoch, and the 1000 epochs it ran for;
- imageio's default GIF encoder on the same 100 frames.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_morph(source: Path, target: Path, output: Path, extra: list[str]) -> dict[str, float]:
    """One ``morph.py`` process: wall seconds, peak RSS and the stage timings."""
    command = [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target),
               "-o", str(output), "-q", "--timings", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    if status != 0:
        raise SystemExit(f"morph.py failed ({status}): {stderr.strip()}")
    result = {"wall": wall, "peak_rss_mib": usage.ru_maxrss / 1024}
    line = next(l for l in stderr.splitlines() if "timings:" in l)
    for name, seconds in re.findall(r"([a-z ]+?) ([0-9.]+)s", line.split("timings:")[1]):
        result[name.strip().strip(",")] = float(seconds)
    result["python start-up"] = wall - sum(v for k, v in result.items() if k not in ("wall", "peak_rss_mib"))
    return result


def seed_configuration_seconds_per_epoch(source: Path, target: Path, epochs: int = 8) -> float:
    """Per-step time of the seed's sizes on our code (after the first, compiling, step)."""
    from morphing.backend import load_tensorflow

    load_tensorflow()
    from morphing.fit import FitSettings, fit_maps
    from morphing.images import load_image, resize_image, to_float
    from morphing.maps import Scales

    images = [to_float(resize_image(load_image(p).pixels, 1024, 1024)) for p in (source, target)]
    stamps: list[float] = []
    settings = FitSettings(epochs=epochs, working_size=1024, grid_size=96, features=64, layers=3)
    fit_maps(images[0], images[1], Scales(), settings, on_step=lambda step, loss: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[1]) / (len(stamps) - 2)


def imageio_default_gif_seconds(gif: Path) -> tuple[float, int]:
    """Re-encode our GIF's frames with imageio's defaults: seconds and bytes."""
    import imageio.v3 as iio

    frames = iio.imread(gif, index=None)[..., :3]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "imageio.gif"
        start = time.perf_counter()
        iio.imwrite(path, frames, duration=40, loop=0)
        return time.perf_counter() - start, path.stat().st_size


def encode_each_format(gif: Path) -> list[tuple[str, float, int]]:
    """Encode our GIF's 100 frames with each of our writers: (suffix, seconds, bytes)."""
    import imageio.v3 as iio

    from morphing.output import OUTPUT_SUFFIXES, animation_writer

    frames = iio.imread(gif, index=None)[..., :3]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for suffix in OUTPUT_SUFFIXES:
            path = Path(folder) / f"frames{suffix}"
            start = time.perf_counter()
            writer = animation_writer(suffix, frames[::25], fps=25, frame_count=len(frames))
            writer.write(iter(frames), path)
            results.append((suffix, time.perf_counter() - start, path.stat().st_size))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "samples",
                        help="folder with img_1.jpg and img_2.jpg (512x512)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the morph run and report each")
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    source, target = args.samples / "img_1.jpg", args.samples / "img_2.jpg"
    if not source.exists():
        raise SystemExit(f"{source} not found: pass --samples FOLDER with a 512x512 pair img_1.jpg, img_2.jpg")

    with tempfile.TemporaryDirectory() as folder:
        gif = Path(folder) / "morph.gif"
        print(f"default morph of {source.name} -> {target.name} (512x512, 100 frames), {os.cpu_count()} CPUs")
        for run in range(args.runs):
            for label, extra in (("defaults", []), ("plain render", ["--interpolation", "bilinear", "--blend", "linear"])):
                result = run_morph(source, target, gif if not extra else Path(folder) / "plain.gif", extra)
                stages = ", ".join(
                    f"{k} {v:.2f}s" for k, v in result.items() if k not in ("wall", "peak_rss_mib")
                )
                print(f"  run {run + 1}, {label}: total {result['wall']:.1f}s wall, "
                      f"peak RSS {result['peak_rss_mib']:.0f} MiB")
                print(f"    stages: {stages}")
        print(f"  GIF (defaults): {gif.stat().st_size / 1e6:.1f} MB")
        if args.skip_baselines:
            return 0
        print("baselines (same run):")
        per_epoch = seed_configuration_seconds_per_epoch(source, target)
        print(f"  seed configuration (1024^2 working, 96^2 net x 64 features) on our code: "
              f"{per_epoch:.2f} s/epoch -> {per_epoch * 1000 / 60:.1f} min for its 1000 epochs")
        seconds, size = imageio_default_gif_seconds(gif)
        print(f"  imageio default GIF encoder, same 100 frames: {seconds:.1f}s, {size / 1e6:.1f} MB")
        print("our writers on the same 100 frames (512x512):")
        for suffix, seconds, size in encode_each_format(gif):
            print(f"  {suffix:<5} {seconds:5.2f}s  {size / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

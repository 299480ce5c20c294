#!/usr/bin/env python3
"""Speed of whole morphs, stage by stage, and of one rendered frame, against baselines in the same run.

    python benchmarks/speed.py --samples ../shared/samples [--runs 3] [--cases gif,portrait,photo]

Runs ``morph.py`` as a user would (a fresh process, defaults, 100 frames) and
prints total wall time, each stage's time and the peak RSS. Each case starts
with an empty compile cache (``morphing.runtime.compile_cache``): its first run
compiles ("cold"), the later ones load what it compiled ("warm"), as a user's
second morph of a size does; ``--no-cache`` runs every one cold.

- ``gif``: the 512x512 car pair to a GIF, with the defaults and with the
  formula's plain render (``--interpolation bilinear --blend linear``);
- ``portrait``: a 1667x1667 source (the car, upscaled) with a 512x512 target
  (resized up by morph.py) to an MP4;
- ``photo``: a 4000x3000 pair (both upscaled) to an MP4.

Then, in this process, the cost of one frame at 1667x1667 (2.8 megapixels)
for each render engine and mode, beside a plain remap of the same pixels (two
``cv2.remap`` bicubic warps and a blend: the least any warp-based render does)
and the OpenCV DIS optical-flow morph's render. Baselines measured in the same
run: the seed's configuration (1024x1024 working size, a 96x96 network of 64
features) on our code, seconds per epoch; imageio's default GIF encoder on the
same 100 frames.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def run_morph(source: Path, target: Path, output: Path, extra: list[str], cache: Path | None) -> dict[str, float]:
    """One ``morph.py`` process: wall seconds, peak RSS and the stage timings.

    ``cache``: the compile cache's folder (``MORPH_CACHE_DIR``; ``None``: off).
    """
    command = [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target),
               "-o", str(output), "-q", "--timings", *extra]
    environment = {**os.environ, "MORPH_CACHE_DIR": "off" if cache is None else str(cache)}
    environment.pop("TF_XLA_FLAGS", None)
    start = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
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


def upscaled(image: Path, size: tuple[int, int], path: Path) -> Path:
    """``image`` resized to ``size`` (width, height) with Pillow's bicubic, saved as a JPEG at ``path``."""
    from PIL import Image

    Image.open(image).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(path, quality=92)
    return path


def print_run(label: str, result: dict[str, float]) -> None:
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.items() if k not in ("wall", "peak_rss_mib"))
    print(f"  {label}: total {result['wall']:.1f}s wall, peak RSS {result['peak_rss_mib']:.0f} MiB")
    print(f"    stages: {stages}", flush=True)


def milliseconds_per_frame(render: Callable[[float], object], count: int) -> float:
    """Median milliseconds of ``render(alpha)`` over ``count`` alphas inside (0, 1), after one warm-up call."""
    alphas = np.linspace(0.05, 0.95, count)
    render(0.5)
    times = []
    for alpha in alphas:
        start = time.perf_counter()
        render(float(alpha))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def milliseconds_per_streamed_frame(renderer, count: int) -> float:
    """Milliseconds per frame of ``renderer.frames`` (as the command line streams them) over ``count`` frames,
    after four warm-up frames (OpenCV: each of the two frames in flight has made its working arrays)."""
    list(renderer.frames([0.3, 0.5, 0.7, 0.4]))
    start = time.perf_counter()
    for _ in renderer.frames(np.linspace(0.05, 0.95, count)):
        pass
    return 1000 * (time.perf_counter() - start) / count


def frame_costs(source_path: Path, target_path: Path, side: int, count: int) -> None:
    """Per-frame render cost at ``side`` x ``side`` for every engine and mode, and the baselines."""
    import cv2

    from morphing.runtime.backend import load_tensorflow

    load_tensorflow()
    from baselines import flow_morph
    from morphing.fit.fitter import fit_maps, reduce_for_fit
    from morphing.io.images import load_image, resize_image
    from morphing.model.maps import Scales
    from morphing.render.renderer import FrameRenderer

    source, target = (resize_image(load_image(p).pixels, side, side) for p in (source_path, target_path))
    maps = fit_maps(*reduce_for_fit(source, target, 192), Scales(), image_shape=(side, side))
    print(f"one frame at {side}x{side} ({side * side / 1e6:.1f} MP), median ms (streamed: frames() as the CLI "
          f"pulls them, two threads for OpenCV):")
    for engine in ("opencv", "tensorflow"):
        for interpolation, blend in (("bicubic", "detail"), ("bilinear", "linear")):
            renderer = FrameRenderer(source, target, maps, Scales(), interpolation=interpolation, blend=blend,
                                     engine=engine)
            frames = count if engine == "opencv" else max(3, count // 4)
            single = milliseconds_per_frame(lambda a: renderer.render([a]), frames)
            streamed = milliseconds_per_streamed_frame(renderer, frames)
            label = "defaults" if blend == "detail" else "plain render"
            print(f"  {engine:<10} {label:<13} {single:7.1f} one at a time, {streamed:7.1f} streamed", flush=True)
    grid_x, grid_y = np.meshgrid(np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32))
    flow = np.random.default_rng(0).normal(size=(side, side, 2)).astype(np.float32)
    images = [image.astype(np.float32) for image in (source, target)]

    flow_x, flow_y = np.ascontiguousarray(flow[..., 1]), np.ascontiguousarray(flow[..., 0])

    def plain_remap(alpha: float) -> np.ndarray:
        warped = [
            cv2.remap(image, cv2.scaleAdd(flow_x, -a, grid_x), cv2.scaleAdd(flow_y, -a, grid_y), cv2.INTER_CUBIC,
                      borderMode=cv2.BORDER_REPLICATE)
            for image, a in zip(images, (alpha, 1 - alpha))
        ]
        return cv2.addWeighted(warped[0], 1 - alpha, warped[1], alpha, 0.0, dtype=cv2.CV_8U)

    print(f"  plain remap (2 cv2.remap bicubic + blend)   {milliseconds_per_frame(plain_remap, count):7.1f}")
    dis_render, _ = flow_morph(source, target)
    print(f"  DIS flow morph's render (bilinear, float64) "
          f"{milliseconds_per_frame(lambda a: dis_render(np.array([a])), count):7.1f}", flush=True)


def seed_configuration_seconds_per_epoch(source: Path, target: Path, epochs: int = 8) -> float:
    """Per-step time of the seed's sizes on our code (after the first, compiling, step)."""
    from morphing.runtime.backend import load_tensorflow

    load_tensorflow()
    from morphing.fit.fitter import FitSettings, fit_maps
    from morphing.io.images import load_image, resize_image, to_float
    from morphing.model.maps import Scales

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

    from morphing.io.output import ANIMATION_SUFFIXES, animation_writer

    frames = iio.imread(gif, index=None)[..., :3]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ANIMATION_SUFFIXES:
            path = Path(folder) / f"frames{suffix}"
            start = time.perf_counter()
            animation_writer(suffix, fps=25).write(iter(frames), path, count=len(frames), samples=frames[::25])
            results.append((suffix, time.perf_counter() - start, path.stat().st_size))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "samples",
                        help="folder with img_1.jpg and img_2.jpg (512x512)")
    parser.add_argument("--runs", type=int, default=1, help="repeat each whole-morph run and report each")
    parser.add_argument("--cases", default="gif,portrait,photo", help="whole-morph cases: gif, portrait, photo")
    parser.add_argument("--frame-side", type=int, default=1667, help="frame side for the per-frame costs (0: skip)")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--no-cache", action="store_true", help="no compile cache: every run compiles")
    args = parser.parse_args()
    source, target = args.samples / "img_1.jpg", args.samples / "img_2.jpg"
    if not source.exists():
        raise SystemExit(f"{source} not found: pass --samples FOLDER with a 512x512 pair img_1.jpg, img_2.jpg")
    cases = args.cases.split(",") if args.cases else []

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        gif = work / "morph.gif"
        print(f"{os.cpu_count()} CPUs; 100 frames per morph")
        def cache_of(case: str) -> Path | None:
            return None if args.no_cache else work / f"cache-{case}"

        def state(cache: Path | None) -> str:
            return "cold" if cache is None or not any(cache.glob("*/*.pb")) else "warm"

        if "gif" in cases:
            print(f"{source.name} -> {target.name} (512x512) to a GIF:")
            cache = cache_of("gif")
            for run in range(args.runs):
                plain = ["--interpolation", "bilinear", "--blend", "linear"]
                for label, extra in (("defaults", []), ("plain render", plain)):
                    when = state(cache)
                    result = run_morph(source, target, gif if not extra else work / "plain.gif", extra, cache)
                    print_run(f"run {run + 1}, {label}, {when}", result)
            print(f"  GIF (defaults): {gif.stat().st_size / 1e6:.1f} MB")
        if "portrait" in cases:
            big = upscaled(source, (1667, 1667), work / "portrait.jpg")
            print(f"{big.name} (1667x1667) -> {target.name} (512x512) to an MP4:")
            cache = cache_of("portrait")
            for run in range(args.runs):
                when = state(cache)
                print_run(f"run {run + 1}, defaults, {when}", run_morph(big, target, work / "portrait.mp4", [], cache))
        if "photo" in cases:
            pair = [upscaled(p, (4000, 3000), work / f"photo_{i}.jpg") for i, p in enumerate((source, target))]
            print("4000x3000 pair to an MP4:")
            cache = cache_of("photo")
            for run in range(args.runs):
                when = state(cache)
                print_run(f"run {run + 1}, defaults, {when}", run_morph(*pair, work / "photo.mp4", [], cache))
        if args.frame_side:
            frame_costs(source, target, args.frame_side, count=20)
        if args.skip_baselines or "gif" not in cases:
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

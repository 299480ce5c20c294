#!/usr/bin/env python3
"""File size and encoding seconds per output format, at two settings each, on the same frames.

    python benchmarks/formats.py [--samples ../shared/samples] [--frames 100]

One morph (the sample car pair img_1 → img_2 at 512², or the shapes in images/
without ``--samples``) is fitted once and its frames rendered once, into
memory; each row then encodes those frames (``morphing.io.output``, what
``morph.py`` and ``Morph.save`` use) and reports the file's size and the
seconds the encoder took (median of ``--runs``). Baselines in the same run:
imageio's own GIF and WebP writers at their defaults, and the frames as PNG
files.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morphing.runtime.backend import load_tensorflow  # noqa: E402

load_tensorflow()

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402

from morphing import Morph, load_image  # noqa: E402
from morphing.io.output import animation_writer, resized_frames  # noqa: E402
from morphing.model.settings import EncoderSettings, FrameSettings, OutputSize  # noqa: E402

ROWS = [
    ("GIF", ".gif", "defaults (255 colours, dithered)", EncoderSettings(), OutputSize()),
    ("GIF", ".gif", "--colors 64 --no-dither", EncoderSettings(colors=64, dither=False), OutputSize()),
    ("GIF", ".gif", "--scale 0.5", EncoderSettings(), OutputSize(scale=0.5)),
    ("MP4", ".mp4", "defaults (--crf 18, veryfast)", EncoderSettings(), OutputSize()),
    ("MP4", ".mp4", "--crf 28 --preset slow", EncoderSettings(crf=28, preset="slow"), OutputSize()),
    ("WebP", ".webp", "defaults (--quality 90)", EncoderSettings(), OutputSize()),
    ("WebP", ".webp", "--quality 60", EncoderSettings(quality=60), OutputSize()),
]


def timed(write, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        write()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=None, help="folder with img_1.jpg and img_2.jpg")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.samples is not None:
        pair = [args.samples / "img_1.jpg", args.samples / "img_2.jpg"]
    else:
        pair = [ROOT / "images" / "shapes_a.png", ROOT / "images" / "shapes_b.png"]
    source, target = (load_image(path).pixels for path in pair)
    morph = Morph(source, target).fit()
    frames = list(morph.frames(frames=FrameSettings(frames=args.frames)))
    samples = list(morph.animation(FrameSettings(frames=args.frames)).samples())
    height, width = frames[0].shape[:2]
    print(f"{len(frames)} frames of {width}x{height} ({pair[0].name} -> {pair[1].name}), {args.fps:g} fps, "
          f"median of {args.runs} encodes\n")
    print("| format | settings | file size (KB) | encode seconds |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, suffix, label, encoder, size in ROWS:
            path = Path(folder) / f"out{suffix}"
            shape = size.of(height, width)
            writer = animation_writer(suffix, args.fps, encoder)
            seconds = timed(lambda: writer.write(resized_frames(frames, *shape), path, count=len(frames),
                                                 samples=list(resized_frames(samples, *shape))), args.runs)
            print(f"| {name} | {label} | {path.stat().st_size / 1000:.0f} | {seconds:.2f} |")
        baselines = [
            ("GIF", "baseline: imageio (Pillow) defaults", ".gif", lambda p: iio.imwrite(p, frames, duration=40, loop=0)),
            ("WebP", "baseline: imageio (Pillow) defaults", ".webp",
             lambda p: iio.imwrite(p, frames, duration=40, loop=0)),
        ]
        for name, label, suffix, write in baselines:
            path = Path(folder) / f"baseline{suffix}"
            seconds = timed(lambda: write(path), args.runs)
            print(f"| {name} | {label} | {path.stat().st_size / 1000:.0f} | {seconds:.2f} |")
        png_folder = Path(folder) / "png"
        png_folder.mkdir()

        def pngs() -> None:
            for index, frame in enumerate(frames):
                iio.imwrite(png_folder / f"{index:04d}.png", frame)

        seconds = timed(pngs, args.runs)
        total = sum(path.stat().st_size for path in png_folder.iterdir())
        print(f"| PNG frames | baseline: {len(frames)} PNG files (--frames-dir) | {total / 1000:.0f} | {seconds:.2f} |")
    print(f"\nframes: {np.stack(frames).nbytes / 1e6:.0f} MB raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())

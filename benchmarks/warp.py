#!/usr/bin/env python3
"""Dense warp implementations, forward + backward, at the sizes a morph uses.

    python benchmarks/warp.py

Ours (``morphing.render.warp.dense_image_warp``: one gather per corner) as a plain
graph and compiled with XLA, against ``keras.ops.image.map_coordinates`` (one
call per channel, the same bilinear, border-clamped semantics) in the same run.
Median milliseconds of 15 calls after a warm-up; the gradient is taken with
respect to both the image and the flow, as in fitting. Then the forward warp as
rendering uses it (a batch of 4 frames, XLA): bilinear against bicubic.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morphing.runtime.backend import load_tensorflow  # noqa: E402

tf = load_tensorflow()
import keras  # noqa: E402

from morphing.render.warp import dense_image_warp, identity_grid  # noqa: E402


def keras_warp(image: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """The same warp through keras.ops.image.map_coordinates, channel by channel."""
    height, width = image.shape[1], image.shape[2]
    queries = identity_grid(height, width)[tf.newaxis] - flow
    coordinates = [queries[0, ..., 0], queries[0, ..., 1]]
    channels = [
        keras.ops.image.map_coordinates(image[0, ..., c], coordinates, order=1, fill_mode="nearest")
        for c in range(image.shape[3])
    ]
    return tf.stack(channels, axis=-1)[tf.newaxis]


def median_ms(function, *args, calls: int = 15) -> float:
    function(*args)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = function(*args)
        [r.numpy() for r in result]
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def forward_backward(warp, jit: bool):
    @tf.function(jit_compile=jit)
    def step(image: tf.Tensor, flow: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch([image, flow])
            value = tf.reduce_sum(tf.square(warp(image, flow)))
        return tape.gradient(value, [image, flow])

    return step


def main() -> int:
    image = tf.random.uniform([1, 64, 48, 3])
    flow = tf.random.normal([1, 64, 48, 2]) * 5.0
    difference = float(tf.reduce_max(tf.abs(dense_image_warp(image, flow) - keras_warp(image, flow))))
    print(f"same semantics: max |ours - keras| = {difference:.2e} on a random 64x48 warp")
    print("forward + backward, batch 1, 3 channels, median ms")
    print(f"{'implementation':<38} {'256²':>8} {'512²':>8}")
    rows = [
        ("ours, graph", dense_image_warp, False),
        ("ours, XLA", dense_image_warp, True),
        ("keras map_coordinates per channel", keras_warp, False),
    ]
    for name, warp, jit in rows:
        cells = []
        for size in (256, 512):
            image = tf.random.uniform([1, size, size, 3])
            flow = tf.random.normal([1, size, size, 2]) * 5.0
            cells.append(median_ms(forward_backward(warp, jit), image, flow))
        print(f"{name:<38} {cells[0]:8.1f} {cells[1]:8.1f}")
    print("forward only, batch 4, 3 channels, XLA (as rendering uses it), median ms")
    for interpolation in ("bilinear", "bicubic"):
        warp = tf.function(lambda image, flow: (dense_image_warp(image, flow, interpolation),), jit_compile=True)
        cells = []
        for size in (256, 512):
            image = tf.random.uniform([4, size, size, 3])
            flow = tf.random.normal([4, size, size, 2]) * 5.0
            cells.append(median_ms(warp, image, flow))
        print(f"{'ours, ' + interpolation:<38} {cells[0]:8.1f} {cells[1]:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

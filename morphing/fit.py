"""Fitting: gradient descent on the map network until the maps morph S into T.

``fit_maps`` takes two same-sized float images and returns ``MorphMaps``; it
knows nothing of files or flags. The loss, for maps in both directions, is

- reconstruction: ``S→T(1) ≈ T`` and ``T→S(1) ≈ S`` (mean squared error);
- consistency: warping the identity grid by one flow then the other returns it
  (in both orders), measured in units of half the long side.

The fit runs at a small working size; the maps live on a coarser grid that the
network outputs and are upsampled bilinearly to whatever size is rendered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .images import working_shape
from .maps import CHANNELS_PER_DIRECTION, WARP, MorphMaps, Scales
from .network import build_map_network, network_input
from .transition import DirectionMaps, apply_direction, upsample_direction
from .warp import dense_image_warp, identity_grid

__all__ = ["FitSettings", "FitDivergedError", "fit_maps"]


@dataclass(frozen=True)
class FitSettings:
    """How to fit. ``working_size`` and ``grid_size`` are long sides in pixels."""

    epochs: int = 300
    working_size: int = 256
    grid_size: int = 64
    learning_rate: float = 2e-3
    features: int = 32
    layers: int = 3
    consistency_weight: float = 1.0
    seed: int = 0


class FitDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


StepCallback = Callable[[int, float], None]


def _shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W, 3]`` float → ``[height, width, 3]`` float32, antialiased."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    resized = tf.image.resize(image[np.newaxis], [height, width], method="bilinear", antialias=True)
    return resized[0].numpy().astype(np.float32)


def _grid_maps(raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Network output ``[1, h, w, 16]`` → forward and backward ``[1, h, w, 8]`` maps.

    The network's warp channels are in units of the grid's long side; this is
    where they become grid pixels.
    """
    long_side = float(max(raw.shape[1], raw.shape[2]))
    unit = np.ones(CHANNELS_PER_DIRECTION, np.float32)
    unit[WARP] = long_side
    forward = raw[..., :CHANNELS_PER_DIRECTION] * unit
    backward = raw[..., CHANNELS_PER_DIRECTION:] * unit
    return forward, backward


def _consistency(forward: DirectionMaps, backward: DirectionMaps, scales: Scales) -> tf.Tensor:
    """How far composing the two flows (both orders) is from the identity."""
    height, width = forward.warp.shape[1], forward.warp.shape[2]
    grid = identity_grid(height, width)[tf.newaxis]
    flow_st = scales.warp * forward.warp
    flow_ts = scales.warp * backward.warp
    there_and_back = dense_image_warp(dense_image_warp(grid, flow_ts), flow_st)
    back_and_there = dense_image_warp(dense_image_warp(grid, flow_st), flow_ts)
    unit = 2.0 / max(height, width)
    return tf.reduce_mean(tf.square((there_and_back - grid) * unit)) + tf.reduce_mean(
        tf.square((back_and_there - grid) * unit)
    )


def fit_maps(
    source: np.ndarray,
    target: np.ndarray,
    scales: Scales,
    settings: FitSettings = FitSettings(),
    on_step: StepCallback | None = None,
) -> MorphMaps:
    """Fit morph maps from ``source`` to ``target``.

    Args:
      source, target: ``[H, W, 3] float32 in [-1, 1]``, the same shape.
      scales: the map multipliers ``m``, ``a``, ``w`` used in the formula.
      settings: epochs, sizes, learning rate, seed.
      on_step: called after each step with (step index, loss).

    Returns:
      ``MorphMaps`` on a grid whose long side is ``settings.grid_size``.

    Raises:
      FitDivergedError: when the loss stops being finite.
      ValueError: for images of different shapes or bad settings.
    """
    if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 3:
        raise ValueError(f"source {source.shape} and target {target.shape} must both be [H, W, 3]")
    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    height, width = source.shape[:2]
    work_h, work_w = working_shape(height, width, settings.working_size)
    grid_h, grid_w = working_shape(work_h, work_w, settings.grid_size)

    source_work = tf.constant(_shrink(source, work_h, work_w)[np.newaxis])
    target_work = tf.constant(_shrink(target, work_h, work_w)[np.newaxis])
    inputs = tf.constant(
        network_input(_shrink(source, grid_h, grid_w), _shrink(target, grid_h, grid_w))
    )
    network = build_map_network(
        grid_h, grid_w, features=settings.features, layers=settings.layers, seed=settings.seed
    )
    optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
    optimizer.build(network.trainable_variables)
    one = tf.ones([1])

    # XLA compiles the warps ~3x faster, but its CPU convolutions are ~5x slower
    # than oneDNN's: so only the maps-to-loss part is compiled.
    @tf.function(jit_compile=True)
    def loss_of(raw: tf.Tensor) -> tf.Tensor:
        forward_grid, backward_grid = _grid_maps(raw)
        forward = upsample_direction(forward_grid, work_h, work_w)
        backward = upsample_direction(backward_grid, work_h, work_w)
        towards_target = apply_direction(source_work, forward, one, scales)
        towards_source = apply_direction(target_work, backward, one, scales)
        reconstruction = tf.reduce_mean(tf.square(towards_target - target_work)) + tf.reduce_mean(
            tf.square(towards_source - source_work)
        )
        return reconstruction + settings.consistency_weight * _consistency(
            forward, backward, scales
        )

    @tf.function
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_of(network(inputs, training=True))
        gradients = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(gradients, network.trainable_variables))
        return loss

    for step in range(settings.epochs):
        loss = float(train_step())
        if not math.isfinite(loss):
            raise FitDivergedError(
                f"fitting diverged at step {step + 1} (loss is {loss}); "
                "try smaller scales or a different --seed"
            )
        if on_step is not None:
            on_step(step, loss)

    forward_grid, backward_grid = _grid_maps(network(inputs, training=False))
    forward_np = forward_grid[0].numpy()
    backward_np = backward_grid[0].numpy()
    if not (np.isfinite(forward_np).all() and np.isfinite(backward_np).all()):
        raise FitDivergedError("fitting produced non-finite maps; try smaller scales")
    return MorphMaps(
        forward=forward_np, backward=backward_np, scales=scales, image_shape=(height, width)
    )

"""Fitting: gradient descent on the map network until the maps morph S into T.

``fit_maps`` takes two same-sized float images and returns ``MorphMaps``; it
knows nothing of files or flags. The loss, for maps in both directions, is

- reconstruction: ``S→T(1) ≈ T`` and ``T→S(1) ≈ S`` (mean squared error),
  compared at several scales a factor 2 apart, so that large motions still
  have a gradient; the colour maps are phased in over the first
  ``colour_ramp`` of the steps, so the warp explains motion first;
- consistency: warping the identity grid by one flow then the other returns it
  (in both orders), measured in units of half the long side;
- folds: a penalty where the warp's sampling map comes close to folding.

The fit runs at a small working size; the maps live on a coarser grid that the
network outputs and are upsampled bilinearly to whatever size is rendered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .images import resize_image, to_float, working_shape
from .maps import CHANNELS_PER_DIRECTION, WARP, MorphMaps, Scales
from .network import build_map_network, network_input
from .transition import DirectionMaps, apply_direction, upsample_direction
from .warp import dense_image_warp, identity_grid

__all__ = ["FitSettings", "FitDivergedError", "MapFitter", "fit_maps", "reduce_for_fit"]


@dataclass(frozen=True)
class FitSettings:
    """How to fit. ``working_size`` and ``grid_size`` are long sides in pixels."""

    epochs: int = 120
    working_size: int = 192
    grid_size: int = 64
    learning_rate: float = 2e-3
    features: int = 32
    layers: int = 3
    consistency_weight: float = 1.0
    pyramid_levels: int = 5
    colour_ramp: float = 0.3
    fold_weight: float = 1.0
    fold_margin: float = 0.2
    seed: int = 0


class FitDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


StepCallback = Callable[[int, float], None]


def reduce_for_fit(source: np.ndarray, target: np.ndarray, working_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[H, W, 3] uint8`` images → ``[h, w, 3] float32`` in [-1, 1] at the working size.

    Reduced with Lanczos while still uint8, so a 12-megapixel photo is never
    held as floats (~150 MB a copy). Pass ``image_shape=(H, W)`` to ``fit_maps``
    with the results.
    """
    height, width = working_shape(*source.shape[:2], working_size)
    return to_float(resize_image(source, height, width)), to_float(resize_image(target, height, width))


def _shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W, 3]`` float → ``[height, width, 3]`` float32, antialiased."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    resized = tf.image.resize(image[np.newaxis], [height, width], method="bilinear", antialias=True)
    return resized[0].numpy().astype(np.float32)


def _grid_maps(raw: tf.Tensor) -> tf.Tensor:
    """Network output ``[1, h, w, 16]`` → ``[2, h, w, 8]``: the S→T maps, then the T→S maps.

    The network's warp channels are in units of the grid's long side; this is
    where they become grid pixels.
    """
    long_side = float(max(raw.shape[1], raw.shape[2]))
    unit = np.ones(CHANNELS_PER_DIRECTION, np.float32)
    unit[WARP] = long_side
    return tf.concat([raw[..., :CHANNELS_PER_DIRECTION], raw[..., CHANNELS_PER_DIRECTION:]], axis=0) * unit


def _pyramid_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """``(h, w)`` of each level, halving from the working size; no level's short side is below 8."""
    shapes = [(height, width)]
    while len(shapes) < levels and min(shapes[-1]) >= 16:
        shapes.append((shapes[-1][0] // 2, shapes[-1][1] // 2))
    return shapes


def _fold_penalty(flows: tf.Tensor, margin: float) -> tf.Tensor:
    """Sum over the batch of the mean of ``relu(margin - det J)^2`` over each sampling map ``p - flow``.

    ``flows``: ``[B, h, w, 2]``. ``J`` uses forward differences; ``det J <= 0``
    is a fold, and the margin keeps the map away from one.
    """
    d_dy = flows[:, 1:, :-1] - flows[:, :-1, :-1]
    d_dx = flows[:, :-1, 1:] - flows[:, :-1, :-1]
    determinant = (1.0 - d_dy[..., 0]) * (1.0 - d_dx[..., 1]) - d_dx[..., 0] * d_dy[..., 1]
    return tf.reduce_sum(tf.reduce_mean(tf.square(tf.nn.relu(margin - determinant)), axis=[1, 2]))


def _consistency(flows: tf.Tensor) -> tf.Tensor:
    """How far composing the two flows (both orders) is from the identity.

    ``flows``: ``[2, h, w, 2]``, the S→T and T→S effective flows in pixels of
    their own grid. Both orders are warped as one batch of two. Measured in
    units of half the long side.
    """
    height, width = flows.shape[1], flows.shape[2]
    grid = tf.tile(identity_grid(height, width)[tf.newaxis], [2, 1, 1, 1])
    # Row 0: by T→S then S→T; row 1: by S→T then T→S.
    composed = dense_image_warp(dense_image_warp(grid, tf.reverse(flows, [0])), flows)
    unit = 2.0 / max(height, width)
    return tf.reduce_sum(tf.reduce_mean(tf.square((composed - grid) * unit), axis=[1, 2, 3]))


def _gained(maps: DirectionMaps, gain: tf.Tensor) -> DirectionMaps:
    """The colour maps multiplied by ``gain`` (the warp untouched)."""
    return DirectionMaps(mult=gain * maps.mult, add=gain * maps.add, warp=maps.warp)


class _ShapeProgram(NamedTuple):
    """What a fitter builds for one working shape: the network, its optimizer, their
    initial values and the traced (partly XLA-compiled) training step."""

    network: keras.Model
    variables: list[tf.Variable]
    initial_values: list[np.ndarray]
    train_step: Callable[..., tf.Tensor]


class MapFitter:
    """Fits morph maps with one ``scales`` and ``settings``, building each working shape's
    training step once.

    Tracing and compiling the training step takes several seconds (a third of
    a default fit on 2 CPU cores); a fitter keeps it for the next pair of the
    same working shape (the legs of a multi-key morph, the rows of a batch).
    Every fit starts from the seed's initial weights and a fresh optimizer
    state, so it returns the same maps as a fitter of its own. It keeps every
    working shape it has seen (tens of MB each): use one per image size.
    """

    def __init__(self, scales: Scales, settings: FitSettings = FitSettings()) -> None:
        if settings.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
        self.scales = scales
        self.settings = settings
        self._programs: dict[tuple[tuple[int, int], ...], _ShapeProgram] = {}

    def _program(self, level_shapes: list[tuple[int, int]], grid_shape: tuple[int, int]) -> _ShapeProgram:
        key = (*level_shapes, grid_shape)
        if key not in self._programs:
            self._programs[key] = self._build(grid_shape)
        return self._programs[key]

    def _build(self, grid_shape: tuple[int, int]) -> _ShapeProgram:
        settings, scales = self.settings, self.scales
        network = build_map_network(*grid_shape, features=settings.features, layers=settings.layers, seed=settings.seed)
        optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
        optimizer.build(network.trainable_variables)
        one = tf.ones([1])

        def reconstruction(grid_maps: tf.Tensor, colour_gain: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
            """Squared error of ``S→T(1)`` against T plus ``T→S(1)`` against S at one level.

            ``grid_maps``: ``[2, h, w, 8]`` (S→T, T→S); ``images``: ``[2, H, W, 3]``
            (S, T) at the level's size. Both directions are one batch of two.
            """
            height, width = images.shape[1], images.shape[2]
            maps = _gained(upsample_direction(grid_maps, height, width), colour_gain)
            warped = apply_direction(images, maps, one, scales)
            references = tf.reverse(images, [0])
            return tf.reduce_sum(tf.reduce_mean(tf.square(warped - references), axis=[1, 2, 3]))

        # XLA makes the full-size warps ~3x faster, but compiling costs seconds per
        # warp and its CPU convolutions are ~5x slower than oneDNN's: so only the
        # full-size level is compiled; the network and the small levels are not.
        full_size_reconstruction = tf.function(reconstruction, jit_compile=True, autograph=False)

        def loss_of(raw: tf.Tensor, levels: tuple[tf.Tensor, ...], progress: tf.Tensor) -> tf.Tensor:
            grid_maps = _grid_maps(raw)
            # The colour maps are phased in: early on only the warp can explain
            # the difference, so shapes move instead of fading.
            colour_gain = tf.minimum(1.0, progress / max(settings.colour_ramp, 1e-6))
            loss = full_size_reconstruction(grid_maps, colour_gain, levels[0])
            for level in levels[1:]:
                loss += reconstruction(grid_maps, colour_gain, level)
            # The regularisers act on the smooth flows at the maps' own grid.
            flows = scales.warp * grid_maps[..., WARP]
            loss += settings.consistency_weight * _consistency(flows)
            loss += settings.fold_weight * _fold_penalty(flows, settings.fold_margin)
            return loss

        @tf.function(autograph=False)
        def train_step(
            inputs: tf.Tensor, levels: tuple[tf.Tensor, ...], progress: tf.Tensor
        ) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_of(network(inputs, training=True), levels, progress)
            gradients = tape.gradient(loss, network.trainable_variables)
            optimizer.apply_gradients(zip(gradients, network.trainable_variables))
            return loss

        variables = [*network.trainable_variables, *optimizer.variables]
        return _ShapeProgram(network, variables, [v.numpy() for v in variables], train_step)

    def fit(
        self,
        source: np.ndarray,
        target: np.ndarray,
        on_step: StepCallback | None = None,
        *,
        image_shape: tuple[int, int] | None = None,
        points=None,
    ) -> MorphMaps:
        """Fit morph maps from ``source`` to ``target``.

        Args:
          source, target: ``[H, W, 3] float32 in [-1, 1]``, the same shape.
          on_step: called after each step with (step index, loss).
          image_shape: ``(H, W)`` of the frames the maps are for, when the images
            passed in were already reduced (to save memory on big photos);
            default: the images' own shape.

        Returns:
          ``MorphMaps`` on a grid whose long side is ``settings.grid_size``.

        Raises:
          FitDivergedError: when the loss stops being finite.
          ValueError: for images of different shapes.
        """
        if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 3:
            raise ValueError(f"source {source.shape} and target {target.shape} must both be [H, W, 3]")
        settings = self.settings
        height, width = image_shape if image_shape is not None else source.shape[:2]
        work_h, work_w = working_shape(height, width, settings.working_size)
        work_h, work_w = min(work_h, source.shape[0]), min(work_w, source.shape[1])
        grid_h, grid_w = working_shape(work_h, work_w, settings.grid_size)

        # The reconstruction is compared at several scales (factor 2 apart). Coarse
        # levels see large motions that the full-size warp's local gradient cannot:
        # a shape that moved further than its own size overlaps its target only
        # once both are small.
        level_shapes = _pyramid_shapes(work_h, work_w, settings.pyramid_levels)
        levels = tuple(tf.constant(np.stack([_shrink(source, h, w), _shrink(target, h, w)])) for h, w in level_shapes)
        inputs = tf.constant(network_input(_shrink(source, grid_h, grid_w), _shrink(target, grid_h, grid_w)))
        program = self._program(level_shapes, (grid_h, grid_w))
        for variable, value in zip(program.variables, program.initial_values):
            variable.assign(value)  # the seed's weights, a fresh optimizer

        for step in range(settings.epochs):
            loss = float(program.train_step(inputs, levels, tf.constant(step / settings.epochs, tf.float32)))
            if not math.isfinite(loss):
                raise FitDivergedError(
                    f"fitting diverged at step {step + 1} (loss is {loss}); "
                    "try smaller scales or a different seed"
                )
            if on_step is not None:
                on_step(step, loss)

        grid_maps = _grid_maps(program.network(inputs, training=False)).numpy()
        forward_np, backward_np = grid_maps[0], grid_maps[1]
        if not (np.isfinite(forward_np).all() and np.isfinite(backward_np).all()):
            raise FitDivergedError("fitting produced non-finite maps; try smaller scales")
        return MorphMaps(forward=forward_np, backward=backward_np, scales=self.scales, image_shape=(height, width))


def fit_maps(
    source: np.ndarray,
    target: np.ndarray,
    scales: Scales,
    settings: FitSettings = FitSettings(),
    on_step: StepCallback | None = None,
    *,
    image_shape: tuple[int, int] | None = None,
) -> MorphMaps:
    """Fit morph maps from ``source`` to ``target`` (with a fitter of its own; see ``MapFitter.fit``).

    Args:
      source, target: ``[H, W, 3] float32 in [-1, 1]``, the same shape.
      scales: the map multipliers ``m``, ``a``, ``w`` used in the formula.
      settings: epochs, sizes, learning rate, seed.
      on_step: called after each step with (step index, loss).
      image_shape: ``(H, W)`` of the frames the maps are for, when the images
        passed in were already reduced; default: the images' own shape.

    Returns:
      ``MorphMaps`` on a grid whose long side is ``settings.grid_size``.

    Raises:
      FitDivergedError: when the loss stops being finite.
      ValueError: for images of different shapes or bad settings.
    """
    return MapFitter(scales, settings).fit(source, target, on_step, image_shape=image_shape)

"""The global stage of a fit: one affine map that brings the target's layout onto the source's.

Before the dense warp is fitted, an affine sampling map is found so that large
motions, scale changes and turns start close: a face that is smaller and
higher in the target, a car that drove to the right. It is found on small
grey copies of both images by an exhaustive search over translations and
scales (blind to where gradient descent would start), then refined by
gradient descent (Adam on its six parameters), coarse to fine, on the same
structure similarity the dense stage uses (``losses.local_ncc``), with user
point pairs as a soft term when given.

Convention: an ``Affine`` works in *normalised* coordinates, resolution-free
for a given aspect ratio: ``u = (p + 0.5 - size / 2) / (L / 2)`` for a pixel
position ``p`` (y, x) of an image of ``size`` (H, W) with long side ``L``
(so the long side runs over [-1, 1]). The map sends a position ``u`` of the
target to ``matrix @ u + offset`` in the source: the target shows the source
there. As a ``dense_image_warp`` flow on the target's pixels that is
``p - sampling(p)`` (``Affine.flow``); the inverse map is the other direction's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .losses import local_ncc, luminance
from .settings import GlobalSettings
from .warp import dense_image_warp

__all__ = ["Affine", "AffineFitter", "GlobalSettings", "normalised_grid", "fit_affine", "affine_from_points"]


@dataclass(frozen=True)
class Affine:
    """A sampling map ``u -> matrix @ u + offset`` in normalised coordinates (see the module).

    Attributes:
      matrix: ``[2, 2] float64`` acting on (y, x).
      offset: ``[2] float64``, (y, x) in units of half the long side.
    """

    matrix: np.ndarray
    offset: np.ndarray

    @staticmethod
    def identity() -> Affine:
        return Affine(np.eye(2), np.zeros(2))

    def inverse(self) -> Affine:
        inverse = np.linalg.inv(self.matrix)
        return Affine(inverse, -inverse @ self.offset)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` normalised positions → where the map sends them."""
        return points @ self.matrix.T + self.offset

    def flow(self, height: int, width: int) -> np.ndarray:
        """``[height, width, 2] float32`` (dy, dx) pixels: the ``dense_image_warp`` flow of this map."""
        grid = normalised_grid(height, width)
        half = max(height, width) / 2.0
        return ((grid - self.apply(grid)) * half).astype(np.float32)


def normalised_grid(height: int, width: int) -> np.ndarray:
    """``[height, width, 2] float64`` normalised (y, x) position of every pixel centre."""
    half = max(height, width) / 2.0
    ys = (np.arange(height) + 0.5 - height / 2.0) / half
    xs = (np.arange(width) + 0.5 - width / 2.0) / half
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([grid_y, grid_x], axis=-1)


def to_normalised(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[N, 2]`` (y, x) pixel positions → normalised positions."""
    half = max(height, width) / 2.0
    return (np.asarray(points, np.float64) + 0.5 - np.array([height, width]) / 2.0) / half


def affine_from_points(target_points: np.ndarray, source_points: np.ndarray) -> Affine:
    """The least-squares map sending ``target_points`` to ``source_points`` (both ``[N, 2]`` normalised).

    Three or more pairs: a full affine; two: a similarity (turn, scale, shift);
    one: a shift.
    """
    count = len(target_points)
    if count >= 3:
        design = np.concatenate([target_points, np.ones((count, 1))], axis=1)
        solution, *_ = np.linalg.lstsq(design, source_points, rcond=None)
        return Affine(solution[:2].T, solution[2])
    if count == 2:
        # As complex numbers z = x + iy: source = a·target + b.
        t = target_points[:, 1] + 1j * target_points[:, 0]
        s = source_points[:, 1] + 1j * source_points[:, 0]
        a = (s[1] - s[0]) / (t[1] - t[0]) if t[1] != t[0] else 1.0
        b = s[0] - a * t[0]
        matrix = np.array([[a.real, a.imag], [-a.imag, a.real]])
        return Affine(matrix, np.array([b.imag, b.real]))
    return Affine(np.eye(2), source_points[0] - target_points[0])


def _shrunk_grey(images: np.ndarray, side: int) -> tuple[tf.Tensor, tuple[int, int]]:
    """``[2, H, W, 3]`` (source, target) → ``[2, h, w, 1]`` luminance with long side ``side``, antialiased."""
    height, width = images.shape[1:3]
    scale = side / max(height, width)
    shape = (max(2, round(height * scale)), max(2, round(width * scale)))
    small = tf.image.resize(tf.constant(images, tf.float32), shape, method="area")
    return luminance(small), shape


def _sampling_flows(matrices: tf.Tensor, offsets: tf.Tensor, grid: tf.Tensor, half: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Flows (pixels) and inside-the-source masks of ``[K]`` affine maps over a normalised ``grid``."""
    mapped = tf.einsum("kij,hwj->khwi", matrices, grid) + offsets[:, tf.newaxis, tf.newaxis, :]
    flows = (grid[tf.newaxis] - mapped) * half
    limit = tf.reduce_max(tf.abs(grid), axis=[0, 1]) + 1e-6  # the extent of the pixel centres
    inside = tf.reduce_all(tf.abs(mapped) <= limit, axis=-1, keepdims=True)
    return flows, tf.cast(inside, grid.dtype)


def _score(
    matrices: tf.Tensor, offsets: tf.Tensor, source: tf.Tensor, target: tf.Tensor, window: int
) -> tf.Tensor:
    """``[K]`` local-NCC losses of warping ``source`` (``[1, h, w, 1]``) onto ``target`` by ``[K]`` maps."""
    height, width = source.shape[1], source.shape[2]
    grid = tf.constant(normalised_grid(height, width), tf.float32)
    flows, inside = _sampling_flows(matrices, offsets, grid, max(height, width) / 2.0)
    count = matrices.shape[0]
    moved = dense_image_warp(tf.tile(source, [count, 1, 1, 1]), flows)
    return local_ncc(moved, tf.tile(target, [count, 1, 1, 1]), window, weights=inside)


def fit_affine(
    source: np.ndarray,
    target: np.ndarray,
    settings: GlobalSettings = GlobalSettings(),
    *,
    source_points: np.ndarray | None = None,
    target_points: np.ndarray | None = None,
) -> Affine:
    """The affine sampling map that best lays ``source`` over ``target`` (see ``AffineFitter.fit``)."""
    return AffineFitter(settings).fit(source, target, source_points=source_points, target_points=target_points)


def _cost(
    matrices: tf.Tensor, offsets: tf.Tensor, grey: tf.Tensor, source_normalised: tf.Tensor,
    target_normalised: tf.Tensor, settings: GlobalSettings,
) -> tf.Tensor:
    """``[K]``: structure loss of each map (``grey``: ``[2, h, w, 1]``, S then T), its pull
    towards the identity, and its user-point term (``[N, 2]`` normalised points, N may be 0)."""
    scores = _score(matrices, offsets, grey[:1], grey[1:], settings.window)
    scores += settings.prior_weight * (
        tf.reduce_sum(tf.square(matrices - tf.eye(2)), axis=[1, 2]) + tf.reduce_sum(tf.square(offsets), axis=1)
    )
    if target_normalised.shape[0]:
        mapped = tf.einsum("kij,nj->kni", matrices, target_normalised) + offsets[:, tf.newaxis]
        scores += settings.point_weight * tf.reduce_mean(
            tf.reduce_sum(tf.square(mapped - source_normalised), axis=-1), axis=1
        )
    return scores


class _Refiner(NamedTuple):
    """``K`` maps' variables, their optimizer and its initial state, and the traced step."""

    matrix: tf.Variable
    offset: tf.Variable
    variables: list[tf.Variable]
    initial_values: list[np.ndarray]
    step: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


class AffineFitter:
    """``fit_affine`` that keeps its traced refinement step for the next call.

    Tracing the step costs about as much as the whole search on 2 CPU cores;
    a fitter used for many pairs (a batch, the legs of a sequence) traces it
    once per image shape and number of candidates. Each call starts from fresh
    variables and optimizer state, so it returns what a fitter of its own would.
    """

    def __init__(self, settings: GlobalSettings = GlobalSettings()) -> None:
        self.settings = settings
        self._refiners: dict[int, _Refiner] = {}

    def _refiner(self, count: int) -> _Refiner:
        if count not in self._refiners:
            settings = self.settings
            matrix = tf.Variable(tf.zeros([count, 2, 2]))
            offset = tf.Variable(tf.zeros([count, 2]))
            optimizer = keras.optimizers.Adam(settings.learning_rate)
            optimizer.build([matrix, offset])

            @tf.function(autograph=False)
            def step(grey: tf.Tensor, source_normalised: tf.Tensor, target_normalised: tf.Tensor) -> tf.Tensor:
                with tf.GradientTape() as tape:
                    total = tf.reduce_sum(_cost(matrix, offset, grey, source_normalised, target_normalised, settings))
                optimizer.apply_gradients(zip(tape.gradient(total, [matrix, offset]), [matrix, offset]))
                return total

            variables = list(optimizer.variables)
            self._refiners[count] = _Refiner(matrix, offset, variables, [v.numpy() for v in variables], step)
        return self._refiners[count]

    def fit(
        self,
        source: np.ndarray,
        target: np.ndarray,
        *,
        source_points: np.ndarray | None = None,
        target_points: np.ndarray | None = None,
        check: Callable[[], None] | None = None,
    ) -> Affine:
        """The affine sampling map that best lays ``source`` over ``target``.

        Args:
          source, target: ``[H, W, 3] float32`` in [-1, 1], the same shape.
          source_points, target_points: matching user points, ``[N, 2]`` (y, x)
            in these images' pixels, or ``None``. With three or more pairs the
            search is replaced by their least-squares affine.
          check: called between refinement steps; it may raise to stop.

        Returns:
          An ``Affine`` for the S→T direction (target positions → source positions).
        """
        settings = self.settings
        images = np.stack([source, target]).astype(np.float32)
        height, width = source.shape[:2]
        have_points = source_points is not None and len(source_points) > 0
        source_normalised = tf.constant(
            to_normalised(source_points, height, width) if have_points else np.zeros((0, 2)), tf.float32)
        target_normalised = tf.constant(
            to_normalised(target_points, height, width) if have_points else np.zeros((0, 2)), tf.float32)

        def cost(matrices: tf.Tensor, offsets: tf.Tensor, grey: tf.Tensor) -> tf.Tensor:
            return _cost(matrices, offsets, grey, source_normalised, target_normalised, settings)

        if have_points and len(source_points) >= 3:
            start = affine_from_points(target_normalised.numpy(), source_normalised.numpy())
            starts = (start.matrix[np.newaxis], start.offset[np.newaxis])
        else:
            starts = _search(lambda m, o: cost(m, o, _shrunk_grey(images, settings.search_side)[0]), settings)

        # Refine the best few candidates side by side (Adam acts on each parameter on
        # its own, so a batch of K maps is K independent descents), then keep the best.
        refiner = self._refiner(len(starts[0]))
        refiner.matrix.assign(starts[0].astype(np.float32))
        refiner.offset.assign(starts[1].astype(np.float32))
        for variable, value in zip(refiner.variables, refiner.initial_values):
            variable.assign(value)  # a fresh optimizer
        grey = None
        for side in settings.refine_sides:
            grey, _ = _shrunk_grey(images, side)
            for _ in range(settings.steps):
                if check is not None:
                    check()
                refiner.step(grey, source_normalised, target_normalised)
        matrix, offset = refiner.matrix, refiner.offset
        final = cost(matrix, offset, grey) if grey is not None else tf.zeros([matrix.shape[0]])
        best = int(tf.argmin(final))
        return Affine(matrix[best].numpy().astype(np.float64), offset[best].numpy().astype(np.float64))


def _search(cost, settings: GlobalSettings) -> tuple[np.ndarray, np.ndarray]:
    """The ``settings.candidates`` best maps of the exhaustive search, as ``([K, 2, 2], [K, 2])``.

    Every combination of ``turns``, ``scales`` and ``shifts`` is scored by
    ``cost`` (maps → ``[K]`` losses); the best are kept, each at least
    ``0.15`` (normalised) away from the offsets of those kept before, so that
    the refinement starts from genuinely different layouts.
    """
    shifts = np.array([(dy, dx) for dy in settings.shifts for dx in settings.shifts])
    matrices, offsets = [], []
    for turn in settings.turns:
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        for scale in settings.scales:
            matrices += [scale * rotation] * len(shifts)
            offsets += list(shifts)
    matrices, offsets = np.array(matrices), np.array(offsets)
    scores = cost(tf.constant(matrices, tf.float32), tf.constant(offsets, tf.float32)).numpy()
    kept: list[int] = []
    for index in np.argsort(scores, kind="stable"):
        if all(np.abs(offsets[index] - offsets[other]).max() > 0.15 for other in kept):
            kept.append(int(index))
        if len(kept) == settings.candidates:
            break
    return matrices[kept], offsets[kept]

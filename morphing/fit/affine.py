"""The global stage of a fit: one affine map that brings the target's layout onto the source's.

Before the dense warp is fitted, an affine sampling map is found so that large
motions, scale changes and turns start close: a face that is smaller and
higher in the target, a car that drove to the right. It is found on small
grey copies of both images by an exhaustive search over translations and
scales (blind to where gradient descent would start), then refined by
gradient descent (Adam on its six parameters), coarse to fine, on the same
structure similarity the dense stage uses (``losses.local_ncc``), with user
point pairs as a soft term when given.

It is numpy and OpenCV, not TensorFlow: the images are tiny (32 and 64 pixels
a side) and the gradient of six parameters is written out (its sampling, local
NCC and Adam are the numpy twins in ``render/kernels.py``), so the whole
stage takes a fraction of a second, needs no traced graph (tracing
TensorFlow's version cost more than running it), and can run while TensorFlow
is still being imported (``starts.leg_start_candidates``, in a helper process). Its sampling is
``dense_image_warp``'s bilinear (values and gradient) and its similarity
``losses.local_ncc``'s; the tests check both against those TensorFlow functions.

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

import cv2
import numpy as np

from morphing.render.kernels import LUMINANCE, Adam, bilinear_sample, local_ncc_with_gradient
from morphing.model.settings import GlobalSettings

__all__ = [
    "Affine", "GlobalSettings", "normalised_grid", "to_normalised", "fit_affine", "affine_from_points", "warped_by_flow",
    "grey_copies", "bilinear_sample", "local_ncc_with_gradient",  # from render.kernels, for the tests' imports
    "PointTerm", "search_cost",
]


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


def warped_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (``[H, W]`` or ``[H, W, C]``) moved by ``flow`` (``[H, W, 2]`` (dy, dx) pixels): pixel ``p``
    shows ``p - flow(p)``, bilinear, the border repeated outside (``dense_image_warp``'s sampling)."""
    height, width = flow.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    warped = cv2.remap(np.ascontiguousarray(image, np.float32), columns - flow[..., 1], rows - flow[..., 0],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(image.shape)  # remap drops a single channel's axis


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


class Copies(NamedTuple):
    """The grey pair at one size and the coordinates the maps act on.

    source, target: ``[h, w]`` float32 luminance; grid: ``[h, w, 2]`` normalised
    (y, x) of each pixel; pixels: ``[h, w, 2]`` its (y, x) index; half: half
    the long side in pixels; limit: ``[2]`` the extent of the pixel centres
    (a map sampling beyond it reads outside the source).
    """

    source: np.ndarray
    target: np.ndarray
    grid: np.ndarray
    pixels: np.ndarray
    half: float
    limit: np.ndarray


def grey_copies(images: np.ndarray, side: int) -> Copies:
    """``[2, H, W, 3]`` (source, target) → their luminance with long side ``side``, area-averaged."""
    height, width = images.shape[1:3]
    scale = side / max(height, width)
    shape = (max(2, round(height * scale)), max(2, round(width * scale)))
    grey = np.tensordot(images.astype(np.float32), np.array(LUMINANCE, np.float32), axes=([-1], [0]))
    source, target = (
        cv2.resize(np.ascontiguousarray(item), shape[::-1], interpolation=cv2.INTER_AREA) for item in grey
    )
    grid = normalised_grid(*shape).astype(np.float32)
    pixels = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), axis=-1)
    return Copies(source, target, grid, pixels.astype(np.float32), max(shape) / 2.0,
                   np.abs(grid).max(axis=(0, 1)) + np.float32(1e-6))


class PointTerm(NamedTuple):
    """User point pairs in normalised coordinates: ``[N, 2]`` each (N may be 0)."""

    source: np.ndarray
    target: np.ndarray


def _mapped(matrices: np.ndarray, offsets: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``[K, h, w, 2]``: where ``[K]`` maps send each position of a normalised ``[h, w, 2]`` grid."""
    grid_y, grid_x = grid[..., 0], grid[..., 1]
    return np.stack([
        matrices[:, row, 0, None, None] * grid_y + matrices[:, row, 1, None, None] * grid_x + offsets[:, row, None, None]
        for row in range(2)
    ], axis=-1)


def search_cost(
    matrices: np.ndarray, offsets: np.ndarray, copies: Copies, points: PointTerm, settings: GlobalSettings,
    gradient: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``[K]`` costs of ``[K, 2, 2]`` matrices and ``[K, 2]`` offsets, and with ``gradient`` their derivatives.

    The cost: local NCC of the source sampled by each map against the target
    (over the pixels whose sample lies inside the source), the pull towards
    the identity and the user-point term. Derivatives: ``([K, 2, 2], [K, 2])``.
    """
    mapped = _mapped(matrices, offsets, copies.grid)
    inside = np.all(np.abs(mapped) <= copies.limit, axis=-1).astype(np.float32)
    queries = copies.pixels - (copies.grid - mapped) * copies.half  # dense_image_warp: pixel - flow
    moved, d_query = bilinear_sample(copies.source, queries, gradient)
    costs, d_moved = local_ncc_with_gradient(moved, copies.target, settings.window, inside, gradient)
    costs = costs + settings.prior_weight * (
        np.square(matrices - np.eye(2)).sum(axis=(1, 2)) + np.square(offsets).sum(axis=1))
    count = len(points.target)
    if count:
        residuals = np.einsum("kij,nj->kni", matrices, points.target) + offsets[:, None] - points.source
        costs = costs + settings.point_weight * np.square(residuals).sum(axis=-1).mean(axis=1)
    if not gradient:
        return costs, None
    d_mapped = d_moved[..., None] * d_query * copies.half
    d_matrices = np.einsum("khwi,hwj->kij", d_mapped, copies.grid, optimize=True) + 2.0 * settings.prior_weight * (
        matrices - np.eye(2))
    d_offsets = d_mapped.sum(axis=(1, 2)) + 2.0 * settings.prior_weight * offsets
    if count:
        d_residuals = settings.point_weight * 2.0 / count * residuals
        d_matrices = d_matrices + np.einsum("kni,nj->kij", d_residuals, points.target)
        d_offsets = d_offsets + d_residuals.sum(axis=1)
    return costs, (d_matrices, d_offsets)


def fit_affine(
    source: np.ndarray,
    target: np.ndarray,
    settings: GlobalSettings = GlobalSettings(),
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
    if source.shape != target.shape or source.ndim != 3:
        raise ValueError(f"source {source.shape} and target {target.shape} must both be [H, W, 3]")
    images = np.stack([source, target])
    height, width = source.shape[:2]
    have_points = source_points is not None and len(source_points) > 0
    points = PointTerm(*(
        (to_normalised(given, height, width) if have_points else np.zeros((0, 2))).astype(np.float32)
        for given in (source_points, target_points)
    ))
    if have_points and len(points.source) >= 3:
        start = affine_from_points(points.target, points.source)
        matrices, offsets = start.matrix[np.newaxis].astype(np.float32), start.offset[np.newaxis].astype(np.float32)
    else:
        copies = grey_copies(images, settings.search_side)
        matrices, offsets = _search(lambda m, o: search_cost(m, o, copies, points, settings)[0], settings)

    # Refine the best few candidates side by side (Adam acts on each parameter on
    # its own, so a batch of K maps is K independent descents), then keep the best.
    optimizer = Adam(settings.learning_rate)
    copies = None
    for side in settings.refine_sides:
        copies = grey_copies(images, side)
        for _ in range(settings.steps):
            if check is not None:
                check()
            _, gradients = search_cost(matrices, offsets, copies, points, settings, gradient=True)
            matrices, offsets = optimizer.step([matrices, offsets], list(gradients))
    if copies is None:
        return Affine(matrices[0].astype(np.float64), offsets[0].astype(np.float64))
    costs = search_cost(matrices, offsets, copies, points, settings)[0]
    if not (have_points and len(points.source) >= 3):
        costs = np.where(_within_searched_scales(matrices, settings.scales), costs, np.inf)
        if not np.isfinite(costs).any():
            return Affine.identity()
    best = int(np.argmin(costs))
    return Affine(matrices[best].astype(np.float64), offsets[best].astype(np.float64))


SEARCH_BLOCK = 32
"""How many maps the exhaustive search scores at once (the scores do not depend on it; its speed does)."""

SEARCH_STRETCH = 2.0
"""How far beyond the searched scales (a factor, either way) a refined map's stretch may go before it is
refused (``fit_affine``)."""


def _within_searched_scales(matrices: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    """``[K]`` bool: each ``[K, 2, 2]`` map stretches every direction by a factor within the searched
    ``scales`` widened by ``SEARCH_STRETCH`` each way. Refinement may carry a map far from where its
    search began; one that squeezes a direction to nearly nothing (a picture collapsed onto a line, which
    lays one vertical gradient over another as well as any layout) is no layout of the same things."""
    stretches = np.linalg.svd(matrices.astype(np.float64), compute_uv=False)
    return np.all((stretches >= min(scales) / SEARCH_STRETCH) & (stretches <= max(scales) * SEARCH_STRETCH), axis=-1)


def _search(cost: Callable[[np.ndarray, np.ndarray], np.ndarray], settings: GlobalSettings) -> tuple[np.ndarray, np.ndarray]:
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
    matrices, offsets = np.array(matrices, np.float32), np.array(offsets, np.float32)
    # Scored a block at a time: arrays of a few megabytes stay in the processor's cache and are reused from
    # block to block, where the whole batch's (tens of megabytes each) would be fresh pages every time.
    scores = np.concatenate([cost(matrices[first : first + SEARCH_BLOCK], offsets[first : first + SEARCH_BLOCK])
                             for first in range(0, len(matrices), SEARCH_BLOCK)])
    kept: list[int] = []
    for index in np.argsort(scores, kind="stable"):
        if all(np.abs(offsets[index] - offsets[other]).max() > 0.15 for other in kept):
            kept.append(int(index))
        if len(kept) == settings.candidates:
            break
    return matrices[kept], offsets[kept]

"""The numeric kernels without TensorFlow: one home for the constants and the numpy numerics.

Both renders — TensorFlow's (``morphing.render.xla``, the GPU path) and OpenCV's
(``morphing.render.opencv``, the CPU path) — read their blur kernels and pooling
rules from here, so the two compute the same operation. The global stage's
numpy twins of TensorFlow's measures live here too (``bilinear_sample``:
``dense_image_warp``'s sampling; ``local_ncc_with_gradient``: ``losses.local_ncc``;
``Adam``: Keras's), each with its gradient written out and tested against the
TensorFlow original (``tests/fit/test_affine.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np

from morphing.model.settings import default_kernel_size

__all__ = [
    "BORDER_FEATHER",
    "BORDER_FLOOR",
    "LUMINANCE",
    "NCC_EPSILON",
    "RENDER_CUBIC_A",
    "box_counts",
    "box_sums",
    "local_ncc_with_gradient",
    "bilinear_sample",
    "Adam",
    "gaussian_kernel",
    "fitting_kernel_size",
    "pool_factor",
    "pooled_sigma",
    "pool_sizes",
    "pooled",
    "unpooled",
]

LUMINANCE = (0.299, 0.587, 0.114)
"""Rec. 601 weights of R, G, B: the luminance that the fit compares and the detail blend restores."""

NCC_EPSILON = 1e-5
"""Added to the product of the local variances in local NCC (``morphing.fit.losses.local_ncc``, ``morphing.fit.affine``),
so that flat windows score 0 instead of dividing by 0."""

RENDER_CUBIC_A = -0.75
"""The cubic convolution parameter ``a`` of the render's bicubic warp: OpenCV's ``INTER_CUBIC``."""


def box_counts(height: int, width: int, window: int) -> np.ndarray:
    """``[height, width] float32``: how many pixels of the image the ``window``×``window`` box around
    each pixel holds (boxes are cut at the border; ``window`` odd)."""
    radius = window // 2
    rows = np.minimum(np.arange(height) + radius, height - 1) - np.maximum(np.arange(height) - radius, 0) + 1
    columns = np.minimum(np.arange(width) + radius, width - 1) - np.maximum(np.arange(width) - radius, 0) + 1
    return (rows[:, None] * columns[None, :]).astype(np.float32)


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """``[size]`` float32 weights of a sampled Gaussian, normalised to sum 1.

    ``size`` must be odd (default ``default_kernel_size(sigma)``); ``sigma > 0``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    size = default_kernel_size(sigma) if size is None else size
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    offsets = np.arange(size, dtype=np.float64) - size // 2
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def fitting_kernel_size(sigma: float, height: int, width: int) -> int:
    """``default_kernel_size(sigma)``, cut short where the image is smaller.

    Reflect padding (``d c b | a b c d``) needs a radius below the image's
    shorter side.
    """
    return min(default_kernel_size(sigma), 2 * (min(height, width) - 1) + 1)


def pool_factor(sigma: float, height: int, width: int) -> int:
    """How far a blur of ``sigma`` px may pool its ``[height, width]`` image first: 1, 2 or 4.

    The largest of 2 and 4 not above ``sigma / 2`` that leaves 8 pooled
    pixels a side; 1 (no pooling) for blurs under 2 px.
    """
    factor = 1
    while factor < 4 and 2 * factor <= sigma and min(height, width) >= 16 * factor:
        factor *= 2
    return factor


def pooled_sigma(sigma: float, factor: int) -> float:
    """The blur, in pooled pixels, that makes up ``sigma`` px after pooling by ``factor``.

    Pooling by ``f`` (means of ``f × f`` blocks) is itself a blur of variance
    ``(f² - 1) / 12`` px², which is taken off.
    """
    return math.sqrt(sigma**2 - (factor**2 - 1) / 12.0) / factor


def pool_sizes(height: int, width: int, factor: int) -> list[tuple[int, int]]:
    """The sizes an ``[height, width]`` image goes through when pooled by ``factor`` (1, 2 or 4).

    Pooling halves one factor of 2 at a time, an odd side rounded up (its
    edge repeated): ``[(height, width), (ceil(height/2), ceil(width/2)), ...]``,
    ``log2(factor) + 1`` sizes; resizing back runs through them in reverse.
    """
    sizes = [(height, width)]
    for _ in range(factor.bit_length() - 1):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    return sizes


Image = TypeVar("Image")


def pooled(image: Image, factor: int, halve: Callable[[Image], Image]) -> Image:
    """``image`` pooled by ``factor`` (1, 2 or 4) with ``halve`` (2×2 block means) once per factor of 2.

    Shared by the TensorFlow and OpenCV renders, each with its own ``halve``.
    """
    for _ in range(factor.bit_length() - 1):
        image = halve(image)
    return image


def unpooled(image: Image, height: int, width: int, factor: int, double: Callable[[Image, int, int], Image]) -> Image:
    """Undo ``pooled`` for an ``[height, width]`` image: ``double(image, h, w)`` (bilinear ×2, cropped to
    ``[h, w]``) through ``pool_sizes`` in reverse."""
    for size in reversed(pool_sizes(height, width, factor)[:-1]):
        image = double(image, *size)
    return image


BORDER_FEATHER = 0.03
"""Over how many pixels (a share of the long side) a direction's warped image fades out in the detail
blend as its samples reach the picture's edge, where the other direction fills in (``inside_weight``)."""
BORDER_FLOOR = 1e-3
"""What a direction whose sample lies outside still weighs, relative to inside: where both lie outside, the
blend is the plain one."""


# --- numpy twins of TensorFlow's measures, with their gradients written out (the global stage's) ---------


def box_sums(images: np.ndarray, window: int) -> np.ndarray:
    """``[..., h, w]`` → the sum over the ``window``×``window`` box around each pixel (zeros outside)."""
    radius = window // 2
    sums = images
    for axis in (-2, -1):
        size = sums.shape[axis]
        running = np.cumsum(sums, axis=axis)
        index = np.arange(size)
        upper = np.take(running, np.minimum(index + radius, size - 1), axis=axis)
        below = np.take(running, np.maximum(index - radius - 1, 0), axis=axis)
        first = [slice(None)] * sums.ndim
        first[axis] = slice(0, radius + 1)  # boxes that start at the image's first pixel: nothing below
        below[tuple(first)] = 0.0
        sums = upper - below
    return sums


class _Moments(NamedTuple):
    """Local statistics of ``moved`` (a) against ``fixed`` (b) in each pixel's box (windows cut at the border)."""

    mean_a: np.ndarray
    mean_b: np.ndarray
    spread_a: np.ndarray  # var(a) before clipping at 0
    variance_b: np.ndarray
    covariance: np.ndarray
    denominator: np.ndarray  # var(a)·var(b) + NCC_EPSILON


def _local_moments(moved: np.ndarray, fixed: np.ndarray, window: int, counts: np.ndarray) -> _Moments:
    def mean(images: np.ndarray) -> np.ndarray:
        return box_sums(images, window) / counts

    mean_a, mean_aa, mean_ab = mean(moved), mean(moved * moved), mean(moved * fixed)
    mean_b, mean_bb = mean(fixed), mean(fixed * fixed)
    spread_a = mean_aa - mean_a * mean_a
    variance_a, variance_b = np.maximum(spread_a, 0.0), np.maximum(mean_bb - mean_b * mean_b, 0.0)
    covariance = mean_ab - mean_a * mean_b
    return _Moments(mean_a, mean_b, spread_a, variance_b, covariance, variance_a * variance_b + NCC_EPSILON)


def local_correlation(moved: np.ndarray, fixed: np.ndarray, window: int) -> np.ndarray:
    """``[..., h, w]``: the squared local correlation ``cov² / (var·var + NCC_EPSILON)`` of ``moved``
    (``[..., h, w]``) against ``fixed`` (``[h, w]``) in each pixel's ``window``×``window`` box, windows cut
    at the border: in [0, 1), 1 where one is an affine function of the other (any gain, offset, sign),
    about 0 where they are unrelated or flat. ``losses.local_ncc`` is 1 − its mean."""
    moments = _local_moments(moved, fixed, window, box_counts(*fixed.shape, window))
    return moments.covariance * moments.covariance / moments.denominator


def local_ncc_with_gradient(
    moved: np.ndarray, fixed: np.ndarray, window: int, weights: np.ndarray, gradient: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``losses.local_ncc`` of ``[K, h, w]`` images against one ``[h, w]`` image, and its gradient.

    Returns ``[K]`` losses (1 − the weighted mean of the squared local
    correlation, windows cut at the border) and, with ``gradient``, their
    derivative with respect to ``moved`` (``[K, h, w]``); ``weights``
    (``[K, h, w]``) count as constants. Derivatives at kinks are those
    TensorFlow takes (a clipped variance passes no gradient).
    """
    counts = box_counts(*fixed.shape, window)
    moments = _local_moments(moved, fixed, window, counts)
    mean_a, mean_b, spread_a, variance_b = moments.mean_a, moments.mean_b, moments.spread_a, moments.variance_b
    covariance, denominator = moments.covariance, moments.denominator
    correlation = covariance * covariance / denominator
    pixels = fixed.size
    weight_mean = np.maximum(weights.sum(axis=(1, 2)) / pixels, 1e-12)[:, None, None]
    loss = 1.0 - (correlation * weights).sum(axis=(1, 2)) / pixels / weight_mean[:, 0, 0]
    if not gradient:
        return loss, None
    d_correlation = -weights / (pixels * weight_mean)
    d_covariance = d_correlation * 2.0 * covariance / denominator
    d_variance = d_correlation * -(covariance * covariance) * variance_b / (denominator * denominator) * (spread_a > 0)
    d_mean_a = d_covariance * -mean_b + d_variance * -2.0 * mean_a

    def mean_adjoint(gradient_of_mean: np.ndarray) -> np.ndarray:
        return box_sums(gradient_of_mean / counts, window)

    d_moved = mean_adjoint(d_mean_a) + 2.0 * moved * mean_adjoint(d_variance) + fixed * mean_adjoint(d_covariance)
    return loss, d_moved


def bilinear_sample(
    image: np.ndarray, queries: np.ndarray, gradient: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``image`` (``[h, w]``) at ``[..., 2]`` (y, x) pixel ``queries``, and the derivative by the query.

    ``dense_image_warp``'s bilinear sampling: the floor is clamped to
    ``[0, size - 2]`` and the fraction to ``[0, 1]`` (queries outside read the
    border). Returns the values ``[...]`` and (with ``gradient``, else
    ``None``) ``[..., 2]`` their derivatives by (y, x), zero where a clamp
    holds and at whole-pixel queries, as TensorFlow's gradient of that warp is.
    """
    height, width = image.shape
    floors, fractions, moving = [], [], []
    for axis, size in enumerate((height, width)):
        query = queries[..., axis]
        floor = np.minimum(np.maximum(np.floor(query), 0.0), size - 2)
        fraction = query - floor
        floors.append(floor.astype(np.intp))
        fractions.append(np.minimum(np.maximum(fraction, 0.0), 1.0))
        moving.append((fraction > 0.0) & (fraction <= 1.0))
    (row, column), (weight_y, weight_x) = floors, fractions
    flat = image.ravel()
    top_left_index = row * width + column
    top_left, top_right = flat.take(top_left_index), flat.take(top_left_index + 1)
    bottom_left, bottom_right = flat.take(top_left_index + width), flat.take(top_left_index + width + 1)
    top = (1.0 - weight_x) * top_left + weight_x * top_right
    bottom = (1.0 - weight_x) * bottom_left + weight_x * bottom_right
    values = (1.0 - weight_y) * top + weight_y * bottom
    if not gradient:
        return values, None
    d_y = (bottom - top) * moving[0]
    d_x = ((1.0 - weight_y) * (top_right - top_left) + weight_y * (bottom_right - bottom_left)) * moving[1]
    return values, np.stack([d_y, d_x], axis=-1)


class Adam:
    """Adam (Kingma & Ba) on a list of arrays, as Keras runs it (``epsilon`` outside the square root)."""

    def __init__(self, learning_rate: float, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.steps = 0
        self.moments: list[tuple[np.ndarray, np.ndarray]] | None = None

    def step(self, parameters: list[np.ndarray], gradients: list[np.ndarray]) -> list[np.ndarray]:
        """The parameters after one step down ``gradients``."""
        if self.moments is None:
            self.moments = [(np.zeros_like(g), np.zeros_like(g)) for g in gradients]
        self.steps += 1
        rate = self.learning_rate * math.sqrt(1.0 - self.beta_2**self.steps) / (1.0 - self.beta_1**self.steps)
        updated, moments = [], []
        for parameter, gradient, (first, second) in zip(parameters, gradients, self.moments):
            first = first + (gradient - first) * (1.0 - self.beta_1)
            second = second + (gradient * gradient - second) * (1.0 - self.beta_2)
            updated.append(parameter - rate * first / (np.sqrt(second) + self.epsilon))
            moments.append((first, second))
        self.moments = moments
        return updated

"""Filter kernels and the grids they run on, without TensorFlow.

Both renders — TensorFlow's (``morphing.render.renderer``, the GPU path) and OpenCV's
(``morphing.render.opencv``, the CPU path) — read their blur kernels and pooling
rules from here, so the two compute the same operation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from morphing.model.settings import default_kernel_size

__all__ = [
    "BORDER_FEATHER",
    "BORDER_FLOOR",
    "LUMINANCE",
    "NCC_EPSILON",
    "RENDER_CUBIC_A",
    "box_counts",
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
"""How far past the picture's edge (a share of the long side) a direction's warped image fades out in the
detail blend, where the other direction fills in (``inside_weight``)."""
BORDER_FLOOR = 1e-3
"""What a direction whose sample lies outside still weighs, relative to inside: where both lie outside, the
blend is the plain one."""

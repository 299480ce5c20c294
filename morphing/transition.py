"""The morph formula in TensorFlow, shared by fitting and rendering.

One direction of the morph, for an image ``X`` and its maps at ``alpha``::

    X→(alpha) = W( X * (1 + alpha·m·mult) + alpha·a·add ,  alpha·w·warp )

with ``W`` = ``morphing.warp.dense_image_warp``. A frame blends the two
directions: ``(1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``, so alpha = 0 is
exactly the source and alpha = 1 exactly the target. Rendering can sample with
a bicubic ``W`` and rescale the blend's fine detail (``morphing.blend``); both
keep the endpoints exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .blend import EndpointDetail, energy_pool_factors, pool_flow, restore_detail
from .maps import ADD, MULT, WARP, Scales
from .warp import dense_image_warp

__all__ = [
    "DirectionMaps",
    "bilinear_matrix",
    "upsample_direction",
    "direction_flow",
    "apply_direction",
    "blend_frame",
]


class DirectionMaps(NamedTuple):
    """One direction's maps at frame resolution.

    mult: ``[1, H, W, 3]``; add: ``[1, H, W, 3]``; warp: ``[1, H, W, 2]`` in
    pixels of the ``[H, W]`` frame, as (dy, dx). The fit stacks both
    directions' maps as a batch of two.
    """

    mult: tf.Tensor
    add: tf.Tensor
    warp: tf.Tensor


def bilinear_matrix(size_out: int, size_in: int) -> np.ndarray:
    """``[size_out, size_in] float32`` matrix of 1-D bilinear resampling.

    Half-pixel centres with edge clamping, the semantics of
    ``tf.image.resize(method="bilinear")`` without antialiasing; each row's
    weights sum to 1. Resizing by two such matrix products is exact bilinear
    interpolation and, unlike the resize op, compiles to plain matrix
    multiplications whose gradient is cheap.
    """
    position = (np.arange(size_out, dtype=np.float64) + 0.5) * size_in / size_out - 0.5
    position = np.clip(position, 0.0, size_in - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, size_in - 1)
    weight = position - lower
    matrix = np.zeros((size_out, size_in), np.float64)
    np.add.at(matrix, (np.arange(size_out), lower), 1.0 - weight)
    np.add.at(matrix, (np.arange(size_out), upper), weight)
    return matrix.astype(np.float32)


def upsample_direction(grid_maps: tf.Tensor, height: int, width: int) -> DirectionMaps:
    """Resample ``[1, h, w, 8]`` grid maps to an ``[H, W]`` frame (bilinear).

    The flow is in grid pixels, so it is multiplied by ``H / h`` along y and
    ``W / w`` along x to stay the same motion in frame pixels.
    """
    grid_h, grid_w = grid_maps.shape[1], grid_maps.shape[2]
    if (grid_h, grid_w) != (height, width):
        rows = tf.constant(bilinear_matrix(height, grid_h), grid_maps.dtype)
        columns = tf.constant(bilinear_matrix(width, grid_w), grid_maps.dtype)
        grid_maps = tf.einsum("yh,bhwc,xw->byxc", rows, grid_maps, columns)
    pixel_ratio = tf.constant([height / grid_h, width / grid_w], grid_maps.dtype)
    return DirectionMaps(
        mult=grid_maps[..., MULT],
        add=grid_maps[..., ADD],
        warp=grid_maps[..., WARP] * pixel_ratio,
    )


def direction_flow(maps: DirectionMaps, alpha: tf.Tensor, scales: Scales) -> tf.Tensor:
    """``[B, H, W, 2]``: the flow ``alpha·w·warp`` of one direction at each of ``[B]`` alphas."""
    alpha = tf.reshape(tf.cast(alpha, maps.warp.dtype), [-1, 1, 1, 1])
    return alpha * (scales.warp * maps.warp)


def apply_direction(
    image: tf.Tensor, maps: DirectionMaps, alpha: tf.Tensor, scales: Scales, interpolation: str = "bilinear"
) -> tf.Tensor:
    """One direction of the morph at ``alpha``.

    Args:
      image: ``[1, H, W, 3]`` float32 in [-1, 1] (or ``[B, H, W, 3]`` with
        maps of batch ``B``: several images, each with its own maps).
      maps: that direction's maps at ``[H, W]``.
      alpha: ``[B]`` float32, each usually in [0, 1].
      scales: the multipliers ``m``, ``a``, ``w``.
      interpolation: of the warp, ``"bilinear"`` (the formula's) or ``"bicubic"``.

    Returns:
      ``[B, H, W, 3]``: the image coloured and warped by ``alpha`` times its maps.
    """
    alpha = tf.reshape(tf.cast(alpha, image.dtype), [-1, 1, 1, 1])
    coloured = image * (1.0 + alpha * (scales.mult * maps.mult)) + alpha * (scales.add * maps.add)
    return dense_image_warp(coloured, direction_flow(maps, alpha, scales), interpolation)


def blend_frame(
    source: tf.Tensor,
    target: tf.Tensor,
    forward: DirectionMaps,
    backward: DirectionMaps,
    alpha: tf.Tensor,
    scales: Scales,
    *,
    interpolation: str = "bilinear",
    detail: EndpointDetail | None = None,
) -> tf.Tensor:
    """Frames at ``alpha``: ``[B]`` → ``[B, H, W, 3]`` float32.

    ``(1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``; ``source`` and
    ``target`` are ``[1, H, W, 3]`` float32 in [-1, 1]. With ``detail`` (the
    endpoints' detail energy, ``morphing.blend``), the blend's fine detail is
    rescaled to the endpoints' local strength, carried by the same warps.
    """
    alpha = tf.cast(alpha, source.dtype)
    towards_target = apply_direction(source, forward, alpha, scales, interpolation)
    towards_source = apply_direction(target, backward, 1.0 - alpha, scales, interpolation)
    weight = tf.reshape(alpha, [-1, 1, 1, 1])
    frames = (1.0 - weight) * towards_target + weight * towards_source
    if detail is None:
        return frames

    factors = energy_pool_factors(detail.settings, source.shape[1], source.shape[2])

    def carried(energies: tuple[tf.Tensor, ...], maps: DirectionMaps, amount: tf.Tensor) -> list[tf.Tensor]:
        flow = direction_flow(maps, amount, scales)
        return [
            dense_image_warp(tf.broadcast_to(energy, [frames.shape[0], *energy.shape[1:]]), pool_flow(flow, factor))
            for energy, factor in zip(energies, factors)
        ]

    wanted = [
        (1.0 - weight) * from_source + weight * from_target
        for from_source, from_target in zip(
            carried(detail.source, forward, alpha), carried(detail.target, backward, 1.0 - alpha)
        )
    ]
    return restore_detail(frames, wanted, detail.settings)

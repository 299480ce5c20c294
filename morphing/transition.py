"""The morph formula in TensorFlow, shared by fitting and rendering.

One direction of the morph, for an image ``X`` and its maps at ``alpha``::

    X→(alpha) = W( X * (1 + alpha·m·mult) + alpha·a·add ,  alpha·w·warp )

with ``W`` = ``morphing.warp.dense_image_warp``. A frame blends the two
directions: ``(1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``, so alpha = 0 is
exactly the source and alpha = 1 exactly the target.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from .maps import ADD, MULT, WARP, Scales
from .warp import dense_image_warp

__all__ = ["DirectionMaps", "upsample_direction", "apply_direction", "blend_frame"]


class DirectionMaps(NamedTuple):
    """One direction's maps at frame resolution.

    mult: ``[1, H, W, 3]``; add: ``[1, H, W, 3]``; warp: ``[1, H, W, 2]`` in
    pixels of the ``[H, W]`` frame, as (dy, dx).
    """

    mult: tf.Tensor
    add: tf.Tensor
    warp: tf.Tensor


def upsample_direction(grid_maps: tf.Tensor, height: int, width: int) -> DirectionMaps:
    """Resample ``[1, h, w, 8]`` grid maps to an ``[H, W]`` frame (bilinear).

    The flow is in grid pixels, so it is multiplied by ``H / h`` along y and
    ``W / w`` along x to stay the same motion in frame pixels.
    """
    grid_h, grid_w = grid_maps.shape[1], grid_maps.shape[2]
    if (grid_h, grid_w) != (height, width):
        grid_maps = tf.image.resize(grid_maps, [height, width], method="bilinear")
    pixel_ratio = tf.constant([height / grid_h, width / grid_w], grid_maps.dtype)
    return DirectionMaps(
        mult=grid_maps[..., MULT],
        add=grid_maps[..., ADD],
        warp=grid_maps[..., WARP] * pixel_ratio,
    )


def apply_direction(
    image: tf.Tensor, maps: DirectionMaps, alpha: tf.Tensor, scales: Scales
) -> tf.Tensor:
    """One direction of the morph at ``alpha``.

    Args:
      image: ``[1, H, W, 3]`` float32 in [-1, 1].
      maps: that direction's maps at ``[H, W]``.
      alpha: ``[B]`` float32, each usually in [0, 1].
      scales: the multipliers ``m``, ``a``, ``w``.

    Returns:
      ``[B, H, W, 3]``: the image coloured and warped by ``alpha`` times its maps.
    """
    alpha = tf.reshape(tf.cast(alpha, image.dtype), [-1, 1, 1, 1])
    coloured = image * (1.0 + alpha * (scales.mult * maps.mult)) + alpha * (scales.add * maps.add)
    flow = alpha * (scales.warp * maps.warp)
    return dense_image_warp(coloured, flow)


def blend_frame(
    source: tf.Tensor,
    target: tf.Tensor,
    forward: DirectionMaps,
    backward: DirectionMaps,
    alpha: tf.Tensor,
    scales: Scales,
) -> tf.Tensor:
    """Frames at ``alpha``: ``[B]`` → ``[B, H, W, 3]`` float32.

    ``(1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``; ``source`` and
    ``target`` are ``[1, H, W, 3]`` float32 in [-1, 1].
    """
    alpha = tf.cast(alpha, source.dtype)
    towards_target = apply_direction(source, forward, alpha, scales)
    towards_source = apply_direction(target, backward, 1.0 - alpha, scales)
    weight = tf.reshape(alpha, [-1, 1, 1, 1])
    return (1.0 - weight) * towards_target + weight * towards_source

"""The morph formula in TensorFlow, shared by fitting and rendering: the one place it is stated.

Convention
----------
- Images ``S`` (source) and ``T`` (target): ``[B, H, W, 3] float32`` in [-1, 1].
- Each direction's maps: ``mult`` (3 channels), ``add`` (3) and ``warp`` (2, ``(dy, dx)``
  pixels of the frame), packed ``[..., 8]`` as ``morphing.model.maps`` (``MULT``, ``ADD``,
  ``WARP``) on a coarse grid and upsampled bilinearly to the frame.
- ``m``, ``a``, ``w``: the multipliers (``Scales``, the command line's ``-m -a -w``).
- One direction of the morph, for an image ``X`` and its maps at ``alpha``::

      X→(alpha) = W( X * (1 + alpha·m·mult) + alpha·a·add ,  alpha·w·warp )

  with ``W(img, flow)[y, x] = bilinear(img, y - flow[y, x, 0], x - flow[y, x, 1])``
  (``morphing.render.warp.dense_image_warp``: a positive flow moves content down and right).
- A frame blends the two directions, ``(1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``,
  so alpha = 0 is exactly the source and alpha = 1 exactly the target.

Rendering may sample with a bicubic ``W``, fade where one direction samples
outside its picture and rescale the blend's fine detail (``morphing.render.blend``);
all keep the endpoints exact. Other modules link here rather than restate it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from morphing.render.blend import EndpointDetail, energy_pool_factors, pool_flow, restore_detail
from morphing.render.kernels import BORDER_FEATHER, BORDER_FLOOR
from morphing.model.maps import ADD, MULT, WARP, Scales
from morphing.render.warp import dense_image_warp, identity_grid

__all__ = [
    "DirectionMaps",
    "bilinear_matrix",
    "upsample_direction",
    "direction_flow",
    "apply_direction",
    "blend_frame",
    "border_weights",
    "inside_weight",
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


def inside_weight(flow: tf.Tensor, feather: float) -> tf.Tensor:
    """``[B, H, W]``: how much a backward warp by ``flow`` (``[B, H, W, 2]``, pixels) is trusted where it
    samples near or beyond the edge of the ``[H, W]`` picture, in [0, 1].

    With ``d`` how far a sample lies beyond the edge (Chebyshev, in pixels; negative inside) and
    ``e`` the same for the pixel's own position, floored at ``-feather``, the weight is
    ``1 - (d - e) / feather``, clipped: 1 wherever the sample lies at least ``feather`` inside the
    edge or no nearer it than the pixel itself, falling to 0 over the next ``feather`` pixels outward.
    Deep in the frame the fade thus ends at the picture's edge, so that the border's pixels, which a
    warp that shrinks the picture would stretch into streaks, are never shown; at the frame's own
    edge a sample may reach up to ``feather`` beyond it, as the picture there is the frame's.
    """
    height, width = flow.shape[1], flow.shape[2]
    limits = tf.constant([height - 1.0, width - 1.0], flow.dtype)

    def beyond(positions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.maximum(-positions, positions - limits), axis=-1)

    grid = identity_grid(height, width, flow.dtype)
    own = tf.maximum(beyond(grid), -feather)
    return tf.clip_by_value(1.0 - (beyond(grid - flow) - own) / feather, 0.0, 1.0)


def border_weights(forward_flow: tf.Tensor, backward_flow: tf.Tensor, alpha: tf.Tensor, feather: float) -> tf.Tensor:
    """``[B, H, W, 1]``: the share of ``S→T(alpha)`` in a frame whose two directions are faded at the border.

    ``(1 - alpha)·(v_S + f) / ((1 - alpha)·(v_S + f) + alpha·(v_T + f))`` with
    ``v`` each direction's ``inside_weight`` and ``f = BORDER_FLOOR``: where
    both sample inside it is ``1 - alpha`` (the formula's blend); where one
    samples outside the picture, the other fills in instead of a stretched
    border; at alpha 0 it is exactly 1, at alpha 1 exactly 0.
    """
    weight = tf.reshape(alpha, [-1, 1, 1])
    towards_target = (1.0 - weight) * (inside_weight(forward_flow, feather) + BORDER_FLOOR)
    towards_source = weight * (inside_weight(backward_flow, feather) + BORDER_FLOOR)
    return (towards_target / (towards_target + towards_source))[..., tf.newaxis]


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
    endpoints' detail energy, ``morphing.render.blend``), the blend's fine detail is
    rescaled to the endpoints' local strength, carried by the same warps, and
    where one direction samples outside the picture the other fills in
    (``border_weights``) instead of the border's pixels stretched into streaks.
    """
    alpha = tf.cast(alpha, source.dtype)
    towards_target = apply_direction(source, forward, alpha, scales, interpolation)
    towards_source = apply_direction(target, backward, 1.0 - alpha, scales, interpolation)
    weight = tf.reshape(alpha, [-1, 1, 1, 1])
    if detail is None:
        return (1.0 - weight) * towards_target + weight * towards_source

    height, width = source.shape[1], source.shape[2]
    feather = BORDER_FEATHER * max(height, width)
    forward_flow, backward_flow = direction_flow(forward, alpha, scales), direction_flow(backward, 1.0 - alpha, scales)
    share = border_weights(forward_flow, backward_flow, alpha, feather)
    frames = share * towards_target + (1.0 - share) * towards_source
    factors = energy_pool_factors(detail.settings, height, width)
    wanted = []
    for energy_s, energy_t, factor in zip(detail.source, detail.target, factors):
        pooled_forward, pooled_backward = pool_flow(forward_flow, factor), pool_flow(backward_flow, factor)
        pooled_share = border_weights(pooled_forward, pooled_backward, alpha, feather / factor)
        batch = [frames.shape[0], *energy_s.shape[1:]]
        wanted.append(pooled_share * dense_image_warp(tf.broadcast_to(energy_s, batch), pooled_forward)
                      + (1.0 - pooled_share) * dense_image_warp(tf.broadcast_to(energy_t, batch), pooled_backward))
    return restore_detail(frames, wanted, detail.settings)

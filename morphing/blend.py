"""The detail-preserving blend of a frame's two directions.

A frame is the linear blend ``L = (1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``.
Where the two directions' fine detail does not line up (two faces' skin and
hair, a car's reflections) the average cancels it: two unrelated textures of
equal strength averaged at alpha = 1/2 keep half their variance, and sampling
at fractional positions blurs them further, so middle frames look foggy.

This blend keeps ``L``'s coarse picture and rescales its detail so that its
local strength is what the endpoints had at that place::

    frame = L + sum_i (g_i - 1) · band_i(L)
    g_i   = clip( sqrt((E_i + eps) / (energy_i(L) + eps)), 1, max_gain )
    E_i   = (1 - alpha)·W(energy_i(S), flow_S→T) + alpha·W(energy_i(T), flow_T→S)

``band_i`` are differences of Gaussians (finest first, at ``sigmas``),
``energy_i`` the local mean square of band ``i`` (a Gaussian window of
``window_ratio · sigma_i``, averaged over channels), and ``E_i`` the endpoints'
detail energy carried along by the same warps as the pixels. Gains never go
below 1: the blend restores detail, it never removes any. At alpha = 0 or 1,
``L`` is an endpoint whose energy is ``E_i`` itself, so every gain is 1 and the
frame is that endpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf

from . import settings
from .filters import default_kernel_size, gaussian_blur, gaussian_kernel

__all__ = ["BLENDS", "DetailSettings", "EndpointDetail", "detail_bands", "detail_energy", "restore_detail"]

BLENDS = settings.BLENDS


@dataclass(frozen=True)
class DetailSettings:
    """The bands and limits of the detail-preserving blend (sigmas in frame pixels)."""

    sigmas: tuple[float, ...] = (1.0, 3.0)
    window_ratio: float = 2.5
    max_gain: float = 4.0
    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        if not self.sigmas or any(not b > a for a, b in zip((0.0, *self.sigmas), self.sigmas)):
            raise ValueError(f"sigmas must be positive and increasing, got {self.sigmas}")
        if not (self.window_ratio > 0 and self.max_gain >= 1 and self.epsilon > 0):
            raise ValueError(f"window_ratio > 0, max_gain >= 1 and epsilon > 0 are needed, got {self}")


class EndpointDetail(NamedTuple):
    """The endpoints' detail energy: ``[1, H, W, n]`` each, ``n = len(settings.sigmas)``."""

    source: tf.Tensor
    target: tf.Tensor
    settings: DetailSettings


def _blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of ``[B, H, W, C]``, the kernel cut short where the image is smaller."""
    longest_fitting = 2 * (min(images.shape[1], images.shape[2]) - 1) + 1  # reflect needs radius < side
    return gaussian_blur(images, gaussian_kernel(sigma, min(default_kernel_size(sigma), longest_fitting)))


def _halve(images: tf.Tensor) -> tf.Tensor:
    """``[B, H, W, C]`` → ``[B, ceil(H/2), ceil(W/2), C]``: means of 2×2 blocks (edge repeated)."""
    batch, height, width, channels = images.shape
    padded = tf.pad(images, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]], mode="SYMMETRIC")
    blocks = tf.reshape(padded, [-1, (height + 1) // 2, 2, (width + 1) // 2, 2, channels])
    return tf.reduce_mean(blocks, axis=[2, 4])


def _double_axis(images: tf.Tensor, axis: int) -> tf.Tensor:
    """Bilinear ×2 along ``axis`` (half-pixel centres, edges clamped): 0.75/0.25 of neighbours."""
    size = images.shape[axis]
    before = tf.gather(images, tf.maximum(tf.range(size) - 1, 0), axis=axis)
    after = tf.gather(images, tf.minimum(tf.range(size) + 1, size - 1), axis=axis)
    even, odd = 0.75 * images + 0.25 * before, 0.75 * images + 0.25 * after
    shape = images.shape.as_list()
    shape[axis] = 2 * size
    shape[0] = -1
    return tf.reshape(tf.stack([even, odd], axis=axis + 1), shape)


def _double(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Undo ``_halve``'s size: bilinear ×2, cropped to ``[height, width]``."""
    return _double_axis(_double_axis(images, 1), 2)[:, :height, :width]


def _blur_more(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Blur by ``sigma``; from 2 px up, on a grid pooled by 2 or 4 and resized back (4-16x cheaper).

    The pool factor ``f`` is the largest of 2 and 4 not above ``sigma`` that
    keeps 8 pooled pixels a side. Pooling is itself a blur of variance
    ``(f² - 1) / 12`` px², which is taken off the blur on the pooled grid.
    """
    height, width = images.shape[1], images.shape[2]
    factor = 1
    while factor < 4 and 2 * factor <= sigma and min(height, width) >= 16 * factor:
        factor *= 2
    if factor == 1:
        return _blur(images, sigma)
    pooled, sizes = images, []
    while len(sizes) < factor.bit_length() - 1:  # halve once per factor of 2
        sizes.append((pooled.shape[1], pooled.shape[2]))
        pooled = _halve(pooled)
    blurred = _blur(pooled, math.sqrt(sigma**2 - (factor**2 - 1) / 12.0) / factor)
    for size in reversed(sizes):
        blurred = _double(blurred, *size)
    return blurred


def detail_bands(images: tf.Tensor, sigmas: tuple[float, ...]) -> list[tf.Tensor]:
    """``[B, H, W, C]`` → one ``[B, H, W, C]`` band per sigma, finest first.

    Band ``i`` is ``level_{i-1} - level_i``, where level 0 is the image and
    level ``i`` is level ``i-1`` blurred further, to a total sigma of about
    ``sigma_i``. The bands and the last level sum to the image.
    """
    levels = [images]
    for finer, coarser in zip((0.0, *sigmas[:-1]), sigmas):
        levels.append(_blur_more(levels[-1], math.sqrt(coarser**2 - finer**2)))
    return [finer - coarser for finer, coarser in zip(levels[:-1], levels[1:])]


def _local_energy(band: tf.Tensor, sigma: float, settings: DetailSettings) -> tf.Tensor:
    """``[B, H, W, C]`` band → ``[B, H, W, 1]`` local mean square over a window and the channels.

    The energy is smooth, so it is averaged on a grid pooled by 2 or 4 and resized
    back: the same local average for a fraction of the cost.
    """
    squared = tf.reduce_mean(tf.square(band), axis=-1, keepdims=True)
    return _blur_more(squared, settings.window_ratio * sigma)


def detail_energy(images: tf.Tensor, settings: DetailSettings) -> tf.Tensor:
    """``[B, H, W, C]`` → ``[B, H, W, n]``: the local energy of each detail band."""
    bands = detail_bands(images, settings.sigmas)
    return tf.concat([_local_energy(band, sigma, settings) for band, sigma in zip(bands, settings.sigmas)], -1)


def restore_detail(linear: tf.Tensor, wanted_energy: tf.Tensor, settings: DetailSettings) -> tf.Tensor:
    """Rescale the detail of ``linear`` up towards ``wanted_energy``.

    Args:
      linear: ``[B, H, W, C]`` linear blend of the two directions.
      wanted_energy: ``[B, H, W, n]`` the endpoints' warped, alpha-weighted band energies.
      settings: bands and limits.

    Returns:
      ``[B, H, W, C]``: ``linear + sum_i (g_i - 1)·band_i(linear)``.
    """
    frames = linear
    for index, (band, sigma) in enumerate(zip(detail_bands(linear, settings.sigmas), settings.sigmas)):
        have = _local_energy(band, sigma, settings)
        ratio = (wanted_energy[..., index : index + 1] + settings.epsilon) / (have + settings.epsilon)
        gain = tf.clip_by_value(tf.sqrt(ratio), 1.0, settings.max_gain)
        frames += (gain - 1.0) * band
    return frames

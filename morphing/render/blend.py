"""The detail-preserving blend of a frame's two directions.

A frame is the linear blend ``L = (1 - alpha)·S→T(alpha) + alpha·T→S(1 - alpha)``.
Where the two directions' fine detail does not line up (two faces' skin and
hair, a car's reflections) the average cancels it: two unrelated textures of
equal strength averaged at alpha = 1/2 keep half their variance, and sampling
at fractional positions blurs them further, so middle frames look foggy.

This blend keeps ``L``'s coarse picture and rescales its detail so that its
local strength is what the endpoints had at that place::

    frame = L + sum_i up_i(g_i - 1) · band_i(Y(L))          (added to each channel)
    g_i   = clip( sqrt((E_i + eps) / (energy_i(L) + eps)), 1, max_gain )
    E_i   = (1 - alpha)·W(energy_i(S), pool_i(flow_S→T)) + alpha·W(energy_i(T), pool_i(flow_T→S))

``Y`` is the luminance (Rec. 601), ``band_i`` are differences of Gaussians
of it (finest first, at ``sigmas``), ``energy_i`` the local mean square of
band ``i`` (a Gaussian window of ``window_ratio · sigma_i``), and ``E_i`` the
endpoints' detail energy carried along by the same warps as the pixels. Only
the luminance's detail is restored: it is what looks sharp, and it costs a
third of restoring every channel's (on the synthetic scenes of
benchmarks/quality.py it also scores higher, since a faint second edge of
another colour is not sharpened). Energies are
smooth, so each lives on a grid pooled by ``f_i`` = 1, 2 or 4
(``kernels.pool_factor`` of its window): ``pool_i`` averages a flow over
``f_i × f_i`` blocks and divides it by ``f_i`` (pooled pixels), the gains are
computed there, and ``up_i`` resizes ``g_i - 1`` back to the frame (bilinear ×2
per halving). Gains never go below 1: the blend restores detail, it never
removes any. At alpha = 0 or 1, ``L`` is an endpoint whose energy is ``E_i``
itself, so every gain is 1 and the frame is that endpoint.

``morphing.render.opencv`` computes the same blend with OpenCV.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from morphing.model import settings
from morphing.render.filters import gaussian_blur
from morphing.render.kernels import (
    LUMINANCE,
    fitting_kernel_size,
    gaussian_kernel,
    pool_factor,
    pooled,
    pooled_sigma,
    unpooled,
)
from morphing.model.settings import DetailSettings

__all__ = [
    "BLENDS",
    "DetailSettings",
    "EndpointDetail",
    "luminance",
    "energy_pool_factors",
    "detail_bands",
    "detail_energy",
    "pool_flow",
    "restore_detail",
]

BLENDS = settings.BLENDS


class EndpointDetail(NamedTuple):
    """The endpoints' detail energy: one ``[1, h_i, w_i, 1]`` tensor per band (``detail_energy``) each."""

    source: tuple[tf.Tensor, ...]
    target: tuple[tf.Tensor, ...]
    settings: DetailSettings


def energy_pool_factors(settings: DetailSettings, height: int, width: int) -> list[int]:
    """The pool factor of each band's energy grid for ``[height, width]`` frames, finest band first."""
    return [pool_factor(settings.window_ratio * sigma, height, width) for sigma in settings.sigmas]


def _blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of ``[B, H, W, C]``, the kernel cut short where the image is smaller."""
    return gaussian_blur(images, gaussian_kernel(sigma, fitting_kernel_size(sigma, images.shape[1], images.shape[2])))


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


def _pool(images: tf.Tensor, factor: int) -> tf.Tensor:
    """``[B, H, W, C]`` → means of ``factor × factor`` blocks (``factor`` 1, 2 or 4)."""
    return pooled(images, factor, _halve)


def _unpool(images: tf.Tensor, height: int, width: int, factor: int) -> tf.Tensor:
    """Undo ``_pool`` of an ``[H, W]`` image: bilinear ×2 per halving."""
    return unpooled(images, height, width, factor, _double)


def blur_more(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Blur by ``sigma``; from 2 px up, on a grid pooled by 2 or 4 and resized back (4-16x cheaper).

    The pool factor and the blur left for the pooled grid are
    ``kernels.pool_factor`` and ``kernels.pooled_sigma``.
    """
    height, width = images.shape[1], images.shape[2]
    factor = pool_factor(sigma, height, width)
    if factor == 1:
        return _blur(images, sigma)
    return _unpool(_blur(_pool(images, factor), pooled_sigma(sigma, factor)), height, width, factor)


def pool_flow(flow: tf.Tensor, factor: int) -> tf.Tensor:
    """``[B, H, W, 2]`` flow in frame pixels → the same motion on the grid pooled by ``factor``.

    Averaged over ``factor × factor`` blocks and divided by ``factor``: pooled
    pixel ``j`` (centred on frame pixel ``f·j + (f - 1)/2``) then samples
    ``j - flow/f``.
    """
    return _pool(flow, factor) / float(factor)


def detail_bands(images: tf.Tensor, sigmas: tuple[float, ...]) -> list[tf.Tensor]:
    """``[B, H, W, C]`` → one ``[B, H, W, C]`` band per sigma, finest first.

    Band ``i`` is ``level_{i-1} - level_i``, where level 0 is the image and
    level ``i`` is level ``i-1`` blurred further, to a total sigma of about
    ``sigma_i``. The bands and the last level sum to the image.
    """
    levels = [images]
    for finer, coarser in zip((0.0, *sigmas[:-1]), sigmas):
        levels.append(blur_more(levels[-1], math.sqrt(coarser**2 - finer**2)))
    return [finer - coarser for finer, coarser in zip(levels[:-1], levels[1:])]


def luminance(images: tf.Tensor) -> tf.Tensor:
    """``[B, H, W, 3]`` RGB → ``[B, H, W, 1]`` luminance (Rec. 601 weights, ``kernels.LUMINANCE``): the one
    TensorFlow home of it (the fit's structure term and the detail blend both use it)."""
    return tf.reduce_sum(images * tf.constant(LUMINANCE, images.dtype), axis=-1, keepdims=True)


def _local_energy(band: tf.Tensor, sigma: float, settings: DetailSettings) -> tf.Tensor:
    """``[B, H, W, 1]`` band → ``[B, h, w, 1]``: its local mean square over a window.

    On the band's pooled grid (``energy_pool_factors``): the energy is smooth.
    """
    window = settings.window_ratio * sigma
    factor = pool_factor(window, band.shape[1], band.shape[2])
    return _blur(_pool(tf.square(band), factor), pooled_sigma(window, factor))


def detail_energy(images: tf.Tensor, settings: DetailSettings) -> tuple[tf.Tensor, ...]:
    """``[B, H, W, 3]`` → the local energy of each band of the luminance, ``[B, h_i, w_i, 1]`` on its pooled grid."""
    bands = detail_bands(luminance(images), settings.sigmas)
    return tuple(_local_energy(band, sigma, settings) for band, sigma in zip(bands, settings.sigmas))


def restore_detail(
    linear: tf.Tensor, wanted_energy: tuple[tf.Tensor, ...] | list[tf.Tensor], settings: DetailSettings
) -> tf.Tensor:
    """Rescale the luminance detail of ``linear`` up towards ``wanted_energy``.

    Args:
      linear: ``[B, H, W, 3]`` linear blend of the two directions.
      wanted_energy: per band, ``[B, h_i, w_i, 1]`` on its pooled grid: the
        endpoints' warped, alpha-weighted band energies.
      settings: bands and limits.

    Returns:
      ``[B, H, W, 3]``: ``linear + sum_i up_i(g_i - 1)·band_i(Y(linear))``.
    """
    height, width = linear.shape[1], linear.shape[2]
    detail = tf.zeros_like(linear[..., :1])
    bands = detail_bands(luminance(linear), settings.sigmas)
    factors = energy_pool_factors(settings, height, width)
    for band, sigma, factor, wanted in zip(bands, settings.sigmas, factors, wanted_energy):
        have = _local_energy(band, sigma, settings)
        ratio = (wanted + settings.epsilon) / (have + settings.epsilon)
        gain = tf.clip_by_value(tf.sqrt(ratio), 1.0, settings.max_gain)
        detail += _unpool(gain - 1.0, height, width, factor) * band
    return linear + detail

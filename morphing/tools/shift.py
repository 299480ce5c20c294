"""Sub-pixel shifts and rolls, and finding the shift that aligns two images.

A shift by ``(dy, dx)`` moves the picture down by ``dy`` and right by ``dx``
pixels; like the dense warp (``morphing.render.warp``) it samples backwards::

    output[b, y, x, c] = interpolate(images[b, :, :, c], y - dy, x - dx)

The dense warp with a constant flow ``(dy, dx)`` gives the same bilinear
result; this module adds bicubic interpolation and wrap-around (the image rolls:
what leaves one side enters the other) and is separable, so a shift costs two
1-D resamplings. Values and gradients with respect to the shift are exact
functions of the fractional part, so gradient descent can find a shift.

``align_shift`` finds the shift that maps a moving image onto a fixed one by
gradient descent on the mean squared difference, coarse to fine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from morphing.render.filters import gaussian_blur, gaussian_kernel
from morphing.io.images import levels_to_uint8
from morphing.model.settings import SHIFT_INTERPOLATIONS, AlignSettings, Interpolation
from morphing.render.warp import keys_cubic_weights

__all__ = ["INTERPOLATIONS", "Shift", "AlignSettings", "shift_image", "shift_pixels", "align_shift"]

INTERPOLATIONS = SHIFT_INTERPOLATIONS


class Shift(NamedTuple):
    """A translation in pixels: ``dy`` down, ``dx`` right."""

    dy: float
    dx: float


def _tap_weights(fraction: tf.Tensor, interpolation: str) -> tuple[list[int], list[tf.Tensor]]:
    """Offsets (relative to the floor of the query) and their weights, for a fraction in [0, 1)."""
    if interpolation == "bilinear":
        return [0, 1], [1.0 - fraction, fraction]
    if interpolation != "bicubic":
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return [-1, 0, 1, 2], keys_cubic_weights(fraction)


def _resample_axis(images: tf.Tensor, offset: tf.Tensor, axis: int, interpolation: str, wrap: bool) -> tf.Tensor:
    """Shift ``images`` by the scalar ``offset`` pixels along ``axis`` (1 = y, 2 = x)."""
    size = images.shape[axis]
    query_start = -offset  # output pixel i reads position i - offset
    base = tf.floor(query_start)
    fraction = query_start - base
    base_index = tf.cast(base, tf.int32)
    positions = tf.range(size, dtype=tf.int32) + base_index
    taps, weights = _tap_weights(fraction, interpolation)
    total = None
    for tap, weight in zip(taps, weights):
        indices = positions + tap
        indices = tf.math.floormod(indices, size) if wrap else tf.clip_by_value(indices, 0, size - 1)
        term = weight * tf.gather(images, indices, axis=axis)
        total = term if total is None else total + term
    return total


def _fourier_shift(images: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """Periodic shift by a phase ramp in the 2-D Fourier domain (exact for band-limited images)."""
    height, width = images.shape[1], images.shape[2]
    real_dtype = images.dtype
    complex_dtype = tf.complex128 if real_dtype == tf.float64 else tf.complex64
    frequencies_y = tf.constant(np.fft.fftfreq(height)[:, np.newaxis], real_dtype)
    frequencies_x = tf.constant(np.fft.fftfreq(width)[np.newaxis, :], real_dtype)
    phase = -2.0 * np.pi * (frequencies_y * shift[0] + frequencies_x * shift[1])
    ramp = tf.complex(tf.cos(phase), tf.sin(phase))
    channels_first = tf.cast(tf.transpose(images, [0, 3, 1, 2]), complex_dtype)
    moved = tf.math.real(tf.signal.ifft2d(tf.signal.fft2d(channels_first) * ramp))
    return tf.transpose(moved, [0, 2, 3, 1])


def shift_image(
    images: tf.Tensor,
    shift: tf.Tensor | tuple[float, float],
    *,
    interpolation: Interpolation = "bilinear",
    wrap: bool = False,
) -> tf.Tensor:
    """Move ``images`` by a sub-pixel ``shift``.

    Args:
      images: ``[B, H, W, C]`` float tensor.
      shift: ``[2]`` as (dy, dx) in pixels, a tensor (differentiable) or numbers.
      interpolation: ``"bilinear"``, ``"bicubic"`` (Keys, a = -0.5) or
        ``"fourier"`` (a phase ramp: exact for band-limited periodic images;
        only with ``wrap``).
      wrap: roll around the borders; otherwise queries outside the image read
        the nearest border pixel, as the dense warp does.

    Returns:
      ``[B, H, W, C]``: ``out[b, y, x] = images[b, y - dy, x - dx]``, interpolated.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
    shift = tf.convert_to_tensor(shift, dtype=images.dtype)
    if shift.shape != (2,):
        raise ValueError(f"shift must be [2] as (dy, dx), got shape {shift.shape}")
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(shift))):
        raise ValueError(f"shift must be finite numbers, got {shift.numpy().tolist()}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if interpolation == "fourier":
        if not wrap:
            raise ValueError("fourier interpolation treats the image as periodic; it needs wrap=True")
        return _fourier_shift(images, shift)
    moved = _resample_axis(images, shift[0], 1, interpolation, wrap)
    return _resample_axis(moved, shift[1], 2, interpolation, wrap)


def shift_pixels(
    pixels: np.ndarray,
    shift: tuple[float, float],
    *,
    interpolation: Interpolation = "bilinear",
    wrap: bool = False,
) -> np.ndarray:
    """``[H, W, C] uint8`` moved by ``shift`` = (dy, dx) pixels → ``[H, W, C] uint8`` (rounded).

    Arrays in, arrays out: ``shift_image`` on the pixel levels (0–255) of one image.
    """
    moved = shift_image(tf.constant(pixels[np.newaxis], tf.float32), shift, interpolation=interpolation, wrap=wrap)
    return levels_to_uint8(moved[0].numpy())


def _halve(images: np.ndarray, wrap: bool) -> np.ndarray:
    """``[H, W, C]`` → ``[H // 2, W // 2, C]`` by 2×2 averaging (pixel centres move by ½, as in both images)."""
    height, width = (images.shape[0] // 2) * 2, (images.shape[1] // 2) * 2
    trimmed = images[:height, :width]
    return trimmed.reshape(height // 2, 2, width // 2, 2, -1).mean(axis=(1, 3))


def _pyramid(images: np.ndarray, coarsest_side: int, wrap: bool) -> list[np.ndarray]:
    """Fine-to-coarse list of ``[h, w, C]`` float32 images."""
    levels = [images.astype(np.float32)]
    while min(levels[-1].shape[:2]) // 2 >= coarsest_side:
        levels.append(_halve(levels[-1], wrap))
    return levels


def _prefilter(images: np.ndarray, settings: AlignSettings) -> np.ndarray:
    """``[H, W, C]`` blurred by ``settings.blur_sigma`` (wrapping around with ``settings.wrap``)."""
    if settings.blur_sigma <= 0:
        return images.astype(np.float32)
    kernel = gaussian_kernel(settings.blur_sigma)
    if kernel.size // 2 >= min(images.shape[:2]):
        kernel = gaussian_kernel(settings.blur_sigma, 2 * (min(images.shape[:2]) // 2) - 1)
    padding = "wrap" if settings.wrap else "reflect"
    return gaussian_blur(images[np.newaxis].astype(np.float32), kernel, padding=padding)[0].numpy()


def _valid_mask(height: int, width: int, shift: tf.Tensor, margin: float) -> tf.Tensor:
    """``[1, H, W, 1]`` 1.0 where the shifted query lies ``margin`` inside the image."""
    ys = tf.range(height, dtype=tf.float32)[:, tf.newaxis] - shift[0]
    xs = tf.range(width, dtype=tf.float32)[tf.newaxis, :] - shift[1]
    inside = (
        (ys >= margin) & (ys <= height - 1 - margin) & (xs >= margin) & (xs <= width - 1 - margin)
    )
    return tf.cast(inside, tf.float32)[tf.newaxis, :, :, tf.newaxis]


def _level_loss(
    moving: tf.Tensor, fixed: tf.Tensor, shift: tf.Tensor, settings: AlignSettings
) -> tf.Tensor:
    """Mean squared difference between the shifted moving image and the fixed one.

    Without wrap-around only pixels that read from inside the image count (the
    rest would compare clamped border copies).
    """
    moved = shift_image(moving, shift, interpolation=settings.interpolation, wrap=settings.wrap)
    squared = tf.square(moved - fixed)
    if settings.wrap:
        return tf.reduce_mean(squared)
    margin = 1.0 if settings.interpolation == "bicubic" else 0.0  # "fourier" always wraps
    mask = tf.stop_gradient(_valid_mask(moving.shape[1], moving.shape[2], shift, margin))
    return tf.reduce_sum(squared * mask) / (tf.reduce_sum(mask) * moving.shape[3] + 1e-6)


def align_shift(
    moving: np.ndarray,
    fixed: np.ndarray,
    settings: AlignSettings = AlignSettings(),
    on_step: Callable[[int, float], None] | None = None,
) -> Shift:
    """The shift that best maps ``moving`` onto ``fixed``: ``shift_image(moving, s) ≈ fixed``.

    Args:
      moving, fixed: ``[H, W, C]`` float images of the same shape (any range),
        at least 8×8.
      settings: interpolation, wrap-around and the search schedule.
      on_step: called as ``on_step(step, loss)`` after every step.

    Returns:
      The ``Shift`` in pixels of the input images.

    Gradient descent (Adam) on the mean squared difference, from a shift of 0
    at the coarsest level of a 2×2-averaging pyramid; each level's result,
    doubled, starts the next finer level.
    """
    if moving.shape != fixed.shape or moving.ndim != 3:
        raise ValueError(f"moving and fixed must be [H, W, C] of one shape, got {moving.shape} and {fixed.shape}")
    if settings.interpolation == "fourier" and not settings.wrap:
        raise ValueError("fourier interpolation treats the images as periodic; it needs wrap=True")
    if min(moving.shape[:2]) < 8:
        raise ValueError(f"images must be at least 8x8 pixels, got {moving.shape[1]}x{moving.shape[0]}")
    moving_levels = _pyramid(_prefilter(moving, settings), settings.coarsest_side, settings.wrap)
    fixed_levels = _pyramid(_prefilter(fixed, settings), settings.coarsest_side, settings.wrap)
    shift = tf.Variable(tf.zeros([2], tf.float32))
    step = 0
    for level in reversed(range(len(moving_levels))):
        moving_t = tf.constant(moving_levels[level][np.newaxis])
        fixed_t = tf.constant(fixed_levels[level][np.newaxis])
        schedule = _decay(settings.learning_rate, settings.final_learning_rate, settings.steps_per_level)
        optimizer = tf.keras.optimizers.Adam(learning_rate=schedule)
        train_step = _make_step(moving_t, fixed_t, shift, optimizer, settings)
        for _ in range(settings.steps_per_level):
            loss = float(train_step())
            step += 1
            if on_step is not None:
                on_step(step, loss)
        if level > 0:
            shift.assign(shift * 2.0)
    dy, dx = shift.numpy().tolist()
    return Shift(dy=dy, dx=dx)


def _decay(start: float, end: float, steps: int) -> Callable[[], float] | float:
    """An exponential decay from ``start`` to ``end`` over ``steps`` steps."""
    import keras

    rate = (end / start) ** (1.0 / max(steps - 1, 1))
    return keras.optimizers.schedules.ExponentialDecay(start, decay_steps=1, decay_rate=rate)


def _make_step(
    moving: tf.Tensor, fixed: tf.Tensor, shift: tf.Variable, optimizer: object, settings: AlignSettings
) -> Callable[[], tf.Tensor]:
    @tf.function(autograph=False)
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = _level_loss(moving, fixed, shift, settings)
        optimizer.apply_gradients([(tape.gradient(loss, shift), shift)])
        return loss

    return train_step


def pixel_error(found: Shift, true: Shift) -> float:
    """Euclidean distance in pixels between two shifts."""
    return math.hypot(found.dy - true.dy, found.dx - true.dx)

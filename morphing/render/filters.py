"""Separable Gaussian blur: two 1-D convolutions (along x, then y).

Borders are padded by reflection (``reflect``: ``d c b | a b c d | c b a``,
no edge pixel repeated) or by wrap-around (``wrap``, for periodic images), so a
blur neither darkens the edges nor lets them bleed into each other.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from morphing.render.kernels import gaussian_kernel
from morphing.model.settings import default_kernel_size

__all__ = ["PADDINGS", "default_kernel_size", "gaussian_kernel", "gaussian_blur"]

PADDINGS: tuple[str, ...] = ("reflect", "wrap")


def _pad_axis(images: tf.Tensor, radius: int, axis: int, padding: str) -> tf.Tensor:
    """Pad ``radius`` pixels on both sides of ``axis`` (1 or 2) of ``[B, H, W, C]``."""
    size = images.shape[axis]
    if padding == "wrap":
        if radius > size:
            raise ValueError(f"kernel radius {radius} is larger than the image side {size}")
        before = tf.gather(images, tf.range(size - radius, size), axis=axis)
        after = tf.gather(images, tf.range(radius), axis=axis)
        return tf.concat([before, images, after], axis=axis)
    if padding != "reflect":
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if radius >= size:
        raise ValueError(f"kernel radius {radius} must be smaller than the image side {size} for reflect padding")
    paddings = [[0, 0]] * 4
    paddings[axis] = [radius, radius]
    return tf.pad(images, paddings, mode="REFLECT")


def gaussian_blur(images: tf.Tensor, kernel: np.ndarray, *, padding: str = "reflect") -> tf.Tensor:
    """Blur ``[B, H, W, C]`` float images with the 1-D ``kernel`` along x, then y.

    Each channel is blurred on its own; the output
    has the input's shape. Differentiable with respect to ``images``.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 1 or kernel.size % 2 == 0:
        raise ValueError(f"kernel must be 1-D with an odd length, got shape {kernel.shape}")
    blurred = images
    for axis in (2, 1):  # along x, then along y
        blurred = _blur_axis(blurred, kernel, axis, padding)
    return blurred


def _correlate_axis(padded: tf.Tensor, kernel: np.ndarray, axis: int, size: int) -> tf.Tensor:
    """``padded`` correlated with ``kernel`` along ``axis``, ``size`` outputs ('valid'): a weighted sum of
    shifted slices, one fused loop under XLA and, with oneDNN, 2x faster than a depthwise convolution
    (which XLA makes ~10x slower)."""
    total = None
    for tap, weight in enumerate(kernel.tolist()):
        window = padded[:, tap : tap + size] if axis == 1 else padded[:, :, tap : tap + size]
        total = weight * window if total is None else total + weight * window
    return total


def _blur_axis(images: tf.Tensor, kernel: np.ndarray, axis: int, padding: str) -> tf.Tensor:
    """``images`` blurred along ``axis`` (1 or 2).

    The gradient is written out: the sum of slices' own gradient pads every
    slice back to full size, 50 full-size tensors for a 25-tap kernel, and
    was ten times slower than the blur. Its adjoint is the correlation of
    the upstream gradient, widened by zeros, with the flipped kernel, then
    the padding's own (cheap) gradient.
    """
    radius = kernel.size // 2
    size = images.shape[axis]

    @tf.custom_gradient
    def blur(values: tf.Tensor) -> tuple[tf.Tensor, object]:
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            widened = [[0, 0]] * 4
            widened[axis] = [2 * radius, 2 * radius]
            on_padded = _correlate_axis(tf.pad(upstream, widened), kernel[::-1], axis, size + 2 * radius)
            with tf.GradientTape() as tape:
                tape.watch(values)
                padded = _pad_axis(values, radius, axis, padding)
            return tape.gradient(padded, values, output_gradients=on_padded)

        return _correlate_axis(_pad_axis(values, radius, axis, padding), kernel, axis, size), gradient

    return blur(images)

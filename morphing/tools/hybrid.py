"""Hybrid images: one picture that reads as *near* up close and as *far* from afar.

Gradient descent finds the pixels ``X`` (``sigmoid`` of free parameters, so they
stay in [0, 1]) that minimise::

    near_weight · mean((X - near)²) + far_weight · mean((blur(X) - blur(far))²)

or, with ``near_term="detail"`` (the default), the same with the near term on
fine detail only, ``(X - blur X) - (near - blur near)``: its unconstrained
optimum is exactly the classic hybrid below, and the sigmoid keeps it in range.

where ``blur`` is a separable Gaussian applied in linear light (sRGB → linear
with gamma 2.2, blur, back). Far away only the blurred picture is seen, and it
is ``far``'s; close up the fine detail dominates, and it is ``near``'s.

``classic_hybrid`` is the textbook construction for comparison:
``blur(far) + near - blur(near)``, whose values can leave [0, 1].

Images here are ``[H, W, 3]`` float32 in [0, 1] (not the morph's [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from morphing.render.filters import gaussian_blur, gaussian_kernel
from morphing.model.settings import HYBRID_NEAR_TERMS, HYBRID_STARTS, HybridSettings

__all__ = ["GAMMA", "STARTS", "HybridSettings", "blur_in_linear_light", "classic_hybrid", "fit_hybrid"]

GAMMA = 2.2
STARTS = HYBRID_STARTS
NEAR_TERMS = HYBRID_NEAR_TERMS
_LINEAR_FLOOR = 1e-6  # keeps the gradient of x^(1/γ) finite at black
_LOGIT_CLIP = 1e-3  # a start value of exactly 0 or 1 has no finite logit


def blur_in_linear_light(images: tf.Tensor, kernel: np.ndarray) -> tf.Tensor:
    """``[B, H, W, C]`` sRGB-ish values in [0, 1] blurred in linear light (gamma ``GAMMA``)."""
    linear = tf.pow(tf.maximum(images, 0.0), GAMMA)
    blurred = gaussian_blur(linear, kernel, padding="reflect")
    return tf.pow(tf.maximum(blurred, _LINEAR_FLOOR), 1.0 / GAMMA)


def classic_hybrid(near: np.ndarray, far: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Low-pass of ``far`` plus high-pass of ``near``: ``[H, W, 3]`` float32, *not* clipped.

    Both passes use the same linear-light Gaussian as ``fit_hybrid``.
    """
    near_blur = blur_in_linear_light(near[np.newaxis], kernel)[0].numpy()
    far_blur = blur_in_linear_light(far[np.newaxis], kernel)[0].numpy()
    return (far_blur + near - near_blur).astype(np.float32)


def _check_pair(near: np.ndarray, far: np.ndarray) -> None:
    for name, image in (("near", near), ("far", far)):
        if not isinstance(image, np.ndarray) or image.dtype.kind != "f":
            raise ValueError(f"{name} must be [H, W, C] floats in [0, 1] (to_unit of uint8 pixels), got "
                             f"{getattr(image, 'dtype', type(image).__name__)}")
    if near.shape != far.shape or near.ndim != 3:
        raise ValueError(f"near and far must be [H, W, C] of one shape, got {near.shape} and {far.shape}")


def fit_hybrid(
    near: np.ndarray,
    far: np.ndarray,
    settings: HybridSettings = HybridSettings(),
    on_step: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """The hybrid of ``near`` and ``far`` (both ``[H, W, 3]`` float in [0, 1]).

    Returns ``[H, W, 3]`` float32 in [0, 1]. Adam on the logits of the pixels,
    started from ``near`` or from mid-grey; ``on_step(step, loss)`` after each
    step. Raises ``ValueError`` for mismatched shapes or a kernel wider than
    the image.
    """
    _check_pair(near, far)
    kernel = gaussian_kernel(settings.sigma, settings.kernel_size)
    if kernel.size // 2 >= min(near.shape[:2]):
        raise ValueError(
            f"blur kernel of {kernel.size} pixels is too wide for a {near.shape[1]}x{near.shape[0]} image"
        )
    if settings.near_term not in NEAR_TERMS:
        raise ValueError(f"near_term must be one of {NEAR_TERMS}, got {settings.near_term!r}")
    near_t = tf.constant(near[np.newaxis], tf.float32)
    near_detail = near_t - blur_in_linear_light(near_t, kernel)
    far_blurred = blur_in_linear_light(tf.constant(far[np.newaxis], tf.float32), kernel)
    if settings.start == "near":
        start = np.clip(near, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    elif settings.start == "grey":
        start = np.full_like(near, 0.5)
    else:
        raise ValueError(f"start must be one of {STARTS}, got {settings.start!r}")
    logits = tf.Variable(np.log(start / (1.0 - start)).astype(np.float32)[np.newaxis])
    optimizer = tf.keras.optimizers.Adam(learning_rate=settings.learning_rate)

    @tf.function(autograph=False, jit_compile=True)
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            hybrid = tf.sigmoid(logits)
            hybrid_blurred = blur_in_linear_light(hybrid, kernel)
            if settings.near_term == "pixels":
                near_loss = tf.reduce_mean(tf.square(hybrid - near_t))
            else:
                near_loss = tf.reduce_mean(tf.square(hybrid - hybrid_blurred - near_detail))
            far_loss = tf.reduce_mean(tf.square(hybrid_blurred - far_blurred))
            loss = settings.near_weight * near_loss + settings.far_weight * far_loss
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
        return loss

    for step in range(1, settings.steps + 1):
        loss = float(train_step())
        if on_step is not None:
            on_step(step, loss)
    return tf.sigmoid(logits)[0].numpy()

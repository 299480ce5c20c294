"""Separable Gaussian blur against a slow numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.render.filters import default_kernel_size, gaussian_blur, gaussian_kernel


def reference_blur(image: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """``[H, W, C]`` blurred one row and one column at a time with ``np.convolve``."""
    radius = kernel.size // 2
    mode = "reflect" if padding == "reflect" else "wrap"
    out = image.astype(np.float64)
    for axis in (1, 0):  # x first, then y
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode=mode)
        moved = np.moveaxis(padded, axis, -1)
        rows = moved.reshape(-1, moved.shape[-1])
        filtered = np.stack([np.convolve(row, kernel[::-1], mode="valid") for row in rows])
        out = np.moveaxis(filtered.reshape(*moved.shape[:-1], -1), -1, axis)
    return out


def test_kernel_is_normalised_symmetric_and_covers_three_sigma() -> None:
    kernel = gaussian_kernel(2.0)
    assert kernel.size == default_kernel_size(2.0) == 13
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel[::-1])
    assert kernel.argmax() == 6 and kernel[0] < kernel[1]
    # Neighbours follow the Gaussian ratio exp(-(2k+1)/(2 sigma^2)).
    assert kernel[7] / kernel[6] == pytest.approx(np.exp(-1 / 8), rel=1e-5)


@pytest.mark.parametrize("sigma, size", [(0.0, None), (-1.0, None), (1.0, 4), (1.0, 0)])
def test_bad_kernel_arguments_raise(sigma: float, size: int | None) -> None:
    with pytest.raises(ValueError):
        gaussian_kernel(sigma, size)


@pytest.mark.parametrize("padding", ["reflect", "wrap"])
def test_blur_matches_the_numpy_reference(padding: str) -> None:
    image = np.random.default_rng(0).uniform(size=(2, 13, 17, 3)).astype(np.float32)
    kernel = gaussian_kernel(1.7, 9)
    ours = gaussian_blur(image, kernel, padding=padding).numpy()
    assert ours.shape == image.shape
    for b in range(2):
        np.testing.assert_allclose(ours[b], reference_blur(image[b], kernel, padding), atol=1e-5)


@pytest.mark.parametrize("padding", ["reflect", "wrap"])
def test_blur_gradient_is_the_transpose_of_the_reference_blur(padding: str) -> None:
    # The blur is linear, y = B x: the gradient of sum(w * y) is B^T w, with B built column by column
    # from the numpy reference applied to each basis image.
    shape = (6, 7, 2)
    kernel = gaussian_kernel(1.3, 5)
    basis = np.eye(np.prod(shape)).reshape(-1, *shape)
    matrix = np.stack([reference_blur(image, kernel, padding).ravel() for image in basis], axis=1)
    rng = np.random.default_rng(2)
    image = tf.Variable(rng.uniform(size=(1, *shape)).astype(np.float32))
    weights = rng.uniform(-1.0, 1.0, size=(1, *shape)).astype(np.float32)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(weights * gaussian_blur(image, kernel, padding=padding))
    gradient = tape.gradient(total, image).numpy()
    np.testing.assert_allclose(gradient.ravel(), matrix.T @ weights.ravel(), atol=1e-5)


def test_blur_keeps_a_constant_image_and_wrap_keeps_the_mean() -> None:
    constant = np.full((1, 10, 12, 2), 0.3, np.float32)
    np.testing.assert_allclose(gaussian_blur(constant, gaussian_kernel(2.0, 9)).numpy(), 0.3, atol=1e-6)
    image = np.random.default_rng(1).uniform(size=(1, 10, 12, 1)).astype(np.float32)
    blurred = gaussian_blur(image, gaussian_kernel(1.5), padding="wrap").numpy()
    assert blurred.mean() == pytest.approx(image.mean(), abs=1e-6)
    assert blurred.std() < image.std()


def test_blur_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="B, H, W, C"):
        gaussian_blur(np.zeros((4, 4, 3), np.float32), gaussian_kernel(1.0))
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(np.zeros((1, 4, 4, 3), np.float32), np.ones(4, np.float32) / 4)
    with pytest.raises(ValueError, match="smaller than the image side"):
        gaussian_blur(np.zeros((1, 4, 4, 3), np.float32), gaussian_kernel(1.0, 9))
    with pytest.raises(ValueError, match="padding"):
        gaussian_blur(np.zeros((1, 8, 8, 3), np.float32), gaussian_kernel(1.0, 3), padding="zeros")

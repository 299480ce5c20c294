"""Sub-pixel shifts against the dense warp, np.roll, exact polynomials and
finite differences; alignment on textures moved by known amounts."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.testing.scenes import fourier_shift, random_texture, shifted_pair
from morphing.tools.shift import (
    AlignSettings,
    Shift,
    align_shift,
    pixel_error,
    shift_image,
    shift_pixels,
)
from morphing.render.warp import dense_image_warp
from tests.helpers import assert_gradients_match


def reference_wrap_bilinear(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Slow periodic bilinear shift of ``[H, W, C]``, one pixel at a time."""
    height, width = image.shape[:2]
    out = np.zeros_like(image, dtype=np.float64)
    for y in range(height):
        for x in range(width):
            qy, qx = y - dy, x - dx
            y0, x0 = int(np.floor(qy)), int(np.floor(qx))
            ty, tx = qy - y0, qx - x0
            for oy, wy in ((0, 1 - ty), (1, ty)):
                for ox, wx in ((0, 1 - tx), (1, tx)):
                    out[y, x] += wy * wx * image[(y0 + oy) % height, (x0 + ox) % width]
    return out


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.25, -0.5), (-2.75, 3.4), (7.5, -9.0)])
def test_bilinear_without_wrap_equals_the_dense_warp_with_a_constant_flow(shift: tuple[float, float]) -> None:
    image = np.random.default_rng(0).normal(size=(2, 9, 11, 3)).astype(np.float32)
    flow = np.broadcast_to(np.asarray(shift, np.float32), (2, 9, 11, 2))
    np.testing.assert_allclose(
        shift_image(image, shift).numpy(), dense_image_warp(image, flow).numpy(), atol=1e-5
    )


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_wrap_by_whole_pixels_is_np_roll_and_a_full_period_is_the_identity(interpolation: str) -> None:
    image = np.random.default_rng(1).normal(size=(1, 7, 10, 2)).astype(np.float32)
    rolled = shift_image(image, (3.0, -4.0), interpolation=interpolation, wrap=True).numpy()
    np.testing.assert_allclose(rolled, np.roll(image, (3, -4), axis=(1, 2)), atol=1e-6)
    full = shift_image(image, (7.0, 10.0), interpolation=interpolation, wrap=True).numpy()
    np.testing.assert_allclose(full, image, atol=1e-6)


def test_fractional_wrap_matches_the_slow_reference() -> None:
    image = np.random.default_rng(2).normal(size=(6, 8, 3)).astype(np.float32)
    ours = shift_image(image[np.newaxis], (1.3, -2.6), wrap=True).numpy()[0]
    np.testing.assert_allclose(ours, reference_wrap_bilinear(image, 1.3, -2.6), atol=1e-5)


def test_fourier_shift_equals_the_exact_shift_of_a_band_limited_texture_and_rolls_whole_pixels() -> None:
    texture = random_texture(np.random.default_rng(8), 16, 12)
    moved = shift_image(texture[np.newaxis], (0.3, -2.7), interpolation="fourier", wrap=True).numpy()[0]
    np.testing.assert_allclose(moved, fourier_shift(texture, 0.3, -2.7), atol=1e-5)
    # Whole pixels: np.roll of any image, band-limited or not.
    noise = np.random.default_rng(9).normal(size=(1, 6, 10, 2)).astype(np.float32)
    rolled = shift_image(noise, (2.0, -3.0), interpolation="fourier", wrap=True).numpy()
    np.testing.assert_allclose(rolled, np.roll(noise, (2, -3), axis=(1, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="wrap"):
        shift_image(noise, (0.5, 0.5), interpolation="fourier")


def test_bicubic_reproduces_a_quadratic_away_from_the_borders() -> None:
    ys, xs = np.mgrid[0:16, 0:20].astype(np.float64)

    def surface(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return 0.02 * y * y - 0.03 * x * x + 0.01 * x * y + 0.5 * x - 0.2 * y + 1.0

    dy, dx = 0.3, -0.65
    moved = shift_image(surface(ys, xs)[np.newaxis, ..., np.newaxis], (dy, dx), interpolation="bicubic")
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(moved.numpy()[0, ..., 0][inner], surface(ys - dy, xs - dx)[inner], atol=1e-4)
    # Bilinear interpolation cannot: its error on the curved surface is visible.
    linear = shift_image(surface(ys, xs)[np.newaxis, ..., np.newaxis], (dy, dx)).numpy()[0, ..., 0]
    assert np.abs(linear[inner] - surface(ys - dy, xs - dx)[inner]).max() > 1e-3


@pytest.mark.parametrize(
    "interpolation, wrap",
    [("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True), ("fourier", True)],
)
def test_gradient_with_respect_to_the_shift_matches_finite_differences(interpolation: str, wrap: bool) -> None:
    image = tf.constant(np.random.default_rng(3).normal(size=(1, 8, 9, 2)))
    weights = tf.constant(np.random.default_rng(4).normal(size=(1, 8, 9, 2)))
    assert_gradients_match(
        lambda shift: tf.reduce_sum(weights * shift_image(image, shift, interpolation=interpolation, wrap=wrap)),
        [np.array([0.37, -1.21])], tolerance=1e-5,
    )


def test_fourier_shift_of_the_texture_is_exact_at_whole_pixels() -> None:
    texture = random_texture(np.random.default_rng(5), 16, 20)
    assert texture.min() >= -1.0 and texture.max() <= 1.0
    np.testing.assert_allclose(fourier_shift(texture, 2.0, -3.0), np.roll(texture, (2, -3), axis=(0, 1)), atol=1e-5)


@pytest.mark.parametrize(
    "dy, dx, wrap, interpolation",
    [(0.25, 3.5, True, "bicubic"), (-7.75, 0.25, True, "bilinear"), (3.5, -0.25, False, "bicubic"),
     (-2.25, 7.75, False, "bilinear"), (-0.75, 5.25, True, "fourier")],
)
def test_align_finds_a_known_sub_pixel_shift(dy: float, dx: float, wrap: bool, interpolation: str) -> None:
    moving, fixed = shifted_pair(np.random.default_rng(6), 64, dy, dx, wrap=wrap)
    found = align_shift(moving, fixed, AlignSettings(wrap=wrap, interpolation=interpolation))  # type: ignore[arg-type]
    assert pixel_error(found, Shift(dy, dx)) <= 0.05, found


def test_align_reports_progress_and_rejects_bad_shapes() -> None:
    moving, fixed = shifted_pair(np.random.default_rng(7), 32, 1.0, 1.0, wrap=True)
    losses: list[float] = []
    align_shift(moving, fixed, AlignSettings(wrap=True, steps_per_level=5, coarsest_side=16),
                on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 10 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="one shape"):
        align_shift(moving, fixed[:-1])
    with pytest.raises(ValueError, match="at least 8x8"):
        align_shift(moving[:4, :4], fixed[:4, :4])
    with pytest.raises(ValueError, match="interpolation"):
        shift_image(moving[np.newaxis], (0.0, 0.0), interpolation="nearest")
    with pytest.raises(ValueError, match=r"\[2\]"):
        shift_image(moving[np.newaxis], (0.0, 0.0, 1.0))


def test_shift_pixels_is_shift_image_on_the_levels_of_one_uint8_image() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    moved = shift_pixels(pixels, (0.5, -1.25), interpolation="bicubic")
    expected = shift_image(pixels[np.newaxis].astype(np.float32), (0.5, -1.25), interpolation="bicubic")[0].numpy()
    assert moved.dtype == np.uint8 and moved.shape == pixels.shape
    np.testing.assert_array_equal(moved, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(shift_pixels(pixels, (2.0, 3.0), wrap=True), np.roll(pixels, (2, 3), axis=(0, 1)))

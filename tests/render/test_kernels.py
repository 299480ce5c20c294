"""Blur kernels and pooling rules shared by both renders (``morphing.render.kernels``), against numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from morphing.render.kernels import (
    LUMINANCE,
    box_counts,
    fitting_kernel_size,
    gaussian_kernel,
    local_correlation,
    local_ncc_with_gradient,
    pool_factor,
    pool_sizes,
    pooled,
    pooled_sigma,
    unpooled,
)
from tests.helpers import slow_correlation


class TestGaussianKernel:
    @pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
    def test_is_a_normalised_sampled_gaussian_of_its_sigma(self, sigma: float) -> None:
        kernel = gaussian_kernel(sigma)
        offsets = np.arange(kernel.size) - kernel.size // 2
        assert kernel.size == 2 * math.ceil(3 * sigma) + 1 and kernel.dtype == np.float32
        np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-6)
        expected = np.exp(-0.5 * (offsets / sigma) ** 2)
        np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-6)
        spread = math.sqrt(float(np.sum(kernel * offsets**2)))
        assert spread == pytest.approx(sigma, rel=0.02 if sigma >= 1 else 0.2)

    def test_bad_sizes_and_sigmas_are_refused(self) -> None:
        for sigma, size in ((0.0, None), (-1.0, None), (1.0, 4), (1.0, 0)):
            with pytest.raises(ValueError):
                gaussian_kernel(sigma, size)


def test_fitting_kernel_size_is_cut_to_the_image() -> None:
    assert fitting_kernel_size(3.0, 100, 100) == 19
    assert fitting_kernel_size(3.0, 5, 100) == 9  # a radius of 4 leaves reflect padding room in 5 rows


class TestPooling:
    def test_factor_follows_sigma_and_leaves_enough_pixels(self) -> None:
        assert [pool_factor(s, 512, 512) for s in (1.0, 2.0, 3.9, 4.0, 20.0)] == [1, 2, 2, 4, 4]
        assert pool_factor(20.0, 24, 512) == 2  # 4 would leave 6 pooled rows (fewer than 8)

    def test_pooled_sigma_adds_back_to_the_asked_blur(self) -> None:
        for sigma, factor in ((2.0, 2), (6.0, 4)):
            # The blur of pooling by f (a box of f px: variance (f² - 1)/12) plus the pooled blur, in px.
            total = (factor * pooled_sigma(sigma, factor)) ** 2 + (factor**2 - 1) / 12
            assert total == pytest.approx(sigma**2)

    def test_sizes_halve_rounding_up(self) -> None:
        assert pool_sizes(13, 8, 4) == [(13, 8), (7, 4), (4, 2)]
        assert pool_sizes(13, 8, 1) == [(13, 8)]

    def test_pooled_and_unpooled_run_through_the_sizes(self) -> None:
        def halve(image: np.ndarray) -> np.ndarray:
            padded = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2)), mode="edge")
            return padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).mean(axis=(1, 3))

        seen: list[tuple[int, int]] = []

        def double(image: np.ndarray, height: int, width: int) -> np.ndarray:
            seen.append((height, width))
            return np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)[:height, :width]

        image = np.arange(13 * 8, dtype=np.float64).reshape(13, 8)
        small = pooled(image, 4, halve)
        assert small.shape == (4, 2)
        assert unpooled(small, 13, 8, 4, double).shape == (13, 8) and seen == [(7, 4), (13, 8)]
        constant = np.full((13, 8), 3.0)
        np.testing.assert_array_equal(unpooled(pooled(constant, 4, halve), 13, 8, 4, double), constant)


def test_luminance_weights_are_rec_601() -> None:
    assert LUMINANCE == (0.299, 0.587, 0.114) and sum(LUMINANCE) == pytest.approx(1.0)


def test_box_counts_are_the_pixels_each_box_holds() -> None:
    height, width, window = 5, 8, 3
    counted = np.zeros((height, width), np.float32)
    for y in range(height):
        for x in range(width):
            for dy in range(-(window // 2), window // 2 + 1):
                for dx in range(-(window // 2), window // 2 + 1):
                    counted[y, x] += 0 <= y + dy < height and 0 <= x + dx < width
    np.testing.assert_array_equal(box_counts(height, width, window), counted)
    assert box_counts(9, 9, 7)[4, 4] == 49 and box_counts(9, 9, 7)[0, 0] == 16


class TestLocalCorrelation:
    def test_equals_the_plain_one_and_ignores_gain_and_offset(self) -> None:
        rng = np.random.default_rng(4)
        first, second = rng.uniform(-1, 1, size=(2, 20, 26))
        np.testing.assert_allclose(local_correlation(first, second, 5), slow_correlation(first, second, 5),
                                   atol=1e-9)
        same = local_correlation(first, -0.6 * first + 0.2, 5)  # another gain (inverted) and offset
        assert same.min() > 0.99 and local_correlation(first, second, 5).mean() < 0.2
        assert local_correlation(np.zeros_like(first), second, 5).max() < 1e-3  # flat: no evidence

    def test_is_what_the_local_ncc_loss_averages(self) -> None:
        rng = np.random.default_rng(5)
        moved, fixed = rng.uniform(-1, 1, size=(2, 12, 15))
        loss, _ = local_ncc_with_gradient(moved[None], fixed, 5, np.ones((1, 12, 15)), gradient=False)
        assert float(loss[0]) == pytest.approx(1.0 - local_correlation(moved, fixed, 5).mean(), rel=1e-12)

"""The detail-preserving blend: bands that add up, energy restored where the
linear blend lost it, nothing changed where it did not."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.render.blend import DetailSettings, detail_bands, detail_energy, restore_detail
from morphing.render.filters import gaussian_blur, gaussian_kernel
from morphing.testing.metrics import sharpness


def texture(seed: int, shape=(1, 64, 64, 3)) -> np.ndarray:
    """Fine, random detail: white noise lightly blurred, in about [-0.5, 0.5]."""
    noise = np.random.default_rng(seed).normal(size=shape)
    return gaussian_blur(tf.constant(noise), gaussian_kernel(0.7)).numpy() * 0.5


def test_bands_and_the_rest_add_up_to_the_image_and_vanish_on_a_flat_one() -> None:
    image = tf.constant(texture(0))
    sigmas = (1.0, 3.0)
    bands = detail_bands(image, sigmas)
    assert len(bands) == 2 and all(band.shape == image.shape for band in bands)
    rest = image - bands[0] - bands[1]
    np.testing.assert_allclose(rest.numpy(), image.numpy() - sum(b.numpy() for b in bands), atol=1e-12)
    # The rest is smooth: the bands hold nearly all of the fine detail.
    assert sharpness(rest.numpy()[0]) < 0.02 * sharpness(image.numpy()[0])
    flat = tf.fill([1, 20, 24, 3], 0.3)
    for band in detail_bands(flat, sigmas):
        np.testing.assert_allclose(band.numpy(), 0.0, atol=1e-6)


def test_blending_two_unrelated_textures_halfway_keeps_their_strength() -> None:
    settings = DetailSettings()
    first, second = texture(1), texture(2)
    linear = 0.5 * first + 0.5 * second  # keeps about half of the variance
    wanted = [
        0.5 * one + 0.5 * other
        for one, other in zip(detail_energy(tf.constant(first), settings), detail_energy(tf.constant(second), settings))
    ]
    restored = restore_detail(tf.constant(linear), wanted, settings).numpy()
    endpoints = np.mean([sharpness(first[0]), sharpness(second[0])])
    assert sharpness(linear[0]) / endpoints < 0.6
    assert 0.85 < sharpness(restored[0]) / endpoints < 1.15
    # The coarse picture is the linear blend's.
    coarse = gaussian_kernel(4.0)
    np.testing.assert_allclose(
        gaussian_blur(tf.constant(restored), coarse).numpy(),
        gaussian_blur(tf.constant(linear), coarse).numpy(),
        atol=0.02,
    )


def test_an_image_that_already_has_its_detail_is_left_alone() -> None:
    settings = DetailSettings()
    image = texture(3)
    restored = restore_detail(tf.constant(image), detail_energy(tf.constant(image), settings), settings).numpy()
    np.testing.assert_allclose(restored, image, atol=1e-6)
    # Asked for less detail than it has, it still removes none (gains are >= 1).
    less = restore_detail(
        tf.constant(image), [0.25 * energy for energy in detail_energy(tf.constant(image), settings)], settings
    ).numpy()
    np.testing.assert_allclose(less, image, atol=1e-6)


def test_the_gain_is_capped() -> None:
    settings = DetailSettings(max_gain=2.0)
    grey = np.repeat(texture(4)[..., :1], 3, axis=-1)  # luminance detail is what the blend restores
    faint = 0.01 * grey
    wanted = detail_energy(tf.constant(grey), settings)  # 100x the amplitude
    restored = restore_detail(tf.constant(faint), wanted, settings).numpy()
    ratio = np.sqrt(sharpness(restored[0]) / sharpness(faint[0]))
    assert 1.5 < ratio <= 2.0 + 1e-6


def test_tiny_images_work_and_bad_settings_are_refused() -> None:
    settings = DetailSettings()
    image = tf.constant(np.random.default_rng(5).normal(size=(2, 3, 4, 3)))
    assert restore_detail(image, detail_energy(image, settings), settings).shape == image.shape
    for bad in ({"sigmas": ()}, {"sigmas": (3.0, 1.0)}, {"max_gain": 0.5}, {"epsilon": 0.0}):
        with pytest.raises(ValueError):
            DetailSettings(**bad)


@pytest.mark.parametrize("sigma", [1.0, 3.0, 7.5])
def test_the_pooled_blur_spreads_an_impulse_like_a_gaussian_of_its_sigma(sigma: float) -> None:
    from morphing.render.blend import blur_more

    impulse = np.zeros((1, 128, 128, 1), np.float32)
    impulse[0, 64, 64, 0] = 1.0
    response = blur_more(tf.constant(impulse), sigma).numpy()[0, ..., 0]
    offsets = np.arange(128) - 64
    # Pooling puts the impulse off-centre within its block; measure about the response's own centre.
    rows, columns = response.sum(axis=1), response.sum(axis=0)
    for profile in (rows, columns):
        centre = (profile * offsets).sum() / profile.sum()
        variance = (profile * (offsets - centre) ** 2).sum() / profile.sum()
        assert abs(np.sqrt(variance) - sigma) < 0.12 * sigma, (np.sqrt(variance), sigma)
    assert abs(response.sum() - 1.0) < 1e-4
    assert response.min() > -1e-6

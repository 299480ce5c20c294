"""The formula, one direction at a time: each map scaled by alpha and its multiplier, and the maps' upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.model.maps import ADD, MULT, WARP, Scales
from morphing.render.transition import DirectionMaps, apply_direction, bilinear_matrix, upsample_direction


def one_map(channels: slice, value: float, shape=(1, 3, 4)) -> DirectionMaps:
    packed = np.zeros((*shape, 8), np.float32)
    packed[..., channels] = value
    return DirectionMaps(
        mult=tf.constant(packed[..., MULT]), add=tf.constant(packed[..., ADD]), warp=tf.constant(packed[..., WARP])
    )


def test_mult_map_is_scaled_by_alpha_times_m() -> None:
    image = np.random.default_rng(2).uniform(-1, 1, (1, 3, 4, 3)).astype(np.float32)
    out = apply_direction(tf.constant(image), one_map(MULT, 0.5), tf.constant([0.25, 1.0]), Scales(mult=0.8))
    np.testing.assert_allclose(out[0], image[0] * (1 + 0.25 * 0.8 * 0.5), rtol=1e-6)
    np.testing.assert_allclose(out[1], image[0] * (1 + 1.0 * 0.8 * 0.5), rtol=1e-6)


def test_add_map_is_scaled_by_alpha_times_a() -> None:
    image = np.random.default_rng(3).uniform(-1, 1, (1, 3, 4, 3)).astype(np.float32)
    out = apply_direction(tf.constant(image), one_map(ADD, 0.4), tf.constant([0.5]), Scales(add=0.3))
    np.testing.assert_allclose(out[0], image[0] + 0.5 * 0.3 * 0.4, rtol=0, atol=1e-6)


def test_warp_map_is_scaled_by_alpha_times_w() -> None:
    image = np.random.default_rng(4).uniform(-1, 1, (1, 3, 6, 3)).astype(np.float32)
    maps = one_map(WARP, 0.0, shape=(1, 3, 6))
    flow = np.zeros((1, 3, 6, 2), np.float32)
    flow[..., 1] = 4.0  # w * alpha * 4 = 0.5 * 0.5 * 4 = 1 pixel to the right
    maps = maps._replace(warp=tf.constant(flow))
    out = apply_direction(tf.constant(image), maps, tf.constant([0.5]), Scales(warp=0.5)).numpy()
    np.testing.assert_allclose(out[0, :, 1:], image[0, :, :-1], atol=1e-6)


def test_upsampling_scales_the_flow_to_frame_pixels() -> None:
    grid = np.zeros((1, 4, 5, 8), np.float32)
    grid[..., 6] = 1.0  # 1 grid pixel down
    grid[..., 7] = 2.0  # 2 grid pixels right
    maps = upsample_direction(tf.constant(grid), 12, 20)
    np.testing.assert_allclose(maps.warp[..., 0].numpy(), 3.0, rtol=1e-6)  # x3 rows
    np.testing.assert_allclose(maps.warp[..., 1].numpy(), 8.0, rtol=1e-6)  # x4 columns


@pytest.mark.parametrize("size_in, size_out", [(4, 12), (64, 256), (5, 17), (7, 7), (9, 4)])
def test_bilinear_matrix_matches_tensorflow_resize(size_in: int, size_out: int) -> None:
    rng = np.random.default_rng(size_in * 100 + size_out)
    grid = rng.normal(size=(1, size_in, size_in + 1, 8)).astype(np.float32)
    expected = tf.image.resize(grid, [size_out, size_out + 2], method="bilinear").numpy()
    got = np.einsum("yh,bhwc,xw->byxc", bilinear_matrix(size_out, size_in), grid,
                    bilinear_matrix(size_out + 2, size_in + 1))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(bilinear_matrix(size_out, size_in).sum(axis=1), 1.0, rtol=1e-6)

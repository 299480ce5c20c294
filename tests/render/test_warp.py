"""The dense warp against an independent per-pixel numpy reference, finite
differences, hand-computed cases and tensorflow-addons' recorded outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from morphing.render.warp import dense_image_warp, identity_grid
from tests.helpers import assert_gradients_match, reference_warp

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "tfa_dense_image_warp.npz"


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_matches_numpy_reference_on_random_inputs(dtype: type, tolerance: float) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 9, 11, 3)).astype(dtype)
    flow = (rng.normal(size=(2, 9, 11, 2)) * 3).astype(dtype)
    out = dense_image_warp(tf.constant(image), tf.constant(flow)).numpy()
    assert out.dtype == dtype
    np.testing.assert_allclose(out, reference_warp(image, flow), atol=tolerance, rtol=0)


def test_hand_computed_tiny_case() -> None:
    image = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32).reshape(1, 2, 2, 1)
    flow = np.zeros((1, 2, 2, 2), np.float32)
    flow[0, 0, 0] = (-0.5, -0.5)  # samples (0.5, 0.5): mean of all four = 1.5
    flow[0, 1, 1] = (1.0, 0.25)  # samples (0, 0.75): 0.25*0 + 0.75*1 = 0.75
    flow[0, 0, 1] = (0.0, 5.0)  # samples (0, -4): clamped to (0, 0) = 0
    out = dense_image_warp(tf.constant(image), tf.constant(flow)).numpy()[0, ..., 0]
    np.testing.assert_allclose(out, [[1.5, 0.0], [2.0, 0.75]], atol=1e-6)


def test_zero_flow_is_identity() -> None:
    image = np.random.default_rng(1).normal(size=(1, 7, 5, 4)).astype(np.float32)
    out = dense_image_warp(tf.constant(image), tf.zeros((1, 7, 5, 2))).numpy()
    np.testing.assert_array_equal(out, image)


def test_integer_shift_is_a_roll_inside_the_image() -> None:
    image = np.random.default_rng(2).normal(size=(1, 8, 10, 3)).astype(np.float32)
    flow = np.zeros((1, 8, 10, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -3.0  # content moves 2 down and 3 left
    out = dense_image_warp(tf.constant(image), tf.constant(flow)).numpy()
    rolled = np.roll(image, shift=(2, -3), axis=(1, 2))
    np.testing.assert_array_equal(out[:, 2:, :-3], rolled[:, 2:, :-3])
    assert not np.array_equal(out, image)


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(size=(1, 5, 6, 2))
    flow = rng.normal(size=(1, 5, 6, 2)) * 0.7
    weights = rng.normal(size=(1, 5, 6, 2))
    assert_gradients_match(lambda img, flw: tf.reduce_sum(dense_image_warp(img, flw) * weights), [image, flow])


@pytest.mark.parametrize("case", ["rand32", "rand64", "zero32", "int32", "far32", "big32"])
def test_matches_tensorflow_addons_outputs_and_gradients(case: str) -> None:
    data = np.load(REFERENCE)
    image = tf.constant(data[f"{case}__img"])
    flow = tf.constant(data[f"{case}__flow"])
    with tf.GradientTape() as tape:
        tape.watch([image, flow])
        out = dense_image_warp(image, flow)
        value = tf.reduce_sum(out * data[f"{case}__w"])
    grad_image, grad_flow = tape.gradient(value, [image, flow])
    tolerance = 1e-12 if case == "rand64" else 2e-6
    np.testing.assert_allclose(out.numpy(), data[f"{case}__out"], atol=tolerance, rtol=0)
    np.testing.assert_allclose(grad_image.numpy(), data[f"{case}__gimg"], atol=tolerance, rtol=0)
    np.testing.assert_allclose(grad_flow.numpy(), data[f"{case}__gflow"], atol=tolerance, rtol=0)


def test_compiled_with_xla_gives_the_same_values() -> None:
    rng = np.random.default_rng(4)
    image = tf.constant(rng.normal(size=(1, 16, 12, 3)).astype(np.float32))
    flow = tf.constant((rng.normal(size=(1, 16, 12, 2)) * 4).astype(np.float32))
    compiled = tf.function(dense_image_warp, jit_compile=True)
    np.testing.assert_allclose(compiled(image, flow).numpy(), dense_image_warp(image, flow).numpy(), atol=1e-5)


def test_identity_grid_holds_pixel_coordinates() -> None:
    grid = identity_grid(3, 4).numpy()
    assert grid.shape == (3, 4, 2)
    assert tuple(grid[2, 3]) == (2.0, 3.0) and tuple(grid[0, 1]) == (0.0, 1.0)


@pytest.mark.parametrize(
    "image_shape, flow_shape, message",
    [
        ((4, 4, 3), (1, 4, 4, 2), "image must be"),
        ((1, 4, 4, 3), (1, 4, 4, 3), "flow must be"),
        ((1, 4, 4, 3), (1, 5, 4, 2), "does not match"),
        ((1, 1, 4, 3), (1, 1, 4, 2), "at least 2x2"),
    ],
)
def test_bad_shapes_raise_clear_errors(image_shape: tuple, flow_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dense_image_warp(tf.zeros(image_shape), tf.zeros(flow_shape))


def test_nan_flow_gives_nan_output_instead_of_an_out_of_range_error() -> None:
    image = np.ones((1, 4, 5, 1), np.float32)
    flow = np.zeros((1, 4, 5, 2), np.float32)
    flow[0, 1, 2] = np.nan
    out = dense_image_warp(tf.constant(image), tf.constant(flow)).numpy()
    assert np.isnan(out[0, 1, 2, 0])
    assert np.isfinite(np.delete(out.reshape(-1), 1 * 5 + 2)).all()


def reference_bicubic_warp(image: np.ndarray, flow: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Slow, obvious cubic-convolution backward warp (OpenCV's a = -0.75): taps clamped to the image."""

    def cubic(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        if t < 2:
            return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
        return 0.0

    batch, height, width, channels = image.shape
    out = np.zeros_like(image)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                qy, qx = y - flow[b, y, x, 0], x - flow[b, y, x, 1]
                y0, x0 = int(np.floor(qy)), int(np.floor(qx))
                for j in range(y0 - 1, y0 + 3):
                    for i in range(x0 - 1, x0 + 3):
                        pixel = image[b, min(max(j, 0), height - 1), min(max(i, 0), width - 1)]
                        out[b, y, x] += cubic(qy - j) * cubic(qx - i) * pixel
    return out


def test_bicubic_matches_numpy_reference_on_random_inputs() -> None:
    rng = np.random.default_rng(10)
    image = rng.normal(size=(2, 9, 11, 3))
    flow = rng.normal(size=(2, 9, 11, 2)) * 3
    flow[0, 0, 0] = (40.0, -1e6)  # far outside: the border pixel
    out = dense_image_warp(tf.constant(image), tf.constant(flow), "bicubic").numpy()
    np.testing.assert_allclose(out, reference_bicubic_warp(image, flow), atol=1e-12, rtol=0)
    np.testing.assert_allclose(out[0, 0, 0], image[0, 0, -1], atol=1e-12)


def test_bicubic_is_opencvs_remap() -> None:
    """The render's cubic is ``cv2.remap(INTER_CUBIC, BORDER_REPLICATE)`` up to OpenCV's 1/32-pixel positions."""
    import cv2

    rng = np.random.default_rng(12)
    # A smooth picture (the 1/32-pixel rounding of positions is then far below a grey level).
    image = gaussian_blur_np(rng.normal(size=(1, 30, 40, 3)), 1.5).astype(np.float32)
    flow = (rng.normal(size=(1, 30, 40, 2)) * 4).astype(np.float32)
    flow[0, :3, :3] = (5.0, 6.0)  # beyond the top-left corner
    ours = dense_image_warp(tf.constant(image), tf.constant(flow), "bicubic").numpy()[0]
    ys, xs = np.mgrid[0:30, 0:40].astype(np.float32)
    theirs = cv2.remap(image[0], xs - flow[0, ..., 1], ys - flow[0, ..., 0], cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(ours - theirs).max() < 0.02 * np.abs(image).max()
    assert np.abs(ours - theirs).mean() < 1e-3 * np.abs(image).max()


def gaussian_blur_np(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each ``[B, H, W, C]`` image by FFT (periodic): a smooth random picture for tests."""
    height, width = images.shape[1:3]
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    response = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))[None, ..., None]
    return np.real(np.fft.ifft2(np.fft.fft2(images, axes=(1, 2)) * response, axes=(1, 2))) * 3


def test_bicubic_is_exact_at_integer_flows_and_keeps_constants_and_more_detail_than_bilinear() -> None:
    rng = np.random.default_rng(11)
    image = rng.normal(size=(1, 8, 10, 3)).astype(np.float32)
    flow = np.zeros((1, 8, 10, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.0, -2.0
    np.testing.assert_array_equal(
        dense_image_warp(tf.constant(image), tf.constant(flow), "bicubic").numpy(),
        dense_image_warp(tf.constant(image), tf.constant(flow)).numpy(),
    )
    constant = np.full((1, 8, 10, 1), 0.7)
    np.testing.assert_allclose(
        dense_image_warp(tf.constant(constant), tf.constant(flow.astype(np.float64) + 0.37), "bicubic").numpy(),
        0.7, atol=1e-12,
    )
    # Half a pixel off, bilinear sampling averages neighbours; the cubic keeps more of the detail.
    texture = rng.normal(size=(1, 32, 32, 1))
    half = np.full((1, 32, 32, 2), 0.5)
    cubic = dense_image_warp(tf.constant(texture), tf.constant(half), "bicubic").numpy()[0, 2:-2, 2:-2]
    bilinear = dense_image_warp(tf.constant(texture), tf.constant(half)).numpy()[0, 2:-2, 2:-2]
    assert cubic.std() > 1.2 * bilinear.std()


def test_unknown_interpolation_is_refused() -> None:
    with pytest.raises(ValueError, match="interpolation"):
        dense_image_warp(tf.zeros((1, 4, 4, 1)), tf.zeros((1, 4, 4, 2)), "nearest")

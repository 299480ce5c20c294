"""The map network: its convolution's gradients and the network's shapes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from morphing.network import (
    INPUT_CHANNELS,
    OUTPUT_CHANNELS,
    build_map_network,
    conv2d_same,
)
from tests.helpers import assert_gradients_match


def _conv_and_gradients(
    convolve, inputs: np.ndarray, kernel: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output and the gradients of ``sum(output * weights)`` for inputs and kernel."""
    inputs_t, kernel_t = tf.constant(inputs), tf.constant(kernel)
    with tf.GradientTape() as tape:
        tape.watch([inputs_t, kernel_t])
        outputs = convolve(inputs_t, kernel_t)
        loss = tf.reduce_sum(outputs * weights)
    input_gradient, kernel_gradient = tape.gradient(loss, [inputs_t, kernel_t])
    return outputs.numpy(), input_gradient.numpy(), kernel_gradient.numpy()


@pytest.mark.parametrize(
    ("batch", "height", "width", "channels", "features", "size"),
    [(1, 12, 10, 8, 32, 5), (2, 9, 14, 32, 16, 5), (1, 7, 7, 3, 4, 3), (2, 5, 6, 2, 3, 1)],
)
def test_conv2d_same_matches_tensorflow_values_and_gradients(
    batch: int, height: int, width: int, channels: int, features: int, size: int
) -> None:
    rng = np.random.default_rng(size * 100 + channels)
    inputs = rng.normal(size=(batch, height, width, channels)).astype(np.float32)
    kernel = rng.normal(size=(size, size, channels, features)).astype(np.float32)
    weights = rng.normal(size=(batch, height, width, features)).astype(np.float32)
    ours = _conv_and_gradients(conv2d_same, inputs, kernel, weights)
    theirs = _conv_and_gradients(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"), inputs, kernel, weights)
    for name, mine, reference in zip(("output", "input gradient", "kernel gradient"), ours, theirs):
        scale = np.abs(reference).max()
        np.testing.assert_allclose(mine, reference, atol=2e-5 * scale, err_msg=name)


def test_conv2d_same_gradients_match_finite_differences_in_float64() -> None:
    rng = np.random.default_rng(7)
    assert_gradients_match(conv2d_same, [rng.normal(size=(1, 5, 4, 2)), rng.normal(size=(3, 3, 2, 3))])


def test_conv2d_same_rejects_even_or_non_square_kernels() -> None:
    inputs = tf.zeros((1, 6, 6, 2))
    with pytest.raises(ValueError, match="odd size"):
        conv2d_same(inputs, tf.zeros((4, 4, 2, 3)))
    with pytest.raises(ValueError, match="odd size"):
        conv2d_same(inputs, tf.zeros((3, 5, 2, 3)))


def test_map_network_gives_keras_conv_outputs_and_gradients() -> None:
    """The network equals a stock Keras stack with the same weights, gradients included."""
    network = build_map_network(16, 12, features=8, layers=3, seed=2)
    stock = keras.Sequential(
        [keras.Input((16, 12, INPUT_CHANNELS))]
        + [
            layer
            for _ in range(2)
            for layer in (keras.layers.Conv2D(8, 5, padding="same"), keras.layers.LeakyReLU(negative_slope=0.2))
        ]
        + [keras.layers.Conv2D(OUTPUT_CHANNELS, 5, padding="same")]
    )
    stock.set_weights(network.get_weights())
    inputs = tf.constant(np.random.default_rng(1).normal(size=(1, 16, 12, INPUT_CHANNELS)).astype(np.float32))
    results = []
    for model in (network, stock):
        with tf.GradientTape() as tape:
            outputs = model(inputs)
            loss = tf.reduce_sum(tf.sin(outputs))
        results.append((outputs.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]))
    (ours, our_gradients), (theirs, their_gradients) = results
    assert ours.shape == (1, 16, 12, OUTPUT_CHANNELS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert len(our_gradients) == len(their_gradients) == 6
    for mine, reference in zip(our_gradients, their_gradients):
        np.testing.assert_allclose(mine, reference, atol=1e-4 * max(1.0, np.abs(reference).max()))

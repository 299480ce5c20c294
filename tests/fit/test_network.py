"""The map network: a stock Keras stack in its values and gradients, and its shapes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from morphing.fit.network import (
    INPUT_CHANNELS,
    OUTPUT_CHANNELS,
    _LeakyReLU,
    build_map_network,
    network_input,
)
from tests.helpers import assert_gradients_match


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


class TestNetworkInput:
    def test_grid_channels_run_corner_to_corner_and_images_are_scaled(self) -> None:
        rng = np.random.default_rng(3)
        source, target = (rng.uniform(-1, 1, size=(5, 7, 3)).astype(np.float32) for _ in range(2))
        stack = network_input(source, target)
        assert stack.shape == (1, 5, 7, INPUT_CHANNELS) and stack.dtype == np.float32
        np.testing.assert_allclose(stack[0, :, 0, 0], np.linspace(-1, 1, 5), atol=1e-7)  # y down the rows
        np.testing.assert_allclose(stack[0, 0, :, 1], np.linspace(-1, 1, 7), atol=1e-7)  # x along the columns
        np.testing.assert_allclose(stack[0, ..., 2:5], 0.1 * source, atol=1e-7)
        np.testing.assert_allclose(stack[0, ..., 5:8], 0.1 * target, atol=1e-7)


class TestLeakyReLU:
    def test_values_are_max_of_x_and_slope_x(self) -> None:
        values = np.array([-3.0, -0.5, 0.0, 0.25, 2.0], np.float32)
        np.testing.assert_allclose(_LeakyReLU(0.2)(tf.constant(values)).numpy(), np.where(values > 0, values, 0.2 * values))

    def test_gradient_matches_finite_differences(self) -> None:
        layer = _LeakyReLU(0.2)
        values = np.array([[-1.5, -0.3, 0.4, 2.0]])  # away from the kink at 0
        assert_gradients_match(lambda x: layer.call(x) * tf.constant([[1.0, 2.0, 3.0, 4.0]], tf.float64), [values])


class TestBuildMapNetwork:
    def test_seed_fixes_the_initial_weights(self) -> None:
        first, again, other = (build_map_network(8, 8, features=4, seed=seed) for seed in (5, 5, 6))
        for mine, same, different in zip(first.get_weights(), again.get_weights(), other.get_weights()):
            np.testing.assert_array_equal(mine, same)
            if mine.ndim == 4:  # kernels; biases start at zero whatever the seed
                assert not np.array_equal(mine, different)

    def test_layers_sets_the_depth(self) -> None:
        network = build_map_network(8, 6, features=4, layers=4)
        kernels = [w for w in network.get_weights() if w.ndim == 4]
        assert [k.shape for k in kernels] == [(5, 5, INPUT_CHANNELS, 4), (5, 5, 4, 4), (5, 5, 4, 4), (5, 5, 4, OUTPUT_CHANNELS)]
        assert network(tf.zeros([1, 8, 6, INPUT_CHANNELS])).shape == (1, 8, 6, OUTPUT_CHANNELS)

    def test_rejects_no_layers(self) -> None:
        with pytest.raises(ValueError, match="layers"):
            build_map_network(8, 8, layers=0)

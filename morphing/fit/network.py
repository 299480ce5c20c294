"""The map network: a small conv net that is only a solver for the maps.

Its input is a low-resolution stack of a coordinate grid and both images; its
output is the 16 map channels (source→target then target→source, each laid out
as in ``morphing.model.maps``) on the same grid. The network's weights are what
gradient descent moves; its convolutions make the maps smooth, which a free
per-pixel parametrisation would not be. It is thrown away after fitting.

The convolutions are Keras' own, gradients included: at the size of the maps'
grid, TensorFlow's kernels for them were the fastest of those measured (see the
README's Speed section), and they keep the traced training step small.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from morphing.model.maps import CHANNELS_PER_DIRECTION

__all__ = ["INPUT_CHANNELS", "OUTPUT_CHANNELS", "network_input", "build_map_network"]

INPUT_CHANNELS = 2 + 3 + 3
OUTPUT_CHANNELS = 2 * CHANNELS_PER_DIRECTION


def network_input(source_small: np.ndarray, target_small: np.ndarray) -> np.ndarray:
    """Stack a coordinate grid and both images: ``[1, h, w, 8] float32``.

    Args:
      source_small, target_small: ``[h, w, 3] float32 in [-1, 1]`` at grid size.

    The grid channels are y and x in [-1, 1]; the images are scaled by 0.1
    (as in the seed) so that the grid dominates the first layer.
    """
    height, width = source_small.shape[:2]
    ys, xs = np.meshgrid(
        np.linspace(-1.0, 1.0, height, dtype=np.float32),
        np.linspace(-1.0, 1.0, width, dtype=np.float32),
        indexing="ij",
    )
    stack = np.concatenate(
        [ys[..., None], xs[..., None], 0.1 * source_small, 0.1 * target_small], axis=-1
    )
    return stack[np.newaxis].astype(np.float32)


class _LeakyReLU(keras.layers.Layer):
    """``max(x, slope·x)``: Keras' LeakyReLU written so that Grappler leaves it alone.

    Grappler's remapper fuses Conv2D + BiasAdd + LeakyRelu into one op, and fails
    (logging an error line on standard error) when the LeakyRelu's gradient still
    needs the BiasAdd it removed. ``tf.maximum`` does not match that pattern.
    """

    def __init__(self, slope: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.slope = slope

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.maximum(inputs, self.slope * inputs)


def build_map_network(
    height: int, width: int, *, features: int = 32, layers: int = 3, seed: int = 0
) -> keras.Model:
    """Conv net ``[1, h, w, 8]`` → ``[1, h, w, 16]`` of 5×5 convolutions.

    ``layers - 1`` hidden convolutions of ``features`` channels with LeakyReLU(0.2),
    then a linear 5×5 convolution to the 16 map channels. ``seed`` fixes the
    initial weights.
    """
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    initializer = keras.initializers.GlorotUniform
    model_layers: list[keras.layers.Layer] = [keras.Input((height, width, INPUT_CHANNELS))]
    for index in range(layers - 1):
        model_layers += [
            keras.layers.Conv2D(features, 5, padding="same", kernel_initializer=initializer(seed + index)),
            _LeakyReLU(0.2),
        ]
    model_layers.append(
        keras.layers.Conv2D(OUTPUT_CHANNELS, 5, padding="same", kernel_initializer=initializer(seed + layers))
    )
    return keras.Sequential(model_layers, name="map_network")

"""The map network: a small conv net that is only a solver for the maps.

Its input is a low-resolution stack of a coordinate grid and both images; its
output is the 16 map channels (source→target then target→source, each laid out
as in ``morphing.maps``) on the same grid. The network's weights are what
gradient descent moves; its convolutions make the maps smooth, which a free
per-pixel parametrisation would not be. It is thrown away after fitting.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from .maps import CHANNELS_PER_DIRECTION

__all__ = ["INPUT_CHANNELS", "OUTPUT_CHANNELS", "network_input", "conv2d_same", "build_map_network"]

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


def _kernel_gradient(inputs: tf.Tensor, upstream: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The loss's gradient with respect to a ``"SAME"`` convolution's kernel.

    ``inputs``: ``[B, H, W, C]``, ``upstream``: ``[B, H, W, F]`` → ``[k, k, C, F]``.
    Tap ``(i, j)`` is one matrix product: the input shifted by ``(i, j)``
    (zero-padded), transposed, times the upstream gradient. On 2 CPU cores this
    takes 5–6 ms a layer where TensorFlow's ``Conv2DBackpropFilter`` takes
    12–14 ms for the map network's 5×5 kernels of 32 channels at 192², which
    took half of each fitting step.
    """
    radius = kernel_size // 2
    height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
    padded = tf.pad(inputs, [[0, 0], [radius, radius], [radius, radius], [0, 0]])
    flat_upstream = tf.reshape(upstream, [-1, upstream.shape[-1]])
    taps = [
        tf.matmul(tf.reshape(padded[:, i : i + height, j : j + width], [-1, channels]), flat_upstream, transpose_a=True)
        for i in range(kernel_size)
        for j in range(kernel_size)
    ]
    return tf.reshape(tf.stack(taps), [kernel_size, kernel_size, channels, upstream.shape[-1]])


@tf.custom_gradient
def conv2d_same(inputs: tf.Tensor, kernel: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]]:
    """``tf.nn.conv2d(inputs, kernel, 1, "SAME")`` with a faster kernel gradient on CPUs.

    ``inputs``: ``[B, H, W, C]``; ``kernel``: ``[k, k, C, F]``, ``k`` odd →
    ``[B, H, W, F]``. Values and gradients are the convolution's; only the way
    the kernel's gradient is computed differs (``_kernel_gradient``).
    """
    if kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"conv2d_same needs a square kernel of odd size, got {kernel.shape}")
    outputs = tf.nn.conv2d(inputs, kernel, 1, "SAME")

    def gradient(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # A "SAME" convolution with the kernel flipped and its channels swapped
        # (faster on CPUs than Conv2DBackpropInput).
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        input_gradient = tf.nn.conv2d(upstream, flipped, 1, "SAME")
        return input_gradient, _kernel_gradient(inputs, upstream, kernel.shape[0])

    return outputs, gradient


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


class _Conv2D(keras.layers.Conv2D):
    """Keras' ``Conv2D`` (stride 1, ``"same"``) through ``conv2d_same``."""

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return conv2d_same(inputs, tf.convert_to_tensor(kernel))


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
            _Conv2D(
                features, 5, padding="same", kernel_initializer=initializer(seed + index)
            ),
            _LeakyReLU(0.2),
        ]
    model_layers.append(
        _Conv2D(
            OUTPUT_CHANNELS, 5, padding="same", kernel_initializer=initializer(seed + layers)
        )
    )
    return keras.Sequential(model_layers, name="map_network")

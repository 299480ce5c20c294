"""The fit's loss terms: one small function per term, combined by weights in ``morphing.fit.fitter``.

Every term takes tensors in the fit's conventions and returns one value per
batch item (``[B]``), so the two directions of a morph, stacked as a batch of
two, are scored at once; the fit sums the items and weighs the terms.

Conventions:
  images: ``[B, H, W, C] float32`` in [-1, 1];
  flows: ``[B, H, W, 2]`` (dy, dx) in pixels, ``dense_image_warp``'s sign:
    pixel ``p`` samples ``p - flow[p]``; the *sampling map* is ``p - flow``.

Terms:
  ``local_ncc``: 1 − squared local normalised cross-correlation (windowed, as
    VoxelMorph's ``NCC``): how well the *structure* of two images agrees,
    blind to local gain and offset (two people's skin, light and white
    balance), so it drives the warp without the colour maps' help;
  ``structure``: ``local_ncc`` of luminance plus, weighted, of two
    colour-opponent channels (``opponent_colours``): an edge between two
    colours of one brightness has structure too;
  ``squared_error``: mean squared difference (what the colour maps reduce);
  ``smoothness``: mean squared gradient of a flow (diffusion regulariser);
  ``fold_penalty``: where a sampling map comes close to folding;
  ``inverse_consistency``: how far the two directions' flows are from being
    each other's inverse;
  ``point_error``: how far a flow carries user point pairs from each other.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from morphing.render.blend import luminance
from morphing.render.kernels import LUMINANCE, NCC_EPSILON, box_counts
from morphing.model.points import bilinear_reader
from morphing.render.warp import dense_image_warp, identity_grid

__all__ = [
    "LUMINANCE",
    "luminance",
    "forward_difference",
    "local_ncc",
    "opponent_colours",
    "structure_channels",
    "structure",
    "squared_error",
    "smoothness",
    "fold_penalty",
    "inverse_consistency",
    "bilinear_sampling_matrix",
    "point_error",
]



def _part(tensor: tf.Tensor, axis: int, start: int, stop: int) -> tf.Tensor:
    """``tensor`` from index ``start`` up to ``stop`` along ``axis`` (both ``>= 0``; other axes whole).

    ``tensor[:, start:stop]`` for ``axis=1``, done by ``tf.slice``: its gradient
    is a pad, while Python slicing's (``StridedSliceGrad``) is among a training
    step's slowest operations on a CPU.
    """
    begin = [0] * tensor.shape.rank
    size = [-1] * tensor.shape.rank
    begin[axis], size[axis] = start, stop - start
    return tf.slice(tensor, begin, size)


def forward_difference(tensor: tf.Tensor, axis: int) -> tf.Tensor:
    """``tensor[i + 1] - tensor[i]`` along ``axis``: one item shorter there."""
    length = tensor.shape[axis]
    return _part(tensor, axis, 1, length) - _part(tensor, axis, 0, length - 1)


def _box_mean(images: tf.Tensor, window: int) -> tf.Tensor:
    """Mean over a ``window``×``window`` box around each pixel, counting only pixels inside the image.

    A sum over the zero-padded image, done as a column pass then a row pass
    (2·window additions a pixel instead of window²: under XLA on a CPU the
    full-size structure term took 12 ms a step the square way), divided by a
    count computed here in numpy: ``avg_pool2d(..., "SAME")`` would do the
    same, but XLA then folds its count as a constant, which takes seconds at 192².
    """
    radius = window // 2
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]])
    column_sums = tf.nn.avg_pool2d(padded, [window, 1], 1, "VALID")
    sums = tf.nn.avg_pool2d(column_sums, [1, window], 1, "VALID") * float(window * window)
    counts = box_counts(height, width, window)
    return sums / tf.constant(counts[np.newaxis, :, :, np.newaxis], images.dtype)


def local_ncc(
    moved: tf.Tensor,
    fixed: tf.Tensor,
    window: int = 9,
    epsilon: float = NCC_EPSILON,
    weights: tf.Tensor | None = None,
) -> tf.Tensor:
    """``[B]``: 1 − the mean over pixels and channels of the squared local correlation.

    Args:
      moved, fixed: ``[B, H, W, C]`` images (usually luminance, ``C = 1``).
      window: side of the square window of the local statistics (odd).
      epsilon: added to the product of the variances, so flat windows
        (no structure to register) score 0 instead of dividing by 0.
      weights: ``[B, H, W, 1]`` weights of the pixels in the mean (for
        example 0 where ``moved`` was sampled outside its image); default 1.

    In each window, with ``a`` and ``b`` the two images' values there,
    ``cc = cov(a, b)² / (var(a)·var(b) + epsilon)``, in [0, 1): 1 where one is
    an affine function of the other (any gain, any offset, even inverted
    contrast), 0 where they are unrelated. Windows are cut at the image's
    border (means over the pixels inside).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    stack = tf.concat([moved, fixed, moved * moved, fixed * fixed, moved * fixed], axis=-1)
    means = _box_mean(stack, window)
    mean_a, mean_b, mean_aa, mean_bb, mean_ab = tf.split(means, 5, axis=-1)
    variance_a = tf.nn.relu(mean_aa - mean_a * mean_a)
    variance_b = tf.nn.relu(mean_bb - mean_b * mean_b)
    covariance = mean_ab - mean_a * mean_b
    correlation = covariance * covariance / (variance_a * variance_b + epsilon)
    if weights is None:
        return 1.0 - tf.reduce_mean(correlation, axis=[1, 2, 3])
    weighted = tf.reduce_mean(correlation * weights, axis=[1, 2, 3])
    return 1.0 - weighted / tf.maximum(tf.reduce_mean(weights, axis=[1, 2, 3]), 1e-12)


def opponent_colours(images: tf.Tensor) -> tf.Tensor:
    """``[B, H, W, 3]`` RGB → ``[B, H, W, 2]``: blue minus luminance and red minus luminance (the B − Y
    and R − Y differences of YCbCr, unscaled), zero on any grey."""
    return _minus_grey(images, luminance(images))


def _minus_grey(images: tf.Tensor, grey: tf.Tensor) -> tf.Tensor:
    """``opponent_colours`` of ``[B, H, W, 3]`` RGB ``images`` whose luminance ``grey`` is known."""
    red, _, blue = tf.split(images, 3, axis=-1)
    return tf.concat([blue - grey, red - grey], axis=-1)


def structure_channels(images: tf.Tensor, colour_weight: float) -> tf.Tensor:
    """``[B, H, W, 3]`` RGB → what ``structure`` compares: ``[B, H, W, 1]`` luminance when
    ``colour_weight`` is 0, else ``[B, H, W, 3]``: luminance, then ``opponent_colours``."""
    grey = luminance(images)
    return grey if colour_weight == 0 else tf.concat([grey, _minus_grey(images, grey)], axis=-1)


def structure(moved: tf.Tensor, fixed: tf.Tensor, window: int = 9, colour_weight: float = 1.0) -> tf.Tensor:
    """``[B]``: ``local_ncc`` of luminance plus ``colour_weight`` times that of each colour channel, summed.

    Args:
      moved, fixed: ``[B, H, W, C]`` ``structure_channels``: luminance (``C = 1``), or luminance and two
        colour-opponent channels (``C = 3``).
      window: side of the local statistics' window (odd).
      colour_weight: weight of each colour channel against luminance's 1.

    Each channel is scored on its own, blind to its own gain and offset; a
    channel flat in a window (a grey picture's colour) scores 1 there
    whatever the warp, so it adds nothing to the gradient: a grey pair is
    fitted as on luminance alone.
    """
    if moved.shape[-1] == 1:
        return local_ncc(moved, fixed, window)
    moved_grey, moved_colour = tf.split(moved, [1, moved.shape[-1] - 1], axis=-1)
    fixed_grey, fixed_colour = tf.split(fixed, [1, fixed.shape[-1] - 1], axis=-1)
    colour = local_ncc(moved_colour, fixed_colour, window) * float(moved.shape[-1] - 1)
    return local_ncc(moved_grey, fixed_grey, window) + colour_weight * colour


def squared_error(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[B]``: mean squared difference of two ``[B, H, W, C]`` tensors."""
    return tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])


def smoothness(flows: tf.Tensor, unit: float = 1.0, guide: tf.Tensor | None = None, edge_awareness: float = 0.0) -> tf.Tensor:
    """``[B]``: mean squared forward difference of ``[B, H, W, 2]`` flows along y and x, in ``unit``s.

    The diffusion regulariser: 0 for any constant flow, and it penalises a
    flow's gradient, so it prefers the smoothest warp that explains the images.

    With a ``guide`` (``[B, H, W, C]``, the image each flow lives on) and
    ``edge_awareness`` ``k > 0``, each difference is weighted by
    ``exp(-k·|Δguide|)`` (the guide's own difference between the same two
    pixels, averaged over channels): the flow may change across an edge of
    the picture (where one object ends and another begins) more freely than
    inside a region.
    """
    d_dy = tf.square(forward_difference(flows, 1) / unit)
    d_dx = tf.square(forward_difference(flows, 2) / unit)
    if guide is not None and edge_awareness > 0:
        d_dy *= tf.exp(-edge_awareness * tf.reduce_mean(tf.abs(forward_difference(guide, 1)), axis=-1, keepdims=True))
        d_dx *= tf.exp(-edge_awareness * tf.reduce_mean(tf.abs(forward_difference(guide, 2)), axis=-1, keepdims=True))
    return tf.reduce_mean(d_dy, axis=[1, 2, 3]) + tf.reduce_mean(d_dx, axis=[1, 2, 3])


def fold_penalty(flows: tf.Tensor, margin: float = 0.2) -> tf.Tensor:
    """``[B]``: mean of ``relu(margin - det J)²`` over each sampling map ``p - flow``.

    ``flows``: ``[B, h, w, 2]``. ``J`` uses forward differences; ``det J <= 0``
    is a fold, and the margin keeps the map away from one.
    """
    height, width = flows.shape[1], flows.shape[2]
    dy_y, dy_x = tf.unstack(_part(forward_difference(flows, 1), 2, 0, width - 1), axis=-1)
    dx_y, dx_x = tf.unstack(_part(forward_difference(flows, 2), 1, 0, height - 1), axis=-1)
    determinant = (1.0 - dy_y) * (1.0 - dx_x) - dx_y * dy_x
    return tf.reduce_mean(tf.square(tf.nn.relu(margin - determinant)), axis=[1, 2])


def inverse_consistency(flows: tf.Tensor) -> tf.Tensor:
    """``[2]``: how far composing the two flows (both orders) is from the identity.

    ``flows``: ``[2, h, w, 2]``, the S→T and T→S flows in pixels of their own
    grid. Item 0 warps the identity grid by T→S then S→T, item 1 by S→T then
    T→S; each is the mean squared distance from where it started, in units of
    half the long side.
    """
    height, width = flows.shape[1], flows.shape[2]
    grid = tf.tile(identity_grid(height, width, flows.dtype)[tf.newaxis], [2, 1, 1, 1])
    composed = dense_image_warp(dense_image_warp(grid, tf.reverse(flows, [0])), flows)
    unit = 2.0 / max(height, width)
    return tf.reduce_mean(tf.square((composed - grid) * unit), axis=[1, 2, 3])


def bilinear_sampling_matrix(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[N, height·width] float32``: row ``i`` reads a ``[height, width]`` map at ``points[i]`` (bilinear).

    ``points``: ``[N, 2]`` (y, x) in the map's pixels; positions outside are
    clamped to the border, as the dense warp does. ``matrix @ map.reshape(-1, C)``
    is the map's value at each point, and differentiable in the map.
    """
    return bilinear_reader(points, height, width).astype(np.float32)


def point_error(flow_at_points: tf.Tensor, here: tf.Tensor, there: tf.Tensor, unit: float = 1.0,
                strengths: tf.Tensor | None = None) -> tf.Tensor:
    """Mean squared distance, in ``unit``s, between where a flow carries points and where they belong.

    A flow that lives on image X samples the other image at ``p - flow(p)``;
    for user pairs ``here`` (points of X, ``[N, 2]``) and ``there`` (the
    matching points of the other image), ``flow_at_points`` is the flow read
    at ``here`` (``[N, 2]``; see ``bilinear_sampling_matrix``) and the error of
    pair ``i`` is ``|here_i - flow_at_points_i - there_i|``, its square
    weighted by ``strengths[i]`` (``[N]``; default 1). Returns a scalar.
    """
    residual = (here - flow_at_points - there) / unit
    squared = tf.reduce_sum(tf.square(residual), axis=-1)
    return tf.reduce_mean(squared if strengths is None else squared * strengths)

"""The fit's objective: the morph's loss terms, each a small function, combined by the weights of ``FitSettings``.

``morphing.fit.losses`` holds the generic measures (local NCC, smoothness, folds,
inverse consistency, point error); the terms here apply them to one training
step's maps and images, for both directions at once (item 0: S→T, item 1: T→S).
``MorphObjective`` weighs and sums them (as VoxelMorph's losses are combined by
``weights``). A new term is one function here, one weight in ``FitSettings``
and one line in ``MorphObjective.weighted_terms``.

Conventions (as in ``morphing.fit.losses``):
  images: ``[2, H, W, C] float32`` in [-1, 1], (S, T) stacked;
  flows: ``[2, h, w, 2]`` (dy, dx) in pixels of the maps' grid, the sign of
    ``dense_image_warp`` (pixel ``p`` samples ``p - flow[p]``); item 0 lives
    on T's grid and samples S, item 1 the reverse;
  grid maps: ``[2, h, w, 8]``, each direction's ``mult``, ``add``, ``warp``
    channels (``morphing.model.maps``), the warp divided by its multiplier ``w``;
  fine flows: ``[2, H, W, 2]`` in pixels of a level (or of the colour term's
    images), the part of a start's motion finer than the grid can hold (an
    optical flow's sharp edges), added to the upsampled grid flows there.
Every term returns a scalar: the sum over the two directions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from morphing.fit import losses
from morphing.model.maps import Scales
from morphing.model.points import PointPairs
from morphing.model.settings import FitSettings
from morphing.render.transition import (
    DirectionMaps,
    apply_direction,
    bilinear_matrix,
    upsample_direction,
)
from morphing.render.warp import dense_image_warp

__all__ = [
    "COMPILED_LEVEL_PIXELS",
    "PointInputs",
    "FitFields",
    "point_inputs",
    "level_structure",
    "map_colour",
    "flow_smoothness",
    "flow_consistency",
    "flow_folds",
    "point_pairs",
    "compiled_level_structure",
    "compiled_map_colour",
    "MorphObjective",
]


class PointInputs(NamedTuple):
    """User point pairs as the training step takes them (``[N, ...]``; ``N = 0`` for none).

    ``readers``: ``[2, N, h·w]`` bilinear sampling matrices on the grid of the
    points each direction's flow lives on (the target's for S→T, the
    source's for T→S); ``here``/``there``: ``[2, N, 2]`` grid pixels, where
    each direction's flow is read and where it should carry them;
    ``strengths``: ``[N]`` each pair's weight (1 for a user's pair);
    ``fading``: ``[N]`` 1 for an automatic pair, whose weight fades over the
    fit (``FitSettings.face_point_fade``), 0 for a user's.
    """

    readers: tf.Tensor
    here: tf.Tensor
    there: tf.Tensor
    strengths: tf.Tensor
    fading: tf.Tensor


def _points_on_grid(points: np.ndarray, work_shape: tuple[int, int], grid_shape: tuple[int, int]) -> np.ndarray:
    """``[N, 2]`` (y, x) working-size pixels → the same positions in pixels of the maps' grid."""
    ratio = np.array(grid_shape, np.float64) / np.array(work_shape, np.float64)
    return (points + 0.5) * ratio - 0.5


def point_inputs(points: PointPairs | None, work_shape: tuple[int, int], grid_shape: tuple[int, int],
                 automatic: int = 0, automatic_strength: float = 1.0) -> PointInputs:
    """The training step's view of ``points`` (given in pixels of the working size), whose last
    ``automatic`` pairs are automatic ones of weight ``automatic_strength`` (the others: the user's, 1)."""
    grid_h, grid_w = grid_shape
    if points is None or len(points) == 0:
        return PointInputs(tf.zeros([2, 0, grid_h * grid_w]), tf.zeros([2, 0, 2]), tf.zeros([2, 0, 2]), tf.zeros([0]),
                           tf.zeros([0]))
    fading = (np.arange(len(points)) >= len(points) - automatic).astype(np.float32)
    source = _points_on_grid(points.source, work_shape, grid_shape)
    target = _points_on_grid(points.target, work_shape, grid_shape)
    readers = np.stack([losses.bilinear_sampling_matrix(p, grid_h, grid_w) for p in (target, source)])
    return PointInputs(
        tf.constant(readers), tf.constant(np.stack([target, source]), tf.float32),
        tf.constant(np.stack([source, target]), tf.float32),
        tf.constant(np.where(fading, automatic_strength, 1.0), tf.float32),
        tf.constant(fading, tf.float32),
    )


COMPILED_LEVEL_PIXELS = 32 * 32
"""A fit whose finest pyramid level has more pixels than this is XLA-compiled: its finest level's structure
term, the colour term, and every coarser level's structure term that has at least this many pixels. At the
default 192² working size that is every level (96², 48²: 3-5x faster a step). A coarse level of a small fit
(a 64² fit's 16²) runs as the graph, and so does the whole of a fit at 32² or less (a test's, an icon's):
compiling would cost seconds more than its steps save."""


class FitFields(NamedTuple):
    """What the terms look at in one training step.

    flows: ``[2, h, w, 2]`` each direction's whole flow (global part + residual), grid pixels;
    residual: ``[2, h, w, 2]`` the network's part of it;
    grid_maps: ``[2, h, w, 8]`` the maps as stored (warp divided by ``w``);
    levels: per pyramid level, finest first, ``[2, H_l, W_l, C]`` ``losses.structure_channels`` of (S, T);
    images: ``[2, H, W, 3]`` (S, T) at the colour term's size (``FitSettings.colour_level``);
    points: user point pairs (``PointInputs``);
    progress: scalar in [0, 1), the step over the epochs;
    guides: ``[2, h, w, 3]`` the images each direction's flow lives on (T, S) at the grid's size;
    fine: per pyramid level, the start's fine flows there (``[2, H_l, W_l, 2]``, zeros for a start
    the grid holds whole); empty: none at any level.
    """

    flows: tf.Tensor
    residual: tf.Tensor
    grid_maps: tf.Tensor
    levels: tuple[tf.Tensor, ...]
    images: tf.Tensor
    points: PointInputs
    progress: tf.Tensor
    guides: tf.Tensor
    fine: tuple[tf.Tensor, ...] = ()

    def fine_at(self, level: int) -> tf.Tensor | None:
        """The fine flows at pyramid level ``level``, ``None`` when there are none."""
        return self.fine[level] if self.fine else None


def level_structure(flows: tf.Tensor, channels: tf.Tensor, window: int, fine: tf.Tensor | None = None,
                    colour_weight: float = 1.0) -> tf.Tensor:
    """Structure (``losses.structure``) of ``W(S, flow)`` against T and of ``W(T, flow')`` against S at one level.

    ``flows``: ``[2, h, w, 2]`` grid flows, upsampled here (bilinearly, in
    the level's pixels); ``channels``: ``[2, H, W, C]`` ``losses.structure_channels`` of (S, T)
    at the level's size (luminance, and colour when ``C = 3``); ``window``: the NCC window in
    the level's pixels; ``fine``: fine flows at the level's size, added to the upsampled ones;
    ``colour_weight``: the colour channels' weight against luminance's 1 (``FitSettings.structure_colour``'s
    default; unused when ``C = 1``).
    """
    height, width = channels.shape[1], channels.shape[2]
    # The images are data: no gradient to them (under XLA, whose compiled gradient
    # would otherwise scatter one into the warped image at every step).
    channels = tf.stop_gradient(channels)
    rows = tf.constant(bilinear_matrix(height, flows.shape[1]))
    columns = tf.constant(bilinear_matrix(width, flows.shape[2]))
    ratio = tf.constant([height / flows.shape[1], width / flows.shape[2]], tf.float32)
    level_flows = tf.einsum("yh,bhwc,xw->byxc", rows, flows, columns) * ratio
    if fine is not None:
        level_flows = level_flows + tf.stop_gradient(fine)
    moved = dense_image_warp(channels, level_flows)
    return tf.reduce_sum(losses.structure(moved, tf.reverse(channels, [0]), window, colour_weight))


def map_colour(grid_maps: tf.Tensor, images: tf.Tensor, scales: Scales, warp_share: float, one: tf.Tensor,
               fine: tf.Tensor | None = None) -> tf.Tensor:
    """Squared error of ``S→T(1)`` against T plus ``T→S(1)`` against S, at the images' size.

    The maps are upsampled from their grid (``fine``: fine flows at the
    images' size, added to the warp); the warp gets ``warp_share`` of this
    term's gradient (0: the colour maps alone answer for the colours, the
    warp is left to the structure term). ``one``: ``[1]`` ones, the alpha.
    """
    height, width = images.shape[1], images.shape[2]
    images = tf.stop_gradient(images)  # data, as in level_structure
    maps = upsample_direction(grid_maps, height, width)
    warp = maps.warp if warp_share == 1.0 else warp_share * maps.warp + (1.0 - warp_share) * tf.stop_gradient(maps.warp)
    if fine is not None and scales.warp != 0:
        warp = warp + tf.stop_gradient(fine) / scales.warp
    warped = apply_direction(images, DirectionMaps(maps.mult, maps.add, warp), one, scales)
    return tf.reduce_sum(losses.squared_error(warped, tf.reverse(images, [0])))


def flow_smoothness(fields: FitFields, settings: FitSettings) -> tf.Tensor:
    """Diffusion smoothness (``losses.smoothness``) of the residual flows, optionally edge-aware."""
    return tf.reduce_sum(
        losses.smoothness(fields.residual, guide=fields.guides, edge_awareness=settings.edge_awareness)
    )


def flow_consistency(fields: FitFields, settings: FitSettings) -> tf.Tensor:
    """How far the two whole flows are from being each other's inverse (``losses.inverse_consistency``)."""
    return tf.reduce_sum(losses.inverse_consistency(fields.flows))


def flow_folds(fields: FitFields, settings: FitSettings) -> tf.Tensor:
    """Where the whole flows' sampling maps come close to folding (``losses.fold_penalty``)."""
    return tf.reduce_sum(losses.fold_penalty(fields.flows, settings.fold_margin))


def point_pairs(fields: FitFields, direction: int, unit: float, fade: float) -> tf.Tensor:
    """How far direction ``direction``'s whole flow carries the user's points from their matches,
    in ``unit`` grid pixels (``losses.point_error``)."""
    points = fields.points
    at_points = points.readers[direction] @ tf.reshape(fields.flows[direction], [-1, 2])
    # Automatic pairs (strength < 1) fade out as the fit goes on: they bring the features close, then the
    # images' own structure places them (a detector scatters by a few pixels).
    strengths = points.strengths * tf.maximum(0.0, 1.0 - points.fading * fields.progress * fade)
    return losses.point_error(at_points, points.here[direction], points.there[direction], unit, strengths)


@functools.lru_cache(maxsize=8)
def compiled_level_structure(window: int, colour_weight: float) -> Callable[..., tf.Tensor]:
    """``level_structure`` with this ``window`` and ``colour_weight``, XLA-compiled (one program per shape).

    One function per argument pair for the whole process, so that every
    objective that uses it (the fitters of other fit settings: other seeds,
    epochs, point weights) runs the programs compiled for the first, rather
    than compiling its own (seconds per shape on 2 CPU cores). XLA's
    persistent cache does not help there: it finds a program by its
    function's name, which is new for each traced function.
    """
    return tf.function(functools.partial(level_structure, window=window, colour_weight=colour_weight),
                       jit_compile=True, autograph=False)


@functools.lru_cache(maxsize=8)
def compiled_map_colour(scales: Scales, warp_share: float) -> Callable[..., tf.Tensor]:
    """``map_colour`` with these ``scales`` and ``warp_share`` (its ``one`` given), XLA-compiled; one function
    per argument pair for the process, as ``compiled_level_structure``."""
    return tf.function(functools.partial(map_colour, scales=scales, warp_share=warp_share, one=tf.ones([1])),
                       jit_compile=True, autograph=False)


class MorphObjective:
    """The weighted sum of the terms for one fit's ``settings`` and ``scales``.

    The structure term at every pyramid level (but levels smaller than
    ``COMPILED_LEVEL_PIXELS``) and the colour term are XLA-compiled (by
    functions shared with the process's other objectives of the same window,
    colour weight and scales: ``compiled_level_structure``,
    ``compiled_map_colour``; each level's shape is its own program): that makes
    their warps 3-5x faster than TensorFlow's graph (at 96², a step's
    forward and backward with colour 23 ms against 5), while the network
    runs uncompiled (XLA's CPU convolutions are slower than oneDNN's).
    Compiling takes seconds, once per shape: the fitter does it in a thread
    while the training step is traced, and XLA's persistent cache keeps it.
    """

    def __init__(self, settings: FitSettings, scales: Scales, grid_shape: tuple[int, int]) -> None:
        self.settings = settings
        self.scales = scales
        self.point_unit = float(max(grid_shape)) / 100.0  # point residuals in per cent of the long side
        self._graph_structure = functools.partial(level_structure, window=settings.structure_window,
                                                  colour_weight=settings.structure_colour)
        self._level_structure = compiled_level_structure(settings.structure_window, settings.structure_colour)
        self._graph_colour = functools.partial(map_colour, scales=scales, warp_share=settings.pixel_warp_weight,
                                               one=tf.ones([1]))
        self._compiled_colour = compiled_map_colour(scales, settings.pixel_warp_weight)

    @staticmethod
    def _compiles(index: int, levels: Sequence[tf.Tensor]) -> bool:
        """Whether pyramid level ``index`` of ``levels`` (each ``[2, H, W, C]``, finest first) has its
        structure XLA-compiled (``COMPILED_LEVEL_PIXELS``)."""
        if not MorphObjective._compiled_fit(levels):
            return False
        return index == 0 or levels[index].shape[1] * levels[index].shape[2] >= COMPILED_LEVEL_PIXELS

    @staticmethod
    def _compiled_fit(levels: Sequence[tf.Tensor]) -> bool:
        """Whether a fit with these pyramid levels compiles anything (its finest level is large enough)."""
        return levels[0].shape[1] * levels[0].shape[2] > COMPILED_LEVEL_PIXELS

    def _structure_at(self, index: int, levels: Sequence[tf.Tensor]) -> Callable[..., tf.Tensor]:
        """The structure term for pyramid level ``index``: compiled (``_compiles``), else as the graph."""
        return self._level_structure if self._compiles(index, levels) else self._graph_structure

    def _colour_for(self, levels: Sequence[tf.Tensor]) -> Callable[..., tf.Tensor]:
        """The colour term of a fit with these levels: compiled (``COMPILED_LEVEL_PIXELS``), else as the graph."""
        return self._compiled_colour if self._compiled_fit(levels) else self._graph_colour

    def _colour_level(self, levels: int) -> int:
        """The pyramid level whose size the colour term works at, of ``levels``."""
        return min(self.settings.colour_level, levels - 1)

    def compiled_term_gradients(self) -> Callable[..., list[tf.Tensor]]:
        """A traced function ``(flows, levels, grid maps, images, fine flows per level) -> [d/d flows,
        d/d grid maps]`` of the XLA-compiled terms (each level's structure, colour), for compiling them
        ahead of the training step; zeros for a fit that compiles none (``COMPILED_LEVEL_PIXELS``).

        It calls the very functions the training step calls, with the same
        gradient, so XLA's programs (forward and backward of each term) are
        those the step runs: executed once, it compiles them while the step
        is still being traced. Arguments are shaped as in ``FitFields``.
        """

        @tf.function(autograph=False)
        def gradients(flows: tf.Tensor, levels: tuple[tf.Tensor, ...], grid_maps: tf.Tensor, images: tf.Tensor,
                      fine: tuple[tf.Tensor, ...]) -> list[tf.Tensor]:
            if not self._compiled_fit(levels):
                return [tf.zeros_like(flows), tf.zeros_like(grid_maps)]
            with tf.GradientTape() as tape:
                tape.watch([flows, grid_maps])
                total = self._compiled_colour(grid_maps, images, fine=fine[self._colour_level(len(levels))])
                for index, level_fine in enumerate(fine):
                    if self._compiles(index, levels):
                        total = total + self._level_structure(flows, levels[index], fine=level_fine)
            return tape.gradient(total, [flows, grid_maps])

        return gradients

    def weighted_terms(self, fields: FitFields) -> Iterator[tuple[str, tf.Tensor | float, tf.Tensor]]:
        """``(name, weight, value)`` of every term, in the order they are summed."""
        settings = self.settings
        yield "structure", settings.structure_weight, self._structure_at(0, fields.levels)(
            fields.flows, fields.levels[0], fine=fields.fine_at(0))
        # Coarse levels pull large motions into place early on, then fade, so
        # that at the end the finest level's detail decides where features sit.
        coarse_weight = settings.structure_weight * (1.0 - settings.coarse_fade * fields.progress)
        for index, level in enumerate(fields.levels[1:], 1):
            yield f"structure {index}", coarse_weight, self._structure_at(index, fields.levels)(
                fields.flows, level, fine=fields.fine_at(index))
        colour = self._colour_for(fields.levels)
        yield "colour", settings.colour_weight, colour(fields.grid_maps, fields.images,
                                                       fine=fields.fine_at(self._colour_level(len(fields.levels))))
        yield "smoothness", settings.smoothness_weight, flow_smoothness(fields, settings)
        yield "consistency", settings.consistency_weight, flow_consistency(fields, settings)
        yield "folds", settings.fold_weight, flow_folds(fields, settings)
        if fields.points.here.shape[1]:
            for direction in range(2):
                yield f"points {direction}", settings.point_weight, point_pairs(
                    fields, direction, self.point_unit, settings.face_point_fade)

    def __call__(self, fields: FitFields) -> tf.Tensor:
        """The loss: the weighted terms summed in order."""
        loss = None
        for _, weight, value in self.weighted_terms(fields):
            loss = weight * value if loss is None else loss + weight * value
        return loss

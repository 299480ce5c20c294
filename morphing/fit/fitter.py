"""Fitting: gradient descent on the map network until the maps morph S into T.

``fit_maps`` takes two same-sized float images and returns ``MorphMaps``; it
knows nothing of files or flags. A fit has two stages:

1. *start*: an affine map (or a flow) that lays the target's layout over the source's,
   chosen among candidates by evidence (``morphing.fit.starts``): through the
   point pairs when there are any (the user's, and face key points), else
   no motion, the global search (``morphing.fit.affine``), matched features
   or matched regions (``morphing.fit.regions``), whichever beats no motion
   by its margin (or, undecided, wins a short dense probe);
2. *dense*: the network's maps, with its warp added to that affine flow.
   The loss (``morphing.fit.objective``: its terms, weighted by ``FitSettings``)
   is, for both directions at once:

   - structure: local normalised cross-correlation of luminance between
     ``W(S, flow)`` and ``T`` (and ``W(T, flow')`` and ``S``), at several
     scales a factor 2 apart, so that large motions still have a gradient;
     and of two colour-opponent channels, weighted by ``structure_colour``,
     so that a shape that differs from its ground by colour alone has edges
     too. It is blind to local gain and offset, so the warp registers features
     (eyes on eyes) instead of being outbid by recolouring;
   - colour: mean squared error of ``S→T(1)`` against ``T`` (and back), at
     half the working size by default (``colour_level``: the colour maps are
     smooth, so the finest pixels add cost, not accuracy), which fits the
     multiply and add maps; it moves the warp only by the
     ``pixel_warp_weight`` share of its gradient;
   - smoothness of the warp beyond the affine part (diffusion), inverse
     consistency of the two directions, and a fold penalty, on the maps' grid;
   - point pairs: each direction's flow should carry them onto each other
     (face key points softly, fading out over the fit).

3. *polish*: given the key images at the frames' size (``frames``), the
   fitted warp is carried there (at most ``PolishSettings.size``) and the
   optical flow, searched from it, is taken where it lines the pictures up
   better and its two directions agree (``morphing.fit.polish``): the fit
   settles a motion to about a pixel of its small copies, the flow to a
   fraction of one at full size, where one scene is in both pictures.

After that, each direction's flow is bent smoothly so that it carries
every *user* point pair exactly (``points.pinned_flow``).

The fit runs at a small working size; the maps live on a coarser grid that the
network outputs and are upsampled bilinearly to whatever size is rendered.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import cv2
import keras
import numpy as np
import tensorflow as tf

from morphing.fit import losses
from morphing.fit.affine import Affine
from morphing.fit.keypoints import merge_point_pairs
from morphing.io.images import check_float_image, reduce_for_fit, resize_float_image, working_shape
from morphing.model.maps import CHANNELS_PER_DIRECTION, WARP, MorphMaps, Scales
from morphing.fit.network import build_map_network, network_input
from morphing.fit.unfold import unfold
from morphing.render.opencv import upsample_grid
from morphing.fit.polish import Polished, polished_maps
from morphing.fit.objective import FitFields, MorphObjective, PointInputs, point_inputs
from morphing.model.points import PointPairs, pinned_flow
from morphing.model.settings import FitSettings
from morphing.fit.starts import (
    NO_MOTION,
    Candidate,
    StartChoice,
    choose_start,
    middle_cost,
    probe_winner,
    start_candidates,
)

__all__ = ["FitSettings", "FitDivergedError", "MapFitter", "ShapeProgram", "fit_maps", "fit_shapes", "grid_maps_of",
           "reduce_for_fit"]


class FitDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


StepCallback = Callable[[int, float], None]


def _shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W, 3]`` float → ``[height, width, 3]`` float32, antialiased."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    resized = tf.image.resize(image[np.newaxis], [height, width], method="bilinear", antialias=True)
    return resized[0].numpy().astype(np.float32)


def grid_maps_of(raw: tf.Tensor, base_flows: tf.Tensor | None, scales: Scales) -> tf.Tensor:
    """Network output ``[1, h, w, 16]`` → ``[2, h, w, 8]`` maps: the S→T maps, then the T→S maps.

    The network's warp channels are in units of the grid's long side; this is
    where they become grid pixels. ``base_flows`` (``[2, h, w, 2]`` grid
    pixels, the global stage's flows; ``None`` for none) are added to the warp,
    divided by the warp multiplier ``w`` as the maps store it.
    """
    _, height, width, _ = raw.shape
    unit = np.ones(CHANNELS_PER_DIRECTION, np.float32)
    unit[WARP] = float(max(height, width))
    # Channels (direction, map channel) become items: a reshape and a transpose rather than
    # slices, whose gradient (StridedSliceGrad) is among the step's slowest operations on a CPU.
    directions = tf.reshape(raw, [height, width, 2, CHANNELS_PER_DIRECTION])
    maps = tf.transpose(directions, [2, 0, 1, 3]) * unit
    if base_flows is None or scales.warp == 0:
        return maps
    padding = tf.zeros([*base_flows.shape[:3], WARP.start], base_flows.dtype)
    return maps + tf.concat([padding, base_flows / scales.warp], axis=-1)


def _pyramid_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """``(h, w)`` of each level, halving from the working size; no level's short side is below 8."""
    shapes = [(height, width)]
    while len(shapes) < levels and min(shapes[-1]) >= 16:
        shapes.append((shapes[-1][0] // 2, shapes[-1][1] // 2))
    return shapes


def fit_shapes(image_shape: tuple[int, int], given_shape: tuple[int, int], settings: FitSettings
               ) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """The ``(h, w)`` of each pyramid level (the working size first) and of the maps' grid, for frames of
    ``image_shape`` fitted on images given at ``given_shape`` (never enlarged to the working size)."""
    work_h, work_w = working_shape(*image_shape, settings.working_size)
    work_h, work_w = min(work_h, given_shape[0]), min(work_w, given_shape[1])
    return _pyramid_shapes(work_h, work_w, settings.pyramid_levels), working_shape(work_h, work_w, settings.grid_size)


def _term_inputs(levels: tuple[tf.Tensor, ...], images: tf.Tensor, grid_shape: tuple[int, int]) -> tuple:
    """What ``MorphObjective.compiled_term_gradients`` is run on to compile the terms: no flow, blank maps and
    no fine flows, with the fit's ``levels`` and colour ``images`` (only their shapes matter to compiling)."""
    return (tf.zeros([2, *grid_shape, 2]), levels, tf.zeros([2, *grid_shape, CHANNELS_PER_DIRECTION]), images,
            tuple(tf.zeros([2, *level.shape[1:3], 2]) for level in levels))


def _pinned(maps: np.ndarray, here: np.ndarray, there: np.ndarray, image_shape: tuple[int, int], warp_scale: float,
            sigma: float) -> np.ndarray:
    """``[h, w, 8]`` grid maps whose flow, once upsampled to ``image_shape``, carries ``here`` (``[N, 2]``
    image pixels where the flow lives) exactly onto ``there`` (``points.pinned_flow``)."""
    grid_h, grid_w = maps.shape[:2]
    ratio = np.array([image_shape[0] / grid_h, image_shape[1] / grid_w])
    on_grid = (here + 0.5) / ratio - 0.5
    wanted = (here - there) / ratio  # the flow at here, in grid pixels
    pinned = maps.copy()
    pinned[..., WARP] = pinned_flow(warp_scale * maps[..., WARP], on_grid, wanted, sigma) / warp_scale
    return pinned


def _unfolded(flows: np.ndarray, rounds: int) -> np.ndarray:
    """``[2, h, w, 2]`` whole flows (grid pixels), each with its folds smoothed away (``unfold.unfold``)."""
    return np.stack([unfold(flow, rounds=rounds) for flow in flows])


def _upsampled(grids: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[2, h, w, C]`` both directions' grid values → ``[2, height, width, C] float32``, resampled as the
    render resamples maps (``render.opencv.upsample_grid``); values are not rescaled."""
    return np.stack([upsample_grid(grid, height, width) for grid in grids])


def fine_flows(start: Candidate, shape: tuple[int, int], grid_shape: tuple[int, int]) -> np.ndarray:
    """``[2, H, W, 2] float32``: the part of a ``pixelwise`` start's flows that its grid copy loses, at an
    ``[H, W]`` size, in its pixels (zeros for a start that is not ``pixelwise``).

    The start's own flows brought to ``[H, W]`` (area-averaged) less its grid
    flows (``Candidate.grid_flows``, as the fit adds them) upsampled there as
    the render upsamples maps: an optical flow's sharp edges, which the grid
    smooths over several of its pixels.
    """
    height, width = shape
    if not start.pixelwise or start.flows is None:
        return np.zeros((2, height, width, 2), np.float32)
    ratio = np.array([height / start.flows.shape[1], width / start.flows.shape[2]], np.float32)
    whole = np.stack([cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) * ratio
                      for flow in start.flows])
    grid = start.grid_flows(*grid_shape)
    grid_ratio = np.array([height / grid_shape[0], width / grid_shape[1]], np.float32)
    return (whole - _upsampled(grid, height, width) * grid_ratio).astype(np.float32)


def with_fine_flows(grid_maps: np.ndarray, fine: np.ndarray, warp_scale: float) -> np.ndarray:
    """``[2, h, w, 8]`` grid maps → ``[2, H, W, 8]`` maps at the size of ``fine`` (``[2, H, W, 2]``,
    ``fine_flows``): upsampled as the render would, the fine flows added to the warp (stored divided by
    the multiplier ``warp_scale``). They render as the fit saw them."""
    height, width = fine.shape[1:3]
    maps = _upsampled(grid_maps, height, width)
    ratio = np.array([height / grid_maps.shape[1], width / grid_maps.shape[2]], np.float32)
    maps[..., WARP] = maps[..., WARP] * ratio + fine / warp_scale
    return maps


class ShapeProgram(NamedTuple):
    """What a fitter builds for one working shape: the network, its optimizer, their
    initial values, the traced (partly XLA-compiled) training step and the gradients of its
    compiled terms alone (``MorphObjective.compiled_term_gradients``)."""

    network: keras.Model
    variables: list[tf.Variable]
    initial_values: list[np.ndarray]
    train_step: Callable[..., tf.Tensor]
    term_gradients: Callable[..., list[tf.Tensor]]
    traced: dict[str, object]
    """The concrete functions traced for the shape: ``"terms"`` and ``"step"`` (for inspection)."""


class MapFitter:
    """Fits morph maps with one ``scales`` and ``settings``, building each working shape's
    training step once.

    Tracing and compiling the training step takes several seconds (a third of
    a default fit on 2 CPU cores); a fitter keeps it for the next pair of the
    same working shape (the legs of a multi-key morph, the rows of a batch),
    and ``prepare`` starts it for a shape while the caller does other work.
    Every fit starts from the seed's initial weights and a fresh optimizer
    state, so it returns the same maps as a fitter of its own. It keeps every
    working shape it has seen (tens of MB each): use one per image size.
    Threads may share it: it runs one fit at a time, the others wait.
    """

    def __init__(self, scales: Scales, settings: FitSettings = FitSettings()) -> None:
        self.scales = scales
        self.settings = settings
        self._programs: dict[tuple[tuple[int, int], ...], ShapeProgram] = {}
        self._warm: set[object] = set()  # the (shapes, point count) whose training step has run
        self._busy = threading.Lock()  # held by the fit in progress
        self._building = threading.RLock()  # held while a working shape's program is built or its terms traced
        self._compiling: list[threading.Thread] = []  # compile threads that a stopped fit left running

    @property
    def programs(self) -> tuple[ShapeProgram, ...]:
        """The training programs built so far, one per working shape (for inspection)."""
        return tuple(self._programs.values())

    @property
    def warmed(self) -> int:
        """How many (shape, point count) training steps have been compiled and run once."""
        return len(self._warm)

    def _program(self, level_shapes: list[tuple[int, int]], grid_shape: tuple[int, int]) -> ShapeProgram:
        key = (*level_shapes, grid_shape)
        with self._building:
            if key not in self._programs:
                self._programs[key] = self._build(grid_shape)
            return self._programs[key]

    def prepare(self, image_shape: tuple[int, int]) -> None:
        """Trace the XLA-compiled terms of the working shape that frames of ``image_shape`` (``(H, W)``) are
        fitted at, and start compiling them in a thread; returns once they are traced (about a second on
        2 CPU cores), not compiled.

        A caller with other work before the fit (finding face points) calls
        this first: the compiling (seconds of C++ on a fresh shape, a load from
        XLA's persistent cache on a known one) then runs meanwhile, and ``fit``
        finds it done. Tracing here rather than meanwhile keeps the terms'
        names the same in every run: TensorFlow numbers traced functions from
        a counter that every tensor it makes also draws from, and XLA's
        persistent cache (``morphing.runtime.compile_cache``) finds a compiled
        program by its function's name. Nothing to do for a shape traced before.
        """
        settings = self.settings
        level_shapes, grid_shape = fit_shapes(image_shape, image_shape, settings)
        program = self._program(level_shapes, grid_shape)
        with self._building:
            if "terms" in program.traced:
                return
            # Only the shapes matter to tracing and compiling: blank images stand in for the fit's.
            blank_levels = tuple(losses.structure_channels(tf.zeros([2, h, w, 3]), settings.structure_colour)
                                 for h, w in level_shapes)
            colour_h, colour_w = level_shapes[min(settings.colour_level, len(level_shapes) - 1)]
            inputs = _term_inputs(blank_levels, tf.zeros([2, colour_h, colour_w, 3]), grid_shape)
            program.traced["terms"] = program.term_gradients.get_concrete_function(*inputs)

        def compile_terms() -> None:
            with contextlib.suppress(Exception):  # what fails here fails again in the fit, which reports it
                program.term_gradients(*inputs)

        threading.Thread(target=compile_terms, name="compile fit terms", daemon=True).start()

    def _build(self, grid_shape: tuple[int, int]) -> ShapeProgram:
        settings, scales = self.settings, self.scales
        network = build_map_network(*grid_shape, features=settings.features, layers=settings.layers, seed=settings.seed)
        optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
        optimizer.build(network.trainable_variables)
        objective = MorphObjective(settings, scales, grid_shape)

        def loss_of(
            raw: tf.Tensor, base_flows: tf.Tensor, levels: tuple[tf.Tensor, ...], images: tf.Tensor,
            points: PointInputs, progress: tf.Tensor, guides: tf.Tensor, fine: tuple[tf.Tensor, ...],
        ) -> tf.Tensor:
            residual = raw_warp(raw)
            return objective(FitFields(
                flows=base_flows + residual,  # grid pixels, both directions
                residual=residual,
                grid_maps=grid_maps_of(raw, base_flows, scales),
                levels=levels, images=images, points=points, progress=progress, guides=guides, fine=fine,
            ))

        def raw_warp(raw: tf.Tensor) -> tf.Tensor:
            """The network's warp channels as ``[2, h, w, 2]`` flows in grid pixels (times ``w``)."""
            _, warp = tf.split(grid_maps_of(raw, None, scales), [WARP.start, WARP.stop - WARP.start], axis=-1)
            return scales.warp * warp

        @tf.function(autograph=False)
        def train_step(
            inputs: tf.Tensor, base_flows: tf.Tensor, levels: tuple[tf.Tensor, ...], images: tf.Tensor,
            points: PointInputs, progress: tf.Tensor, guides: tf.Tensor, fine: tuple[tf.Tensor, ...],
        ) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_of(network(inputs, training=True), base_flows, levels, images, points, progress, guides,
                               fine)
            gradients = tape.gradient(loss, network.trainable_variables)
            optimizer.apply_gradients(zip(gradients, network.trainable_variables))
            return loss

        variables = [*network.trainable_variables, *optimizer.variables]
        return ShapeProgram(
            network, variables, [v.numpy() for v in variables], train_step, objective.compiled_term_gradients(), {})

    def fit(
        self,
        source: np.ndarray,
        target: np.ndarray,
        on_step: StepCallback | None = None,
        *,
        image_shape: tuple[int, int] | None = None,
        points: PointPairs | None = None,
        check: Callable[[], None] | None = None,
        face_points: PointPairs | None = None,
        candidates: Sequence[Candidate] | None = None,
        on_start: Callable[[StartChoice], None] | None = None,
        frames: tuple[np.ndarray, np.ndarray] | None = None,
        on_polish: Callable[[Polished], None] | None = None,
    ) -> MorphMaps:
        """Fit morph maps from ``source`` to ``target``.

        Args:
          source, target: ``[H, W, 3] float32 in [-1, 1]``, the same shape; larger
            than the working size, they are reduced to it first with the Lanczos
            filter of ``reduce_for_fit`` (the command line's copies, to within a step
            of 8 bits).
          on_step: called after each step with (step index, loss); indices rise to
            ``settings.total_steps - 1``, skipping the probes that did not run.
          image_shape: ``(H, W)`` of the frames the maps are for, when the images
            passed in were already reduced (to save memory on big photos);
            default: the images' own shape.
          points: user point pairs that the warp carries onto each other
            exactly (in pixels of any image size: they are rescaled), or ``None``.
          face_points: automatic pairs (``morphing.fit.keypoints``), in pixels of
            any image size like ``points``: a soft pull, and the global start
            is laid through them; those within reach of a user point are dropped.
          check: called between the global stage's steps and every 0.1 s while
            the training step compiles (``on_step`` follows every step); it may
            raise to stop.
          candidates: the start candidates for these images and user points,
            found ahead (``starts.leg_start_candidates``); default: found here
            (and always here when there are face points).
          on_start: called with the start chosen (``starts.StartChoice``), once.
          frames: the key images (``[H, W, 3] uint8``) at the frames' size, for the polish
            (``settings.polish``); ``None``: no polish.
          on_polish: called with what the polish did (``polish.Polished``), once, when it ran.

        Returns:
          ``MorphMaps`` on a grid whose long side is ``settings.grid_size`` (the working size after
          a ``pixelwise`` start; the polish's size when it changed the maps).

        Raises:
          FitDivergedError: when the loss stops being finite.
          ValueError: for images of different shapes.
        """
        with self._turn(check):
            return self._fit(source, target, on_step, image_shape=image_shape, points=points, check=check,
                             face_points=face_points, candidates=candidates, on_start=on_start, frames=frames,
                             on_polish=on_polish)

    @contextlib.contextmanager
    def _turn(self, check: Callable[[], None] | None):
        """Hold this fitter for one fit: its network and optimizer variables serve one fit at a time, so a
        second thread's fit waits for the first, and for a compile thread that a stopped fit left running
        (it runs a step on the same variables); ``check`` is called every 0.1 s meanwhile."""
        while not self._busy.acquire(timeout=0.1):
            if check is not None:
                check()
        try:
            while self._compiling:
                self._compiling[0].join(0.1)
                if not self._compiling[0].is_alive():
                    self._compiling.pop(0)
                elif check is not None:
                    check()
            yield
        finally:
            self._busy.release()

    def _fit(
        self, source: np.ndarray, target: np.ndarray, on_step: StepCallback | None, *,
        image_shape: tuple[int, int] | None, points: PointPairs | None, check: Callable[[], None] | None,
        face_points: PointPairs | None, candidates: Sequence[Candidate] | None,
        on_start: Callable[[StartChoice], None] | None, frames: tuple[np.ndarray, np.ndarray] | None,
        on_polish: Callable[[Polished], None] | None,
    ) -> MorphMaps:
        """``fit``, with the fitter held."""
        check_float_image(source, "source")
        check_float_image(target, "target")
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} must both be [H, W, 3]")
        settings = self.settings
        height, width = image_shape if image_shape is not None else source.shape[:2]
        # The structure is compared at several scales (factor 2 apart). Coarse
        # levels see large motions that the full-size warp's local gradient cannot.
        level_shapes, (grid_h, grid_w) = fit_shapes((height, width), source.shape[:2], settings)
        work_h, work_w = level_shapes[0]
        # Larger images are brought to the working size first, with the filter the command line's
        # ``reduce_for_fit`` uses: the fit sees the same copies whichever way it is called.
        source, target = (resize_float_image(image, work_h, work_w) for image in (source, target))

        stacks = [np.stack([_shrink(source, h, w), _shrink(target, h, w)]) for h, w in level_shapes]
        images = tf.constant(stacks[min(settings.colour_level, len(stacks) - 1)])  # for the colour term
        levels = tuple(losses.structure_channels(tf.constant(stack), settings.structure_colour) for stack in stacks)
        source_small, target_small = _shrink(source, grid_h, grid_w), _shrink(target, grid_h, grid_w)
        inputs = tf.constant(network_input(source_small, target_small))
        guides = tf.constant(np.stack([target_small, source_small]))  # the images each direction's flow lives on
        # Both sets in pixels of the frames the maps are for (each may have been given for another size).
        user = points.resized(height, width) if points is not None and len(points) else None
        face = face_points.resized(height, width) if face_points is not None and len(face_points) else None
        merged, _ = merge_point_pairs(user, face)
        working_points = merged.resized(work_h, work_w) if merged is not None else None
        automatic = 0 if merged is None else len(merged) - (0 if user is None else len(user))
        points_in_step = point_inputs(working_points, (work_h, work_w), (grid_h, grid_w), automatic,
                                      settings.face_point_weight)

        program = self._program(level_shapes, (grid_h, grid_w))
        no_fine = tuple(tf.zeros([2, h, w, 2]) for h, w in level_shapes)
        step_inputs = (inputs, tf.zeros([2, grid_h, grid_w, 2]), levels, images, points_in_step, tf.constant(0.0), guides,
                       no_fine)
        key = (tuple(level_shapes), grid_h, grid_w, len(points_in_step.here[0]))
        term_inputs = _term_inputs(levels, images, (grid_h, grid_w))
        with _compiled_meanwhile(program, step_inputs, term_inputs, self._warm, key, check, self._compiling):
            if candidates is None or face is not None:
                candidates = start_candidates(stacks[0][0], stacks[0][1], points=working_points,
                                              settings=settings.starts, check=check,
                                              search=settings.global_search) if self._global(
                ) else [Candidate(NO_MOTION, Affine.identity())]
            choice = choose_start(stacks[0][0], stacks[0][1], candidates, settings.starts)

        def descend(base_flows: tf.Tensor, fine: tuple[tf.Tensor, ...], first: int, last: int) -> float:
            """Training steps ``first`` to ``last`` of the fit; returns the mean of the last few losses."""
            recent: list[float] = []
            for step in range(first, last):
                progress = tf.constant(step / settings.epochs, tf.float32)
                loss = float(program.train_step(inputs, base_flows, levels, images, points_in_step, progress, guides,
                                                fine))
                if not math.isfinite(loss):
                    raise FitDivergedError(
                        f"fitting diverged at step {step + 1} (loss is {loss}); try smaller scales or a different seed"
                    )
                if on_step is not None:
                    on_step(next(counter), loss)
                recent = [*recent[-2:], loss]
            return float(np.mean(recent)) if recent else math.inf

        # Undecided starts (``choice.probe``) get a few dense steps each; the fit carries on from the one
        # that then shows one thing in the middle frame (``settings.probe_judge``).
        starts = choice.probe or (choice.chosen,)
        probe = min(settings.probe_steps, settings.epochs) if len(starts) > 1 else 0
        # Step indices run to settings.total_steps - 1; without a probe its steps are skipped.
        counter = iter(range(settings.total_steps - settings.epochs - (len(starts) - 1) * probe, settings.total_steps))
        outcomes = []
        for start in starts:
            for variable, value in zip(program.variables, program.initial_values):
                variable.assign(value)  # the seed's weights, a fresh optimizer
            base_flows = tf.constant(start.grid_flows(grid_h, grid_w))
            # A pixelwise start's sharp edges, which the grid cannot hold, are added at every level's size.
            fine = tuple(tf.constant(fine_flows(start, shape, (grid_h, grid_w))) for shape in level_shapes
                         ) if start.pixelwise and settings.fine_start else no_fine
            score = descend(base_flows, fine, 0, probe)
            if len(starts) > 1 and settings.probe_judge == "middle":
                warp = grid_maps_of(program.network(inputs, training=False), base_flows, self.scales)[..., WARP]
                score = middle_cost(stacks[0][0], stacks[0][1], self.scales.warp * warp.numpy(), settings.starts)
            outcomes.append((score, start, base_flows, fine, [variable.numpy() for variable in program.variables]))
        if len(outcomes) > 1:
            _, start, base_flows, fine, values = outcomes[probe_winner([item[0] for item in outcomes],
                                                                       settings.starts.probe_tie)]
            for variable, value in zip(program.variables, values):
                variable.assign(value)
            measure = "middle-frame costs" if settings.probe_judge == "middle" else "losses"
            choice = choice.probed(start, [(item[1].name, item[0]) for item in outcomes], measure)
        else:
            start, base_flows, fine = outcomes[0][1:4]
        if on_start is not None:
            on_start(choice)
        unfolding = settings.unfold_rounds > 0 and self.scales.warp != 0
        tail = min(round(settings.unfold_tail * settings.epochs), settings.epochs - probe) if unfolding else 0
        descend(base_flows, fine, probe, settings.epochs - tail)
        if tail:
            # The whole flow is unfolded while a share of the epochs is left, so that the colour maps
            # follow it; the start's flows take the change (the network's warp stays as it is).
            now = self.scales.warp * grid_maps_of(program.network(inputs, training=False), base_flows,
                                                  self.scales).numpy()[..., WARP]
            base_flows = base_flows + tf.constant(_unfolded(now, settings.unfold_rounds) - now)
            descend(base_flows, fine, settings.epochs - tail, settings.epochs)

        grid_maps = grid_maps_of(program.network(inputs, training=False), base_flows, self.scales).numpy()
        if not np.isfinite(grid_maps).all():
            raise FitDivergedError("fitting produced non-finite maps; try smaller scales")
        if start.pixelwise and settings.fine_start and self.scales.warp != 0:
            # The maps come back at the working size, with the start's fine flows the fit saw.
            grid_maps = with_fine_flows(grid_maps, fine[0].numpy(), self.scales.warp)  # level 0: the working size
        if unfolding:
            # The rest of the descent may fold a little again (and a start's fine flows fold where one thing
            # covers another): the maps never leave folded.
            grid_maps[..., WARP] = _unfolded(self.scales.warp * grid_maps[..., WARP],
                                             settings.unfold_rounds) / self.scales.warp
        forward_np, backward_np = grid_maps[0], grid_maps[1]
        sigma = settings.pin_sigma
        if frames is not None and settings.polish.enabled:
            fitted_side = max(forward_np.shape[:2])
            polished = polished_maps(MorphMaps(forward_np, backward_np, self.scales, (height, width)), *frames,
                                     settings.polish, settings.unfold_rounds)
            if on_polish is not None:
                on_polish(polished)
            forward_np, backward_np = polished.maps.forward, polished.maps.backward
            sigma = settings.pin_sigma * max(forward_np.shape[:2]) / fitted_side
        if user is not None and self.scales.warp != 0:
            # The user's pairs are instructions: each direction's flow is bent (smoothly, on the grid)
            # until it carries them exactly.
            forward_np, backward_np = (
                _pinned(maps, here, there, (height, width), self.scales.warp, sigma)
                for maps, here, there in ((forward_np, user.target, user.source), (backward_np, user.source, user.target)))
        return MorphMaps(forward=forward_np, backward=backward_np, scales=self.scales, image_shape=(height, width))

    def _global(self) -> bool:
        return self.settings.global_alignment and self.scales.warp > 0


@contextlib.contextmanager
def _compiled_meanwhile(
    program: ShapeProgram, step_inputs: tuple, term_inputs: tuple, warm: set[object], key: object,
    check: Callable[[], None] | None = None, left_running: list[threading.Thread] | None = None,
):
    """Compile ``program``'s XLA parts in a thread while its training step is traced and the body runs;
    nothing to do when ``key`` is in ``warm``.

    The thread first traces the compiled terms' gradients
    (``program.term_gradients``, a small graph) and runs them once on
    ``term_inputs``: that compiles XLA's programs (forward and backward of each
    level's structure and of colour: seconds of C++, on
    both cores) while a second thread traces the training step (a second of
    Python, one core; in a thread so that ``check`` is heard meanwhile). The
    step calls the same traced functions, so it finds their programs compiled. Then, once the step is traced (and the body, the
    global stage, runs), the thread runs one throwaway step on
    ``step_inputs`` (the graph's first run: its optimisation and setup). The terms are traced
    before the step so that TensorFlow names them the same in every run:
    XLA's persistent cache (``morphing.runtime.compile_cache``) finds a compiled
    program by those names. The throwaway step changes the network and
    optimizer variables: the fit resets them to their initial values before
    every start, so its result does not depend on this. While waiting,
    ``check`` is called every 0.1 s; if it raises, the threads are left to
    finish on their own, and put in ``left_running``: the throwaway step may
    still change the variables, so the fitter's next fit waits for them.
    """
    if key in warm:
        yield
        return
    failure: list[BaseException] = []
    terms_traced, step_traced = threading.Event(), threading.Event()
    step_ready: list[bool] = []  # set (true) once the step is traced; stays empty if tracing fails
    traced_step: list[Any] = []

    def run() -> None:
        try:
            if "terms" not in program.traced:  # else traced by ``MapFitter.prepare``
                program.traced["terms"] = program.term_gradients.get_concrete_function(*term_inputs)
            terms_traced.set()
            program.term_gradients(*term_inputs)
            step_traced.wait()
            if step_ready:
                program.train_step(*step_inputs).numpy()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(error)
        finally:
            terms_traced.set()

    def trace_step() -> None:
        try:
            traced_step.append(program.train_step.get_concrete_function(*step_inputs))
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(error)

    def wait_until(done: Callable[[float], bool]) -> None:
        """Call ``done(0.1)`` (true once what it waits up to 0.1 s for has happened) until it is true,
        checking for a stop between."""
        while not done(0.1):
            if check is not None:
                check()

    def join(thread: threading.Thread) -> None:
        """Wait for ``thread`` (``wait_until``); if a stop leaves it running, put it in ``left_running``."""
        try:
            wait_until(lambda seconds: thread.join(seconds) or not thread.is_alive())
        finally:
            if thread.is_alive() and left_running is not None:
                left_running.append(thread)

    compiler = threading.Thread(target=run, name="compile training step", daemon=True)
    compiler.start()
    try:
        wait_until(terms_traced.wait)
        if failure:
            raise failure[0]
        tracer = threading.Thread(target=trace_step, name="trace training step", daemon=True)
        tracer.start()
        join(tracer)
        if failure:
            raise failure[0]
        program.traced["step"] = traced_step[0]
        step_ready.append(True)
        step_traced.set()
        yield
    finally:
        step_traced.set()
        join(compiler)
    if failure:
        raise failure[0]
    warm.add(key)


def fit_maps(
    source: np.ndarray,
    target: np.ndarray,
    scales: Scales,
    settings: FitSettings = FitSettings(),
    on_step: StepCallback | None = None,
    *,
    image_shape: tuple[int, int] | None = None,
    points: PointPairs | None = None,
    face_points: PointPairs | None = None,
    candidates: Sequence[Candidate] | None = None,
    on_start: Callable[[StartChoice], None] | None = None,
    frames: tuple[np.ndarray, np.ndarray] | None = None,
    on_polish: Callable[[Polished], None] | None = None,
) -> MorphMaps:
    """Fit morph maps from ``source`` to ``target`` with a fitter of its own.

    ``scales`` are the map multipliers ``m``, ``a``, ``w`` of the formula and
    ``settings`` the fit's; the other arguments and the result are those of
    ``MapFitter.fit``. A batch of many pairs of one size should keep one
    ``MapFitter`` instead, so that its traced step is reused.
    """
    return MapFitter(scales, settings).fit(source, target, on_step, image_shape=image_shape, points=points,
                                           face_points=face_points, candidates=candidates, on_start=on_start,
                                           frames=frames, on_polish=on_polish)

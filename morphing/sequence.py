"""Whole morphs: every leg of a sequence of key images fitted, its timeline built, its frames yielded.

Arrays in, arrays out: no files, no flags (the command line is a loop over
this). A *sequence* is key images ``k0 → k1 → … → kn``, all ``[H, W, 3] uint8``
of one shape; leg ``i`` morphs ``k_i`` into ``k_{i+1}``. A morph of two images
is a sequence of one leg::

    from morphing import FitSettings, FrameSettings, Scales, fit_sequence, load_image, MorphFrames
    keys = [load_image("a.jpg").pixels, load_image("b.jpg").pixels]
    maps = fit_sequence(keys, Scales(), FitSettings())
    frames = MorphFrames(keys, maps, Scales(), FrameSettings(frames=50))
    for frame in frames: ...  # [H, W, 3] uint8, rendered one by one

Fitting and rendering trace and compile TensorFlow programs per image shape
(seconds on 2 CPU cores); a ``ProgramCache`` keeps them for the next legs and
the next morphs of the same shape (``shared_program_cache``: the process's own,
which morphs given none share).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from morphing.io.images import check_key_images, reduce_for_fit, resize_image, working_shape
from morphing.model.maps import MorphMaps, Scales
from morphing.model.points import PointPairs
from morphing.render.renderer import FrameRenderer, default_engine, even_pacing_alphas
from morphing.model.settings import DetailSettings, FitSettings, FrameSettings
from morphing.fit.polish import Polished
from morphing.fit.starts import Candidate, StartChoice
from morphing.model.timeline import FrameAt, build_timeline, ease, frame_alphas, paced

__all__ = [
    "ProgramCache",
    "shared_program_cache",
    "LegStepCallback",
    "sequence_keys",
    "preview_keys",
    "fit_sequence",
    "leg_alphas",
    "engine_for",
    "timeline_frames",
    "MorphFrames",
    "alpha_renderer",
    "RgbaFrames",
]

LegStepCallback = Callable[[int, int, float], None]
"""Called after every fitting step with (leg, step index, loss)."""

ShapeKey = tuple[int, int]

if TYPE_CHECKING:  # TensorFlow's: imported when a fit or a TensorFlow render asks for them
    from morphing.fit.fitter import MapFitter
    from morphing.render.xla import RenderProgram


@dataclass
class ProgramCache:
    """Fitters and render programs kept between the legs and the morphs of one process.

    Each traces and compiles once per working shape or frame shape (seconds on
    2 CPU cores), so the legs of a multi-key morph, the rows of a batch and the
    next morphs of one size pay for it once. Only the ``kept_shapes`` most
    recently used frame sizes are kept (each holds tens of MB of compiled code),
    so a batch that alternates between a few sizes compiles each once, and a
    batch of many sizes does not grow in memory; of the fitters (one per fit
    settings and scales), only the ``kept_fitters`` most recently used are
    kept, so a page tried with many seeds does not grow either. Threads may
    share one: its bookkeeping is locked, and a fitter runs one fit at a time
    (``fit.fitter.MapFitter``).
    """

    kept_shapes: int = 3
    kept_fitters: int = 4
    frame_shape: ShapeKey = (0, 0)
    recent_shapes: list[ShapeKey] = field(default_factory=list)
    fitters: dict[tuple[ShapeKey, FitSettings, Scales], MapFitter] = field(default_factory=dict)
    programs: dict[tuple[ShapeKey, str, str], RenderProgram] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def use_shape(self, frame_shape: ShapeKey) -> None:
        """Build for frames of ``frame_shape`` next; forget the least recently used shapes beyond ``kept_shapes``."""
        with self._lock:
            self.frame_shape = frame_shape
            if frame_shape in self.recent_shapes:
                self.recent_shapes.remove(frame_shape)
            self.recent_shapes.append(frame_shape)
            del self.recent_shapes[: -self.kept_shapes]
            self.fitters = {key: value for key, value in self.fitters.items() if key[0] in self.recent_shapes}
            self.programs = {key: value for key, value in self.programs.items() if key[0] in self.recent_shapes}

    def fitter(self, settings: FitSettings, scales: Scales, frame_shape: ShapeKey | None = None) -> MapFitter:
        """The fitter of ``settings`` and ``scales`` for ``frame_shape`` (made the current shape first, as by
        ``use_shape``, under the same lock, so that another thread's shape cannot come between), else for the
        current frame shape."""
        from morphing.fit.fitter import MapFitter

        with self._lock:
            if frame_shape is not None:
                self.use_shape(frame_shape)
            key = (self.frame_shape, settings, scales)
            fitter = self.fitters.pop(key, None)
            if fitter is None:
                fitter = MapFitter(scales, settings)
            self.fitters[key] = fitter  # the most recently used last
            for stale in list(self.fitters)[: -self.kept_fitters]:
                del self.fitters[stale]
            return fitter

    def program(self, interpolation: str, blend: str, detail: DetailSettings = DetailSettings(),
                frame_shape: ShapeKey | None = None) -> RenderProgram:
        """The render program of a mode for ``frame_shape`` (made the current shape first, as in ``fitter``),
        else for the current frame shape."""
        from morphing.render.xla import RenderProgram

        with self._lock:
            if frame_shape is not None:
                self.use_shape(frame_shape)
            key = (self.frame_shape, interpolation, blend, detail)
            if key not in self.programs:
                self.programs[key] = RenderProgram(interpolation, blend, detail)
            return self.programs[key]

    def engine_and_program(self, frames: FrameSettings, frame_shape: ShapeKey | None = None
                           ) -> tuple[str, RenderProgram | None]:
        """The engine that renders ``frames`` (``engine_for``) and, for TensorFlow's, its compiled program for
        ``frame_shape`` (made the current shape, as in ``fitter``), else for the current frame shape; ``None``
        for OpenCV's, which needs none (and imports no TensorFlow)."""
        engine = engine_for(frames)
        if engine != "tensorflow":
            if frame_shape is not None:
                self.use_shape(frame_shape)
            return engine, None
        return engine, self.program(frames.interpolation, frames.blend, frames.detail, frame_shape)


@functools.cache
def shared_program_cache() -> ProgramCache:
    """The process's ``ProgramCache``, which every ``Morph`` given none uses: a script, a notebook or the web
    page that morphs one pair after another of a size pays for tracing and compiling once."""
    return ProgramCache()


def sequence_keys(images: Sequence[np.ndarray], loop: bool = False) -> tuple[np.ndarray, ...]:
    """The key images of a sequence: ``images``, and the first again at the end with ``loop``."""
    return (*images, images[0]) if loop else tuple(images)


def preview_keys(keys: Sequence[np.ndarray], long_side: int) -> tuple[np.ndarray, ...]:
    """The key images reduced to ``long_side`` pixels on their long side (never enlarged).

    Maps are resolution-free, so the same fit renders at any size: a quick look at settings.
    """
    small = working_shape(*keys[0].shape[:2], long_side)
    return tuple(resize_image(key, *small) for key in keys)


def fit_sequence(
    keys: Sequence[np.ndarray],
    scales: Scales,
    settings: FitSettings = FitSettings(),
    *,
    points: Sequence[PointPairs | None] | None = None,
    cache: ProgramCache | None = None,
    on_step: LegStepCallback | None = None,
    check: Callable[[], None] | None = None,
    face_points: Sequence[PointPairs | None] | None = None,
    start_candidates: Sequence[Sequence[Candidate] | None] | None = None,
    on_start: Callable[[int, StartChoice], None] | None = None,
    on_polish: Callable[[int, Polished], None] | None = None,
) -> list[MorphMaps]:
    """The maps of every leg, fitted one after another.

    Args:
      keys: ``[H, W, 3] uint8`` key images of one shape (see ``sequence_keys``).
      scales, settings: as ``MapFitter`` takes them (``settings.working_size``
        is the long side the fit works at; images are reduced to it first).
      points: per leg, user point pairs in pixels of the key images, or ``None``.
      cache: compiled programs to reuse and keep (default: a new one).
      on_step: called after every step with (leg, step index, loss).
      check: called at safe points; it may raise to stop.
      face_points: per leg, automatic point pairs (``keypoints.leg_face_points``),
        ``None`` for a leg without; default: found here with the bundled
        face detector when ``settings.face_points`` is on.
      start_candidates: per leg, the fit's start candidates found ahead
        (``starts.leg_start_candidates`` with these keys, settings and
        points), or ``None`` to find them in the fit.
      on_start: called with (leg, the start chosen) once per leg.
      on_polish: called with (leg, ``polish.Polished``: what the polish at the keys' size did) once per
        leg when ``settings.polish`` is enabled.

    Raises:
      FitDivergedError: a leg's loss stopped being finite (named "leg N" when there are several).
    """
    check_key_images(keys)
    if len(keys) < 2:
        raise ValueError(f"a sequence needs at least 2 key images, got {len(keys)}")
    legs = len(keys) - 1
    if points is not None and len(points) != legs:
        raise ValueError(f"points are needed per leg: {legs}, got {len(points)}")
    for name, given in (("face points", face_points), ("start candidates", start_candidates)):
        if given is not None and len(given) != legs:
            raise ValueError(f"{name} are needed per leg: {legs}, got {len(given)}")
    from morphing.fit.fitter import FitDivergedError

    cache = ProgramCache() if cache is None else cache
    fitter = cache.fitter(settings, scales, keys[0].shape[:2])
    if face_points is None and settings.face_points and scales.warp > 0:
        from morphing.fit.keypoints import default_face_detector, default_second_look, leg_face_points

        fitter.prepare(keys[0].shape[:2])  # compiles while the faces are looked for
        face_points = leg_face_points(keys, default_face_detector(), default_second_look(), check)
    all_maps = []
    for leg in range(legs):
        def leg_step(step: int, loss: float, leg: int = leg) -> None:
            if on_step is not None:
                on_step(leg, step, loss)

        if check is not None:
            check()  # reducing two huge key images takes a while
        try:
            all_maps.append(fitter.fit(
                *reduce_for_fit(keys[leg], keys[leg + 1], settings.working_size), leg_step,
                image_shape=keys[0].shape[:2], points=None if points is None else points[leg], check=check,
                frames=(keys[leg], keys[leg + 1]),
                face_points=None if face_points is None else face_points[leg],
                candidates=None if start_candidates is None else start_candidates[leg],
                on_start=None if on_start is None else lambda choice, leg=leg: on_start(leg, choice),
                on_polish=None if on_polish is None else lambda polished, leg=leg: on_polish(leg, polished),
            ))
        except FitDivergedError as error:
            if legs == 1:
                raise
            raise FitDivergedError(f"leg {leg + 1}: {error}") from None
    return all_maps


def leg_alphas(
    keys: Sequence[np.ndarray],
    all_maps: Sequence[MorphMaps],
    scales: Scales,
    frames: FrameSettings,
    cache: ProgramCache | None = None,
) -> list[np.ndarray]:
    """Each leg's alphas, ``frames.frames`` of them from 0 to 1: eased, and re-timed for even change if asked.

    Easing applies to progress; even pacing (``even_pacing_alphas``, a small
    probe render of each leg) maps progress to alpha.
    """
    progress = ease(frame_alphas(frames.frames), frames.easing)
    if not frames.even_pacing:
        return [progress] * len(all_maps)
    cache = ProgramCache() if cache is None else cache
    engine, program = cache.engine_and_program(frames, keys[0].shape[:2])
    return [
        paced(progress, even_pacing_alphas(keys[leg], keys[leg + 1], maps, scales, count=frames.frames,
                                           interpolation=frames.interpolation, blend=frames.blend,
                                           program=program, engine=engine, detail_settings=frames.detail))
        for leg, maps in enumerate(all_maps)
    ]


def engine_for(frames: FrameSettings) -> str:
    """The engine that renders ``frames``: its ``engine``, with ``"auto"`` decided (``render.default_engine``)."""
    return default_engine() if frames.engine == "auto" else frames.engine


def timeline_frames(renderers: Sequence[FrameRenderer], timeline: Sequence[FrameAt]) -> Iterator[np.ndarray]:
    """Yield the ``[H, W, 3] uint8`` frame of every ``(leg, alpha)`` in ``timeline``.

    Frames are rendered lazily, a batch at a time, so memory does not grow
    with the timeline's length; a run of equal entries (a held key image) is
    rendered once. Each leg's renderer lets go of its working arrays when its
    run of frames is done, so they do not add up over a long sequence.
    """
    runs: list[tuple[int, float, int]] = []  # (leg, alpha, repeats)
    for leg, alpha in timeline:
        if runs and runs[-1][:2] == (leg, alpha):
            runs[-1] = (leg, alpha, runs[-1][2] + 1)
        else:
            runs.append((leg, alpha, 1))
    start = 0
    while start < len(runs):
        leg = runs[start][0]
        end = start
        while end < len(runs) and runs[end][0] == leg:
            end += 1
        same_leg = runs[start:end]
        try:
            for (_, _, repeats), frame in zip(same_leg, renderers[leg].frames([alpha for _, alpha, _ in same_leg])):
                for _ in range(repeats):
                    yield frame
        finally:
            renderers[leg].release_working_arrays()
        start = end


class MorphFrames:
    """The frames of a fitted sequence, in order, rendered lazily: ``len()``, ``iter()`` and ``samples()``.

    Args:
      keys: ``[H, W, 3] uint8`` key images (render at another size by passing
        ``preview_keys(keys, side)``: the maps fit any size).
      all_maps: each leg's maps (``fit_sequence``).
      scales: the multipliers to render with.
      frames: which frames, and how they are rendered.
      cache: compiled render programs to reuse and keep.
      check: called at safe points while frames are made; it may raise to stop.
      on_leg_ready: called with each leg's index once its renderer is built.

    Each frame is ``[H, W, 3] uint8``; the first is ``keys[0]`` and the last
    of a plain sequence ``keys[-1]``, pixel for pixel.
    """

    def __init__(
        self,
        keys: Sequence[np.ndarray],
        all_maps: Sequence[MorphMaps],
        scales: Scales,
        frames: FrameSettings = FrameSettings(),
        *,
        cache: ProgramCache | None = None,
        check: Callable[[], None] | None = None,
        on_leg_ready: Callable[[int], None] | None = None,
    ) -> None:
        check_key_images(keys)
        if len(all_maps) != len(keys) - 1:
            raise ValueError(f"{len(keys)} key images need {len(keys) - 1} legs of maps, got {len(all_maps)}")
        cache = ProgramCache() if cache is None else cache
        engine, program = cache.engine_and_program(frames, keys[0].shape[:2])
        self.engine = engine
        self.keys = tuple(keys)
        self.renderers = []
        for leg, maps in enumerate(all_maps):
            self.renderers.append(FrameRenderer(keys[leg], keys[leg + 1], maps, scales,
                                                interpolation=frames.interpolation, blend=frames.blend,
                                                program=program, engine=engine, check=check,
                                                detail_settings=frames.detail))
            if on_leg_ready is not None:
                on_leg_ready(leg)
        self.timeline = build_timeline(leg_alphas(keys, all_maps, scales, frames, cache), hold=frames.hold,
                                       boomerang=frames.boomerang, loop=frames.loop)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of every frame."""
        return self.keys[0].shape[:2]

    def __len__(self) -> int:
        return len(self.timeline)

    def __iter__(self) -> Iterator[np.ndarray]:
        return timeline_frames(self.renderers, self.timeline)

    def samples(self) -> Iterator[np.ndarray]:
        """A few representative frames, rendered when read: the key images, and the first leg at ¼, ½ and ¾."""
        yield from self.keys
        # Through frames(): padded to the frames' batch, so a compiled renderer is reused.
        yield from self.renderers[0].frames([0.25, 0.5, 0.75])


def alpha_renderer(source_alpha: np.ndarray, target_alpha: np.ndarray, maps: MorphMaps, scales: Scales,
                   engine: str, check: Callable[[], None] | None = None) -> FrameRenderer:
    """Renders a leg's opacity (``[H, W] uint8`` of both ends) as the colours are: moved by the same warp
    (``scales.warp``), no colour maps, bilinear (no overshoot at a hard edge), blended ``(1 - alpha, alpha)``;
    its frames are ``[H, W, 3]`` with the opacity in every channel, exact at both ends."""
    grey = [np.repeat(alpha[..., None], 3, axis=-1) for alpha in (source_alpha, target_alpha)]
    return FrameRenderer(*grey, maps, Scales(mult=0.0, add=0.0, warp=scales.warp), interpolation="bilinear",
                         blend="linear", engine=engine, check=check)


class RgbaFrames:
    """A ``MorphFrames`` with opacity: ``[H, W, 4] uint8`` frames whose alpha is each key image's opacity
    carried by the same warp and timeline (``alpha_renderer``). ``len()``, ``iter()``, ``samples()`` and
    ``shape`` as ``MorphFrames``.

    Args:
      colour: the animation's colour frames.
      key_alphas: ``[H, W] uint8`` opacity of each key image (of ``colour.keys``' shape).
      all_maps, scales: those of ``colour`` (the opacity is rendered by its engine).
    """

    def __init__(self, colour: MorphFrames, key_alphas: Sequence[np.ndarray], all_maps: Sequence[MorphMaps],
                 scales: Scales, check: Callable[[], None] | None = None) -> None:
        if len(key_alphas) != len(colour.keys):
            raise ValueError(f"{len(colour.keys)} key images need as many alphas, got {len(key_alphas)}")
        self.colour = colour
        self.key_alphas = tuple(key_alphas)
        self.alpha_renderers = [alpha_renderer(key_alphas[leg], key_alphas[leg + 1], maps, scales, colour.engine,
                                               check)
                                for leg, maps in enumerate(all_maps)]

    @property
    def shape(self) -> tuple[int, int]:
        return self.colour.shape

    def __len__(self) -> int:
        return len(self.colour)

    def __iter__(self) -> Iterator[np.ndarray]:
        opacity = timeline_frames(self.alpha_renderers, self.colour.timeline)
        for frame, alpha in zip(self.colour, opacity):
            yield np.dstack([frame, alpha[..., :1]])

    def samples(self) -> Iterator[np.ndarray]:
        """As ``MorphFrames.samples``, with their opacity."""
        alphas = [*self.key_alphas, *(a[..., 0] for a in self.alpha_renderers[0].frames([0.25, 0.5, 0.75]))]
        for frame, alpha in zip(self.colour.samples(), alphas):
            yield np.dstack([frame, alpha])

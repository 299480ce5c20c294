"""Rendering: frames of the transition from fitted maps, at the source's size.

Arrays in, arrays out. Frame ``i`` of ``n`` is at ``alpha = i / (n - 1)``; frame 0
is the source and frame ``n - 1`` the target, pixel for pixel.

By default frames are sampled with the bicubic warp and blended with the
detail-preserving blend (``morphing.render.blend``), which keeps middle frames of
photo pairs sharp (benchmarks/quality.py). ``interpolation="bilinear",
blend="linear"`` renders the formula exactly.

The render seam: a ``FrameEngine`` computes frames; two implement it, the same
frames within a grey level (``tests/render/test_engines.py`` holds them to one
contract): ``"opencv"`` (``morphing.render.opencv.OpenCVRenderer``: OpenCV's
threaded CPU kernels, the default on a CPU; it imports no TensorFlow) and
``"tensorflow"`` (``morphing.render.xla.TensorFlowRenderer``: one XLA program,
the default when TensorFlow sees a GPU). ``FrameRenderer`` picks one; adding an
engine is one class with the protocol's four members and one line in
``FrameRenderer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from morphing.model.maps import MorphMaps, Scales
from morphing.model.settings import BLENDS, RENDER_ENGINES, WARP_INTERPOLATIONS, DetailSettings

__all__ = [
    "RENDER_ENGINES",
    "FrameEngine",
    "default_engine",
    "FrameRenderer",
    "even_pacing_alphas",
]


class FrameEngine(Protocol):
    """What computes frames of one morph (built for one source, target, maps and scales).

    ``shape``: ``(H, W)`` of every frame. ``render``: ``[B]`` alphas →
    ``[B, H, W, 3] uint8``. ``frames``: the same frames yielded one by one, in
    order (``batch``: a hint for engines that render several at once).
    ``release_working_arrays``: let go of what is kept between calls. At
    alpha 0 and 1 every engine returns the source and target exactly.
    """

    shape: tuple[int, int]

    def render(self, alphas: Sequence[float] | np.ndarray) -> np.ndarray: ...

    def frames(self, alphas: Sequence[float] | np.ndarray, batch: int | None = None) -> Iterator[np.ndarray]: ...

    def release_working_arrays(self) -> None: ...


def default_engine() -> str:
    """The render engine for this process: ``"tensorflow"`` when TensorFlow sees a GPU or OpenCV is
    missing, else ``"opencv"``."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "tensorflow"
    try:
        import cv2  # noqa: F401
    except ImportError:
        return "tensorflow"
    return "opencv"


def _check_alphas(alphas: Sequence[float] | np.ndarray) -> np.ndarray:
    """``alphas`` as ``[B] float64``; ``ValueError`` for any that is not a finite number."""
    try:
        values = np.asarray(alphas, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"alphas must be numbers, got {alphas!r}") from None
    if not np.isfinite(values).all():
        raise ValueError(f"alphas must be finite numbers, got {values[~np.isfinite(values)][:3].tolist()}")
    return values


class FrameRenderer:
    """Renders frames of one morph at any alphas, with the engine asked for.

    Args:
      source, target: ``[H, W, 3] uint8`` RGB of the same shape.
      maps: fitted maps (any grid size; resampled to ``[H, W]`` once here).
      scales: the multipliers to render with (usually ``maps.scales``).
      interpolation: of the warp, ``"bicubic"`` (default) or ``"bilinear"`` (the formula's).
      blend: ``"detail"`` (default, detail-preserving) or ``"linear"`` (the formula's).
      program: a ``RenderProgram`` to share (its compiled code is reused by
        the TensorFlow engine); ``interpolation`` and ``blend``, if given too,
        must be its mode.
      engine: ``"opencv"``, ``"tensorflow"``, or ``None``/``"auto"`` for ``default_engine()``.
      check: called often while frames are made (OpenCV: before each strip);
        it may raise to stop (the command line's Ctrl-C and SIGTERM).
      detail_settings: the detail blend's bands and limits (default ``DetailSettings()``; a given
        ``program`` has its own).

    ``engine`` is then the engine's name and ``frame_engine`` the ``FrameEngine`` itself.
    """

    def __init__(
        self,
        source: np.ndarray,
        target: np.ndarray,
        maps: MorphMaps,
        scales: Scales,
        *,
        interpolation: str | None = None,
        blend: str | None = None,
        program: Any | None = None,
        engine: str | None = None,
        check: Callable[[], None] | None = None,
        detail_settings: DetailSettings | None = None,
    ) -> None:
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")
        if program is not None and (interpolation not in (None, program.interpolation)
                                    or blend not in (None, program.blend)):
            raise ValueError(
                f"the program renders {program.interpolation}/{program.blend}, not {interpolation}/{blend}"
            )
        interpolation = program.interpolation if program is not None else interpolation or "bicubic"
        blend = program.blend if program is not None else blend or "detail"
        if interpolation not in WARP_INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {WARP_INTERPOLATIONS}, got {interpolation!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        if engine not in (None, *RENDER_ENGINES):
            raise ValueError(f"engine must be one of {RENDER_ENGINES}, got {engine!r}")
        self.engine = default_engine() if engine in (None, "auto") else engine
        self.shape = source.shape[:2]
        self.frame_engine: FrameEngine
        if self.engine == "opencv":
            from morphing.render.opencv import OpenCVRenderer

            self.frame_engine = OpenCVRenderer(source, target, maps, scales, interpolation=interpolation,
                                               blend=blend, detail_settings=detail_settings, check=check)
        else:
            from morphing.render.xla import RenderProgram, TensorFlowRenderer

            if program is None:
                program = RenderProgram(interpolation, blend, detail_settings)
            self.frame_engine = TensorFlowRenderer(source, target, maps, scales, program, check)

    def render(self, alphas: Sequence[float] | np.ndarray) -> np.ndarray:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames."""
        return self.frame_engine.render(_check_alphas(alphas))

    def release_working_arrays(self) -> None:
        """Let go of the engine's working arrays kept between calls (the OpenCV render's: a few hundred MB
        at a few megapixels; made again when frames are next asked for)."""
        self.frame_engine.release_working_arrays()

    def frames(self, alphas: Sequence[float] | np.ndarray, batch: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``[H, W, 3] uint8`` frames one by one, in order.

        TensorFlow renders ``batch`` at a time (default ``render_tf.default_batch``:
        about 4 frames of 512², 1 of a 12-megapixel photo), every batch padded
        to ``batch`` alphas so that one compiled shape serves all. OpenCV
        renders two frames at a time in two threads, at most two ahead of the
        consumer, and keeps their working arrays for the next frames
        (``release_working_arrays``).
        """
        yield from self.frame_engine.frames(_check_alphas(alphas), batch)


def even_pacing_alphas(
    source: np.ndarray,
    target: np.ndarray,
    maps: MorphMaps,
    scales: Scales,
    count: int,
    *,
    probe_side: int = 96,
    interpolation: str = "bicubic",
    blend: str = "detail",
    program: Any | None = None,
    engine: str | None = None,
    detail_settings: DetailSettings | None = None,
) -> np.ndarray:
    """``count`` alphas from 0 to 1 at which consecutive frames differ equally.

    A small copy of the morph (``probe_side`` px long side; maps are
    resolution-free) is rendered at ``8 * count`` alphas; the cumulative mean
    absolute change along them is inverted at evenly spaced levels. The probe
    renders as the frames will be rendered (``interpolation``, ``blend``): a
    probe of the plain formula mis-times frames blended with ``detail``
    (pacing 1.10 instead of 1.07 untimed, benchmarks/quality.py). Pass the
    frames' ``program`` (then its mode is used) to compile the probe once for
    all the legs or pairs of one size; ``engine`` as for ``FrameRenderer``.
    """
    from morphing.io.images import resize_image, working_shape

    height, width = working_shape(*source.shape[:2], probe_side)
    small = FrameRenderer(
        resize_image(source, height, width),
        resize_image(target, height, width),
        maps,
        scales,
        interpolation=None if program is not None else interpolation,
        blend=None if program is not None else blend,
        program=program,
        engine=engine,
        detail_settings=detail_settings,
    )
    probe_alphas = np.linspace(0.0, 1.0, 8 * count + 1)
    steps = []
    previous = None
    for frame in small.frames(probe_alphas, batch=16):  # streamed: memory flat in count
        frame = frame.astype(np.float32)
        if previous is not None:
            steps.append(float(np.abs(frame - previous).mean()) + 1e-6)  # never flat, so invertible
        previous = frame
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    alphas = np.interp(np.linspace(0.0, distance[-1], count), distance, probe_alphas)
    alphas[0], alphas[-1] = 0.0, 1.0
    return alphas

"""Rendering: frames of the transition from fitted maps, at the source's size.

Arrays in, arrays out. Frame ``i`` of ``n`` is at ``alpha = i / (n - 1)``; frame 0
is the source and frame ``n - 1`` the target, pixel for pixel.

By default frames are sampled with the bicubic warp and blended with the
detail-preserving blend (``morphing.blend``), which keeps middle frames of
photo pairs sharp (benchmarks/quality.py). ``interpolation="bilinear",
blend="linear"`` renders the formula exactly.

Two engines compute the same frames (tested to agree within a grey level):
``"opencv"`` (``morphing.render_cv``: OpenCV's threaded CPU kernels, the
default on a CPU) and ``"tensorflow"`` (``RenderProgram``: one XLA program, the
default when TensorFlow sees a GPU, or when OpenCV is not installed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .blend import BLENDS, DetailSettings, EndpointDetail, detail_energy
from .maps import MorphMaps, Scales
from .settings import RENDER_ENGINES
from .threads import map_ahead
from .transition import DirectionMaps, blend_frame, upsample_direction
from .warp import WARP_INTERPOLATIONS

__all__ = [
    "RENDER_ENGINES",
    "default_engine",
    "BATCH_PIXELS",
    "default_batch",
    "caches_full_size_maps",
    "MorphInputs",
    "RenderProgram",
    "FrameRenderer",
    "even_pacing_alphas",
]

BATCH_PIXELS = 4 * 512 * 512
MAPS_CACHE_BYTES = 256 * 2**20


def _as_float(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 → float32 in [-1, 1], the same arithmetic as ``images.to_float``."""
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0


def default_engine() -> str:
    """The render engine for this process: ``"tensorflow"`` when TensorFlow sees a GPU or OpenCV is
    missing, else ``"opencv"``."""
    if tf.config.list_logical_devices("GPU"):
        return "tensorflow"
    try:
        import cv2  # noqa: F401
    except ImportError:
        return "tensorflow"
    return "opencv"


def default_batch(height: int, width: int) -> int:
    """Frames rendered per call: about ``BATCH_PIXELS`` pixels in flight (1 to 8 frames)."""
    return max(1, min(8, BATCH_PIXELS // (height * width)))


def caches_full_size_maps(height: int, width: int) -> bool:
    """Whether frames of ``[height, width]`` keep their full-size maps between calls.

    Full-size maps take 64 bytes a pixel (8 channels, 2 directions): cached for
    ordinary frames, recomputed inside each render call for huge ones (a
    12-megapixel pair then peaks at ~3.6 GB instead of ~4.3 GB, for a few
    seconds more per frame on 2 cores; see benchmarks/memory.py).
    """
    return height * width * 64 <= MAPS_CACHE_BYTES


class MorphInputs(NamedTuple):
    """One morph as a render program takes it.

    source, target: ``[1, H, W, 3] uint8``; forward, backward: each direction's
    maps at frame size, or its ``[1, h, w, 8]`` grid (upsampled inside each
    call, for huge frames); energies: ``RenderProgram.endpoint_energies``;
    scales: ``(m, a, w)`` (plain numbers: part of what is compiled).
    """

    source: tf.Tensor
    target: tf.Tensor
    forward: DirectionMaps | tf.Tensor
    backward: DirectionMaps | tf.Tensor
    energies: tuple[tuple[tf.Tensor, ...], tuple[tf.Tensor, ...]] | None
    scales: tuple[float, float, float]


class RenderProgram:
    """The compiled frame computation of one render mode, shared by renderers.

    XLA compiles it once per frame shape, grid shape, batch and scales (a few
    seconds on 2 CPU cores), so renderers that share a program (the legs of a
    multi-key morph, the rows of a batch) compile once.

    Args:
      interpolation: of the warp, ``"bicubic"`` or ``"bilinear"`` (the formula's).
      blend: ``"detail"`` (detail-preserving) or ``"linear"`` (the formula's).
    """

    def __init__(self, interpolation: str = "bicubic", blend: str = "detail") -> None:
        if interpolation not in WARP_INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {WARP_INTERPOLATIONS}, got {interpolation!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.interpolation = interpolation
        self.blend = blend
        self.detail_settings = DetailSettings() if blend == "detail" else None
        self._compiled = tf.function(self._frames, jit_compile=True, autograph=False)

    def endpoint_energies(
        self, source: tf.Tensor, target: tf.Tensor
    ) -> tuple[tuple[tf.Tensor, ...], tuple[tf.Tensor, ...]] | None:
        """The endpoints' detail energies (``blend.detail_energy``) for ``[1, H, W, 3] uint8`` images.

        Once per renderer, in plain TensorFlow (not worth an XLA compile);
        ``None`` for the linear blend.
        """
        if self.detail_settings is None:
            return None
        return (
            detail_energy(_as_float(source), self.detail_settings),
            detail_energy(_as_float(target), self.detail_settings),
        )

    def _frames(self, alphas: tf.Tensor, morph: MorphInputs) -> tf.Tensor:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames of ``morph``."""
        height, width = morph.source.shape[1], morph.source.shape[2]
        forward, backward = morph.forward, morph.backward
        if not isinstance(forward, DirectionMaps):
            forward = upsample_direction(forward, height, width)
            backward = upsample_direction(backward, height, width)
        detail = None
        if morph.energies is not None:
            detail = EndpointDetail(*morph.energies, self.detail_settings)
        frames = blend_frame(
            _as_float(morph.source),
            _as_float(morph.target),
            forward,
            backward,
            alphas,
            Scales(*morph.scales),
            interpolation=self.interpolation,
            detail=detail,
        )
        # The same rounding as images.to_uint8, inside the compiled function.
        return tf.cast(tf.clip_by_value(tf.round((frames + 1.0) * 127.5), 0.0, 255.0), tf.uint8)

    def __call__(self, alphas: tf.Tensor, morph: MorphInputs) -> tf.Tensor:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames of ``morph`` (compiled on first use of a shape)."""
        return self._compiled(alphas, morph)


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
    """Renders frames of one morph at any alphas.

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
        program: RenderProgram | None = None,
        engine: str | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")
        self._check = check
        if program is None:
            program = RenderProgram(interpolation or "bicubic", blend or "detail")
        elif interpolation not in (None, program.interpolation) or blend not in (None, program.blend):
            raise ValueError(
                f"the program renders {program.interpolation}/{program.blend}, not {interpolation}/{blend}"
            )
        if engine not in (None, *RENDER_ENGINES):
            raise ValueError(f"engine must be one of {RENDER_ENGINES}, got {engine!r}")
        self.engine = default_engine() if engine in (None, "auto") else engine
        height, width = source.shape[:2]
        self.shape = (height, width)
        self.program = program
        self._opencv = None
        if self.engine == "opencv":
            from .render_cv import OpenCVRenderer

            self._opencv = OpenCVRenderer(
                source, target, maps, scales, interpolation=program.interpolation, blend=program.blend, check=check
            )
            return
        # Kept as uint8 (a quarter of float32's memory) and converted inside the
        # compiled function.
        source_pixels = tf.constant(source[np.newaxis])
        target_pixels = tf.constant(target[np.newaxis])
        forward: DirectionMaps | tf.Tensor = tf.constant(maps.forward[np.newaxis])
        backward: DirectionMaps | tf.Tensor = tf.constant(maps.backward[np.newaxis])
        self._cached = caches_full_size_maps(height, width)
        if self._cached:
            forward = upsample_direction(forward, height, width)
            backward = upsample_direction(backward, height, width)
        self._morph = MorphInputs(
            source_pixels,
            target_pixels,
            forward,
            backward,
            program.endpoint_energies(source_pixels, target_pixels),
            astuple(scales),
        )

    def render(self, alphas: Sequence[float] | np.ndarray) -> np.ndarray:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames."""
        _check_alphas(alphas)
        if self._opencv is not None:
            return self._opencv.render(alphas)
        alphas = tf.constant(np.asarray(alphas, np.float32).reshape(-1))
        return self.program(alphas, self._morph).numpy()

    def release_working_arrays(self) -> None:
        """Let go of the OpenCV render's working arrays (a few hundred MB at a few megapixels; made again
        when frames are next asked for). Nothing to do for TensorFlow's render."""
        if self._opencv is not None:
            self._opencv.release_working_arrays()

    def frames(self, alphas: Sequence[float] | np.ndarray, batch: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``[H, W, 3] uint8`` frames one by one, in order.

        TensorFlow renders ``batch`` at a time (default ``default_batch``: about
        ``BATCH_PIXELS`` pixels in flight, 4 frames of 512², 1 of a 12-megapixel
        photo), every batch padded to ``batch`` alphas so that one compiled
        shape serves all. OpenCV renders two frames at a time in two threads
        (its kernels release the GIL), at most two ahead of the consumer; their
        working arrays are kept for the next frames (``release_working_arrays``).
        """
        alphas = _check_alphas(alphas)
        if self._opencv is not None:
            opencv, check = self._opencv, self._check
            yield from map_ahead(lambda alpha: opencv.frame(float(alpha), check), alphas, ahead=2)
            return
        if batch is None:
            batch = default_batch(*self.shape)
        for start in range(0, len(alphas), batch):
            chunk = alphas[start : start + batch]
            padded = np.pad(chunk, (0, batch - len(chunk)), mode="edge")
            yield from self.render(padded)[: len(chunk)]


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
    program: RenderProgram | None = None,
    engine: str | None = None,
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
    from .images import resize_image, working_shape

    if program is None:
        program = RenderProgram(interpolation, blend)
    height, width = working_shape(*source.shape[:2], probe_side)
    small = FrameRenderer(
        resize_image(source, height, width),
        resize_image(target, height, width),
        maps,
        scales,
        program=program,
        engine=engine,
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

"""The TensorFlow frame engine: one XLA program computes a batch of frames (the GPU path).

Arrays in, arrays out; the same frames as the OpenCV engine (``morphing.render.opencv``) within a grey level,
tested by the engine conformance tests. ``morphing.render.renderer.FrameRenderer`` picks the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from morphing.render.blend import DetailSettings, EndpointDetail, detail_energy
from morphing.model.maps import MorphMaps, Scales
from morphing.model.settings import BLENDS
from morphing.render.transition import DirectionMaps, blend_frame, upsample_direction
from morphing.render.warp import WARP_INTERPOLATIONS

__all__ = [
    "BATCH_PIXELS",
    "default_batch",
    "caches_full_size_maps",
    "MorphInputs",
    "RenderProgram",
    "TensorFlowRenderer",
]

BATCH_PIXELS = 4 * 512 * 512
MAPS_CACHE_BYTES = 256 * 2**20


def _as_float(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 → float32 in [-1, 1], the same arithmetic as ``images.to_float``."""
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0


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

    def __init__(self, interpolation: str = "bicubic", blend: str = "detail",
                 detail_settings: DetailSettings | None = None) -> None:
        if interpolation not in WARP_INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {WARP_INTERPOLATIONS}, got {interpolation!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.interpolation = interpolation
        self.blend = blend
        self.detail_settings = (detail_settings or DetailSettings()) if blend == "detail" else None
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

    def traces(self) -> int:
        """How many times the frame computation was traced (one per frame shape, batch and scales)."""
        return int(self._compiled.experimental_get_tracing_count())

    def __call__(self, alphas: tf.Tensor, morph: MorphInputs) -> tf.Tensor:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames of ``morph`` (compiled on first use of a shape)."""
        return self._compiled(alphas, morph)


class TensorFlowRenderer:
    """A ``FrameEngine``: frames of one morph from a compiled ``RenderProgram``.

    Args:
      source, target: ``[H, W, 3] uint8`` RGB of one shape.
      maps: fitted maps (any grid size); scales: the multipliers to render with.
      program: the compiled frame computation (shared between renderers of one mode).
      check: unused (one XLA call cannot be interrupted); kept for the engines' common signature.
    """

    def __init__(self, source: np.ndarray, target: np.ndarray, maps: MorphMaps, scales: Scales,
                 program: RenderProgram, check: Callable[[], None] | None = None) -> None:
        height, width = source.shape[:2]
        self.shape = (height, width)
        self.program = program
        # Kept as uint8 (a quarter of float32's memory) and converted inside the compiled function.
        source_pixels = tf.constant(source[np.newaxis])
        target_pixels = tf.constant(target[np.newaxis])
        forward: DirectionMaps | tf.Tensor = tf.constant(maps.forward[np.newaxis])
        backward: DirectionMaps | tf.Tensor = tf.constant(maps.backward[np.newaxis])
        self.caches_maps = caches_full_size_maps(height, width)
        if self.caches_maps:
            forward = upsample_direction(forward, height, width)
            backward = upsample_direction(backward, height, width)
        self._morph = MorphInputs(source_pixels, target_pixels, forward, backward,
                                  program.endpoint_energies(source_pixels, target_pixels), astuple(scales))

    def render(self, alphas: Sequence[float] | np.ndarray) -> np.ndarray:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames."""
        return self.program(tf.constant(np.asarray(alphas, np.float32).reshape(-1)), self._morph).numpy()

    def frames(self, alphas: Sequence[float] | np.ndarray, batch: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames in order, ``batch`` at a time (default ``default_batch``), every batch padded to
        ``batch`` alphas so that one compiled shape serves all."""
        alphas = np.asarray(alphas, np.float64).reshape(-1)
        if batch is None:
            batch = default_batch(*self.shape)
        for start in range(0, len(alphas), batch):
            chunk = alphas[start : start + batch]
            padded = np.pad(chunk, (0, batch - len(chunk)), mode="edge")
            yield from self.render(padded)[: len(chunk)]

    def release_working_arrays(self) -> None:
        """Nothing to let go of: the compiled program holds no per-frame arrays."""

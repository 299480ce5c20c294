"""Helpers shared by the tests: a finite-difference gradient check, slow numpy references and
synthetic inputs with a known answer."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from morphing.fit.affine import Affine, normalised_grid
from morphing.io.images import to_float
from morphing.model.maps import MorphMaps, Scales
from morphing.testing.scenes import Scene, Shape, random_texture, sample_bilinear


def assert_gradients_match(
    function: Callable[..., tf.Tensor], inputs: Sequence[np.ndarray], *, tolerance: float = 1e-6, delta: float = 1e-6
) -> None:
    """``function``'s analytic gradients with respect to every input equal central finite differences.

    The inputs are cast to float64 (so the differences are accurate); the
    largest absolute difference between the two Jacobians must be below
    ``tolerance`` times the largest Jacobian entry (and the Jacobian must not
    be all zeros, which would pass trivially).
    """
    tensors = [tf.constant(np.asarray(value, np.float64)) for value in inputs]
    theoretical, numerical = tf.test.compute_gradient(function, tensors, delta=delta)
    for analytic, finite in zip(theoretical, numerical):
        scale = max(float(np.abs(finite).max()), 1e-12)
        assert np.abs(finite).max() > 0, "the gradient is all zeros: nothing was checked"
        assert np.abs(analytic - finite).max() <= tolerance * scale, np.abs(analytic - finite).max() / scale


def reference_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Slow, obvious bilinear backward warp: one pixel at a time, border-clamped."""
    batch, height, width, channels = image.shape
    out = np.zeros_like(image)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                qy = y - flow[b, y, x, 0]
                qx = x - flow[b, y, x, 1]
                y0 = int(min(max(np.floor(qy), 0), height - 2))
                x0 = int(min(max(np.floor(qx), 0), width - 2))
                ty = min(max(qy - y0, 0.0), 1.0)
                tx = min(max(qx - x0, 0.0), 1.0)
                out[b, y, x] = (
                    (1 - ty) * (1 - tx) * image[b, y0, x0]
                    + (1 - ty) * tx * image[b, y0, x0 + 1]
                    + ty * (1 - tx) * image[b, y0 + 1, x0]
                    + ty * tx * image[b, y0 + 1, x0 + 1]
                )
    return out


def moved_texture(angle: float, scale: float, shift: tuple[float, float], size: int = 96):
    """A texture and a copy that shows it at the known affine sampling map (normalised)."""
    rng = np.random.default_rng(2)
    texture = (random_texture(rng, size, size, falloff=1.5) + 1) / 2
    truth = Affine(similarity(angle, scale), np.asarray(shift))
    # The target at pixel p shows the source at the map applied to p's normalised position.
    sampled = truth.apply(normalised_grid(size, size)) * (size / 2) + size / 2 - 0.5
    target = sample_bilinear(texture, sampled)
    return to_float(np.rint(texture * 255).astype(np.uint8)), to_float(np.rint(target * 255).astype(np.uint8)), truth


def random_pair(shape=(12, 16, 3), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


def random_maps(grid=(4, 5), image_shape=(12, 16), scale=3.0, seed=1) -> MorphMaps:
    rng = np.random.default_rng(seed)
    return MorphMaps(
        forward=(rng.normal(size=(*grid, 8)) * scale).astype(np.float32),
        backward=(rng.normal(size=(*grid, 8)) * scale).astype(np.float32),
        scales=Scales(),
        image_shape=image_shape,
    )


def similarity(angle: float, scale: float) -> np.ndarray:
    return scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def run_cli(*argv: str | Path) -> tuple[int, str]:
    """The command line in-process: (exit status, standard error)."""
    from morphing.cli import main

    err = io.StringIO()
    status = main([str(a) for a in argv], stdout=io.StringIO(), stderr=err)
    return status, err.getvalue()


def run_tool(*argv: str | Path) -> tuple[int, str, str]:
    """The command line in-process: (exit status, standard output, standard error)."""
    from morphing.cli import main

    out, err = io.StringIO(), io.StringIO()
    status = main([str(a) for a in argv], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def tool_pixels(path: Path) -> np.ndarray:
    """An image file's pixels as ``[H, W, 3] uint8``."""
    return np.asarray(Image.open(path).convert("RGB"))


def slow_correlation(first: np.ndarray, second: np.ndarray, window: int) -> np.ndarray:
    """``render.kernels.local_correlation`` written plainly: each pixel's box cut at the border, float64."""
    half = window // 2
    height, width = first.shape
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            box = (slice(max(0, y - half), y + half + 1), slice(max(0, x - half), x + half + 1))
            a, b = first[box].astype(np.float64), second[box].astype(np.float64)
            covariance = (a * b).mean() - a.mean() * b.mean()
            out[y, x] = covariance ** 2 / (a.var() * b.var() + 1e-5)
    return out


def grainy(image: np.ndarray, levels: float, seed: int = 0) -> np.ndarray:
    """``image`` (``[h, w, 3] float32`` in [-1, 1]) with Gaussian grain of ``levels`` 8-bit levels, rounded to 8
    bits as a camera's file would be."""
    pixels = (image + 1.0) * 127.5 + np.random.default_rng(seed).normal(0.0, levels, image.shape)
    return to_float(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def square_over_changing_gradients() -> tuple[np.ndarray, np.ndarray]:
    """A scene of ``benchmarks/quality.py``'s fresh draw 16026 (single set, scene 2) as its two ends,
    ``[256, 256, 3] uint8``: one square moves, turns and recolours over a vertical gradient whose colours
    change. Searched by cost alone, the two gradients line up under a large turn and scale, or a
    collapse of the picture onto a line."""
    scene = Scene(256, 256,
                  (Shape(4, (0.4565757791347112, 0.4338752438465299), 0.11087899798886691, 0.31336277832382886,
                         (0.3442540023534143, 0.06113875770304444, 0.916148638998095)),),
                  (Shape(4, (0.6050379233668794, 0.5064869043327137), 0.14729917304842094, 0.06856558311204478,
                         (0.41109715737152, 0.8947738485427672, 0.3867230701344559)),),
                  ((0.5500782608337019, 0.5045030354154828, 0.589328717022732),
                   (0.6711739948720992, 0.45313682123906335, 0.9430627262630693)),
                  ((0.43746472261628233, 0.21437268211304056, 0.164905030030185),
                   (0.6879302643430018, 0.9330622769288751, 0.19566199149883423)))
    return scene.render(0.0), scene.render(1.0)

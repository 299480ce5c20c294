"""Rendering on the CPU with OpenCV: the frames of ``morphing.render.renderer``, without TensorFlow.

TensorFlow's render (``RenderProgram``) gathers every tap of the cubic warp and
every blur tap as tensors under XLA; on a CPU that costs ~0.7 s for a
2.8-megapixel frame. The same operation in OpenCV's vectorised, threaded
kernels (``remap``, ``sepFilter2D``, ``resize``) is several times faster, so
this is the render on a CPU; TensorFlow's stays the render on a GPU. The two
are tested to agree (``tests/render/test_opencv.py``, ``tests/render/test_engines.py``).

Convention (the same as ``morphing.render.renderer``): images are ``[H, W, 3] uint8``
in and out, computed as float32 in [-1, 1]. For one direction (image ``X``, its
maps at frame size, amount ``t``: ``alpha`` for source→target, ``1 - alpha``
for target→source)::

    coloured = X + t·paint,  paint = m·mult·X + a·add     (= X·(1 + t·m·mult) + t·a·add)
    warped[y, x] = coloured(y - t·w·warp[y, x, 0], x - t·w·warp[y, x, 1])

sampled by OpenCV's cubic (``a = -0.75``, ``morphing.render.warp`` uses the same) or
bilinear interpolation, the border repeated. A frame is
``(1 - alpha)·forward + alpha·backward``, then the detail-preserving blend of
``morphing.render.blend`` (same bands, windows, pooling and limits). Frame 0 is the
source and the last frame the target, pixel for pixel.

Frames are computed in horizontal strips of about ``STRIP_PIXELS`` pixels,
each with enough rows of margin (``_DetailPlan.margin``) that every blur and
pooled grid sees what it would see in the whole frame; so memory beyond the
renderer's own full-size arrays stays bounded, whatever the frame size.

Differences from TensorFlow's render, all below a grey level: OpenCV
quantises sampling positions to 1/32 pixel, and sums in another order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from morphing.render.kernels import (
    BORDER_FEATHER,
    BORDER_FLOOR,
    LUMINANCE,
    fitting_kernel_size,
    gaussian_kernel,
    pool_factor,
    pool_sizes,
    pooled,
    pooled_sigma,
    unpooled,
)
from morphing.io.images import to_float
from morphing.model.maps import ADD, MULT, WARP, MorphMaps, Scales
from morphing.model.settings import BLENDS, WARP_INTERPOLATIONS, DetailSettings
from morphing.runtime.concurrency import map_ahead

__all__ = ["CACHE_BYTES", "STRIP_PIXELS", "GridRows", "OpenCVRenderer", "expected_work", "upsample_grid"]

_INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}
CACHE_BYTES = 2**30
"""Frames whose full-size paint and flows (``CACHED_BYTES_PER_PIXEL``) fit in this many bytes keep them;
bigger ones (over ~27 megapixels) make them for each strip, so memory stays bounded whatever the size."""
CACHED_BYTES_PER_PIXEL = 40
STRIP_PIXELS = 2**20
"""About how many output pixels one strip of a frame holds (at least 4 margins' worth of rows). Each frame
in flight keeps its strip's intermediates (``SCRATCH_BYTES_PER_PIXEL`` a pixel of a strip and its margins);
strips much smaller than this spend more on the margins, larger ones more on fresh memory (benchmarks/speed.py)."""
SCRATCH_BYTES_PER_PIXEL = 150
WARP_CHUNK_PIXELS = 2**16
"""About how many output pixels one ``cv2.remap`` call warps (at least 8 rows): chunks this small keep the
sampling maps and the warped rows in the core's cache until they are blended (a 2.8 MP frame: ~10 % faster
than warping a strip's rows at once)."""
DEFAULT_MARGIN = 64
"""The detail blend's margin (``_DetailPlan.margin``) with the default settings, for ``expected_work``."""


class GridRows:
    """``[h, w, C]`` grid maps resampled to ``[height, width, C]`` float32, any block of rows at a time.

    Bilinear with half-pixel centres, edges clamped: ``transition.bilinear_matrix``
    (and ``tf.image.resize(method="bilinear")``). The columns are resampled
    once (``[h, width, C]``, small); each block of rows then mixes two of them.
    """

    def __init__(self, grid: np.ndarray, height: int, width: int) -> None:
        grid = np.ascontiguousarray(grid, np.float32)
        self._grid_height, self._height = grid.shape[0], height
        self._wide = cv2.resize(grid, (width, grid.shape[0]), interpolation=cv2.INTER_LINEAR)
        self._wide = self._wide.reshape(grid.shape[0], width, -1)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``: ``[stop - start, width, C]``."""
        position = (np.arange(start, stop) + 0.5) * self._grid_height / self._height - 0.5
        position = np.clip(position, 0.0, self._grid_height - 1)
        lower = np.floor(position).astype(np.int64)
        upper = np.minimum(lower + 1, self._grid_height - 1)
        weight = (position - lower).astype(np.float32)[:, np.newaxis, np.newaxis]
        return self._wide[lower] * (np.float32(1.0) - weight) + self._wide[upper] * weight


def upsample_grid(grid: np.ndarray, height: int, width: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of ``[h, w, C]`` grid maps resampled to ``[height, width, C]`` (``GridRows``)."""
    return GridRows(grid, height, width)(start, height if stop is None else stop)


SECONDS_PER_PIXEL = (4e-8, 2.4e-7)
"""Rough seconds per frame pixel of the default render on 2 cores, with the full-size maps kept (2.8 MP
in ~0.1 s, benchmarks/speed.py) and remade for each strip (81 MP in ~20 s), for ``expected_work``."""


def expected_work(height: int, width: int, frames: int) -> tuple[float, float]:
    """Rough ``(seconds, bytes)`` that rendering ``frames`` frames of ``[height, width]`` takes on a CPU.

    Bytes: the two endpoints, the kept full-size maps (``CACHE_BYTES`` at most)
    and two frames' strips in flight; not counting TensorFlow, the fit and the encoder.
    """
    pixels = height * width
    kept = pixels * CACHED_BYTES_PER_PIXEL <= CACHE_BYTES
    seconds = pixels * frames * SECONDS_PER_PIXEL[0 if kept else 1]
    strip_rows = min(_default_strip_rows(width, DEFAULT_MARGIN) + 2 * DEFAULT_MARGIN, height)
    scratch = strip_rows * width * SCRATCH_BYTES_PER_PIXEL
    return seconds, 6.0 * pixels + (pixels * CACHED_BYTES_PER_PIXEL if kept else 0) + 2 * scratch


def _default_strip_rows(width: int, margin: int) -> int:
    """Rows of a strip: about ``STRIP_PIXELS`` pixels, at least four margins, a multiple of 4."""
    return 4 * math.ceil(max(4 * margin, STRIP_PIXELS // width, 4) / 4)


class ScratchArrays:
    """The arrays for the intermediates of one frame in flight, kept from strip to strip and frame to frame.

    Writing every intermediate into an array kept from the last strip rather
    than a fresh one spares the kernel mapping and zeroing new pages for each
    (hundreds of megabytes a frame at a few megapixels: most of the render's
    system time). ``scratch(name, shape)`` is a ``shape`` view of the array
    kept under ``name`` (its first rows), contents undefined; one name holds
    one value at a time. With ``even=True`` the kept array has a spare row and
    column where ``shape``'s sides are odd, so that ``halve`` can pool the
    view without copying it first.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(
        self, name: str, shape: tuple[int, ...], dtype: type = np.float32, *, even: bool = False
    ) -> np.ndarray:
        height, width = shape[:2]
        wanted = (height + height % 2, width + width % 2, *shape[2:]) if even else tuple(shape)
        kept = self._arrays.get(name)
        if kept is None or kept.shape[0] < wanted[0] or kept.shape[1:] != wanted[1:] or kept.dtype != dtype:
            kept = self._arrays[name] = np.empty(wanted, dtype)
        return kept[:height, :width]


def _evened(image: np.ndarray) -> np.ndarray | None:
    """The even-sided array that ``image`` (odd sides) begins, its last row and column repeated into the
    spare ones, if ``image`` is such a view (``ScratchArrays(..., even=True)``); else ``None``."""
    height, width = image.shape[:2]
    base = image.base
    if (
        not isinstance(base, np.ndarray) or base.ndim != image.ndim or base.strides != image.strides
        or base.shape[0] < height + height % 2 or base.shape[1:] != (width + width % 2, *image.shape[2:])
        or base.ctypes.data != image.ctypes.data
    ):
        return None
    even = base[: height + height % 2]
    if height % 2:
        even[height, :width] = even[height - 1, :width]
    if width % 2:
        even[:, width] = even[:, width - 1]
    return even


def _blur(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Blur ``[H, W]`` or ``[H, W, C]`` float32 by the 1-D ``kernel`` along x then y, reflected borders."""
    return cv2.sepFilter2D(image, -1, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT_101)


def halve(image: np.ndarray, scratch: ScratchArrays, name: str) -> np.ndarray:
    """``[H, W, ...]`` → ``[ceil(H/2), ceil(W/2), ...]``: means of 2×2 blocks (edge repeated)."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        even = _evened(image)
        if even is None:
            even = scratch(name + "/even", (height + height % 2, width + width % 2, *image.shape[2:]), image.dtype)
            even = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE, dst=even)
        image = even
    halved = scratch(name, ((height + 1) // 2, (width + 1) // 2, *image.shape[2:]), image.dtype, even=True)
    return cv2.resize(image, halved.shape[1::-1], dst=halved, interpolation=cv2.INTER_AREA)


def _double(image: np.ndarray, height: int, width: int, scratch: ScratchArrays, name: str) -> np.ndarray:
    """Undo ``halve``'s size: bilinear ×2 (half-pixel centres, edges clamped), cropped to ``[height, width]``."""
    doubled = scratch(name, (2 * image.shape[0], 2 * image.shape[1], *image.shape[2:]), image.dtype)
    return cv2.resize(image, doubled.shape[1::-1], dst=doubled, interpolation=cv2.INTER_LINEAR)[:height, :width]


def _pool(image: np.ndarray, factor: int, scratch: ScratchArrays, name: str) -> np.ndarray:
    """Means of ``factor × factor`` blocks (``factor`` 1, 2 or 4); each halving in ``scratch`` under ``name``."""
    halvings = iter(range(factor.bit_length()))
    return pooled(image, factor, lambda image: halve(image, scratch, f"{name}/halved{next(halvings)}"))


def _unpool(image: np.ndarray, height: int, width: int, factor: int, scratch: ScratchArrays, name: str) -> np.ndarray:
    """Undo ``_pool`` of an ``[H, W]`` image: bilinear ×2 per halving."""
    doublings = iter(range(factor.bit_length()))
    return unpooled(
        image, height, width, factor,
        lambda image, height, width: _double(image, height, width, scratch, f"{name}/doubled{next(doublings)}"),
    )


class _Blur(NamedTuple):
    """A blur as ``blend.blur_more`` does it for the whole frame: pool by ``factor``, then ``kernel``."""

    factor: int
    kernel: np.ndarray

    @staticmethod
    def of(sigma: float, height: int, width: int) -> _Blur:
        factor = pool_factor(sigma, height, width)
        pooled_sigma_ = pooled_sigma(sigma, factor)
        size = fitting_kernel_size(pooled_sigma_, *pool_sizes(height, width, factor)[-1])
        return _Blur(factor, gaussian_kernel(pooled_sigma_, size))

    @property
    def reach(self) -> int:
        """Rows of input that can change an output row: the kernel's radius, plus pooling and resizing."""
        return self.factor * (len(self.kernel) // 2 + 2)

    def pooled(self, image: np.ndarray, scratch: ScratchArrays, name: str) -> np.ndarray:
        """The blur on the pooled grid, not resized back (in ``scratch`` under ``name``)."""
        pooled_image = _pool(image, self.factor, scratch, name)
        return _blur(pooled_image, self.kernel, scratch(name, pooled_image.shape, even=True))

    def __call__(self, image: np.ndarray, scratch: ScratchArrays, name: str) -> np.ndarray:
        return _unpool(self.pooled(image, scratch, name), *image.shape[:2], self.factor, scratch, name)


_LUMINANCE = np.array([LUMINANCE], np.float32)


def _luminance(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` RGB → ``[H, W]`` luminance (into ``out``)."""
    return cv2.transform(image, _LUMINANCE, dst=out).reshape(image.shape[:2])


@dataclass(frozen=True)
class _DetailPlan:
    """The detail blend (``morphing.render.blend``) laid out for ``[H, W]`` frames.

    ``levels``: the blurs from one detail level to the next; ``windows``: each
    band's energy window, whose ``factor`` is the band's pooled grid;
    ``margin``: rows a strip needs beyond its own on either side (a multiple
    of 4, so strips and pooled grids stay aligned) to compute its rows exactly
    as the whole frame would.
    """

    settings: DetailSettings
    levels: tuple[_Blur, ...]
    windows: tuple[_Blur, ...]
    margin: int

    @staticmethod
    def of(settings: DetailSettings, height: int, width: int) -> _DetailPlan:
        increments = [math.sqrt(b**2 - a**2) for a, b in zip((0.0, *settings.sigmas[:-1]), settings.sigmas)]
        levels = tuple(_Blur.of(sigma, height, width) for sigma in increments)
        windows = tuple(_Blur.of(settings.window_ratio * sigma, height, width) for sigma in settings.sigmas)
        band_reach = np.cumsum([level.reach for level in levels])
        reach = max(int(band) + window.reach + 2 * window.factor for band, window in zip(band_reach, windows))
        return _DetailPlan(settings, levels, windows, 4 * math.ceil((reach + 4) / 4))

    def bands(self, image: np.ndarray, scratch: ScratchArrays) -> list[np.ndarray]:
        """``[H, W]`` → one ``[H, W]`` band per sigma, finest first (as ``blend.detail_bands``)."""
        levels = [image]
        for index, blur in enumerate(self.levels):
            levels.append(blur(levels[-1], scratch, f"level{index}"))
        return [
            cv2.subtract(finer, coarser, dst=scratch(f"band{index}", image.shape))
            for index, (finer, coarser) in enumerate(zip(levels[:-1], levels[1:]))
        ]

    def _band_energies(self, image: np.ndarray, scratch: ScratchArrays) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``[H, W, 3]`` → the bands of its luminance and their local energies (each on its pooled grid)."""
        bands = self.bands(_luminance(image, scratch("luminance", image.shape[:2])), scratch)
        energies = [
            window.pooled(cv2.multiply(band, band, dst=scratch("squared", band.shape, even=True)),
                          scratch, f"energy{index}")
            for index, (band, window) in enumerate(zip(bands, self.windows))
        ]
        return bands, energies

    def energies(self, image: np.ndarray) -> list[np.ndarray]:
        """``[H, W, 3]`` → the local energy of each band of its luminance, ``[h_i, w_i]`` on its pooled grid
        (``blend.detail_energy``)."""
        return self._band_energies(image, ScratchArrays())[1]

    def detail(
        self, linear: np.ndarray, wanted: Sequence[np.ndarray], scratch: ScratchArrays | None = None
    ) -> np.ndarray:
        """``[H, W]``: ``sum_i up_i(g_i - 1)·band_i(Y(linear))``, what ``blend.restore_detail`` adds to
        each channel of ``linear`` (in ``scratch``, if given)."""
        scratch = scratch or ScratchArrays()
        height, width = linear.shape[:2]
        epsilon = np.float32(self.settings.epsilon)
        detail = scratch("detail", (height, width))
        bands, energies = self._band_energies(linear, scratch)
        for index, (band, window, have, wanted_energy) in enumerate(zip(bands, self.windows, energies, wanted)):
            # The names carry the band's index: each band's pooled grid has its own shape.
            ratio = cv2.divide(
                np.add(wanted_energy, epsilon, out=scratch(f"wanted{index}", have.shape)),
                np.add(have, epsilon, out=have),
                dst=scratch(f"gain{index}", have.shape),
            )
            gain = np.clip(cv2.sqrt(ratio, dst=ratio), 1.0, self.settings.max_gain, out=ratio)
            gain -= np.float32(1.0)
            gain = _unpool(gain, height, width, window.factor, scratch, f"gain{index}")
            if index:
                cv2.accumulateProduct(band, gain, detail)
            else:
                cv2.multiply(band, gain, dst=detail)
        return detail


def _positions(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``[height, width]`` float32 column and row indices of every pixel."""
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return columns, rows


class _Grid(NamedTuple):
    """A flow at full amount on one grid (the frame's, or a band's pooled one), with that grid's positions.

    ``flow_x``, ``flow_y``, ``columns``, ``rows``: ``[h, w]`` float32, in that grid's pixels (the
    positions are shared by the grids of one shape).
    """

    flow_x: np.ndarray
    flow_y: np.ndarray
    columns: np.ndarray
    rows: np.ndarray

    def sampling_maps(
        self, amount: float, start: int, stop: int, scratch: ScratchArrays, name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap``'s query maps (x, y) of rows ``start:stop`` at ``amount``: position minus ``amount`` × flow
        (in ``scratch`` under ``name``)."""
        rows = slice(start, stop)
        shape = self.flow_x[rows].shape
        return (
            cv2.scaleAdd(self.flow_x[rows], -amount, self.columns[rows], dst=scratch(name + "/x", shape)),
            cv2.scaleAdd(self.flow_y[rows], -amount, self.rows[rows], dst=scratch(name + "/y", shape)),
        )


class _Direction(NamedTuple):
    """One direction of the morph as the renderer keeps it.

    ``pixels``: ``[H, W, 3] uint8``; ``colour_maps``, ``warp_maps``: rows of
    its mult and add (6 channels) and of its warp (2) at frame size
    (``GridRows``); ``paint`` ``[H, W, 3]`` (``m·mult·X + a·add``)
    and ``flow_x``, ``flow_y`` ``[H, W]`` (``w·warp`` in frame pixels), kept
    whole unless the frame is huge (``None``: made for each strip), with
    ``flow_y_range`` the least and greatest ``flow_y`` of each row (``[H]``
    float64 each); per detail band, the endpoint's energy and the flow on that
    band's pooled grid.
    """

    pixels: np.ndarray
    colour_maps: GridRows
    warp_maps: GridRows
    paint: np.ndarray | None
    flow_x: np.ndarray | None
    flow_y: np.ndarray | None
    flow_y_range: tuple[np.ndarray, np.ndarray] | None
    energies: list[np.ndarray]
    energy_grids: list[_Grid]


def _inside(
    map_x: np.ndarray, map_y: np.ndarray, first_row: int, height: int, width: int, feather: float, out: np.ndarray,
    spare: np.ndarray,
) -> np.ndarray:
    """``transition.inside_weight`` from ``cv2.remap``'s query maps of rows ``first_row`` onward of a
    ``[height, width]`` grid that samples a picture of that shape, into ``out`` (``spare``: an array of
    the same shape for the intermediate).

    How far a query lies beyond the picture, plus ``cx``, is ``max(|x - cx|, |y - cy| + cx - cy)``,
    ``(cy, cx)`` its centre; the same of the pixel's own position, floored at ``cx - feather``, is
    ``own``; the weight is ``1 - (far - own) / feather``, clipped to ``[0, 1]``."""
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    from_x = cv2.absdiff(map_x, centre_x, dst=out)
    from_y = cv2.absdiff(map_y, centre_y, dst=spare)
    if centre_x != centre_y:
        from_y = cv2.add(from_y, centre_x - centre_y, dst=from_y)
    farthest = cv2.max(from_x, from_y, dst=out)  # how far beyond the picture, plus centre_x
    own_rows = np.abs(np.arange(first_row, first_row + map_x.shape[0], dtype=np.float32) - np.float32(centre_y))
    own_rows += np.float32(centre_x - centre_y)
    own_columns = np.abs(np.arange(width, dtype=np.float32) - np.float32(centre_x))
    own = np.maximum(own_rows[:, None], own_columns[None, :], out=spare)
    np.maximum(own, np.float32(centre_x - feather), out=own)
    inside = cv2.subtract(own, farthest, dst=out)  # (own - far), then 1 + that / feather
    inside = cv2.addWeighted(inside, 1.0 / feather, inside, 0.0, 1.0, dst=out)
    return cv2.max(cv2.min(inside, 1.0, dst=out), 0.0, dst=out)


def _border_weight(
    map_x: np.ndarray, map_y: np.ndarray, first_row: int, height: int, width: int, feather: float, share: float,
    out: np.ndarray, spare: np.ndarray,
) -> bool:
    """A direction's weight in the detail blend where its warp (``cv2.remap``'s query maps of rows
    ``first_row`` onward) samples near or beyond the edge of the ``[height, width]`` picture. ``False``
    (``out`` untouched) when every sample lies at least ``feather`` inside it, so that the weight is
    the plain one throughout; else ``True``, with ``out = share·(inside / BORDER_FLOOR + 1)``
    (``share``: its plain weight, ``1 - alpha`` or ``alpha``; ``inside``: ``_inside``). Normalised over
    both directions, that is ``transition.border_weights`` (scaled by ``1 / BORDER_FLOOR``, so that the
    two sum to at least 1)."""
    low_x, high_x = cv2.minMaxLoc(map_x)[:2]
    low_y, high_y = cv2.minMaxLoc(map_y)[:2]
    if (low_x >= feather and high_x <= width - 1 - feather
            and low_y >= feather and high_y <= height - 1 - feather):
        return False
    inside = _inside(map_x, map_y, first_row, height, width, feather, out, spare)
    cv2.addWeighted(inside, share / BORDER_FLOOR, inside, 0.0, share, dst=out)
    return True


def _blend_directions(
    towards_target: np.ndarray, towards_source: np.ndarray, alpha: float, weights: Sequence[np.ndarray | None],
    outside: Sequence[bool], out: np.ndarray,
) -> np.ndarray:
    """``(1 - alpha)·towards_target + alpha·towards_source`` into ``out`` when neither direction samples
    near or beyond the picture's edge (``outside``; then ``weights`` may be ``None``); else the blend by both
    directions' ``_border_weight`` (``weights``; one that samples well inside throughout is filled here with its
    plain weight)."""
    if not any(outside):
        return cv2.addWeighted(towards_target, 1.0 - alpha, towards_source, alpha, 0.0, dst=out)
    for weight, share, sampled_outside in zip(weights, (1.0 - alpha, alpha), outside):
        if not sampled_outside:
            weight.fill(share / BORDER_FLOOR + share)
    # (w0·a + w1·b) / (w0 + w1 + 1e-5): with the weights' sum at least 1, OpenCV's epsilon is below float noise.
    return cv2.blendLinear(towards_target, towards_source, weights[0], weights[1], dst=out)


def _to_uint8(frame: np.ndarray, out: np.ndarray) -> None:
    """float32 in [-1, 1] → uint8 into ``out``, rounded (ties to even) and clipped, as ``images.to_uint8``."""
    cv2.addWeighted(frame, 127.5, frame, 0.0, 127.5, dst=out, dtype=cv2.CV_8U)


class OpenCVRenderer:
    """Renders frames of one morph at any alphas with OpenCV on the CPU.

    Args:
      source, target: ``[H, W, 3] uint8`` RGB of the same shape.
      maps: fitted maps (any grid size; resampled to ``[H, W]`` once here).
      scales: the multipliers to render with (usually ``maps.scales``).
      interpolation: of the warp, ``"bicubic"`` (OpenCV's cubic) or ``"bilinear"`` (the formula's).
      blend: ``"detail"`` (detail-preserving) or ``"linear"`` (the formula's).
      detail_settings: the detail blend's bands and limits (default ``DetailSettings()``).
      strip_rows: rows per strip (a multiple of 4); default about ``STRIP_PIXELS``
        pixels' worth, and at least four margins.
      strip_margin: rows each strip reads beyond its own (default: the detail
        blend's reach, which makes strips equal the whole frame; less shows seams).
      check: called between the blocks of work here (seconds for a huge
        frame); it may raise to stop.
    """

    def __init__(
        self, source: np.ndarray, target: np.ndarray, maps: MorphMaps, scales: Scales, *,
        interpolation: str = "bicubic",
        blend: str = "detail",
        detail_settings: DetailSettings | None = None,
        strip_rows: int | None = None,
        strip_margin: int | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")
        if interpolation not in WARP_INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {WARP_INTERPOLATIONS}, got {interpolation!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        height, width = source.shape[:2]
        self.shape = (height, width)
        self.interpolation = interpolation
        self.blend = blend
        self._sampling = _INTERPOLATIONS[interpolation]
        self._plan = None
        if blend == "detail":
            self._plan = _DetailPlan.of(detail_settings or DetailSettings(), height, width)
            if strip_margin is not None:
                self._plan = dataclasses.replace(self._plan, margin=strip_margin)
        margin = 0 if self._plan is None else self._plan.margin
        if strip_rows is None:
            strip_rows = _default_strip_rows(width, margin)
        if strip_rows < 1:
            raise ValueError(f"strip_rows must be positive, got {strip_rows}")
        self._strip_rows = 4 * math.ceil(strip_rows / 4)
        # Pixel positions of one strip with its margins, shared by every strip (rows counted from its top).
        self._columns, self._rows = _positions(min(self._strip_rows + 2 * margin, height), width)
        self._endpoints = (source, target)
        self._ratio = tuple(
            np.float32(scales.warp * size / cells) for size, cells in zip(self.shape, maps.forward.shape)
        )
        self._scales = scales
        self._cached = height * width * CACHED_BYTES_PER_PIXEL <= CACHE_BYTES
        self._check = check or (lambda: None)
        self._position_grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._free_scratches: queue.SimpleQueue[ScratchArrays] = queue.SimpleQueue()
        self._directions = tuple(
            self._direction(pixels, grid) for pixels, grid in ((source, maps.forward), (target, maps.backward))
        )

    def _direction(self, pixels: np.ndarray, packed: np.ndarray) -> _Direction:
        height, width = self.shape
        colour_maps = GridRows(packed[..., : WARP.start], height, width)
        warp_maps = GridRows(packed[..., WARP], height, width)
        paint = flow_x = flow_y = None
        if self._cached:
            paint = np.empty((height, width, 3), np.float32)
            flow_x, flow_y = np.empty((height, width), np.float32), np.empty((height, width), np.float32)
            for start, stop in self._blocks(1):
                self._check()
                paint[start:stop] = self._paint_rows(pixels, colour_maps, start, stop)
                flow_x[start:stop], flow_y[start:stop] = self._flow_rows(warp_maps, start, stop)
        flow_y_range = None if flow_y is None else (flow_y.min(axis=1).astype(np.float64),
                                                     flow_y.max(axis=1).astype(np.float64))
        direction = _Direction(pixels, colour_maps, warp_maps, paint, flow_x, flow_y, flow_y_range, [], [])
        if self._plan is not None:
            self._endpoint_detail(direction)
        return direction

    def _blocks(self, multiple: int) -> Iterator[tuple[int, int]]:
        """Row blocks of about ``STRIP_PIXELS / 8`` pixels (32 bytes a pixel of full-size maps), starting at
        multiples of ``multiple``."""
        rows = multiple * max(1, STRIP_PIXELS // (8 * self.shape[1] * multiple))
        for start in range(0, self.shape[0], rows):
            yield start, min(start + rows, self.shape[0])

    def _paint_rows(self, pixels: np.ndarray, colour_maps: GridRows, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of ``m·mult·X + a·add``."""
        rows = colour_maps(start, stop)
        mult, add = np.float32(self._scales.mult) * rows[..., MULT], np.float32(self._scales.add) * rows[..., ADD]
        return mult * to_float(pixels[start:stop]) + add

    def _flow_rows(self, warp_maps: GridRows, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start:stop`` of the flow at amount 1, (x, y) in frame pixels."""
        warp = warp_maps(start, stop)
        return self._ratio[1] * warp[..., 1], self._ratio[0] * warp[..., 0]

    def _endpoint_detail(self, direction: _Direction) -> None:
        """Fill ``direction``'s band energies and pooled flows, strip by strip (with the detail's margins)."""
        height, width = self.shape
        margin = self._plan.margin
        energies: list[list[np.ndarray]] = [[] for _ in self._plan.windows]
        for start in range(0, height, self._strip_rows):
            self._check()
            stop = min(start + self._strip_rows, height)
            first, last = max(start - margin, 0), min(stop + margin, height)
            for index, (energy, window) in enumerate(
                zip(self._plan.energies(to_float(direction.pixels[first:last])), self._plan.windows)
            ):
                offset = (start - first) // window.factor
                energies[index].append(energy[offset : offset + -(-(stop - start) // window.factor)])
        direction.energies.extend(np.concatenate(parts) for parts in energies)
        for window in self._plan.windows:
            pooled_x, pooled_y = [], []
            for start, stop in self._blocks(4):  # multiples of 4: the pooled blocks of the whole frame
                flow_x, flow_y = self._flows(direction, start, stop)
                scratch = ScratchArrays()
                pooled_x.append(_pool(flow_x, window.factor, scratch, "x") / np.float32(window.factor))
                pooled_y.append(_pool(flow_y, window.factor, scratch, "y") / np.float32(window.factor))
            flows = np.concatenate(pooled_x), np.concatenate(pooled_y)
            direction.energy_grids.append(_Grid(*flows, *self._pooled_positions(*flows[0].shape)))

    def _pooled_positions(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions of a ``[height, width]`` pooled grid, made once and shared by both directions."""
        if (height, width) not in self._position_grids:
            self._position_grids[(height, width)] = _positions(height, width)
        return self._position_grids[(height, width)]

    def _flows(self, direction: _Direction, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start:stop`` of ``direction``'s flow (x, y): kept, or made now."""
        if direction.flow_x is not None:
            return direction.flow_x[start:stop], direction.flow_y[start:stop]
        return self._flow_rows(direction.warp_maps, start, stop)

    def _source_rows(self, which: int, amount: float, first: int, last: int) -> tuple[int, int] | None:
        """The rows of direction ``which``'s image that the warp of frame rows ``first:last`` at ``amount``
        reads (with a row to spare each side), from the rows' least and greatest flow; ``None`` when the
        flows are not kept (a huge frame: each warp finds its own rows)."""
        flow_y_range = self._directions[which].flow_y_range
        if flow_y_range is None:
            return None
        rows = np.arange(first, last, dtype=np.float64)
        lowest = float(np.min(rows - amount * flow_y_range[1][first:last]))
        highest = float(np.max(rows - amount * flow_y_range[0][first:last]))
        height = self.shape[0]
        # The cubic reads rows floor(y) - 1 ... floor(y) + 2; one more each side covers float32 rounding.
        source_first = min(max(math.floor(lowest) - 2, 0), height - 1)
        return source_first, max(min(math.floor(highest) + 4, height), source_first + 1)

    def _coloured(
        self, which: int, amount: float, source_first: int, source_last: int, scratch: ScratchArrays
    ) -> np.ndarray:
        """Rows ``source_first:source_last`` of direction ``which``'s image coloured at ``amount``:
        ``X + amount·paint``, with ``X`` converted from uint8 on the way."""
        direction = self._directions[which]
        if direction.paint is not None:
            paint = direction.paint[source_first:source_last]
        else:
            paint = self._paint_rows(direction.pixels, direction.colour_maps, source_first, source_last)
        return cv2.addWeighted(direction.pixels[source_first:source_last], 1.0 / 127.5, paint, amount, -1.0,
                               dst=scratch(f"coloured{which}", paint.shape), dtype=cv2.CV_32F)

    def _warped(
        self, which: int, amount: float, start: int, stop: int, row_positions: np.ndarray, scratch: ScratchArrays,
        coloured: tuple[np.ndarray, int] | None = None, border: tuple[float, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, bool]:
        """Rows ``start:stop`` (``row_positions``: their row index at every pixel) of direction ``which``
        (0: forward, 1: backward) at ``amount``: coloured, then warped; and whether the warp samples near or
        beyond the picture's edge anywhere there (``_border_weight``).

        ``coloured``: the coloured source rows that the warp reads and the first one's index
        (``_coloured``); ``None``: colour just the rows these frame rows read. ``border``: ``None`` (the
        warp is not checked, and ``False`` returned), or the direction's plain blend weight and two
        ``[stop - start, W]`` arrays, for its ``_border_weight`` and for that one's intermediate.
        """
        flow_x, flow_y = self._flows(self._directions[which], start, stop)
        map_x = cv2.scaleAdd(flow_x, -amount, self._columns[: stop - start], dst=scratch("map_x", flow_x.shape))
        # Positions are whole numbers, so rows minus flow rounds as it would for the whole frame, and
        # subtracting the first source row after that is exact: strips give the whole frame's pixels.
        map_y = cv2.scaleAdd(flow_y, -amount, row_positions, dst=scratch("map_y", flow_y.shape))
        outside = border is not None and _border_weight(
            map_x, map_y, start, *self.shape, BORDER_FEATHER * max(self.shape), *border)
        if coloured is None:
            lowest, highest = cv2.minMaxLoc(map_y)[:2]
            height = self.shape[0]
            first = min(max(math.floor(lowest) - 1, 0), height - 1)  # the cubic reads floor(y) - 1 ... floor(y) + 2
            last = max(min(math.floor(highest) + 3, height), first + 1)
            coloured = self._coloured(which, amount, first, last, scratch), first
        source, first = coloured
        if first:
            map_y -= np.float32(first)
        return cv2.remap(source, map_x, map_y, self._sampling, dst=scratch(f"warped{which}", (*map_x.shape, 3)),
                         borderMode=cv2.BORDER_REPLICATE), outside

    def _carried(
        self, which: int, amount: float, share: float, start: int, stop: int, scratch: ScratchArrays
    ) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """The endpoint's band energies carried by the same flow (bilinear): rows ``start:stop`` of the frame,
        on each band's pooled grid, for direction ``which``; each with its ``_border_weight`` array (plain
        weight ``share``) and whether it samples near or beyond the picture's edge (else that array is not
        filled)."""
        carried = []
        direction = self._directions[which]
        for index, (energy, grid, window) in enumerate(
            zip(direction.energies, direction.energy_grids, self._plan.windows)
        ):
            rows = start // window.factor, -(-stop // window.factor)
            maps = grid.sampling_maps(amount, *rows, scratch, f"maps{index}")
            out = scratch(f"carried{which}/{index}", maps[0].shape)
            weight = scratch(f"carried_weight{which}/{index}", maps[0].shape)
            outside = _border_weight(*maps, rows[0], *energy.shape[:2],
                                     BORDER_FEATHER * max(self.shape) / window.factor, share, weight,
                                     scratch("spare", maps[0].shape))
            carried.append((cv2.remap(energy, *maps, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE),
                            weight, outside))
        return carried

    def _linear_rows(self, alpha: float, first: int, last: int, out: np.ndarray, scratch: ScratchArrays) -> None:
        """Rows ``first:last`` of the plain blend ``(1 - alpha)·forward + alpha·backward`` into ``out``
        (``[last - first, W, 3] float32``).

        Each direction's source rows are coloured once; the warps and the blend then run a chunk of about
        ``WARP_CHUNK_PIXELS`` at a time (all at once for a huge frame, whose flows are made per strip).
        """
        width = self.shape[1]
        amounts = (alpha, 1.0 - alpha)
        sources = [self._source_rows(which, amount, first, last) for which, amount in enumerate(amounts)]
        coloured = [
            None if rows is None else (self._coloured(which, amounts[which], *rows, scratch), rows[0])
            for which, rows in enumerate(sources)
        ]
        chunk_rows = last - first if any(rows is None for rows in sources) else max(8, WARP_CHUNK_PIXELS // width)
        for start in range(first, last, chunk_rows):
            stop = min(start + chunk_rows, last)
            row_positions = np.add(self._rows[: stop - start], np.float32(start),
                                   out=scratch("row_positions", (stop - start, width)))
            # The detail blend fades each direction out where it samples outside the picture; the formula's
            # blend does not.
            fades = self._plan is not None
            weights = [scratch(f"weight{which}", (stop - start, width)) if fades else None for which in range(2)]
            spare = scratch("spare", (stop - start, width)) if fades else None
            warped = [
                self._warped(which, amount, start, stop, row_positions, scratch, coloured[which],
                             (1.0 - amount, weights[which], spare) if fades else None)
                for which, amount in enumerate(amounts)
            ]
            _blend_directions(warped[0][0], warped[1][0], alpha, weights, [outside for _, outside in warped],
                              out[start - first : stop - first])

    def _detail_strip(
        self, alpha: float, start: int, stop: int, linear: np.ndarray, out: np.ndarray, scratch: ScratchArrays
    ) -> None:
        """Rows ``start:stop`` of the frame at ``alpha`` into ``out`` (``[stop - start, W, 3] uint8``), from
        ``linear``: the plain blend's rows ``start - margin : stop + margin`` (clipped to the frame)."""
        first, last = max(start - self._plan.margin, 0), min(stop + self._plan.margin, self.shape[0])
        wanted = [
            _blend_directions(from_source, from_target, alpha, (source_weight, target_weight),
                              (source_outside, target_outside), from_source)
            for (from_source, source_weight, source_outside), (from_target, target_weight, target_outside) in zip(
                self._carried(0, alpha, 1.0 - alpha, first, last, scratch),
                self._carried(1, 1.0 - alpha, alpha, first, last, scratch))
        ]
        detail = self._plan.detail(linear, wanted, scratch)[start - first : stop - first]
        # linear + detail (each channel), to uint8 in one pass over the strip's own rows.
        detail_rgb = cv2.cvtColor(detail, cv2.COLOR_GRAY2RGB, dst=scratch("detail_rgb", (*detail.shape, 3)))
        cv2.addWeighted(linear[start - first : stop - first], 127.5, detail_rgb, 127.5, 127.5, dst=out,
                        dtype=cv2.CV_8U)

    def release_working_arrays(self) -> None:
        """Let go of the working arrays kept for frames in flight (made again when frames are next asked for)."""
        while True:
            try:
                self._free_scratches.get_nowait()
            except queue.Empty:
                return

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[ScratchArrays]:
        """A ``ScratchArrays`` that no other frame is using, returned to the renderer's pool afterwards (so it
        outlives the threads that render: as many as frames were ever in flight at once)."""
        try:
            scratch = self._free_scratches.get_nowait()
        except queue.Empty:
            scratch = ScratchArrays()
        try:
            yield scratch
        finally:
            self._free_scratches.put(scratch)

    def frame(self, alpha: float, check: Callable[[], None] | None = None) -> np.ndarray:
        """The ``[H, W, 3] uint8`` frame at ``alpha`` (0: the source, 1: the target, exactly).

        ``check`` is called before each strip (it may raise to stop: a huge
        frame takes seconds). The plain blend's rows in the margin that one
        strip shares with the next are kept for it, not warped again.
        """
        alpha = float(alpha)
        if alpha == 0.0 or alpha == 1.0:
            return self._endpoints[int(alpha)].copy()
        height, width = self.shape
        frame = np.empty((height, width, 3), np.uint8)
        with self._scratch() as scratch:
            self._fill(frame, alpha, scratch, check)
        return frame

    def _fill(self, frame: np.ndarray, alpha: float, scratch: ScratchArrays, check: Callable[[], None] | None) -> None:
        """Compute ``frame`` (``[H, W, 3] uint8``) at ``alpha``, strip by strip."""
        height, width = self.shape
        margin = 0 if self._plan is None else self._plan.margin
        linear = scratch("linear", (min(self._strip_rows + 2 * margin, height), width, 3))
        held = (0, 0)  # the frame rows whose plain blend ``linear`` holds, from its first row
        for start in range(0, height, self._strip_rows):
            if check is not None:
                check()
            stop = min(start + self._strip_rows, height)
            first, last = max(start - margin, 0), min(stop + margin, height)
            kept = max(held[1] - first, 0)
            linear[:kept] = linear[first - held[0] : held[1] - held[0]]  # NumPy copies overlapping rows safely
            if first + kept < last:
                self._linear_rows(alpha, first + kept, last, linear[kept : last - first], scratch)
            held = (first, last)
            if self._plan is None:
                _to_uint8(linear[: last - first], frame[start:stop])
            else:
                self._detail_strip(alpha, start, stop, linear[: last - first], frame[start:stop], scratch)

    def render(self, alphas: Sequence[float] | np.ndarray) -> np.ndarray:
        """``[B]`` alphas → ``[B, H, W, 3] uint8`` frames."""
        alphas = np.asarray(alphas, np.float64).reshape(-1)
        frames = np.empty((len(alphas), *self.shape, 3), np.uint8)
        for index, alpha in enumerate(alphas):
            frames[index] = self.frame(alpha)
        return frames

    def frames(self, alphas: Sequence[float] | np.ndarray, batch: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``[H, W, 3] uint8`` frames in order: two at a time in two threads (OpenCV's kernels release
        the GIL), at most two ahead of the consumer; their working arrays are kept for the next frames
        (``release_working_arrays``). ``batch`` is ignored (a ``FrameEngine`` takes it)."""
        check = self._check
        yield from map_ahead(lambda alpha: self.frame(float(alpha), check), np.asarray(alphas, np.float64), ahead=2)

    @property
    def strip_rows(self) -> int:
        """Rows per strip."""
        return self._strip_rows

    @property
    def caches_maps(self) -> bool:
        """Whether full-size maps are kept between frames (else made for each strip: huge frames)."""
        return self._cached

    @property
    def detail_plan(self) -> object | None:
        """The detail blend's plan (bands, pooling, margin; ``energies(image)``), ``None`` for the linear blend."""
        return self._plan

    def endpoint_energies(self, which: int) -> list[np.ndarray]:
        """The detail energies of the source (``which`` 0) or the target (1), computed strip by strip."""
        return self._directions[which].energies

    @property
    def kept_working_arrays(self) -> int:
        """How many frames' working arrays are kept for the next frames (0 after ``release_working_arrays``)."""
        return self._free_scratches.qsize()

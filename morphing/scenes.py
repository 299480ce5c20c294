"""Synthetic scenes with a known in-between: shapes that move, scale, turn and
change colour linearly from alpha = 0 to alpha = 1 over a flat or gradient
background. ``Scene.render(alpha)`` is the ground truth a morph should reach.
Used for the sample images, the tests and the quality benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Shape", "Scene", "toy_scene", "random_scene", "random_texture", "fourier_shift", "shifted_pair"]

Colour = tuple[float, float, float]

SUPERSAMPLE = 4


def _lerp(a: float, b: float, alpha: float) -> float:
    return a + (b - a) * alpha


def _lerp_colour(a: Colour, b: Colour, alpha: float) -> Colour:
    return (_lerp(a[0], b[0], alpha), _lerp(a[1], b[1], alpha), _lerp(a[2], b[2], alpha))


@dataclass(frozen=True)
class Shape:
    """A filled disc (``sides == 0``) or regular polygon at one moment.

    ``centre`` is (y, x) and ``radius`` the circumradius, all as fractions of
    the image's long side; ``rotation`` in radians; ``colour`` RGB in [0, 1].
    """

    sides: int
    centre: tuple[float, float]
    radius: float
    rotation: float
    colour: Colour

    def towards(self, other: Shape, alpha: float) -> Shape:
        """Linear interpolation of every parameter (same ``sides``)."""
        return Shape(
            sides=self.sides,
            centre=(_lerp(self.centre[0], other.centre[0], alpha), _lerp(self.centre[1], other.centre[1], alpha)),
            radius=_lerp(self.radius, other.radius, alpha),
            rotation=_lerp(self.rotation, other.rotation, alpha),
            colour=_lerp_colour(self.colour, other.colour, alpha),
        )

    def coverage(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Boolean inside-test at points given in long-side fractions."""
        dy, dx = ys - self.centre[0], xs - self.centre[1]
        if self.sides == 0:
            return dy * dy + dx * dx <= self.radius * self.radius
        inside = np.ones(np.broadcast(dy, dx).shape, bool)
        apothem = self.radius * math.cos(math.pi / self.sides)
        for edge in range(self.sides):
            angle = self.rotation + (edge + 0.5) * 2 * math.pi / self.sides
            inside &= dx * math.cos(angle) + dy * math.sin(angle) <= apothem
        return inside


@dataclass(frozen=True)
class Scene:
    """Shapes drawn in order over a vertical background gradient.

    ``start``/``end`` hold the shapes at alpha 0 and 1 (pairwise the same
    kind); ``background_start``/``background_end`` are (top, bottom) colours.
    """

    height: int
    width: int
    start: tuple[Shape, ...]
    end: tuple[Shape, ...]
    background_start: tuple[Colour, Colour]
    background_end: tuple[Colour, Colour]

    def render(self, alpha: float) -> np.ndarray:
        """The scene at ``alpha``: ``[height, width, 3] uint8``, antialiased."""
        long_side = max(self.height, self.width)
        sub = SUPERSAMPLE
        ys = (np.arange(self.height * sub) + 0.5) / sub / long_side
        xs = (np.arange(self.width * sub) + 0.5) / sub / long_side
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        top = _lerp_colour(self.background_start[0], self.background_end[0], alpha)
        bottom = _lerp_colour(self.background_start[1], self.background_end[1], alpha)
        fraction = (grid_y * long_side / self.height)[..., None]
        canvas = np.asarray(top) * (1 - fraction) + np.asarray(bottom) * fraction
        for first, last in zip(self.start, self.end):
            shape = first.towards(last, alpha)
            canvas[shape.coverage(grid_y, grid_x)] = shape.colour
        pooled = canvas.reshape(self.height, sub, self.width, sub, 3).mean(axis=(1, 3))
        return np.clip(np.rint(pooled * 255), 0, 255).astype(np.uint8)


def toy_scene(height: int = 240, width: int = 320) -> Scene:
    """The seed's toy scene: a circle, a triangle and a square that move,
    shrink, turn and change colour over a flat background."""
    aspect = width / max(height, width)
    start = (
        Shape(0, (0.30, 0.22 * aspect), 0.12, 0.0, (0.90, 0.20, 0.20)),
        Shape(3, (0.50, 0.62 * aspect), 0.15, 0.0, (0.20, 0.55, 0.95)),
        Shape(4, (0.22, 0.82 * aspect), 0.09, 0.0, (0.95, 0.80, 0.15)),
    )
    end = (
        Shape(0, (0.45, 0.36 * aspect), 0.09, 0.0, (0.95, 0.55, 0.10)),
        Shape(3, (0.48, 0.75 * aspect), 0.11, math.pi / 3, (0.35, 0.85, 0.45)),
        Shape(4, (0.38, 0.70 * aspect), 0.12, math.pi / 5, (0.75, 0.30, 0.85)),
    )
    background = ((0.96, 0.95, 0.92), (0.96, 0.95, 0.92))
    return Scene(height, width, start, end, background, background)


def _random_colour(rng: np.random.Generator) -> Colour:
    return tuple(float(v) for v in rng.uniform(0.05, 0.95, 3))  # type: ignore[return-value]


def random_scene(
    rng: np.random.Generator,
    height: int = 256,
    width: int = 256,
    *,
    shapes: int = 3,
    gradient: bool = True,
    motion: float = 1.0,
) -> Scene:
    """A seeded random scene: ``shapes`` discs and polygons, each moving up to
    ``motion`` × 12 % of the image, scaling by up to ``motion`` × ±30 % and
    turning up to ``motion`` × ±0.6 rad."""
    aspect_y = height / max(height, width)
    aspect_x = width / max(height, width)
    start, end = [], []
    for _ in range(shapes):
        sides = int(rng.choice([0, 3, 4, 5, 6]))
        radius = float(rng.uniform(0.07, 0.14))
        centre = (float(rng.uniform(0.25, 0.75) * aspect_y), float(rng.uniform(0.25, 0.75) * aspect_x))
        shift = rng.uniform(-0.12, 0.12, 2) * motion
        start.append(Shape(sides, centre, radius, float(rng.uniform(0, math.pi)), _random_colour(rng)))
        end.append(
            Shape(
                sides,
                (centre[0] + float(shift[0]) * aspect_y, centre[1] + float(shift[1]) * aspect_x),
                radius * (1.0 + motion * float(rng.uniform(-0.3, 0.3))),
                start[-1].rotation + motion * float(rng.uniform(-0.6, 0.6)),
                _random_colour(rng),
            )
        )
    if gradient:
        background_start = (_random_colour(rng), _random_colour(rng))
        background_end = (_random_colour(rng), _random_colour(rng))
    else:
        flat = _random_colour(rng)
        background_start = background_end = (flat, flat)
    return Scene(height, width, tuple(start), tuple(end), background_start, background_end)


def random_texture(rng: np.random.Generator, height: int, width: int, *, falloff: float = 1.5) -> np.ndarray:
    """A periodic, band-limited random texture: ``[height, width, 3]`` float32 in [-1, 1].

    Random phases with amplitude ∝ frequency^-``falloff`` (natural images are
    near 1–2); the Nyquist rows and columns are zero, so every sub-pixel
    ``fourier_shift`` of it is real and exact.
    """
    fy = np.fft.fftfreq(height)[:, np.newaxis]
    fx = np.fft.fftfreq(width)[np.newaxis, :]
    radius = np.hypot(fy, fx)
    amplitude = np.where(radius > 0, np.maximum(radius, 1.0 / max(height, width)) ** -falloff, 0.0)
    amplitude[np.abs(fy[:, 0]) >= 0.5, :] = 0.0
    amplitude[:, np.abs(fx[0]) >= 0.5] = 0.0
    channels = []
    for _ in range(3):
        spectrum = amplitude * np.exp(2j * np.pi * rng.uniform(size=(height, width)))
        channel = np.real(np.fft.ifft2(spectrum))
        channels.append(channel / (np.abs(channel).max() + 1e-12))
    return np.stack(channels, axis=-1).astype(np.float32)


def fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``[H, W, C]`` periodic image moved by ``(dy, dx)`` pixels exactly (down, right), rolling around."""
    height, width = image.shape[:2]
    fy = np.fft.fftfreq(height)[:, np.newaxis, np.newaxis]
    fx = np.fft.fftfreq(width)[np.newaxis, :, np.newaxis]
    phase = np.exp(-2j * np.pi * (fy * dy + fx * dx))
    return np.real(np.fft.ifft2(np.fft.fft2(image, axes=(0, 1)) * phase, axes=(0, 1))).astype(np.float32)


def shifted_pair(
    rng: np.random.Generator, size: int, dy: float, dx: float, *, wrap: bool, margin: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """A textured ``[size, size, 3]`` image and the same texture moved by ``(dy, dx)``.

    With ``wrap`` the second is the first rolled around; without, both are
    crops of one larger texture, so new texture enters at the borders as in a
    camera that moved.
    """
    if wrap:
        texture = random_texture(rng, size, size)
        return texture, fourier_shift(texture, dy, dx)
    texture = random_texture(rng, size + 2 * margin, size + 2 * margin)
    moved = fourier_shift(texture, dy, dx)
    crop = (slice(margin, margin + size), slice(margin, margin + size))
    return texture[crop], moved[crop]

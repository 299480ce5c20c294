"""Synthetic scenes with a known in-between: shapes that move, scale, turn and
change colour linearly from alpha = 0 to alpha = 1 over a flat or gradient
background. ``Scene.render(alpha)`` is the ground truth a morph should reach.
Used for the sample images, the tests and the quality benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Shape",
    "Scene",
    "toy_scene",
    "random_scene",
    "far_moving_scene",
    "random_texture",
    "fourier_shift",
    "shifted_pair",
    "sample_bilinear",
    "pixel_grid",
    "Deformation",
    "random_deformation",
    "random_recolouring",
    "DeformedPair",
    "deformed_pair",
    "SpriteScene",
    "sprite_scene",
    "Sprite",
    "SoftScene",
    "soft_scene",
    "sprite_flows",
    "CameraScene",
    "camera_scene",
    "BendScene",
    "bend_scene",
]

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


def far_moving_scene(
    rng: np.random.Generator, height: int = 256, width: int = 256, *, shapes: int = 2, gradient: bool = True
) -> Scene:
    """A seeded hard scene: ``shapes`` discs and polygons, each moving by 1–1.5 times its own
    diameter in a random direction while its colour changes strongly (each channel
    near 0.15 or 0.85 becomes the other, jittered), so a shape's start and end do not
    overlap and look unlike each other: a fit that recolours in place instead of
    moving fails here."""
    aspect = np.array([height, width]) / max(height, width)
    start, end = [], []
    for _ in range(shapes):
        sides = int(rng.choice([0, 3, 4, 5, 6]))
        radius = float(rng.uniform(0.07, 0.11))
        distance = 2 * radius * float(rng.uniform(1.0, 1.5))
        angle = float(rng.uniform(0, 2 * math.pi))
        step = distance * np.array([math.sin(angle), math.cos(angle)])
        centre = rng.uniform(0.3, 0.7, 2) * aspect
        first = np.clip(centre - step / 2, radius, aspect - radius)
        last = np.clip(centre + step / 2, radius, aspect - radius)
        colour = rng.choice([0.15, 0.85], 3) + rng.uniform(-0.1, 0.1, 3)
        flipped = np.clip(1.0 - colour + rng.uniform(-0.1, 0.1, 3), 0.05, 0.95)
        rotation = float(rng.uniform(0, math.pi))
        start.append(Shape(sides, (float(first[0]), float(first[1])), radius, rotation, tuple(map(float, colour))))
        end.append(Shape(sides, (float(last[0]), float(last[1])), radius * float(rng.uniform(0.85, 1.15)),
                         rotation + float(rng.uniform(-0.4, 0.4)), tuple(map(float, flipped))))
    if gradient:
        background_start = (_random_colour(rng), _random_colour(rng))
        background_end = background_start
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


# --- An object that moves over a still picture (layered motion) ---


@dataclass(frozen=True, eq=False)
class SpriteScene:
    """A disc cut from one picture (the *sprite*) that moves, scales and turns over another picture
    (the *background*), which may pan slowly: motion in two layers, as when something moves in front
    of a still or slowly moving camera.

    ``background``, ``sprite``: ``[size, size, 3]`` float64 in [0, 255];
    ``radius``: the disc's radius in pixels at scale 1; poses ``(y, x, scale,
    turn)`` at alpha 0 and 1 (pixels, ratio, radians), interpolated linearly;
    ``pan``: ``(dy, dx)`` pixels the background moves from alpha 0 to 1.
    """

    background: np.ndarray
    sprite: np.ndarray
    radius: float
    start: tuple[float, float, float, float]
    end: tuple[float, float, float, float]
    pan: tuple[float, float]

    def render(self, alpha: float) -> np.ndarray:
        """The scene at ``alpha``: ``[size, size, 3] uint8``."""
        size = self.background.shape[0]
        grid = pixel_grid(size, size)
        centre = np.array([size / 2 - 0.5, size / 2 - 0.5])
        # The background, shown enlarged by a tenth so that the pan never reads outside it.
        behind = sample_bilinear(self.background, centre + (grid - centre - alpha * np.asarray(self.pan)) / 1.1)
        front, cover = Sprite(self.sprite, self.radius, self.start, self.end).cover(grid, alpha)
        return np.clip(np.rint(behind * (1 - cover) + front * cover), 0, 255).astype(np.uint8)

    def true_flows(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact correspondence between ``render(0)`` and ``render(1)``: ``sprite_flows``."""
        size = self.background.shape[0]
        return sprite_flows(size, (Sprite(self.sprite, self.radius, self.start, self.end),), self.pan)


Pose = tuple[float, float, float, float]


def _pose_at(start: Pose, end: Pose, alpha: float) -> Pose:
    """A sprite's pose ``(y, x, scale, turn)`` at ``alpha``, each linear from ``start`` to ``end``."""
    y, x, scale, turn = (a + alpha * (b - a) for a, b in zip(start, end))
    return y, x, scale, turn


def _sprite_coordinates(relative: np.ndarray, scale: float, turn: float) -> np.ndarray:
    """The sprite's own coordinates of positions ``relative`` to its centre (``[..., 2]`` (y, x) pixels):
    turned back by ``turn`` radians and scaled back by ``scale``."""
    cos, sin = math.cos(turn), math.sin(turn)
    return np.stack([cos * relative[..., 0] - sin * relative[..., 1],
                     sin * relative[..., 0] + cos * relative[..., 1]], axis=-1) / scale


def _sprite_position(coordinates: np.ndarray, scale: float, turn: float) -> np.ndarray:
    """The inverse of ``_sprite_coordinates``: positions relative to the centre of the sprite's own
    ``coordinates`` (``[..., 2]``), scaled by ``scale`` and turned by ``turn`` radians."""
    cos, sin = math.cos(turn), math.sin(turn)
    return np.stack([cos * coordinates[..., 0] + sin * coordinates[..., 1],
                     -sin * coordinates[..., 0] + cos * coordinates[..., 1]], axis=-1) * scale


def sprite_scene(rng: np.random.Generator, pictures: list[np.ndarray], size: int = 256) -> SpriteScene:
    """A seeded ``SpriteScene`` from two different ``pictures`` (``[size, size, 3]`` uint8, drawn from
    the list): a disc of 12–20 % of the side that moves 5–15 % of the side, scales by up to ±15 % and
    turns by up to ±0.3 rad; half the scenes also pan the background by up to 3 % of the side."""
    first, second = rng.choice(len(pictures), 2, replace=False)
    radius = float(rng.uniform(0.12, 0.2)) * size
    start = rng.uniform(0.3, 0.7, 2) * size
    direction = rng.normal(size=2)
    step = direction / np.linalg.norm(direction) * float(rng.uniform(0.05, 0.15)) * size
    scale, turn = math.exp(float(rng.uniform(-0.15, 0.15))), float(rng.uniform(-0.3, 0.3))
    pan = rng.uniform(-0.03, 0.03, 2) * size if rng.uniform() < 0.5 else np.zeros(2)
    return SpriteScene(pictures[first].astype(np.float64), pictures[second].astype(np.float64), radius,
                       (float(start[0]), float(start[1]), 1.0, 0.0),
                       (float(start[0] + step[0]), float(start[1] + step[1]), scale, turn),
                       (float(pan[0]), float(pan[1])))


# --- Textured things over a soft texture (few key points, nothing flat) ---


@dataclass(frozen=True, eq=False)
class Sprite:
    """A textured disc or square that moves, scales and turns.

    ``texture``: ``[n, n, 3]`` float64 in [0, 255], its centre at the
    sprite's centre; ``radius``: pixels at scale 1 (a square's half side
    is 0.8 of it); ``start``, ``end``: poses ``(y, x, scale, turn)``
    (pixels, ratio, radians) at alpha 0 and 1, interpolated linearly.
    """

    texture: np.ndarray
    radius: float
    start: Pose
    end: Pose
    square: bool = False

    def cover(self, grid: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(front, cover)`` at ``alpha`` on ``grid`` (``[H, W, 2]`` (y, x) pixels): the texture as it
        shows there, ``[H, W, 3]``, and how much of each pixel the sprite covers, ``[H, W, 1]`` in [0, 1]."""
        y, x, scale, turn = _pose_at(self.start, self.end, alpha)
        local = _sprite_coordinates(grid - np.array([y, x]), scale, turn)
        middle = self.texture.shape[0] / 2 - 0.5
        front = sample_bilinear(self.texture, middle + local)
        if self.square:
            inside = 0.8 * self.radius - np.abs(local).max(axis=-1)
        else:
            inside = self.radius - np.hypot(local[..., 0], local[..., 1])
        return front, np.clip(inside * scale + 0.5, 0.0, 1.0)[..., None]

    def carry(self, positions: np.ndarray, start: float, end: float) -> np.ndarray:
        """Where the points of the sprite at ``positions`` (``[..., 2]`` (y, x) pixels) at alpha
        ``start`` are at alpha ``end``."""
        y, x, scale, turn = _pose_at(self.start, self.end, start)
        coordinates = _sprite_coordinates(positions - np.array([y, x]), scale, turn)
        y, x, scale, turn = _pose_at(self.start, self.end, end)
        return np.array([y, x]) + _sprite_position(coordinates, scale, turn)


def sprite_flows(size: int, sprites: tuple[Sprite, ...], pan: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The true flows of sprites (drawn in order) over a background that pans by ``pan`` (``(dy, dx)``
    pixels from alpha 0 to 1), on a ``[size, size]`` picture.

    Returns ``(forward, backward)``, ``[size, size, 2] float32`` (dy, dx) pixels in
    ``dense_image_warp``'s convention: pixel ``p`` of the picture at alpha 1 shows
    the point that was at ``p - forward[p]`` at alpha 0, and pixel ``q`` at alpha 0
    the point that is at ``q - backward[q]`` at alpha 1. Each pixel follows the
    topmost layer covering at least half of it there (the background where no sprite
    does), whether or not that point is hidden at the other end: the exact
    correspondence, occlusions and all.
    """
    grid = pixel_grid(size, size)
    forward = np.broadcast_to(np.asarray(pan, np.float64), grid.shape).copy()
    backward = -forward
    for sprite in sprites:
        for flow, here, there in ((forward, 1.0, 0.0), (backward, 0.0, 1.0)):
            _, cover = sprite.cover(grid, here)
            inside = cover[..., 0] >= 0.5
            flow[inside] = (grid - sprite.carry(grid, here, there))[inside]
    return forward.astype(np.float32), backward.astype(np.float32)


@dataclass(frozen=True, eq=False)
class SoftScene:
    """Textured sprites (``Sprite``, drawn in order) over a soft texture that may pan: the kind of
    scene whose pictures offer SIFT few key points at OpenCV's default threshold and hold nothing
    flat (``morphing.fit.regions`` sees no shape), while the flow morph follows it well.

    ``background``: ``[size + 2m, size + 2m, 3]`` float64 in [0, 255], of which the middle
    ``[size, size]`` shows at alpha 0; ``pan``: ``(dy, dx)`` pixels it moves from alpha 0 to 1
    (at most ``m``).
    """

    background: np.ndarray
    sprites: tuple[Sprite, ...]
    pan: tuple[float, float]
    size: int

    def render(self, alpha: float) -> np.ndarray:
        """The scene at ``alpha``: ``[size, size, 3] uint8``."""
        grid = pixel_grid(self.size, self.size)
        margin = (self.background.shape[0] - self.size) // 2
        canvas = sample_bilinear(self.background, grid + margin - alpha * np.asarray(self.pan))
        for sprite in self.sprites:
            front, cover = sprite.cover(grid, alpha)
            canvas = canvas * (1 - cover) + front * cover
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    def true_flows(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact correspondence between ``render(0)`` and ``render(1)``: ``sprite_flows``."""
        return sprite_flows(self.size, self.sprites, self.pan)


def _soft_texture(rng: np.random.Generator, size: int, low: float, high: float) -> np.ndarray:
    """A smooth random texture around a random colour (each channel drawn in [``low``, ``high``]),
    varying by a quarter of the range either side: ``[size, size, 3]`` float64 in [0, 255]."""
    texture = random_texture(rng, size, size, falloff=float(rng.uniform(1.2, 2.0)))
    return np.clip((rng.uniform(low, high, 3) + 0.25 * texture) * 255, 0, 255).astype(np.float64)


def soft_scene(rng: np.random.Generator, size: int = 256) -> SoftScene:
    """A seeded ``SoftScene``: one to three discs or squares (radius 8–14 % of the side) of smooth
    textures, each moving 4–12 % of the side, scaling by up to ±15 % and turning by up to ±0.3 rad,
    over a soft texture that half the scenes pan by up to 4 % of the side."""
    margin = size // 8
    background = _soft_texture(rng, size + 2 * margin, 0.3, 0.7)
    pan = tuple(float(v) for v in rng.uniform(-0.04, 0.04, 2) * size) if rng.uniform() < 0.5 else (0.0, 0.0)
    sprites = []
    for _ in range(int(rng.integers(1, 4))):
        radius = float(rng.uniform(0.08, 0.14)) * size
        centre = rng.uniform(0.3, 0.7, 2) * size
        direction = rng.normal(size=2)
        step = direction / np.linalg.norm(direction) * float(rng.uniform(0.04, 0.12)) * size
        end = (float(centre[0] + step[0]), float(centre[1] + step[1]),
               math.exp(float(rng.uniform(-0.15, 0.15))), float(rng.uniform(-0.3, 0.3)))
        start = (float(centre[0]), float(centre[1]), 1.0, 0.0)
        sprites.append(Sprite(_soft_texture(rng, size, 0.1, 0.9), radius, start, end, square=bool(rng.uniform() < 0.5)))
    return SoftScene(background, tuple(sprites), (pan[0], pan[1]), size)


# --- A whole picture that moves: a camera, and a smooth bend (written after the other sets had been tuned) ---


@dataclass(frozen=True, eq=False)
class CameraScene:
    """A picture seen through a camera that pans, zooms and turns while the exposure changes: one motion
    for the whole frame, found nowhere else in the benchmark's sets.

    ``picture``: ``[N, N, 3]`` float64 in [0, 255], ``N >= 2 * size``; the view is
    its middle ``[size, size]`` at alpha 0, at the picture's own resolution.
    At alpha, view pixel ``p`` shows the picture at
    ``centre + R(alpha·turn)(p - c) / zoom**alpha - alpha·shift`` (``c`` the
    view's centre, ``R`` a rotation), times ``1 + alpha·(gain - 1)``.
    """

    picture: np.ndarray
    size: int
    zoom: float
    turn: float
    shift: tuple[float, float]
    gain: float

    def render(self, alpha: float) -> np.ndarray:
        """The view at ``alpha``: ``[size, size, 3] uint8``."""
        relative = pixel_grid(self.size, self.size) - (self.size / 2 - 0.5)
        turned = _sprite_position(relative, self.zoom ** -alpha, alpha * self.turn)
        middle = self.picture.shape[0] / 2 - 0.5
        seen = sample_bilinear(self.picture, middle + turned - alpha * np.asarray(self.shift))
        return np.clip(np.rint(seen * (1 + alpha * (self.gain - 1))), 0, 255).astype(np.uint8)


def camera_scene(rng: np.random.Generator, pictures: list[np.ndarray], size: int = 256) -> CameraScene:
    """A seeded ``CameraScene`` from one of ``pictures`` (``[N, N, 3]`` uint8, ``N >= 2 * size``): a zoom
    by up to ±15 %, a turn by up to ±0.15 rad, a pan by up to 8 % of the side and an exposure change by up
    to ±20 %; the view never reads outside the picture."""
    picture = pictures[int(rng.integers(len(pictures)))]
    if min(picture.shape[:2]) < 2 * size:
        raise ValueError(f"camera scenes need pictures of at least {2 * size} px, got {picture.shape[:2]}")
    shift = rng.uniform(-0.08, 0.08, 2) * size
    return CameraScene(picture.astype(np.float64), size, math.exp(float(rng.uniform(-0.15, 0.15))),
                       float(rng.uniform(-0.15, 0.15)), (float(shift[0]), float(shift[1])),
                       float(rng.uniform(0.8, 1.2)))


@dataclass(frozen=True, eq=False)
class BendScene:
    """A picture bent smoothly, more and more: at alpha, pixel ``p`` shows it at ``p - alpha·u(p)``, with
    ``u`` a sum of Gaussian bumps. The formula's own kind of motion (the true S→T flow is ``u``).

    ``picture``: ``[N, N, 3]`` float64 in [0, 255] of which the middle ``[size, size]`` shows at
    alpha 0 (``N >= size + 2·margin``, the margin larger than any bump, so that nothing is read outside);
    ``centres`` ``[K, 2]`` and ``sigmas`` ``[K]`` in pixels of the view, ``amplitudes`` ``[K, 2]`` (dy, dx) pixels.
    """

    picture: np.ndarray
    size: int
    centres: np.ndarray
    sigmas: np.ndarray
    amplitudes: np.ndarray

    def bend(self) -> np.ndarray:
        """``u``: ``[size, size, 2]`` (dy, dx) pixels, the whole bend at alpha 1: the bumps of a
        ``Deformation`` whose similarity is the identity."""
        grid = pixel_grid(self.size, self.size)
        bumps = Deformation((0.0, 0.0), np.eye(2), np.zeros(2), self.centres, self.sigmas, self.amplitudes)
        return bumps.apply(grid) - grid

    def render(self, alpha: float) -> np.ndarray:
        """The bent picture at ``alpha``: ``[size, size, 3] uint8``."""
        margin = (self.picture.shape[0] - self.size) / 2
        positions = pixel_grid(self.size, self.size) + margin - alpha * self.bend()
        return np.clip(np.rint(sample_bilinear(self.picture, positions)), 0, 255).astype(np.uint8)


def bend_scene(rng: np.random.Generator, pictures: list[np.ndarray], size: int = 256) -> BendScene:
    """A seeded ``BendScene`` from one of ``pictures`` (``[N, N, 3]`` uint8, ``N >= 1.5 * size``): five
    bumps of 8–18 % of the side, each moving its part by about 4 % of the side."""
    picture = pictures[int(rng.integers(len(pictures)))].astype(np.float64)
    if min(picture.shape[:2]) < 1.5 * size:
        raise ValueError(f"bend scenes need pictures of at least {1.5 * size:.0f} px, got {picture.shape[:2]}")
    crop = (picture.shape[0] - round(1.5 * size)) // 2
    picture = picture[crop:crop + round(1.5 * size), crop:crop + round(1.5 * size)]
    return BendScene(picture, size, rng.uniform(0.15, 0.85, (5, 2)) * size, rng.uniform(0.08, 0.18, 5) * size,
                     rng.normal(size=(5, 2)) * 0.04 * size)


# --- Known deformations of real pictures (the correspondence benchmark's ground truth) ---


def sample_bilinear(image: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``image`` (``[H, W, C]``) read at ``positions`` (``[..., 2]`` as (y, x) pixels), bilinear.

    Positions outside the image read the nearest border pixel (the dense
    warp's convention). Returns ``[..., C]`` float64.
    """
    height, width = image.shape[:2]
    y = np.clip(positions[..., 0], 0.0, height - 1.0)
    x = np.clip(positions[..., 1], 0.0, width - 1.0)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2)
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2)
    wy = (y - y0)[..., None]
    wx = (x - x0)[..., None]
    values = image.astype(np.float64)
    top = (1 - wx) * values[y0, x0] + wx * values[y0, x0 + 1]
    bottom = (1 - wx) * values[y0 + 1, x0] + wx * values[y0 + 1, x0 + 1]
    return (1 - wy) * top + wy * bottom


@dataclass(frozen=True)
class Deformation:
    """A smooth, invertible map of the plane: a similarity about the image centre plus Gaussian bumps.

    ``apply(points)`` maps ``[..., 2]`` (y, x) pixel positions; a deformed
    picture ``D`` of an image ``I`` is ``D(p) = I(apply(p))``, so ``apply`` is
    the *sampling* map and ``p - apply(p)`` is the flow that
    ``dense_image_warp`` takes to turn ``I`` into ``D``.

    ``matrix`` (``[2, 2]``) and ``offset`` (``[2]``) give the similarity
    ``centre + matrix @ (p - centre) + offset``; each bump adds
    ``amplitude * exp(-|p - centre_k|^2 / (2 sigma_k^2))``.
    """

    centre: tuple[float, float]
    matrix: np.ndarray
    offset: np.ndarray
    bump_centres: np.ndarray  # [K, 2]
    bump_sigmas: np.ndarray  # [K]
    bump_amplitudes: np.ndarray  # [K, 2]

    def apply(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        relative = points - np.asarray(self.centre)
        mapped = np.asarray(self.centre) + relative @ self.matrix.T + self.offset
        for centre, sigma, amplitude in zip(self.bump_centres, self.bump_sigmas, self.bump_amplitudes):
            distance2 = np.sum((points - centre) ** 2, axis=-1, keepdims=True)
            mapped = mapped + amplitude * np.exp(-distance2 / (2 * sigma * sigma))
        return mapped

    def invert(self, points: np.ndarray, iterations: int = 60) -> np.ndarray:
        """The positions ``p`` with ``apply(p) = points`` (Newton-like fixed-point iteration
        preconditioned by the inverse of the similarity; converges for the gentle bumps made here)."""
        points = np.asarray(points, np.float64)
        inverse = np.linalg.inv(self.matrix)
        estimate = np.asarray(self.centre) + (points - np.asarray(self.centre) - self.offset) @ inverse.T
        for _ in range(iterations):
            estimate = estimate + (points - self.apply(estimate)) @ inverse.T
        return estimate


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``[height, width, 2]`` float64 (y, x) position of every pixel."""
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return np.stack([ys, xs], axis=-1)


def random_deformation(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    max_shift: float = 0.15,
    max_rotation: float = 0.2,
    max_scale: float = 0.15,
    bumps: int = 4,
    bump_amplitude: float = 0.04,
) -> Deformation:
    """A seeded smooth deformation: a translation up to ``max_shift`` of each side, a rotation up to
    ``max_rotation`` radians, a scale change up to ``±max_scale``, and ``bumps`` local
    displacements of up to ``bump_amplitude`` of the long side (each over a Gaussian of
    10–20 % of the long side, gentle enough to stay invertible)."""
    long_side = max(height, width)
    angle = rng.uniform(-max_rotation, max_rotation)
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    matrix = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    offset = rng.uniform(-max_shift, max_shift, 2) * np.array([height, width])
    return Deformation(
        centre=((height - 1) / 2, (width - 1) / 2),
        matrix=matrix,
        offset=offset,
        bump_centres=rng.uniform(0.2, 0.8, (bumps, 2)) * np.array([height, width]),
        bump_sigmas=rng.uniform(0.1, 0.2, bumps) * long_side,
        bump_amplitudes=rng.uniform(-bump_amplitude, bump_amplitude, (bumps, 2)) * long_side,
    )


def random_recolouring(rng: np.random.Generator, image: np.ndarray, *, strength: float = 1.0) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] with its colours changed, clipped to [0, 1].

    A per-channel gain (±30 %) and offset (±0.12), a contrast change about the
    mean (±30 %) and a linear brightness ramp across the image (±0.15 at the
    edges), each scaled by ``strength``: what differs between two photos'
    light and white balance, not their geometry.
    """
    height, width = image.shape[:2]
    gain = 1.0 + strength * rng.uniform(-0.3, 0.3, 3)
    offset = strength * rng.uniform(-0.12, 0.12, 3)
    contrast = 1.0 + strength * rng.uniform(-0.3, 0.3)
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    ramp = strength * 0.15 * (math.cos(direction) * xs + math.sin(direction) * ys)
    mean = image.mean(axis=(0, 1))
    changed = (mean + contrast * (image - mean)) * gain + offset + ramp[..., None]
    return np.clip(changed, 0.0, 1.0)


@dataclass(frozen=True)
class DeformedPair:
    """A source, a target that is the source deformed and recoloured, and the true flows.

    ``source`` and ``target`` are ``[H, W, 3] uint8``. ``forward_flow`` is the
    true S→T flow on the target's pixels and ``backward_flow`` the T→S flow on
    the source's, both ``[H, W, 2]`` (dy, dx) in ``dense_image_warp``'s
    convention. ``forward_valid`` / ``backward_valid`` mark the pixels whose
    correspondence lies inside the other image (elsewhere nothing is right).
    """

    source: np.ndarray
    target: np.ndarray
    forward_flow: np.ndarray
    backward_flow: np.ndarray
    forward_valid: np.ndarray
    backward_valid: np.ndarray


def deformed_pair(
    rng: np.random.Generator, source: np.ndarray, *, recolour: float = 1.0, **deformation: float
) -> DeformedPair:
    """``source`` (``[H, W, 3] uint8``) and a randomly deformed, recoloured copy with the true flows.

    ``deformation`` passes on to ``random_deformation``.
    """
    height, width = source.shape[:2]
    warp = random_deformation(rng, height, width, **deformation)
    grid = pixel_grid(height, width)
    sampled_at = warp.apply(grid)  # target pixel p shows the source at sampled_at[p]
    moved = sample_bilinear(source, sampled_at) / 255.0
    target = np.clip(np.rint(random_recolouring(rng, moved, strength=recolour) * 255), 0, 255).astype(np.uint8)
    lands_at = warp.invert(grid)  # source pixel q appears in the target at lands_at[q]

    def inside(points: np.ndarray) -> np.ndarray:
        return (points[..., 0] >= 0) & (points[..., 0] <= height - 1) & (points[..., 1] >= 0) & (points[..., 1] <= width - 1)

    return DeformedPair(
        source=source,
        target=target,
        forward_flow=(grid - sampled_at).astype(np.float32),
        backward_flow=(grid - lands_at).astype(np.float32),
        forward_valid=inside(sampled_at),
        backward_valid=inside(lands_at),
    )

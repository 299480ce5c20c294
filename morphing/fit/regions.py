"""Matched regions: flat shapes with sharp outlines, found in both pictures and paired by their outline.

Where a picture holds flat-coloured shapes over a smooth background (a
drawing, a diagram, a logo, the synthetic scenes of
``morphing.testing.scenes``), the other starts see little: SIFT finds
no key points on flat colour, local NCC has no basin wider than a shape, and
the global search moves everything at once. Yet each shape is plain to see
by its outline, and its outline survives a change of colour, place, size and
turn. This start finds those shapes (``flat_regions``), pairs each with the
other picture's shape of the same outline (``match_regions``: the overlap of
the two outlines once both are centred, brought to one size and turned the
best way), and carries each pair's similarity over the path the shape
travels, nothing elsewhere (``region_flows``).

A camera's grain breaks flat areas up as texture does, so the picture is
first smoothed in proportion to its own grain (``noise_level``, ``quieted``:
an edge-keeping filter, nothing done to a picture without grain).

A region must be flat inside, sharply outlined along at least
``StartSettings.region_crisp`` of its edge and away from the frame's edge.
A shape that touches another may be partly hidden by it, so its outline is
not all its own: such a region is taken as its convex hull (what a convex
shape under another looks like whole) and marked ``touching``, and the
start it gives is weaker evidence (``starts.regions_candidate``). On
photographs almost nothing passes (texture breaks flat areas up, and soft
edges fail the outline test), so there this start is simply absent.

Convention
----------
Images: working-size ``[h, w, 3] float32`` in [-1, 1]. Positions: ``(y, x)``
pixels, pixel centres at integers. A turn is in radians, counter-clockwise as
seen on the screen (y down), OpenCV's ``getRotationMatrix2D`` sense: the
source shape turned by ``turn`` about its centre and scaled by ``scale``
covers the target shape. Flows: ``[2, h, w, 2] float32`` (dy, dx) pixels, the
S→T flow on the target's pixels then the T→S flow on the source's, in
``dense_image_warp``'s sign (pixel ``p`` shows the other picture at
``p - flow(p)``), as ``starts.Candidate.flows``.

Numpy and OpenCV only (it runs in the start's helper process).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from morphing.model.settings import StartSettings

__all__ = ["Region", "RegionMatch", "noise_level", "quieted", "flat_regions", "match_regions", "similarity_flow",
           "travelling_flow", "region_flows"]

MOST_REGIONS = 8  # the largest shapes each picture contributes
CLEARANCE = 5  # pixels: a region nearer than this to another flat area touches it
SMALLEST_SHARE, LARGEST_SHARE = 0.002, 0.3  # a region's area, as a share of the picture
PATCH = 48  # side of the square each region's outline is compared on
TURNS = np.deg2rad(np.arange(-180, 180, 2)).astype(np.float64)
TURN_TIE = 0.05  # a turn that overlaps this close to the best, by a symmetry of the shape, fits as well
SYMMETRY = 0.85  # a shape turned by a symmetry of its own overlaps itself at least this much on the patch
SYMMETRY_REACH, SYMMETRY_SLACK = 5, 2  # in steps of TURNS: a symmetry is the best turn this far around


class Region(NamedTuple):
    """One flat, sharply outlined shape: its ``mask`` (``[h, w]`` uint8, 1 inside, its outline's edge
    included), ``area`` (pixels), ``centre`` (``[2]`` (y, x) pixels), ``crisp``: the share of its edge
    that is a sharp step (0–1), and ``touching``: another flat shape touches it, so ``mask`` is the
    convex hull of what shows (and what shows may be less than the shape)."""

    mask: np.ndarray
    area: float
    centre: np.ndarray
    crisp: float
    touching: bool = False


class RegionMatch(NamedTuple):
    """A target region and the source region of the same outline: the source turned by ``turn``
    (radians, see the module) and scaled by ``scale`` (target size over source size) about its centre
    covers the target's, with intersection over union ``overlap`` (0–1)."""

    target: Region
    source: Region
    turn: float
    scale: float
    overlap: float


def _edge_strength(image: np.ndarray) -> np.ndarray:
    """``[h, w]`` float32: the largest over the colour channels of the gradient's length, in units of
    the [0, 1] range per pixel (a step between two flat colours that differ by ``d`` peaks near ``d / 2``)."""
    unit = cv2.GaussianBlur((image.astype(np.float32) + 1.0) / 2.0, (0, 0), 0.7)
    strength = np.zeros(image.shape[:2], np.float32)
    for channel in range(image.shape[2]):
        dx = cv2.Sobel(unit[..., channel], cv2.CV_32F, 1, 0, ksize=3) / 4.0
        dy = cv2.Sobel(unit[..., channel], cv2.CV_32F, 0, 1, ksize=3) / 4.0
        strength = np.maximum(strength, np.hypot(dx, dy))
    return strength


def _colour_step(image: np.ndarray, inside: np.ndarray, mask: np.ndarray) -> float:
    """The colour step across a region's outline, in ``_edge_strength``'s units: the largest over the
    channels of how far the mean colour ``inside`` lies from the mean of a ring 3 to 6 pixels beyond
    ``mask`` (the region widened by its outline's band), in the [0, 1] range. The ring lies beyond where
    a softly blurred outline ends, so such an outline's step is its whole step."""
    square = np.ones((3, 3), np.uint8)
    ring = (cv2.dilate(mask, square, iterations=6) > 0) & ~(cv2.dilate(mask, square, iterations=3) > 0)
    if not ring.any():
        return 0.0
    return float(np.max(np.abs(image[inside > 0].mean(axis=0) - image[ring].mean(axis=0)))) / 2.0


GRAIN_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
"""Immerkær's noise kernel: the difference of two Laplacians, blind to flat colour, ramps and straight edges.
Its response to white noise of standard deviation s has standard deviation 6 s."""
QUIET_REACH, QUIET_SPAN = 2.0, 7  # pixels: the spatial sigma of ``quieted``'s filter, and the side it spans


def noise_level(image: np.ndarray) -> float:
    """The standard deviation of ``image``'s grain (``[h, w, 3] float32`` in [-1, 1]), in [0, 1] units.

    Immerkær's estimate made robust: the median absolute response to
    ``GRAIN_KERNEL`` (times 1.4826, the ratio of a normal distribution's
    standard deviation to its median absolute value), over 6; the median
    over the colour channels. Edges and fine texture touch few pixels and
    so move the median little. A drawing in flat colours (or smooth
    gradients) gives 0; a photograph its grain and finest texture.
    """
    unit = (image.astype(np.float32) + 1.0) / 2.0
    levels = [np.median(np.abs(cv2.filter2D(unit[..., channel], -1, GRAIN_KERNEL)[1:-1, 1:-1]))
              for channel in range(image.shape[2])]
    return float(np.median(levels)) * 1.4826 / 6.0


def quieted(image: np.ndarray, noise: float, reach: float) -> np.ndarray:
    """``image`` (``[h, w, 3] float32`` in [-1, 1]) with grain of standard deviation ``noise`` ([0, 1] units,
    ``noise_level``) smoothed away by a bilateral filter: neighbours within ``QUIET_REACH`` pixels are averaged
    where their colours differ by up to about ``reach`` times the grain, so a step between two flat colours
    stays sharp. ``image`` itself where ``noise`` or ``reach`` is 0."""
    if noise <= 0.0 or reach <= 0.0:
        return image
    # Colour distances in the filter are in the image's units: [-1, 1] is twice [0, 1].
    return cv2.bilateralFilter(np.ascontiguousarray(image, np.float32), QUIET_SPAN, 2.0 * reach * noise,
                               QUIET_REACH)


def flat_regions(image: np.ndarray, settings: StartSettings = StartSettings()) -> list[Region]:
    """The whole flat shapes of ``image`` (``[h, w, 3] float32`` in [-1, 1]), largest first.

    Pixels whose edge strength is under a quarter of ``settings.region_edge``
    are flat; their 4-connected areas are the candidates. The largest is
    the background; a candidate counts when it is between 0.2 % and 30 % of
    the picture, does not touch the frame's edge (it would be cut), and at
    least ``settings.region_crisp`` of the 2-pixel band around it is sharp:
    stronger than ``settings.region_edge``, or than ``settings.region_step``
    times the colour step across it (``_colour_step``), so a faint shape
    drawn sharply counts as a bold one does, and a soft patch of a photo
    does not. One that lies within ``CLEARANCE`` pixels of another flat
    area of that least size (a speck in a sharp corner is no other shape)
    touches it: with ``settings.region_touching`` it counts as its convex
    hull, unless more than ``settings.region_most_hidden`` of the hull is
    outside it; else it is left out. Each mask is widened by the band, so
    it covers the shape's edge too. All of this is read off the picture
    ``quieted`` of its grain (``settings.region_quiet`` times
    ``noise_level``).
    """
    height, width = image.shape[:2]
    image = quieted(image, noise_level(image), settings.region_quiet)
    strength = _edge_strength(image)
    flat = (strength < 0.25 * settings.region_edge).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    if count < 3:
        return []
    background = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    square = np.ones((3, 3), np.uint8)
    smallest = SMALLEST_SHARE * height * width
    found = []
    for label in range(1, count):
        left, top, box_width, box_height, area = stats[label]
        if label == background or not smallest <= area <= LARGEST_SHARE * height * width:
            continue
        if left == 0 or top == 0 or left + box_width == width or top + box_height == height:
            continue
        inside = (labels == label).astype(np.uint8)
        near = cv2.dilate(inside, square, iterations=CLEARANCE) > 0
        touching = any(other not in (0, label, background) and stats[other, cv2.CC_STAT_AREA] >= smallest
                       for other in np.unique(labels[near]))
        if touching and not settings.region_touching:
            continue
        mask = cv2.dilate(inside, square, iterations=2)
        band = (mask > 0) & (inside == 0)
        sharp = min(settings.region_edge, settings.region_step * _colour_step(image, inside, mask))
        crisp = float(np.mean(strength[band] > sharp))
        if crisp < settings.region_crisp:
            continue
        if touching:
            hull = _convex_hull(inside)
            if 1.0 - area / hull.sum() > settings.region_most_hidden:
                continue
            mask = cv2.dilate(hull, square, iterations=2)
        moments = cv2.moments(mask, binaryImage=True)
        centre = np.array([moments["m01"], moments["m10"]]) / moments["m00"]
        found.append(Region(mask, float(moments["m00"]), centre, crisp, touching))
    found.sort(key=lambda region: -region.area)
    return found[:MOST_REGIONS]


def _convex_hull(inside: np.ndarray) -> np.ndarray:
    """``[h, w]`` uint8: the convex hull of the 1s of ``inside`` (``[h, w]`` uint8), filled."""
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = np.zeros_like(inside)
    cv2.fillPoly(hull, [cv2.convexHull(np.concatenate(contours))], 1)
    return hull


def _outline_patch(region: Region) -> np.ndarray:
    """``[PATCH, PATCH] float32``: the region's mask centred and scaled so that the square root of its
    area spans a third of the patch."""
    scale = (PATCH / 3.0) / math.sqrt(region.area)
    centre_y, centre_x = region.centre
    matrix = np.array([[scale, 0.0, PATCH / 2 - scale * centre_x], [0.0, scale, PATCH / 2 - scale * centre_y]])
    return cv2.warpAffine(region.mask.astype(np.float32), matrix, (PATCH, PATCH), flags=cv2.INTER_LINEAR)


def _turned_patches(patch: np.ndarray) -> np.ndarray:
    """``[len(TURNS), PATCH, PATCH]``: ``patch`` turned about its centre by each of ``TURNS``."""
    return np.stack([cv2.warpAffine(patch, cv2.getRotationMatrix2D((PATCH / 2, PATCH / 2), math.degrees(turn), 1.0),
                                    (PATCH, PATCH), flags=cv2.INTER_LINEAR) for turn in TURNS])


def _overlaps(turned: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """``[len(turned)]``: intersection over union of each of the ``turned`` patches with ``patch``."""
    return (np.minimum(turned, patch).sum(axis=(1, 2))
            / np.maximum(np.maximum(turned, patch).sum(axis=(1, 2)), 1e-6))


def _symmetries(turned: np.ndarray) -> set[int]:
    """A shape's own symmetries, in steps of ``TURNS`` (0 among them): the turns of its patch
    (``_turned_patches``) at which it overlaps itself best within ``SYMMETRY_REACH`` steps on either side,
    by ``SYMMETRY`` or more."""
    steps = len(TURNS)
    unturned = int(np.argmin(np.abs(TURNS)))
    itself = _overlaps(turned, turned[unturned])
    found = set()
    for index in range(steps):
        around = itself[np.arange(index - SYMMETRY_REACH, index + SYMMETRY_REACH + 1) % steps]
        if itself[index] >= SYMMETRY and itself[index] >= around.max():
            found.add(index - unturned)
    return found


def _best_turn(target_patch: np.ndarray, turned_source: np.ndarray, symmetries: set[int]) -> tuple[float, float]:
    """(overlap, turn): the best intersection over union of the target's patch with the turned source
    patches (``_turned_patches``), and the turn to take.

    A symmetric shape fits at several turns (a square every quarter turn),
    which on a coarse patch score a little apart. Of the best turn moved by
    each of the ``symmetries`` (``_symmetries`` of either shape: a square
    partly hidden has lost its own, the other may show them), give or take
    ``SYMMETRY_SLACK`` steps, those that score within ``TURN_TIE`` of the best
    fit as well, and the smallest is taken: the least motion is the
    likeliest.
    """
    overlaps = _overlaps(turned_source, target_patch)
    best = int(np.argmax(overlaps))
    steps = len(TURNS)
    fitting = []
    for symmetry in symmetries:
        near = np.arange(best + symmetry - SYMMETRY_SLACK, best + symmetry + SYMMETRY_SLACK + 1) % steps
        candidate = int(near[np.argmax(overlaps[near])])
        if overlaps[candidate] >= overlaps[best] - TURN_TIE:
            fitting.append(candidate)
    return float(overlaps[best]), float(TURNS[min(fitting, key=lambda index: abs(TURNS[index]))])


def match_regions(source_regions: list[Region], target_regions: list[Region], long_side: int,
                  settings: StartSettings = StartSettings()) -> list[RegionMatch]:
    """Pairs of regions of the same outline, each region in one pair at most.

    Every target region is compared with every source region whose area is
    within a factor ``settings.region_area_ratio`` of its own: outline
    overlap at the best turn (``_best_turn``). Pairs are taken greedily by
    ``1 - overlap`` plus a little for the distance (``0.3`` × the shift over
    ``long_side``) and for the change of size (``0.1`` × |log area ratio|), so
    that of two alike shapes the nearer pairs first; a pair needs an
    overlap of at least ``settings.region_overlap``. Colour plays no part.
    """
    if not source_regions or not target_regions:
        return []
    turned = [_turned_patches(_outline_patch(region)) for region in source_regions]
    source_symmetries = [_symmetries(patches) for patches in turned]
    options = []
    for target_index, target in enumerate(target_regions):
        target_patch = _outline_patch(target)
        target_symmetries = _symmetries(_turned_patches(target_patch))
        for source_index, source in enumerate(source_regions):
            ratio = target.area / source.area
            if not 1.0 / settings.region_area_ratio <= ratio <= settings.region_area_ratio:
                continue
            overlap, turn = _best_turn(target_patch, turned[source_index],
                                       source_symmetries[source_index] | target_symmetries)
            shift = float(np.linalg.norm(target.centre - source.centre)) / long_side
            options.append((1.0 - overlap + 0.3 * shift + 0.1 * abs(math.log(ratio)),
                            target_index, source_index, overlap, turn, math.sqrt(ratio)))
    matches, used_targets, used_sources = [], set(), set()
    for _, target_index, source_index, overlap, turn, scale in sorted(options):
        if target_index in used_targets or source_index in used_sources or overlap < settings.region_overlap:
            continue
        used_targets.add(target_index)
        used_sources.add(source_index)
        matches.append(RegionMatch(target_regions[target_index], source_regions[source_index], turn, scale, overlap))
    return matches


def similarity_flow(here: np.ndarray, there: np.ndarray, turn: float, scale: float,
                    height: int, width: int) -> np.ndarray:
    """``[height, width, 2] float32`` (dy, dx): the flow on one picture's pixels of the similarity that
    takes the other picture's shape (centre ``there``) onto this one's (centre ``here``, ``[2]`` (y, x)),
    turning by ``turn`` and scaling by ``scale``: pixel ``p`` shows the other picture at
    ``there + R(turn)⁻¹ (p - here) / scale``, and the flow is ``p`` minus that."""
    cosine, sine = math.cos(turn), math.sin(turn)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    dy, dx = rows - here[0], columns - here[1]
    # R(turn) takes (x, y) offsets to (c x + s y, -s x + c y); its inverse is (c x - s y, s x + c y).
    shown_x = there[1] + (cosine * dx - sine * dy) / scale
    shown_y = there[0] + (sine * dx + cosine * dy) / scale
    return np.stack([rows - shown_y, columns - shown_x], axis=-1).astype(np.float32)


def travelling_flow(here: np.ndarray, there: np.ndarray, turn: float, scale: float,
                    height: int, width: int, least: float = 0.1, alpha: np.ndarray | None = None) -> np.ndarray:
    """``[height, width, 2] float32`` (dy, dx): like ``similarity_flow``, but right for the frame in which
    the shape passes over each pixel, not only for the last.

    Frame alpha scales a flow by alpha, so the plain similarity's flow,
    right where the shape ends, puts the shape's two halves apart half-way
    when it turns or changes size (by ``(1 - 1/scale) / 4`` of its travel at
    alpha ½). Here each pixel ``p`` takes the alpha at which the shape's
    centre, travelling from ``there`` to ``here``, passes ``p`` (its
    projection on the travel, at least ``least``; 1 beyond ``here`` or when
    the shape does not travel), and the flow that shows the other picture's
    shape at that alpha as it is then (centre ``there + alpha (here -
    there)``, turned by ``alpha turn``, scaled by ``scale ** alpha``):
    ``f(p) = (p - there - M_alpha⁻¹ (p - centre_alpha)) / alpha``. At alpha 1
    that is ``similarity_flow``; for a plain shift it is the shift.
    ``alpha`` (``[height, width]``), when given, is each pixel's alpha instead of the projection
    (NaN: the projection's there).
    """
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    travel = np.asarray(here, np.float64) - np.asarray(there, np.float64)
    length = float(np.dot(travel, travel))
    if length < 1e-9:
        projected = np.ones((height, width))
    else:
        projected = 1.0 - ((here[0] - rows) * travel[0] + (here[1] - columns) * travel[1]) / length
    if alpha is not None:
        projected = np.where(np.isnan(alpha), projected, alpha)
    alpha = np.clip(projected, least, 1.0)
    cosine, sine = np.cos(alpha * turn), np.sin(alpha * turn)
    size = scale ** alpha
    dy, dx = rows - (there[0] + alpha * travel[0]), columns - (there[1] + alpha * travel[1])
    # M_alpha⁻¹ takes (x, y) offsets to (c x - s y, s x + c y) / size (``similarity_flow``'s inverse).
    shown_x = there[1] + (cosine * dx - sine * dy) / size
    shown_y = there[0] + (sine * dx + cosine * dy) / size
    return np.stack([(rows - shown_y) / alpha, (columns - shown_x) / alpha], axis=-1).astype(np.float32)


def _path(here: Region, there: Region, turn: float, scale: float, steps: int = 25
          ) -> tuple[np.ndarray, np.ndarray]:
    """Where the shape lies at some moment of the morph, seen from ``here`` (the similarity from ``there``
    to ``here`` turns by ``turn`` and scales by ``scale``, as ``similarity_flow``'s): ``[h, w]`` uint8, the
    union of the shape at ``steps`` moments from ``there`` (alpha 0) to ``here`` (alpha 1), each moved,
    turned and resized as it then is; and ``[h, w]`` float64, at each pixel the alpha nearest ½ of the
    moments whose shape covers it (NaN where none does): the middle frame is the one to get right."""
    height, width = here.mask.shape
    travel = here.centre - there.centre
    swept = np.zeros_like(here.mask)
    alpha = np.full((height, width), np.nan)
    for back in sorted(np.linspace(0.0, 1.0, steps), key=lambda value: -abs(value - 0.5)):
        matrix = cv2.getRotationMatrix2D((float(here.centre[1]), float(here.centre[0])), math.degrees(-back * turn),
                                         scale ** -back)
        matrix[:, 2] -= back * travel[::-1]
        shape = cv2.warpAffine(here.mask, matrix, (width, height), flags=cv2.INTER_NEAREST)
        swept = np.maximum(swept, shape)
        alpha[shape > 0] = 1.0 - back  # moments nearer ½ come later and win
    return swept, alpha


def region_flows(matches: list[RegionMatch], height: int, width: int,
                 settings: StartSettings = StartSettings()) -> np.ndarray:
    """``[2, height, width, 2] float32``: both directions' flows of the matched regions.

    Each match's similarity, as the frame in which the shape passes each
    pixel shows it (``travelling_flow``, with ``_path``'s moments where the
    shape covers the pixel), holds in full on the path its shape travels
    and fades outside it with a Gaussian of the distance,
    ``settings.region_spread`` times the shape's radius; where paths meet,
    the flows are averaged by weight, and where the weights add up to less
    than one the flow fades towards no motion.
    """
    flows = []
    for direction in range(2):
        total = np.zeros((height, width, 2), np.float64)
        weight = np.zeros((height, width), np.float64)
        for match in matches:
            here, there = (match.target, match.source) if direction == 0 else (match.source, match.target)
            turn, scale = (match.turn, match.scale) if direction == 0 else (-match.turn, 1.0 / match.scale)
            path, moment = _path(here, there, turn, scale)
            flow = travelling_flow(here.centre, there.centre, turn, scale, height, width, alpha=moment)
            sigma = max(settings.region_spread * math.sqrt(here.area / math.pi), 2.0)
            distance = cv2.distanceTransform((1 - path).astype(np.uint8), cv2.DIST_L2, 5)
            near = np.exp(-0.5 * np.square(distance / sigma))
            total += near[..., None] * flow
            weight += near
        flows.append(total / np.maximum(weight, 1.0)[..., None])
    return np.stack(flows).astype(np.float32)

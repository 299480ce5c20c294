"""Settings and mode names, without TensorFlow: what the command line and the core both read.

The command line checks flags and prints ``--help`` before TensorFlow is
imported, so the defaults it shows live here, with the settings dataclasses
that the numerical modules take (``morphing.fit.fitter``, ``morphing.fit.affine``,
``morphing.tools.hybrid``, ``morphing.tools.shift`` re-export theirs). Nothing here
imports TensorFlow or numpy.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BLENDS",
    "EASINGS",
    "RENDER_ENGINES",
    "DetailSettings",
    "HYBRID_NEAR_TERMS",
    "HYBRID_STARTS",
    "SHIFT_INTERPOLATIONS",
    "WARP_INTERPOLATIONS",
    "AlignSettings",
    "FitSettings",
    "FrameSettings",
    "EncoderSettings",
    "OutputSize",
    "X264_PRESETS",
    "GlobalSettings",
    "StartSettings",
    "PolishSettings",
    "HybridSettings",
    "Interpolation",
    "default_kernel_size",
]

WARP_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
"""How frames sample the warped images (``morphing.render.warp``); fitting always uses bilinear."""
RENDER_ENGINES: tuple[str, ...] = ("auto", "opencv", "tensorflow")
"""What renders frames (``morphing.render.renderer``): ``auto`` is OpenCV on a CPU, TensorFlow on a GPU."""
BLENDS: tuple[str, ...] = ("detail", "linear")
"""How a frame blends its two directions (``morphing.render.blend``)."""
EASINGS: tuple[str, ...] = ("linear", "ease-in-out")
"""How alpha runs over a transition (``morphing.model.timeline.ease``)."""
SHIFT_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "fourier")
"""How ``morphing.tools.shift`` resamples a shifted image."""
Interpolation = Literal["bilinear", "bicubic", "fourier"]
X264_PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                                 "slower", "veryslow")
"""H.264 encoder presets, fastest first (each slower one makes smaller files at the same quality)."""
HYBRID_STARTS: tuple[str, ...] = ("near", "grey")
HYBRID_NEAR_TERMS: tuple[str, ...] = ("pixels", "detail")


def default_kernel_size(sigma: float) -> int:
    """The odd kernel size that covers ±3 sigma: ``2·ceil(3σ) + 1``."""
    return 2 * math.ceil(3.0 * sigma) + 1


@dataclass(frozen=True)
class FitSettings:
    """How to fit. ``working_size`` and ``grid_size`` are long sides in pixels; the
    ``*_weight`` fields weigh the loss terms (see the module). ``colour_level``: the
    pyramid level whose size the colour term compares images at (0: the working
    size; each level halves it; the coarsest level when there are fewer).
    ``pin_sigma``: the width (grid pixels) of the bend that makes the fitted
    flow carry user point pairs exactly. ``unfold_rounds``: at most this
    many rounds of smoothing where the whole flow's sampling map folds
    (``morphing.fit.unfold``; 0: never), once ``unfold_tail`` of the epochs
    are left (the colour maps then follow) and again after the last.
    ``face_points``: find face key
    points when the caller gives none (``morphing.fit.keypoints``); they pull
    with ``face_point_weight`` (times ``point_weight``), fading to nothing
    by ``1 / face_point_fade`` of the epochs. ``starts``: how the start is
    chosen (``morphing.fit.starts``); ``global_search``: how the global search
    candidate searches (``morphing.fit.affine``); ``probe_steps``: the dense steps each start
    gets when that choice is left to a probe; ``probe_judge``: what then decides, "middle" (the
    start whose middle frame shows one thing: ``starts.middle_cost``, no colour maps, so
    recolouring in place cannot win) or "loss" (the lower training loss).
    ``polish``: how the fitted warp is polished by the optical flow at the frames' size
    (``morphing.fit.polish``). ``fine_start``: a ``pixelwise`` start (matched features refined by the optical flow) keeps the
    edges its grid copy loses: every level's terms see them, and the maps come back at the working size
    (``fitter.fine_flows``). ``structure_colour``: the weight of colour in the structure term, against
    luminance's 1: each of two colour-opponent channels (``losses.opponent_colours``) is compared by
    local NCC as luminance is, so an edge between two colours of one brightness pulls the warp too;
    0 compares luminance only."""

    epochs: int = 120
    working_size: int = 192
    grid_size: int = 64
    learning_rate: float = 2e-3
    features: int = 32
    layers: int = 3
    pyramid_levels: int = 3
    global_alignment: bool = True
    structure_window: int = 9
    structure_weight: float = 1.0
    coarse_fade: float = 1.0
    colour_weight: float = 1.0
    colour_level: int = 1
    pixel_warp_weight: float = 0.0
    smoothness_weight: float = 1.0
    edge_awareness: float = 0.0
    consistency_weight: float = 1.0
    fold_weight: float = 1.0
    fold_margin: float = 0.2
    point_weight: float = 0.3
    pin_sigma: float = 4.0
    unfold_rounds: int = 200
    unfold_tail: float = 1 / 3
    face_point_weight: float = 0.3
    face_point_fade: float = 1.0
    face_points: bool = True
    probe_steps: int = 20
    probe_judge: Literal["loss", "middle"] = "middle"
    fine_start: bool = True
    structure_colour: float = 1.0
    starts: StartSettings = field(default_factory=lambda: StartSettings())
    polish: PolishSettings = field(default_factory=lambda: PolishSettings())
    global_search: GlobalSettings = field(default_factory=lambda: GlobalSettings())
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "working_size", "grid_size", "features", "layers", "pyramid_levels", "probe_steps",
                     "unfold_rounds", "seed"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"{name} must be a whole number, got {value!r}")
        if not isinstance(self.colour_level, numbers.Integral) or isinstance(self.colour_level, bool):
            raise TypeError(f"colour_level must be a whole number, got {self.colour_level!r}")
        for name, least in (("epochs", 1), ("working_size", 8), ("grid_size", 2), ("features", 1), ("layers", 1),
                            ("pyramid_levels", 1), ("probe_steps", 0), ("unfold_rounds", 0), ("colour_level", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not self.structure_colour >= 0.0:
            raise ValueError(f"structure_colour must be at least 0, got {self.structure_colour!r}")
        if not 0.0 <= self.unfold_tail <= 1.0:
            raise ValueError(f"unfold_tail must be between 0 and 1, got {self.unfold_tail!r}")
        if self.probe_judge not in ("loss", "middle"):
            raise ValueError(f"probe_judge must be 'loss' or 'middle', got {self.probe_judge!r}")
        if not isinstance(self.starts, StartSettings) or not isinstance(self.global_search, GlobalSettings):
            raise TypeError("starts and global_search must be StartSettings and GlobalSettings")
        if not isinstance(self.polish, PolishSettings):
            raise TypeError("polish must be PolishSettings")

    @property
    def total_steps(self) -> int:
        """Training steps of one fit at most: the epochs and the probes of the other starts."""
        others = (1 + (self.starts.probe_flow_share <= 1.0)) if math.isfinite(self.starts.no_evidence) else 0
        return self.epochs + others * min(self.probe_steps, self.epochs)


@dataclass(frozen=True)
class PolishSettings:
    """How the fitted warp is polished by the optical flow at the frames' size (``morphing.fit.polish``).

    ``enabled``: polish at all; ``size``: the long side (pixels) it works at, at most the frames';
    ``window``: the box (pixels of a 192-px picture) in which the flow's answer must line the pictures
    up better than the fitted warp's, by ``margin`` (squared local correlation); ``tolerance``: how far
    (pixels of a 192-px picture) its two directions may fail to undo each other where it is taken;
    ``least_agreement``: the share of pixels on which they must agree for any of it to be taken;
    ``feather``: the Gaussian (pixels of a 192-px picture) that softens the edge of what is taken, so
    that no seam folds; ``smoothing_rounds``: rounds of ``unfold``'s local smoothing tried on the result
    before a near fold counts; ``fold_rounds``: at most this many rounds that take less of the flow's
    answer where the smoothed result still folds (what is left is unfolded as the fit is,
    ``FitSettings.unfold_rounds``).
    """

    enabled: bool = True
    size: int = 512
    window: int = 5
    margin: float = 0.0
    tolerance: float = 1.0
    least_agreement: float = 0.5
    feather: float = 2.0
    smoothing_rounds: int = 10
    fold_rounds: int = 20

    def __post_init__(self) -> None:
        _whole("size", self.size, 8, 1 << 16)
        _whole("window", self.window, 1, 1 << 10)
        _whole("fold_rounds", self.fold_rounds, 0, 1 << 10)
        _whole("smoothing_rounds", self.smoothing_rounds, 0, 1 << 10)
        for name, value, valid in (("margin", self.margin, self.margin >= 0), ("tolerance", self.tolerance,
                                   self.tolerance > 0), ("least_agreement", self.least_agreement,
                                   0 <= self.least_agreement <= 1), ("feather", self.feather, self.feather >= 0)):
            if not valid:
                raise ValueError(f"{name} is out of range: {value!r}")


@dataclass(frozen=True)
class FrameSettings:
    """Which frames a morph shows and how they are rendered (``morphing.sequence``).

    ``frames``: per transition, both key images included (a sequence's legs
    share their key frames); ``hold``: extra copies of each key frame;
    ``easing``: one of ``EASINGS``; ``even_pacing``: re-time each transition so
    consecutive frames change by equal amounts; ``loop``: the last key morphs
    back to the first, whose repeat is dropped; ``boomerang``: play forward,
    then backward; ``interpolation``, ``blend``, ``engine``, ``detail`` (the
    detail blend's bands and limits): as ``morphing.render.renderer.FrameRenderer``
    takes them.
    """

    frames: int = 100
    hold: int = 0
    easing: str = "linear"
    even_pacing: bool = False
    loop: bool = False
    boomerang: bool = False
    interpolation: str = "bicubic"
    blend: str = "detail"
    engine: str = "auto"
    detail: DetailSettings = field(default_factory=lambda: DetailSettings())

    def __post_init__(self) -> None:
        for name in ("frames", "hold"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"{name} must be a whole number, got {value!r}")
        if self.frames < 2 or self.hold < 0:
            raise ValueError(f"frames >= 2 and hold >= 0 are needed, got {self.frames} and {self.hold}")
        if self.loop and self.boomerang:
            raise ValueError("loop and boomerang cannot be combined")
        for name, value, allowed in (("easing", self.easing, EASINGS), ("blend", self.blend, BLENDS),
                                     ("interpolation", self.interpolation, WARP_INTERPOLATIONS),
                                     ("engine", self.engine, RENDER_ENGINES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _whole(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class EncoderSettings:
    """How animations are encoded (``morphing.io.output``); ``None`` keeps the format's default.

    ``crf``: H.264 quality for MP4, 0 (lossless) to 51 (worst; default 18);
    ``preset``: one of ``X264_PRESETS`` (default ``veryfast``, ``superfast``
    above a megapixel); ``quality``: WebP quality 0–100 (default 90);
    ``colors``: GIF palette size, 2–255; ``dither``: GIF Floyd–Steinberg
    dithering (else each pixel takes its nearest colour); ``loop_count``: how
    many times a GIF or WebP plays, 0 for forever.
    """

    crf: int | None = None
    preset: str | None = None
    quality: int | None = None
    colors: int = 255
    dither: bool = True
    loop_count: int = 0

    def __post_init__(self) -> None:
        if self.crf is not None:
            _whole("crf", self.crf, 0, 51)
        if self.quality is not None:
            _whole("quality", self.quality, 0, 100)
        _whole("colors", self.colors, 2, 255)
        _whole("loop_count", self.loop_count, 0, 65535)
        if self.preset is not None and self.preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        if not isinstance(self.dither, bool):
            raise TypeError(f"dither must be True or False, got {self.dither!r}")


@dataclass(frozen=True)
class OutputSize:
    """The size frames are written at, never larger than rendered: a ``width`` or a ``height`` in pixels
    (the other follows the aspect ratio) or a ``scale`` in (0, 1]; at most one. None of them: as rendered."""

    width: int | None = None
    height: int | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("width", "height", "scale") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of width, height and scale, not {' and '.join(given)}")
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), 1, 1 << 16)
        if self.scale is not None and not (isinstance(self.scale, numbers.Real) and 0 < self.scale <= 1):
            raise ValueError(f"scale must be in (0, 1], got {self.scale!r}")

    def of(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` to write frames rendered at ``(height, width)`` at; ``ValueError`` if that would
        enlarge them."""
        if self.width is not None:
            wanted = (max(1, round(height * self.width / width)), self.width)
        elif self.height is not None:
            wanted = (self.height, max(1, round(width * self.height / height)))
        elif self.scale is not None:
            wanted = (max(1, round(height * self.scale)), max(1, round(width * self.scale)))
        else:
            return height, width
        if wanted[0] > height or wanted[1] > width:
            raise ValueError(f"frames are {width}x{height}; {wanted[1]}x{wanted[0]} would enlarge them (frames are "
                             "written at their size or smaller)")
        return wanted


@dataclass(frozen=True)
class GlobalSettings:
    """How the global stage searches.

    ``search_side``: long side of the copies searched exhaustively over
    ``shifts`` (normalised, both axes) × ``scales`` × ``turns`` (radians); the
    ``candidates`` best (distinct) maps are then refined side by side by
    ``steps`` Adam steps (learning rate ``learning_rate``) on copies of each
    long side in ``refine_sides``, with local NCC windows of ``window`` pixels,
    and the best refined one is kept.
    ``point_weight`` weighs user point pairs (squared distance in half long sides);
    ``prior_weight`` a pull towards the identity (squared distance of the
    parameters), so that where the images say nothing (flat, or equally good
    everywhere) nothing moves.
    """

    search_side: int = 32
    shifts: tuple[float, ...] = (-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4)
    scales: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.12, 1.25, 1.4, 1.7, 2.0)
    turns: tuple[float, ...] = (-0.2, 0.0, 0.2)
    candidates: int = 4
    refine_sides: tuple[int, ...] = (32, 64)
    steps: int = 40
    learning_rate: float = 0.01
    window: int = 7
    point_weight: float = 10.0
    prior_weight: float = 1e-3


@dataclass(frozen=True)
class StartSettings:
    """How the fit chooses its start (``morphing.fit.starts``).

    ``side``, ``window``: long side of the grey copies the candidates are
    compared on, and the local NCC window there (pixels); ``outside_weight``:
    the cost of filling the whole picture from outside it; ``margin``: how
    much lower than no motion's a moving candidate's cost must be, growing by
    ``margin`` for every ``motion_unit`` of motion (normalised, root mean
    square); ``features``, ``feature_ratio``, ``ransac_pixels``,
    ``min_inliers``: SIFT key points per image, Lowe's ratio, the RANSAC
    threshold in pixels of a 192-px image, and the inliers matched features
    need to count (per layer); ``feature_contrasts``, ``feature_floor``: SIFT's
    contrast thresholds (OpenCV's ``contrastThreshold``, on luminance in [0, 1])
    tried in turn until a picture offers at least ``feature_floor`` key points
    (a smooth or low-contrast picture offers few at OpenCV's 0.04, photos
    plenty); ``feature_layers``: how many motions matched
    features may hold (a still background and things that moved over it), and
    ``layer_reach``: how far (a share of the long side) each layer's inliers
    carry its motion in the start's flows (``starts.layered_flows``);
    ``feature_flow``: that start is refined by the optical flow between the
    pictures (``starts.refined_by_flow``) when the
    matches span at least ``flow_cover`` of each picture's key points
    (``starts.feature_cover``: a logo both pictures share is not the same
    scene), or span less but the optical flow is consistent (as
    ``probe_flow_share`` says: one scene whose motion no similarity holds,
    such as a picture that bends); ``spot_evidence``: whether matches that
    span less than ``flow_cover`` and move only what lies near them settle the
    start as matches over the picture do (``Candidate.conclusive``; until
    0.34.0) or compete on cost like a guess, with the margin of their motion
    (the default: a dozen matches on one spot say nothing of where the rest
    went); ``flow_fusion``: when the matches hold several layers (things that
    moved on their own), the box (pixels of a 192-px image) over which that
    refined start and the optical flow found from scratch are compared by the
    local correlation of luminance (``starts.fused_flows``; 0: the refined start
    alone), each pixel taking the flow from scratch only where its correlation
    is higher by more than ``flow_fusion_margin`` (where the start clearly fails).
    ``feature_paths``: the matched-features start, once chosen, holds each
    thing's motion along the path it travels (``morphing.fit.paths``), as
    matched regions do, so that the frames between show it whole.
    ``no_evidence``: where no candidate beats no motion by its
    margin and no motion's own cost is at least this, a dense probe decides
    between no motion and the best other candidate (``FitSettings.probe_steps``,
    ``FitSettings.probe_judge``); 0 (the default): every such undecided pair is
    probed (with the middle-frame judge the probe also finds large moves of
    portraits whose faces the detector misses: ``benchmarks/correspondence.py
    --sections moved``); ``math.inf`` turns the probe off.
    ``probe_flow_share``: the optical flow (OpenCV's DIS) joins the probe as a
    third start where its two directions undo each other to within
    ``flow_consistency`` pixels of a 192-px picture on at least this share of
    the pixels (``starts.consistent_share``): a flow consistent almost
    everywhere found the pictures' motion (synthetic scenes: 72–98 % of the
    pixels); between different animals, where it once won the probe with a
    wild flow, it is consistent on 1–8 %, and on the development set's pairs
    of different subjects on 20 % at most. 0: it always joins; above 1: never.
    The same share lets it refine matched features that span little
    (``feature_flow``).
    ``probe_tie``: a probed start replaces no motion only with a score lower
    by more than this (identical pictures tie to rounding).
    ``probe_sides``: long sides of the grey copies the probe's middle-frame
    cost is averaged over (``starts.middle_cost``): a few dense steps from
    no motion match fine structure at 64 px, where a moved head's outline
    hardly counts; at 32 px it does.
    ``regions``: the matched-regions candidate (``morphing.fit.regions``:
    flat shapes with sharp outlines, paired by outline); ``region_edge``: the
    edge strength (a share of the [0, 1] range per pixel) a sharp outline
    reaches, a quarter of it the most a flat area has; ``region_step``: an
    outline pixel is sharp too where its edge strength reaches this share of
    the colour step across the outline (a faint shape can be sharply drawn:
    a sharp step reaches half, one blurred by a pixel or more under 0.3);
    ``region_crisp``: the share of a region's outline that must be sharp;
    ``region_overlap``:
    the intersection over union two outlines need, once centred, brought to
    one size and turned, to be paired; ``region_area_ratio``: the most two
    paired regions' areas may differ by (a factor); ``region_spread``: how far
    beyond its path each pair's motion carries, in shape radii;
    ``region_touching``: shapes that touch another flat shape count too,
    completed to their convex hull (one may hide part of the other), but a
    start with such a pair needs the margin over no motion like any other;
    ``region_most_hidden``: the largest share of such a shape's hull that
    may lie outside what shows of it. ``region_quiet``: before regions are
    sought, a camera's grain is smoothed away (``regions.quieted``: colours
    within about this many times the grain's standard deviation are
    averaged, edges kept); 0 turns it off. A picture without grain is not
    touched.
    """

    side: int = 64
    window: int = 7
    outside_weight: float = 0.5
    margin: float = 0.02
    motion_unit: float = 0.2
    features: int = 1000
    feature_contrasts: tuple[float, ...] = (0.04, 0.01)
    feature_floor: int = 50
    feature_ratio: float = 0.75
    ransac_pixels: float = 3.0
    min_inliers: int = 12
    feature_layers: int = 3
    layer_reach: float = 0.04
    feature_flow: bool = True
    flow_cover: float = 0.25
    spot_evidence: bool = False
    flow_fusion: int = 5
    flow_fusion_margin: float = 0.1
    feature_paths: bool = True
    no_evidence: float = 0.0
    probe_flow_share: float = 0.5
    flow_consistency: float = 1.0
    probe_tie: float = 1e-3
    probe_sides: tuple[int, ...] = (64, 32)
    regions: bool = True
    region_edge: float = 0.12
    region_step: float = 0.4
    region_crisp: float = 0.5
    region_overlap: float = 0.88
    region_area_ratio: float = 3.0
    region_spread: float = 0.5
    region_touching: bool = True
    region_most_hidden: float = 1.0 / 3.0
    region_quiet: float = 4.0

    def __post_init__(self) -> None:
        if not self.feature_contrasts or any(not 0 < contrast < 1 for contrast in self.feature_contrasts):
            raise ValueError("feature_contrasts must name one or more thresholds in (0, 1), "
                             f"got {self.feature_contrasts!r}")
        if not isinstance(self.flow_fusion, numbers.Integral) or isinstance(self.flow_fusion, bool) \
                or self.flow_fusion < 0:
            raise ValueError(f"flow_fusion must be a whole number of pixels, 0 or more, got {self.flow_fusion!r}")
        for name in ("probe_flow_share", "flow_consistency", "region_step", "region_quiet"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
        if not self.flow_fusion_margin >= 0.0:
            raise ValueError(f"flow_fusion_margin must be 0 or more, got {self.flow_fusion_margin!r}")
        if not self.probe_sides or any(int(side) < 8 for side in self.probe_sides):
            raise ValueError(f"probe_sides must name one or more sides of at least 8 pixels, got {self.probe_sides!r}")


@dataclass(frozen=True)
class HybridSettings:
    """How to fit a hybrid image; ``sigma`` and ``kernel_size`` are in pixels
    (``kernel_size`` odd, default ``2·ceil(3σ) + 1``).

    ``near_term`` "pixels" compares the whole image with ``near``
    (``mean((X - near)²)``); "detail" compares only the fine detail,
    ``mean(((X - blur X) - (near - blur near))²)``, which leaves the coarse
    picture to the far term. The defaults are those that did best in
    ``benchmarks/hybrid.py``.
    """

    sigma: float = 4.0
    kernel_size: int | None = None
    near_weight: float = 1.0
    far_weight: float = 1.0
    steps: int = 300
    learning_rate: float = 0.05
    start: Literal["near", "grey"] = "grey"
    near_term: Literal["pixels", "detail"] = "detail"


@dataclass(frozen=True)
class AlignSettings:
    """How ``align_shift`` searches.

    Both images are first blurred by a Gaussian of ``blur_sigma`` pixels (0:
    not at all): a blur commutes with a shift, and it removes the finest
    detail, which interpolation reproduces worst and which would bias the
    sub-pixel answer. ``coarsest_side`` is the smallest image side the pyramid goes down to; each
    level halves the previous one. Each level runs ``steps_per_level`` Adam
    steps whose learning rate (in that level's pixels) decays from
    ``learning_rate`` to ``final_learning_rate``.
    """

    interpolation: Interpolation = "bicubic"
    wrap: bool = False
    blur_sigma: float = 1.0
    coarsest_side: int = 16
    steps_per_level: int = 80
    learning_rate: float = 0.3
    final_learning_rate: float = 1e-3


@dataclass(frozen=True)
class DetailSettings:
    """The bands and limits of the detail-preserving blend (sigmas in frame pixels)."""

    sigmas: tuple[float, ...] = (1.0, 3.0)
    window_ratio: float = 2.5
    max_gain: float = 4.0
    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        if not self.sigmas or any(not b > a for a, b in zip((0.0, *self.sigmas), self.sigmas)):
            raise ValueError(f"sigmas must be positive and increasing, got {self.sigmas}")
        if not (self.window_ratio > 0 and self.max_gain >= 1 and self.epsilon > 0):
            raise ValueError(f"window_ratio > 0, max_gain >= 1 and epsilon > 0 are needed, got {self}")

"""Where the dense fit starts: candidate global maps, and a choice among them that background cannot fool.

The dense stage refines a global (affine) map; a wrong global map, a whole
picture slid sideways or a face laid over the hair, is rarely undone. So the
fit gathers *candidate starts* and picks one by evidence, most trusted first:

1. **point pairs** (the user's ``--points`` and the face key points of
   ``morphing.fit.keypoints``): when there are any, the start is the affine laid
   through them (``affine.fit_affine`` with the points, refined on structure).
   Points say what matches what; texture cannot outvote them.
2. otherwise each candidate — **no motion**, the **global search**
   (``affine.fit_affine``), **matched features** (SIFT key points matched
   with Lowe's ratio test, a similarity by RANSAC, when the same object or
   scene is in both; a second or third similarity where something moved on
   its own over it, ``matched_features``; then refined by the optical flow,
   ``refined_by_flow``), **matched regions**
   (flat shapes with sharp outlines paired by outline, each moved along its
   path: ``morphing.fit.regions``, ``regions_candidate``) — gets a *cost*: how
   unlike the two images look once each is moved onto the other by it (local
   NCC of luminance, both directions, at ``StartSettings.side`` pixels) plus
   the share of pixels that it would fill from outside the picture (a
   stretched border). A candidate that moves things must beat no motion by
   a *margin* that grows with how far it moves them: a large motion needs
   strong evidence. Matched features with enough RANSAC inliers (save those
   that sit on one spot and move only what lies near them: they compete on
   cost, ``StartSettings.spot_evidence``), and matched
   regions whose paired outlines are wholly their shapes' own (nothing
   touches them), are ``Candidate.conclusive``: they need only not be worse
   than no motion, and where one passes, only conclusive candidates are
   chosen from (evidence before cost: a global search that lines up two
   pictures' gradients under a large turn can beat no motion by more).
   Matched features' dense flows, once chosen, hold each
   thing's motion along its path (``morphing.fit.paths.along_paths``).
3. when no candidate passes (and no motion's own cost is at least
   ``StartSettings.no_evidence``, 0 by default: whenever none passes), the
   fit gives no motion and the best other candidate (and the **optical
   flow**, OpenCV's DIS, a dense start, where it is consistent both ways
   on most of the picture: ``consistent_share``) a few dense steps each
   (``StartChoice.probe``) and carries on from the one whose middle frame
   then shows one thing (``middle_cost``: the two halves of the frame at
   alpha ½ compared by structure, colour maps left out, border filled from
   outside counted, on copies of each of ``StartSettings.probe_sides``);
   another start must beat no motion there by more than
   ``StartSettings.probe_tie`` (``probe_winner``). A candidate that moves
   things by less than one pixel of the working size is no motion again and
   is not probed.

Numpy and OpenCV only (no TensorFlow), so it runs with the global search in
the helper process while TensorFlow is imported. Images are working-size
``[h, w, 3] float32`` in [-1, 1]; maps are ``affine.Affine`` (normalised
coordinates, target position → source position).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np

from morphing.fit.affine import (
    Affine,
    Copies,
    affine_from_points,
    bilinear_sample,
    fit_affine,
    grey_copies,
    local_ncc_with_gradient,
    normalised_grid,
    to_normalised,
    warped_by_flow,
)
from morphing.fit.paths import along_paths, forward_backward_mismatch
from morphing.fit.regions import flat_regions, match_regions, region_flows
from morphing.io.images import reduce_for_fit
from morphing.model.maps import Scales
from morphing.model.points import PointPairs
from morphing.model.settings import FitSettings, GlobalSettings, StartSettings
from morphing.render.kernels import LUMINANCE, local_correlation

__all__ = ["Candidate", "StartChoice", "StartSettings", "FeatureLayer", "MatchedFeatures", "matched_features",
           "layered_flows", "feature_cover", "features_candidate", "refined_by_flow", "alignment", "fused_flows",
           "consistent_share",
           "DIS_SMALLEST", "dis_flow", "dis_flows", "box_at", "local_scores", "start_candidates",
           "start_cost", "motion_size", "middle_cost", "choose_start", "required_gain", "probe_winner", "leg_start_candidates",
           "regions_candidate"]

NO_MOTION, SEARCH, POINTS, FEATURES, REGIONS, FLOW = (
    "no motion", "global search", "point pairs", "matched features", "matched regions", "optical flow")


@dataclass(frozen=True, eq=False)
class Candidate:
    """A possible start: its ``name`` (one of the six above), its map, and what backs it (a few words).

    ``flows``: for a dense start (the optical flow, matched features refined by it or in layers, matched
    regions), ``[2, h, w, 2] float32``
    (dy, dx) pixels of the images it was found on, ``dense_image_warp``'s sign:
    the S→T flow on the target's pixels, then the T→S flow on the source's;
    ``affine`` is then the identity and unused. ``None`` for an affine start.
    ``conclusive``: its evidence settles it, so it need not beat no motion by a margin
    (``required_gain``): RANSAC inliers, outlines that are wholly their shapes' own.
    ``pixelwise``: its flows hold a motion found pixel by pixel (matched features refined by the optical
    flow), with edges sharper than the fit's grid can hold: the fit adds what its grid loses at every
    level's size and returns maps at the working size (``fitter.fine_flows``).
    """

    name: str
    affine: Affine
    evidence: str = ""
    flows: np.ndarray | None = None
    conclusive: bool = False
    pixelwise: bool = False

    def grid_flows(self, height: int, width: int) -> np.ndarray:
        """``[2, height, width, 2] float32``: both directions' flows in pixels of a ``[height, width]`` grid."""
        if self.flows is None:
            return np.stack([self.affine.flow(height, width), self.affine.inverse().flow(height, width)])
        ratio = np.array([height / self.flows.shape[1], width / self.flows.shape[2]], np.float32)
        return np.stack([cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) * ratio
                         for flow in self.flows]).astype(np.float32)

    def motion(self) -> float:
        """How far it moves things, in half long sides (``motion_size``)."""
        if self.flows is None:
            return motion_size(self.affine)
        half = max(self.flows.shape[1:3]) / 2.0
        return float(np.sqrt(np.mean(np.sum(np.square(self.flows[0]), axis=-1)))) / half


def _grey(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8, or float in [-1, 1] → ``[H, W]`` uint8 luminance (OpenCV's weights)."""
    if image.dtype == np.uint8:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return _to_grey_uint8(image)


def dis_flow(moving: np.ndarray, fixed: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """OpenCV's DIS optical flow (medium preset, on luminance) as a ``[H, W, 2] float32`` (dy, dx) flow on
    ``fixed``'s pixels in ``dense_image_warp``'s convention: ``fixed`` at ``p`` shows ``moving`` at
    ``p - flow(p)``. ``initial`` (that convention and shape; ``None``: none): the flow its search starts
    from, which lets it reach motions larger than its pyramid does."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    start = None if initial is None else np.ascontiguousarray(-initial[..., ::-1], np.float32)
    found = dis.calc(_grey(fixed), _grey(moving), start)  # fixed(p) ~ moving(p + F(p)), (dx, dy)
    return -found[..., ::-1].astype(np.float32)


def dis_flows(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV's DIS optical flow (medium preset, on luminance) both ways, as ``[2, H, W, 2] float32`` in
    ``dense_image_warp``'s convention: the S→T flow (target pixel ``p`` shows the source at ``p - f(p)``)
    and the T→S flow. ``source``, ``target``: ``[H, W, 3]`` uint8, or float in [-1, 1]."""
    return np.stack([dis_flow(source, target), dis_flow(target, source)])


DIS_SMALLEST = 12
"""The shortest side (pixels) of a picture OpenCV's DIS flow takes."""

AGREE_PX = 1.0
"""How far (pixels of a 192-px image) the flow searched from a start may part from the chained one
(``refined_by_flow``): further, it has matched a neighbouring line of a repeating pattern."""


def refined_by_flow(source: np.ndarray, target: np.ndarray, flows: np.ndarray, fusion_window: int = 0,
                    fusion_margin: float = 0.0, choice_window: int = 5, scratch: np.ndarray | None = None
                    ) -> np.ndarray:
    """A start's ``flows`` (``[2, h, w, 2]``, S→T then T→S, on the images' pixels) refined by the optical
    flow.

    Two refinements are made, and the one that lines the pictures up better
    is kept (``alignment``, in ``choice_window`` × ``choice_window`` boxes,
    pixels of a 192-px image; the first where they tie), the second only
    where it stays within ``AGREE_PX`` of the first:

    - *chained*: each image is moved by its start, the DIS flow between it
      and the other image is found, and the two motions are chained (the
      residual first, then the start where it leads:
      ``f(p) = r(p) + F(p - r(p))``). It keeps a large or layered motion
      that the flow alone could not reach;
    - *searched from the start*: the DIS flow between the pictures
      themselves, its search started from the start's flow. It reads the
      pictures unresampled, so where the start is only a rough guess at a
      smooth motion (a similarity laid over a picture that bends) it finds
      the motion more exactly.

    What matched features say moved (the scene, a thing over it) is carried
    by the start; what moved besides, by the flow; the dense fit then
    refines both (and its fold penalty and inverse consistency tame the
    flow's guesses where something was uncovered).

    With ``fusion_window`` (pixels of a 192-px image; 0: off) the kept flow
    is fused with the optical flow found from scratch (``fused_flows``,
    which keeps the refined flow unless the other's local correlation is
    higher by more than ``fusion_margin``): where a start's layer carries a
    thing that moved otherwise (a layer's reach spills onto its neighbour),
    the flow from scratch matches clearly better there, while the refined
    flow keeps the large motions the optical flow alone cannot reach.
    ``scratch``: that flow (``dis_flows`` of the two pictures) when it was
    found ahead; ``None``: found here when fusing.
    """
    chained, searched = [], []
    for moving, fixed, flow in ((source, target, flows[0]), (target, source, flows[1])):
        residual = dis_flow(warped_by_flow(moving, flow), fixed)
        chained.append(residual + warped_by_flow(flow, residual))
        searched.append(dis_flow(moving, fixed, flow))
    window = box_at(choice_window, source.shape[:2])
    chained, searched = np.stack(chained), np.stack(searched)
    kept, other = _alignments(source, target, (chained, searched), window)
    if other > kept:
        # Where the two part by more than a pixel the search has matched a neighbouring stripe or line of a
        # repeating pattern (one period off lines up as well): the chained flow holds there.
        apart = np.linalg.norm(searched - chained, axis=-1, keepdims=True) > AGREE_PX * max(source.shape[:2]) / 192
        refined = np.where(apart, chained, searched)
    else:
        refined = chained
    if fusion_window > 0:
        window = box_at(fusion_window, source.shape[:2])
        scratch = dis_flows(source, target) if scratch is None else scratch
        refined = np.stack([fused_flows(moving, fixed, (flow, from_scratch), window, fusion_margin)
                            for moving, fixed, flow, from_scratch in ((source, target, refined[0], scratch[0]),
                                                                      (target, source, refined[1], scratch[1]))])
    return refined.astype(np.float32)


def box_at(pixels: int, shape: tuple[int, ...]) -> int:
    """An odd box side for pictures of ``shape`` (``[H, W, ...]``) that spans ``pixels`` of a 192-px picture."""
    return max(1, round(pixels * max(shape[:2]) / 192)) | 1


def alignment(source: np.ndarray, target: np.ndarray, flows: np.ndarray, window: int) -> float:
    """How well ``flows`` (``[2, h, w, 2]``, S→T then T→S) lay each picture over the other: the mean squared
    local correlation of luminance (``kernels.local_correlation``, ``window`` × ``window`` boxes, blind to a
    change of gain and offset as the fit's structure term is) of each picture moved by its flow against
    the other, averaged over both directions; in [0, 1), higher is better."""
    return _alignments(source, target, (flows,), window)[0]


def _alignments(source: np.ndarray, target: np.ndarray, candidates: Sequence[np.ndarray], window: int
                ) -> list[float]:
    """``alignment`` of each of ``candidates`` (each ``[2, h, w, 2]``), each picture's luminance taken once."""
    scores = [local_scores(moving, fixed, [flows[direction] for flows in candidates], window).mean(axis=(1, 2))
              for direction, (moving, fixed) in enumerate(((source, target), (target, source)))]
    return [float(np.mean(pair)) for pair in zip(*scores)]


def local_scores(moving: np.ndarray, fixed: np.ndarray, proposals: Sequence[np.ndarray], window: int) -> np.ndarray:
    """``[K, H, W]``: for each of ``K`` proposals (flows on ``fixed``'s pixels), the squared local correlation
    of luminance (``kernels.local_correlation``) of ``moving`` moved by it against ``fixed``."""
    moved = np.stack([_luminance(warped_by_flow(moving, flow).astype(np.float32)) for flow in proposals])
    return local_correlation(moved, _luminance(np.asarray(fixed, np.float32)), window)


def consistent_share(flows: np.ndarray, tolerance: float) -> float:
    """The share of both directions' pixels (``flows``: ``[2, h, w, 2]``, S→T then T→S, as
    ``Candidate.flows``) where the two flows undo each other to within ``tolerance`` pixels of a
    192-px picture (``paths.forward_backward_mismatch``): near 1 for an optical flow that found the pictures'
    motion (one scene, things moving over it: only what either picture hides disagrees), small for one
    that matched two different subjects' textures by chance."""
    limit = tolerance * max(flows.shape[1:3]) / 192
    return float(np.mean([forward_backward_mismatch(flows[0], flows[1]) <= limit,
                          forward_backward_mismatch(flows[1], flows[0]) <= limit]))


def fused_flows(moving: np.ndarray, fixed: np.ndarray, proposals: Sequence[np.ndarray], window: int,
                margin: float = 0.0) -> np.ndarray:
    """``[H, W, 2] float32``: at each pixel of ``fixed``, the proposal (``[H, W, 2]`` flows on ``fixed``'s
    pixels, ``dense_image_warp``'s sign) whose warp of ``moving`` matches ``fixed`` best around it: the
    highest squared local correlation of luminance in a ``window`` × ``window`` box (``kernels.local_correlation``:
    blind to a change of gain and offset, as the fit's structure term is, so a recoloured picture
    does not mislead it; the first proposal where they tie, as on flat areas). ``margin`` is added to
    the first proposal's score: the others replace it only where they match clearly better.
    ``moving``, ``fixed``: ``[H, W]`` or ``[H, W, 3]`` float in [-1, 1], one scale."""
    scores = local_scores(moving, fixed, proposals, window)
    scores[0] += margin
    best = np.argmax(scores, axis=0)
    return np.take_along_axis(np.stack(proposals), best[np.newaxis, ..., np.newaxis], axis=0)[0].astype(np.float32)


def _luminance(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` → ``[H, W]`` luminance (Rec. 601, ``LUMINANCE``); ``[H, W]`` as it is."""
    return image @ np.asarray(LUMINANCE, np.float32) if image.ndim == 3 else image


@dataclass(frozen=True)
class StartChoice:
    """The start the fit takes, the candidates' costs (``None`` where points decided) and why, in one line.

    ``probe``: when the costs cannot decide, the starts the fit should probe with a few dense steps each
    (``chosen`` is then the first, until ``probed`` names the winner); empty otherwise.
    """

    chosen: Candidate
    costs: tuple[tuple[str, float | None], ...]
    reason: str
    probe: tuple[Candidate, ...] = ()

    def probed(self, winner: Candidate, scores: Sequence[tuple[str, float]], measure: str = "losses") -> StartChoice:
        """This choice once the probe has picked ``winner`` with these (name, score) pairs; ``measure``
        names the scores in the reason ("losses", "middle-frame costs")."""
        said = ", ".join(f"{name} {score:.3f}" for name, score in scores)
        return StartChoice(winner, self.costs, f"{self.reason}; probe {measure} {said}")

    @property
    def kept_still(self) -> bool:
        """True when no candidate moved the start although others were tried (no point pairs, nothing that
        beat no motion): on pictures whose subjects differ in place or size, where two of a thing may show
        in the middle frame until a few point pairs say what matches what."""
        return self.chosen.name == NO_MOTION and len(self.costs) > 1

    def describe(self) -> str:
        scored = ", ".join(f"{name} {cost:.3f}" for name, cost in self.costs if cost is not None)
        return f"start: {self.chosen.name} ({self.reason})" + (f"; costs {scored}" if scored else "")


def _to_grey_uint8(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(((image + 1.0) * 127.5).clip(0, 255).astype(np.uint8)), cv2.COLOR_RGB2GRAY)
    return grey


@dataclass(frozen=True, eq=False)
class FeatureLayer:
    """One motion that matched features agree on: its ``affine`` and its RANSAC inliers, ``[N, 2]`` (y, x)
    pixels of the images it was found on, where they sit in the target (``target_points``) and in the
    source (``source_points``)."""

    affine: Affine
    target_points: np.ndarray
    source_points: np.ndarray


class MatchedFeatures(NamedTuple):
    """What matching the two pictures' key points found: the ``layers`` (motions), most supported first
    (empty when none has enough inliers), and where each picture has key points at all,
    ``target_features`` and ``source_features`` (``[M, 2]`` (y, x) pixels, matched or not): the textured
    part of the picture, where a match could be."""

    layers: list[FeatureLayer]
    target_features: np.ndarray
    source_features: np.ndarray


def key_points(grey: np.ndarray, settings: StartSettings = StartSettings()) -> tuple[tuple, np.ndarray | None]:
    """SIFT key points and descriptors of ``grey`` (``[h, w]`` uint8), as OpenCV's ``detectAndCompute`` gives them.

    The contrast thresholds of ``settings.feature_contrasts`` are tried in turn until the picture offers
    at least ``settings.feature_floor`` key points (the last one's are kept): the threshold is absolute, so
    a smooth or low-contrast picture (soft textures, faint light) would offer too few to match at OpenCV's
    default, where a photo offers hundreds; a picture with plenty keeps the first threshold's, the
    strongest. The same adaptive idea as OpenCV's former ``DynamicAdaptedFeatureDetector``.
    """
    found: tuple[tuple, np.ndarray | None] = ((), None)
    for contrast in settings.feature_contrasts:
        sift = cv2.SIFT_create(nfeatures=settings.features, contrastThreshold=contrast)
        found = sift.detectAndCompute(grey, None)
        if len(found[0]) >= settings.feature_floor:
            break
    return found


def matched_features(source: np.ndarray, target: np.ndarray, settings: StartSettings = StartSettings(),
                     ) -> MatchedFeatures:
    """The motions matched features agree on, and both pictures' key points.

    ``source``, ``target``: ``[h, w, 3] float32`` in [-1, 1], one shape.
    Features are matched target → source with Lowe's ratio test
    (``settings.feature_ratio``). Sequential RANSAC: the similarity (turn,
    uniform scale, shift: ``cv2.estimateAffinePartial2D``, so a few stray
    matches cannot shear it) that most matches agree on is the first layer
    (the background of a still camera, or the scene a camera moved over);
    its inliers are set aside and the rest are searched again, up to
    ``settings.feature_layers`` layers of at least ``settings.min_inliers``
    inliers each, spread over an area (``spans_an_area``): an object that moved
    on its own over that background.
    Each picture's key points are found by ``key_points``.
    """
    height, width = source.shape[:2]
    found = [key_points(_to_grey_uint8(image), settings) for image in (source, target)]
    (source_points, source_descriptors), (target_points, target_descriptors) = found
    target_features, source_features = (np.array([point.pt[::-1] for point in points], np.float64).reshape(-1, 2)
                                        for points in (target_points, source_points))
    if source_descriptors is None or target_descriptors is None or min(len(source_points), len(target_points)) < 3:
        return MatchedFeatures([], target_features, source_features)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(target_descriptors, source_descriptors, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < settings.feature_ratio * m[1].distance]
    from_target = np.array([target_points[m.queryIdx].pt for m in good], np.float32).reshape(-1, 2)  # (x, y)
    to_source = np.array([source_points[m.trainIdx].pt for m in good], np.float32).reshape(-1, 2)
    threshold = settings.ransac_pixels * max(height, width) / 192
    layers: list[FeatureLayer] = []
    left = np.arange(len(good))
    while len(layers) < settings.feature_layers and len(left) >= settings.min_inliers:
        matrix, inliers = cv2.estimateAffinePartial2D(from_target[left], to_source[left], method=cv2.RANSAC,
                                                      ransacReprojThreshold=threshold)
        if matrix is None or inliers is None or int(inliers.sum()) < settings.min_inliers:
            break
        keep = inliers[:, 0].astype(bool)
        target_yx, source_yx = from_target[left[keep]][:, ::-1], to_source[left[keep]][:, ::-1]
        if not (spans_an_area(target_yx) and spans_an_area(source_yx)):
            break  # matches on one spot or one line (SIFT puts several key points on one blob) fix no turn or scale
        # Refit on the inliers in normalised (y, x) coordinates: the pixel affine's own form differs by the
        # half-pixel convention.
        affine = affine_from_points(to_normalised(target_yx, height, width), to_normalised(source_yx, height, width))
        layers.append(FeatureLayer(affine, target_yx.astype(np.float64), source_yx.astype(np.float64)))
        left = left[~keep]
    return MatchedFeatures(layers, target_features, source_features)


def layered_flows(layers: Sequence[FeatureLayer], height: int, width: int, reach: float) -> np.ndarray:
    """``[2, height, width, 2] float32``: both directions' flows of a start made of several feature layers.

    Each pixel of the target takes the layers' S→T flows (``Affine.flow``)
    weighed by how many of each layer's inliers lie near it (a Gaussian of
    ``reach`` times the long side), and each pixel of the source the inverse
    maps by the inliers' places there; far from every inlier the first
    (best supported) layer holds. Flows in ``dense_image_warp``'s sign, S→T
    then T→S, as ``Candidate.flows``.
    """
    sigma = reach * max(height, width)
    flows = []
    for direction in range(2):
        total = np.zeros((height, width, 2), np.float32)
        weight = np.zeros((height, width), np.float32)
        for index, layer in enumerate(layers):
            points = layer.target_points if direction == 0 else layer.source_points
            affine = layer.affine if direction == 0 else layer.affine.inverse()
            votes = np.zeros((height, width), np.float32)
            rows = np.clip(np.round(points[:, 0]).astype(int), 0, height - 1)
            columns = np.clip(np.round(points[:, 1]).astype(int), 0, width - 1)
            np.add.at(votes, (rows, columns), 1.0)
            votes = cv2.GaussianBlur(votes, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
            if index == 0:
                votes += 1e-6
            total += votes[..., None] * affine.flow(height, width)
            weight += votes
        flows.append(total / weight[..., None])
    return np.stack(flows).astype(np.float32)


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``[N, 2]`` points (0 for fewer than three)."""
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(np.asarray(points, np.float32))))


def spans_an_area(points: np.ndarray, least: float = 1.0) -> bool:
    """Whether ``[N, 2]`` points span a convex hull of at least ``least`` square pixels: matches that sit on
    one spot or along one line determine no similarity, however many they are."""
    return _hull_area(points) >= least


def feature_cover(matched: MatchedFeatures) -> float:
    """How much of what the pictures offer to match the matches span: in each picture, the layers' inliers'
    convex hull over the hull of all its key points; the smaller of the two. Near 1 when matches lie
    wherever there is something to match (on a face over a plain wall as on a street), small when they
    sit on one thing both pictures share (a logo, a caption, a frame's corner) while the rest of either
    picture, textured too, does not match: that says nothing about the rest."""
    if not matched.layers:
        return 0.0
    sides = ((matched.target_features, [layer.target_points for layer in matched.layers]),
             (matched.source_features, [layer.source_points for layer in matched.layers]))
    shares = []
    for features, inliers in sides:
        textured = _hull_area(features)
        shares.append(0.0 if textured <= 0.0 else min(1.0, _hull_area(np.concatenate(inliers)) / textured))
    return min(shares)


def features_candidate(source: np.ndarray, target: np.ndarray, settings: StartSettings = StartSettings(),
                       scratch: np.ndarray | None = None) -> Candidate | None:
    """The matched-features start, ``None`` when no layer has enough inliers: one layer's affine, or with
    more layers (``matched_features``) their ``layered_flows``; then, with ``settings.feature_flow`` and
    matches that span at least ``settings.flow_cover`` of each picture's key points (``feature_cover``),
    refined by the optical flow left between the pictures (``refined_by_flow``): matches wherever there is
    something to match show that the two pictures hold the same scene, where the flow is what to trust;
    matches on one shared logo do not. Matches that span less say nothing about the rest of the pictures
    either: their motions then move only what lies near their inliers (``layered_flows`` with a still
    layer that holds elsewhere), so a thing that moved over a picture that offers it nothing to match
    does not drag the whole picture along; such a start is evidence for that spot only, so it is not
    ``conclusive`` (unless ``settings.spot_evidence``) and must beat the other candidates on cost;
    unless the optical flow from scratch (``scratch``, ``dis_flows`` of the pictures when found ahead;
    ``None``: found here) undoes itself both ways on at least ``settings.probe_flow_share`` of the
    pixels (``consistent_share``, as for the flow's own candidate):
    then the pictures show one scene whose motion is not one similarity (a picture that bends, where
    RANSAC's inliers gather on the patch that moved nearly rigidly), and that start is refined by the
    flow as well."""
    matched = matched_features(source, target, settings)
    layers = matched.layers
    if not layers:
        return None
    height, width = source.shape[:2]
    evidence = "/".join(str(len(layer.target_points)) for layer in layers) + " RANSAC inliers"
    cover = feature_cover(matched)
    if cover < settings.flow_cover:
        # The matches say nothing about the rest of either picture: what they show moved, moves; the
        # rest stays (a still layer without inliers holds wherever no inlier is near).
        still = FeatureLayer(Affine.identity(), np.zeros((0, 2)), np.zeros((0, 2)))
        flows = layered_flows([still, *layers], height, width, settings.layer_reach)
        evidence += f", moved only near them (they span {cover:.2f} of what the pictures offer)"
        if scratch is None and settings.feature_flow and min(height, width) >= DIS_SMALLEST:
            scratch = dis_flows(source, target)
        share = 0.0 if scratch is None else consistent_share(scratch, settings.flow_consistency)
        if not settings.feature_flow or share < settings.probe_flow_share:
            # Evidence for the spot the matches sit on, none for the rest: such a start competes on cost
            # (a car that moved as a whole over a hall, a dozen matches on one pillar, is no local motion).
            return Candidate(FEATURES, Affine.identity(), evidence, flows, conclusive=settings.spot_evidence)
        flows = refined_by_flow(source, target, flows, settings.flow_fusion, settings.flow_fusion_margin,
                                scratch=scratch)
        evidence += (f"; the rest by the optical flow, consistent on {share:.0%} of the pixels, with which "
                     "the start is refined and fused")
        return Candidate(FEATURES, Affine.identity(), evidence, flows, conclusive=True, pixelwise=True)
    refine = settings.feature_flow
    if len(layers) == 1:
        start = Candidate(FEATURES, layers[0].affine, evidence, conclusive=True)
        if not refine:
            return start
        flows = start.grid_flows(height, width)
    else:
        flows = layered_flows(layers, height, width, settings.layer_reach)
        evidence = f"{len(layers)} layers, {evidence}"
    if refine:
        # Only several layers' reaches can spill one thing's motion onto its neighbour (``refined_by_flow``).
        fusion = settings.flow_fusion if len(layers) > 1 else 0
        flows = refined_by_flow(source, target, flows, fusion, settings.flow_fusion_margin, scratch=scratch)
        evidence += ", refined by optical flow" + (" and fused with the flow from scratch" if fusion else "")
    return Candidate(FEATURES, Affine.identity(), evidence, flows, conclusive=True, pixelwise=refine)


def regions_candidate(source: np.ndarray, target: np.ndarray, settings: StartSettings = StartSettings(),
                      ) -> Candidate | None:
    """The matched-regions start (``morphing.fit.regions``), ``None`` when no flat shape of one picture
    pairs with one of the other's, or none of the pairs moves by a pixel: each pair's similarity along
    the path its shape travels, no motion elsewhere. Where every paired outline is wholly its shape's own,
    it is ``conclusive`` like matched features: it need only not be worse than no motion
    (``required_gain``). A pair with a shape that touches another (``Region.touching``: its outline may
    be partly the other's) is weaker evidence, and then the start needs the margin like any other."""
    height, width = source.shape[:2]
    matches = match_regions(flat_regions(source, settings), flat_regions(target, settings), max(height, width),
                            settings)
    if not matches:
        return None
    flows = region_flows(matches, height, width, settings)
    if np.abs(flows).max() < 1.0:  # shapes that stand still (a shared logo) say nothing about motion
        return None
    overlaps = ", ".join(f"{match.overlap:.2f}" for match in matches)
    touching = sum(match.source.touching or match.target.touching for match in matches)
    evidence = f"{len(matches)} shapes paired by outline (overlap {overlaps})" + (
        f", {touching} of them touching another" if touching else "")
    return Candidate(REGIONS, Affine.identity(), evidence, flows, conclusive=not touching)


def start_candidates(
    source: np.ndarray, target: np.ndarray, *, points: PointPairs | None = None,
    settings: StartSettings = StartSettings(), check: Callable[[], None] | None = None,
    search: GlobalSettings = GlobalSettings(),
) -> list[Candidate]:
    """The candidate starts for working-size images and point pairs in their pixels (see the module);
    ``search``: how the global search candidate searches."""
    candidates = [Candidate(NO_MOTION, Affine.identity())]
    have_points = points is not None and len(points) > 0
    searched = fit_affine(source, target, search, source_points=points.source if have_points else None,
                          target_points=points.target if have_points else None, check=check)
    if have_points:
        candidates.append(Candidate(POINTS, searched, f"{len(points)} pairs"))
        return candidates
    candidates.append(Candidate(SEARCH, searched))
    # The optical flow from scratch, found once here for all who read it; OpenCV's DIS refuses pictures
    # under 12 px.
    flows = dis_flows(source, target) if min(source.shape[:2]) >= DIS_SMALLEST else None
    matched = features_candidate(source, target, settings, scratch=flows)
    if matched is not None:
        candidates.append(matched)
    shapes = regions_candidate(source, target, settings) if settings.regions else None
    if shapes is not None:
        candidates.append(shapes)
    # It only ever enters the probe.
    if math.isfinite(settings.no_evidence) and settings.probe_flow_share <= 1.0 and flows is not None:
        share = consistent_share(flows, settings.flow_consistency)
        if share >= settings.probe_flow_share:
            candidates.append(Candidate(FLOW, Affine.identity(), f"DIS, consistent on {share:.0%} of the pixels",
                                        flows))
    return candidates


def leg_start_candidates(
    keys: Sequence[np.ndarray], settings: FitSettings, scales: Scales,
    points: Sequence[PointPairs | None] | None = None,
) -> list[list[Candidate]]:
    """Each leg's start candidates as ``morphing.fit.fitter`` finds them without face points, for key images
    (``[H, W, 3] uint8``, one shape) and per-leg user points in their pixels (``None``: none), ahead of
    the fit and without TensorFlow (the command line runs this in a helper process)."""
    found = []
    for leg in range(len(keys) - 1):
        if not settings.global_alignment or scales.warp <= 0:
            found.append([Candidate(NO_MOTION, Affine.identity())])
            continue
        source, target = reduce_for_fit(keys[leg], keys[leg + 1], settings.working_size)
        leg_points = None if points is None else points[leg]
        if leg_points is not None and len(leg_points):
            leg_points = leg_points.resized(*source.shape[:2])
        found.append(start_candidates(source, target, points=leg_points, settings=settings.starts,
                                      search=settings.global_search))
    return found


def motion_size(affine: Affine) -> float:
    """How far ``affine`` moves things: the root mean square of ``A(u) - u`` over the normalised unit square."""
    grid = normalised_grid(16, 16)
    return float(np.sqrt(np.mean(np.sum(np.square(affine.apply(grid) - grid), axis=-1))))


def start_cost(source: np.ndarray, target: np.ndarray, start: Candidate | Affine,
               settings: StartSettings = StartSettings()) -> float:
    """How unlike the pair looks once ``start`` (a candidate or an affine map) lays each image over the
    other (lower is better).

    Local NCC dissimilarity (``losses.local_ncc``) of the source moved by the
    map against the target and of the target moved by its inverse against
    the source, averaged, each over the pixels the map fills from inside the
    picture; plus ``settings.outside_weight`` times the share of pixels
    filled from outside (averaged over both directions).
    """
    if isinstance(start, Affine):
        start = Candidate("", start)
    return _cost_on(grey_copies(np.stack([source, target]), settings.side), start, settings)


def _inside(queries: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[..., 2]`` (y, x) pixel queries → ``[...]`` bool: inside an ``[height, width]`` picture (to rounding)."""
    return np.all((queries >= -1e-4) & (queries <= np.array([height - 1, width - 1]) + 1e-4), axis=-1)


def _cost_on(copies: Copies, start: Candidate, settings: StartSettings) -> float:
    """``start_cost`` on the pair's grey copies, made once for all the candidates."""
    height, width = copies.source.shape
    flows = start.grid_flows(height, width)
    total = 0.0
    for moving, fixed, flow in ((copies.source, copies.target, flows[0]), (copies.target, copies.source, flows[1])):
        queries = copies.pixels - flow
        inside = _inside(queries, height, width)
        moved, _ = bilinear_sample(moving, queries.astype(np.float32), gradient=False)
        weights = inside.astype(np.float32)[None] + 1e-6
        dissimilarity, _ = local_ncc_with_gradient(moved[None], fixed, settings.window, weights, gradient=False)
        total += 0.5 * (float(dissimilarity[0]) + settings.outside_weight * (1.0 - float(inside.mean())))
    return total


def middle_cost(source: np.ndarray, target: np.ndarray, flows: np.ndarray,
                settings: StartSettings = StartSettings()) -> float:
    """How unlike the two halves of the middle frame look (lower is better): a ghost, in one number.

    ``source``, ``target``: working-size ``[h, w, 3] float32`` in [-1, 1];
    ``flows``: ``[2, fh, fw, 2]`` (dy, dx) pixels of an ``[fh, fw]`` grid, the S→T
    flow then the T→S flow (``dense_image_warp``'s sign, warp multiplier
    applied). At alpha ½ the frame blends the source moved by half its flow
    with the target moved by half the other; where the two agree the frame
    shows one thing, where they do not it shows two. Local NCC of their
    luminance (the colour maps left out, so recolouring in place cannot
    explain a move) plus ``settings.outside_weight`` times the share of
    pixels either half fills from outside the picture, averaged over grey
    copies of each long side in ``settings.probe_sides``: on the coarser
    copies a shape's outline counts more than fine texture, which a few
    dense steps can match from any start.
    """
    return float(np.mean([_middle_cost_at(source, target, flows, side, settings) for side in settings.probe_sides]))


def _middle_cost_at(source: np.ndarray, target: np.ndarray, flows: np.ndarray, side: int,
                    settings: StartSettings) -> float:
    """``middle_cost`` on grey copies of long side ``side``."""
    copies = grey_copies(np.stack([source, target]), side)
    height, width = copies.source.shape
    ratio = np.array([height / flows.shape[1], width / flows.shape[2]], np.float32)
    halves, inside = [], np.ones((height, width), bool)
    for image, flow in ((copies.source, flows[0]), (copies.target, flows[1])):
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) * ratio
        queries = copies.pixels - 0.5 * flow
        inside &= _inside(queries, height, width)
        halves.append(bilinear_sample(image, queries.astype(np.float32), gradient=False)[0])
    weights = inside.astype(np.float32)[None] + 1e-6
    dissimilarity, _ = local_ncc_with_gradient(halves[0][None], halves[1], settings.window, weights, gradient=False)
    return float(dissimilarity[0]) + settings.outside_weight * (1.0 - float(inside.mean()))


def required_gain(candidate: Candidate, settings: StartSettings = StartSettings()) -> float:
    """How much lower than no motion's a candidate's cost must be for the fit to start from it: nothing for
    no motion and for a ``conclusive`` candidate (matched features: their RANSAC inliers are the evidence;
    matched regions of whole outlines), else ``settings.margin`` growing by itself for every
    ``settings.motion_unit`` the candidate moves things (a large motion needs strong evidence)."""
    if candidate.name == NO_MOTION or candidate.conclusive:
        return 0.0
    return settings.margin * (1.0 + candidate.motion() / settings.motion_unit)


def probe_winner(scores: Sequence[float], tie: float) -> int:
    """Index of the probe's winner among the probed starts' ``scores`` (lower is better), no motion's
    first: a later start replaces the one kept so far only with a score lower by more than ``tie``
    (identical pictures tie to rounding, and then nothing should move)."""
    best = 0
    for index, score in enumerate(scores):
        if score < scores[best] - tie:
            best = index
    return best


def choose_start(source: np.ndarray, target: np.ndarray, candidates: Sequence[Candidate],
                 settings: StartSettings = StartSettings()) -> StartChoice:
    """The candidate to start from, by the rules of the module."""
    by_name = {candidate.name: candidate for candidate in candidates}
    if POINTS in by_name:
        chosen = by_name[POINTS]
        return StartChoice(chosen, tuple((c.name, None) for c in candidates),
                           f"laid through {chosen.evidence}: points decide")
    copies = grey_copies(np.stack([source, target]), settings.side)
    costs = {c.name: _cost_on(copies, c, settings) for c in candidates}
    baseline = costs[NO_MOTION]
    chosen, reason = by_name[NO_MOTION], "no candidate beat it by its margin"
    # The optical flow only ever enters a probe.
    passing = [c for c in candidates if c.name not in (NO_MOTION, FLOW)
               and baseline - costs[c.name] > required_gain(c, settings)]
    # Evidence before cost: where a conclusive candidate passes, a guess laid by cost alone (the global
    # search) does not outvote it, however far its cost falls (two gradients of one direction line up
    # under a large turn or scale as well as under none).
    trusted = [c for c in passing if c.conclusive]
    best_gain = 0.0
    for candidate in trusted or passing:
        needed = required_gain(candidate, settings)
        gain = baseline - costs[candidate.name]
        if gain - needed >= best_gain:
            best_gain = gain - needed
            chosen = candidate
            reason = (f"{candidate.evidence + ', ' if candidate.evidence else ''}cost {gain:.3f} below no motion, "
                      f"margin {needed:.3f}")
    outvoted = [c.name for c in passing if not c.conclusive
                and baseline - costs[c.name] - required_gain(c, settings) > best_gain] if trusted else []
    if outvoted:
        reason += f"; evidence, so preferred to the lower cost of the {', '.join(outvoted)}"
    if chosen.name == FEATURES and chosen.flows is not None and settings.feature_paths:
        # Chosen, not before: the costs compare the pictures at the ends, where a motion held along its
        # path is off by design; the frames between are what it is for.
        chosen = replace(chosen, evidence=f"{chosen.evidence}, held along their paths", flows=along_paths(chosen.flows))
        reason += "; held along their paths"
    if chosen.name == NO_MOTION and baseline >= settings.no_evidence and len(candidates) > 1:
        # A start that moves nothing by a pixel of these pictures is no motion again: a probe between
        # the two would decide nothing.
        still = 2.0 / max(source.shape[:2])
        others = [c for c in candidates if c.name not in (NO_MOTION, FLOW) and c.motion() >= still]
        probe = [chosen, *([min(others, key=lambda c: costs[c.name])] if others else []),
                 *(c for c in candidates if c.name == FLOW)]
        if len(probe) > 1:
            return StartChoice(chosen, tuple(costs.items()),
                               "no candidate beat it by its margin, a dense probe decides", tuple(probe))
    return StartChoice(chosen, tuple(costs.items()), reason)

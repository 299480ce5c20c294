"""Polishing a fitted warp with the optical flow, at the frames' own size.

The dense fit works on small copies (``FitSettings.working_size``) and its
gradient descent settles a smooth motion to within about a pixel there. Where
both pictures show one scene (a bent or re-framed photo), a pixel of error
blurs every texture of the middle frame. The polish carries the fitted
warp to the frames' size (at most ``PolishSettings.size``), runs OpenCV's
DIS optical flow from it, and keeps the flow's answer where it lines the
pictures up better and both of its directions agree; everywhere else the
fitted warp stays as it is.

Convention: flows ``[H, W, 2]`` (dy, dx) pixels of the size they live at,
``dense_image_warp``'s sign (pixel ``p`` of the picture a direction ends on
shows the picture it starts from at ``p - flow(p)``); item 0 of a pair of
flows is S→T (on T's pixels), item 1 T→S.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from morphing.fit.paths import forward_backward_mismatch
from morphing.fit.starts import DIS_SMALLEST, box_at, dis_flow, local_scores
from morphing.fit.unfold import NEAR_FOLD, folded_cells, unfold
from morphing.io.images import to_float, working_shape
from morphing.model.maps import WARP, MorphMaps
from morphing.model.settings import PolishSettings
from morphing.render.opencv import upsample_grid

__all__ = ["PolishSettings", "Polished", "answer_taken", "polished_flows", "polished_maps"]


class Polished(NamedTuple):
    """What the polish did: ``maps`` (the polished maps, or the fitted ones unchanged), ``share`` (of
    both directions' pixels that took the flow's answer) and ``agreement`` (the share of pixels where the
    searched flow's two directions agree)."""

    maps: MorphMaps
    share: float
    agreement: float
    least_agreement: float = 0.5
    skipped: str = ""
    """Why the polish did not look at all (no warp, pictures too small for the flow); empty when it did."""

    def describe(self) -> str:
        """One line for the log: what the polish did, and why not where it did nothing."""
        if self.skipped:
            return f"not polished ({self.skipped})"
        if self.agreement < self.least_agreement:
            return (f"not polished: the optical flow's two directions agree on {self.agreement:.0%} of the pixels "
                    "(not one scene)")
        if self.share == 0:
            return "not polished: the optical flow lines nothing up better than the fit"
        return f"polished by the optical flow on {self.share:.0%} of the pixels at {self.maps.grid_shape[1]}x" \
               f"{self.maps.grid_shape[0]}"


def polished_flows(source: np.ndarray, target: np.ndarray, flows: np.ndarray, settings: PolishSettings
                   ) -> tuple[np.ndarray, float, float]:
    """``flows`` (``[2, H, W, 2]``, S→T then T→S, at the pictures' size) polished by the optical flow.

    For each direction, DIS is searched from its flow; where the answer lines the pictures up better
    (squared local correlation of luminance in ``settings.window`` boxes, by ``settings.margin``) and
    its two directions undo each other (within ``settings.tolerance``), it is taken, the edge of what
    is taken feathered (``settings.feather``), smoothed where the result nearly folds
    (``settings.smoothing_rounds`` of ``unfold``) and taken less where that leaves a fold
    (``settings.fold_rounds``). ``source``, ``target``: ``[H, W, 3] uint8``. Returns
    ``(flows, share, agreement)``: the polished flows (``flows`` themselves when the directions agree
    on less than ``settings.least_agreement`` of the pixels), the mean weight of the flow's answer and
    the share of pixels where its directions agree.
    """
    searched = np.stack([dis_flow(moving, fixed, flow)
                         for moving, fixed, flow in ((source, target, flows[0]), (target, source, flows[1]))])
    tolerance = settings.tolerance * max(source.shape[:2]) / 192
    agree = np.stack([forward_backward_mismatch(searched[d], searched[1 - d]) <= tolerance for d in range(2)])
    agreement = float(np.mean(agree))
    if agreement < settings.least_agreement:
        return flows, 0.0, agreement
    window = box_at(settings.window, source.shape[:2])
    sigma = settings.feather * max(source.shape[:2]) / 192
    pictures = (to_float(source), to_float(target))
    polished, weights = [], []
    for direction in range(2):
        moving, fixed = pictures[direction], pictures[1 - direction]
        scores = local_scores(moving, fixed, (flows[direction], searched[direction]), window)
        take = (scores[1] > scores[0] + settings.margin) & agree[direction]
        weight = cv2.GaussianBlur(take.astype(np.float32), (0, 0), sigma) if sigma > 0 else take.astype(np.float32)
        result, weight = answer_taken(flows[direction], searched[direction], weight, settings, sigma)
        polished.append(result)
        weights.append(weight)
    return np.stack(polished).astype(np.float32), float(np.mean(weights)), agreement


def answer_taken(fitted: np.ndarray, answer: np.ndarray, weight: np.ndarray, settings: PolishSettings,
                 sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``fitted`` moved toward ``answer`` (both ``[H, W, 2]`` flows) by ``weight`` (``[H, W]`` in [0, 1]),
    without new folds, as ``(flow, weight)``.

    The result is smoothed by at most ``settings.smoothing_rounds`` of ``unfold`` (a near fold a few
    pixels wide is ironed out, costing nothing), and where it still nearly folds and ``fitted`` did not,
    the weight is lowered there and within ``sigma`` pixels around, fading out, for at most
    ``settings.fold_rounds`` rounds. Returns the flow and the weight it was made with.
    """
    step = answer - fitted
    folded_before = _near_folds(fitted)
    for cut in range(settings.fold_rounds + 1):
        result = _smoothed(fitted + weight[..., None] * step, settings.smoothing_rounds)
        folds = _near_folds(result) & ~folded_before
        if cut == settings.fold_rounds or not (folds & (weight > 0)).any():
            break
        # Less of the answer where it still folds, smoothly, so that no new seam folds in turn.
        weight = weight * (1.0 - _feathered(folds, sigma))
    return result, weight


def _smoothed(flow: np.ndarray, rounds: int) -> np.ndarray:
    """``flow`` after at most ``rounds`` of ``unfold``'s smoothing (itself when ``rounds`` is 0)."""
    return unfold(flow, rounds=rounds) if rounds else flow


def _feathered(mask: np.ndarray, sigma: float) -> np.ndarray:
    """``[H, W] float32`` in [0, 1]: 1 on ``mask`` and within ``sigma`` pixels of it, fading out beyond."""
    if sigma <= 0:
        return mask.astype(np.float32)
    reach = 2 * int(np.ceil(sigma)) + 1
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((reach, reach), np.uint8)).astype(np.float32)
    return np.minimum(1.0, 2.0 * cv2.GaussianBlur(grown, (0, 0), sigma / 2))


def _near_folds(flow: np.ndarray) -> np.ndarray:
    """``[H, W] bool``: the pixels of and next to the nearly folded cells of ``flow`` (``unfold.folded_cells``
    with the unfolding's margin, ``NEAR_FOLD``)."""
    cells = folded_cells(flow, NEAR_FOLD)
    near = np.zeros(flow.shape[:2], np.uint8)
    near[:-1, :-1] |= cells
    return cv2.dilate(near, np.ones((3, 3), np.uint8)).astype(bool)


def polished_maps(maps: MorphMaps, source: np.ndarray, target: np.ndarray, settings: PolishSettings,
                  unfold_rounds: int = 200) -> Polished:
    """``maps`` with their warp polished at the size of ``source`` and ``target`` (``[H, W, 3] uint8``,
    the frames the maps are for), at most ``settings.size`` on the long side; the maps come back on that
    grid (colour maps upsampled as the render upsamples them). Unchanged when the searched flow's two
    directions agree on less than ``settings.least_agreement`` of the pixels (the pictures are not one
    scene), the warp multiplier is 0 or the polish size's short side is under ``starts.DIS_SMALLEST``."""
    scale = maps.scales.warp
    height, width = working_shape(*source.shape[:2], settings.size)
    if scale == 0 or min(height, width) < DIS_SMALLEST:
        return Polished(maps, 0.0, 0.0, settings.least_agreement,
                        "no warp" if scale == 0 else f"pictures under {DIS_SMALLEST} px")
    small = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) if image.shape[:2] != (height, width)
             else image for image in (source, target)]
    grids = (maps.forward, maps.backward)
    ratio = np.array([height / maps.grid_shape[0], width / maps.grid_shape[1]], np.float32)
    flows = np.stack([upsample_grid(grid[..., WARP], height, width) for grid in grids]) * ratio * scale
    polished, share, agreement = polished_flows(small[0], small[1], flows, settings)
    if share == 0:
        return Polished(maps, share, agreement, settings.least_agreement)
    if unfold_rounds:
        polished = np.stack([unfold(flow, rounds=unfold_rounds) for flow in polished])
    # The colour maps only now, as the render would upsample them, once the polish is kept.
    upsampled = np.stack([upsample_grid(grid, height, width) for grid in grids])
    upsampled[..., WARP] = polished / scale
    return Polished(MorphMaps(upsampled[0], upsampled[1], maps.scales, maps.image_shape), share, agreement,
                    settings.least_agreement)

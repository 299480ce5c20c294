"""Dense starts held along the paths things travel: what the formula needs in the frames between.

The formula moves each direction's image by ``α`` times one flow that lives
on the *other* image's pixels: at ``α = ½`` the source's pixel ``p`` shows
the source at ``p - ½·f(p)``. An optical flow says where each pixel of the
target came from, so a thing that moved over a still picture has its motion
only where it stands in the target; halfway, where the thing passes, the flow
says "still", and the frame shows the picture behind it twice and the thing
cut off. Matched regions (``morphing.fit.regions``) hold each shape's motion
over its whole path; ``along_paths`` does the same for a dense start, where
the flow itself shows that a thing passed: a pixel whose motion departs
from the scene's own (``dominant_motion``) and that both directions agree
on (it is the same thing in both pictures) writes its motion over each
place it passes for ``α`` in [0, 1] where the two directions do *not*
agree (what it covered or uncovered). Where two objects differ in shape
(two different shoes) the directions seldom agree, and little changes.

Convention: flows are ``[2, h, w, 2] float32`` (dy, dx) pixels,
``dense_image_warp``'s sign, the S→T flow on the target's pixels then the
T→S flow on the source's (``starts.Candidate.flows``). The source's pixel
``q`` goes to ``q - g(q)`` in the target, ``g`` the T→S flow, so its motion
is ``-g(q)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from morphing.fit.affine import affine_from_points, to_normalised, warped_by_flow

__all__ = ["agreeing", "along_paths", "dominant_motion", "forward_backward_mismatch"]


def dominant_motion(flows: np.ndarray, step: int = 4, tolerance: float = 1.0) -> np.ndarray:
    """``[2, h, w, 2] float32``: the similarity (turn, uniform scale, shift) that most of the S→T flow
    agrees on, as both directions' flows: the scene's own motion (a still or panning camera), against
    which things that moved on their own stand out. Found by RANSAC (``tolerance`` pixels) over every
    ``step``-th pixel; no motion when none is found."""
    height, width = flows.shape[1:3]
    rows, columns = np.mgrid[0:height:step, 0:width:step]
    here = np.stack([rows, columns], axis=-1).reshape(-1, 2).astype(np.float32)  # (y, x)
    there = here - flows[0][rows, columns].reshape(-1, 2)
    matrix, _ = cv2.estimateAffinePartial2D(here[:, ::-1], there[:, ::-1], method=cv2.RANSAC,
                                            ransacReprojThreshold=tolerance)
    if matrix is None:
        return np.zeros_like(flows, dtype=np.float32)
    # Three corners and where the map sends them give it exactly as an Affine (normalised coordinates).
    corners = np.array([[0.0, 0.0], [0.0, width - 1.0], [height - 1.0, 0.0]])
    sent = corners[:, ::-1] @ matrix[:, :2].T + matrix[:, 2]
    scene = affine_from_points(to_normalised(corners, height, width), to_normalised(sent[:, ::-1], height, width))
    return np.stack([scene.flow(height, width), scene.inverse().flow(height, width)])


def forward_backward_mismatch(flow: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``[H, W] float32`` pixels: how far ``flow`` and the other way's flow fail to undo each other.

    ``flow``: ``[H, W, 2]`` (dy, dx) on one image's pixels, ``dense_image_warp``'s sign (pixel ``p`` shows
    the other image at ``q = p - flow(p)``); ``other``: ``[H', W', 2]`` the same on the other image's
    pixels. Where both are right, ``q - other(q) = p``, so ``|flow(p) + other(q)|`` is near 0; where
    either went wrong (a texture matched by chance, an area one picture hides) it is not. ``other`` is
    read bilinearly, its border repeated (``warped_by_flow``)."""
    return np.hypot(*np.moveaxis(flow + warped_by_flow(other, flow), -1, 0)).astype(np.float32)


def agreeing(flows: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """``[2, h, w] bool``: where each direction's flow, followed by the other's from where it samples, comes
    back within ``tolerance`` pixels (``forward_backward_mismatch``): the same thing in both pictures. Not
    so where something was covered or uncovered, or where the flow guessed."""
    return np.stack([forward_backward_mismatch(flows[direction], flows[1 - direction]) <= tolerance
                     for direction in range(2)])


def along_paths(flows: np.ndarray, slack: float = 0.5, tolerance: float = 1.0) -> np.ndarray:
    """``flows`` (``[2, h, w, 2]``, see the module) with each thing's motion held along its path.

    For each direction, every pixel of the image it moves whose motion
    departs from the scene's (``dominant_motion``) by more than ``slack``
    pixels and that both directions agree on (``agreeing``, ``tolerance``
    pixels) is followed from where it stands (``α = 0``) to where it goes
    (``α = 1``) in steps of at most a pixel; each place it passes where the
    two directions do not agree takes the motion that departs most among
    those passing it, wherever that departs by more than ``slack`` beyond
    the flow's own there. A global pan, zoom or turn departs nowhere and
    changes nothing; neither does a still picture, nor a flow whose two
    directions agree everywhere.
    """
    height, width = flows.shape[1:3]
    scene = dominant_motion(flows)
    agree = agreeing(flows, tolerance)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    held = []
    for direction in range(2):
        own, other = flows[direction], flows[1 - direction]
        motion = -other  # where each pixel of the image this direction moves goes
        departs = np.hypot(*(other - scene[1 - direction]).transpose(2, 0, 1))
        moving = (departs > slack) & agree[1 - direction]
        best = np.full((height, width), -1.0, np.float32)
        chosen = np.zeros((height, width, 2), np.float32)
        if moving.any():
            start_y, start_x, go, how_far = rows[moving], columns[moving], motion[moving], departs[moving]
            steps = int(np.ceil(np.hypot(go[:, 0], go[:, 1]).max())) + 1
            alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)[:, None]
            ys = np.rint(start_y + alphas * go[:, 0]).astype(np.int64).ravel()
            xs = np.rint(start_x + alphas * go[:, 1]).astype(np.int64).ravel()
            strength = np.broadcast_to(how_far, (len(alphas), len(how_far))).ravel()
            carried = np.broadcast_to(go, (len(alphas), *go.shape)).reshape(-1, 2)
            inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
            # At each place the strongest motion passing it wins (of equals, the one passing latest).
            order = np.argsort(strength[inside], kind="stable")
            places = (ys[inside] * width + xs[inside])[order]
            _, from_end = np.unique(places[::-1], return_index=True)
            kept = len(places) - 1 - from_end  # each place's last entry, numpy's assignment order aside
            best.flat[places[kept]] = strength[inside][order[kept]]
            chosen.reshape(-1, 2)[places[kept]] = carried[inside][order[kept]]
        own_departs = np.hypot(*(own - scene[direction]).transpose(2, 0, 1))
        taken = (best > own_departs + slack) & ~agree[direction]
        held.append(np.where(taken[..., None], chosen, own))
    return np.stack(held).astype(np.float32)

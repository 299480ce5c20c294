"""Unfolding a fitted flow: where its sampling map turns over, the flow is smoothed until it no longer does.

Convention:
  flow: ``[h, w, 2]`` (dy, dx) in pixels of its own grid, ``dense_image_warp``'s
    sign: pixel ``p`` samples ``p - flow[p]``; the *sampling map* is ``p - flow``.
  cell: the square between four neighbouring grid pixels ``(y, x)``,
    ``(y, x + 1)``, ``(y + 1, x + 1)``, ``(y + 1, x)``; cells are indexed by their
    top-left pixel, ``[h - 1, w - 1]``.
  turn: at each of a cell's four corners, the determinant of the sampling
    map's two edges that leave it (the one-sided Jacobian there); 1 for no
    flow, ``<= 0`` where the map folds.

The bilinear upsampling that renders the maps (``render.transition.upsample_direction``)
maps a cell one to one exactly when all four of its turns are positive (the
sampling map's quad is convex and keeps its orientation), and the Jacobian
inside it is never below the smallest of them. So a grid flow without folded
cells renders a warp without folds at any frame size.

The fit's fold penalty keeps its own warp from folding, but not the start it
adds that warp to: a start refined by the optical flow folds where one thing
covers another, and the smooth network cannot undo a fold a few grid pixels
wide. ``unfold`` replaces the flow on and around folded cells by the mean of
its 3×3 neighbourhood, round after round; everywhere else it stays as fitted.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["NEAR_FOLD", "UNFOLD_CHUNK", "corner_turns", "folded_cells", "unfold"]


def _edges(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sampling map's edge vectors (dy, dx), float64: along x ``[h, w - 1, 2]`` and along y
    ``[h - 1, w, 2]`` (a grid step minus the flow's difference; exact for float32 flows)."""
    flow = flow.astype(np.float64)
    along_x = flow[:, :-1] - flow[:, 1:]
    along_x[..., 1] += 1.0
    along_y = flow[:-1] - flow[1:]
    along_y[..., 0] += 1.0
    return along_x, along_y


def _turn(along_y: np.ndarray, along_x: np.ndarray) -> np.ndarray:
    """det [[d(sy)/dy, d(sy)/dx], [d(sx)/dy, d(sx)/dx]] from two edge vectors (dy, dx)."""
    return along_y[..., 0] * along_x[..., 1] - along_x[..., 0] * along_y[..., 1]


def corner_turns(flow: np.ndarray) -> np.ndarray:
    """``[h - 1, w - 1, 4]``: each cell's turns at its top-left, top-right, bottom-right, bottom-left corner."""
    along_x, along_y = _edges(flow)
    top, bottom, left, right = along_x[:-1], along_x[1:], along_y[:, :-1], along_y[:, 1:]
    return np.stack([_turn(left, top), _turn(right, top), _turn(right, bottom), _turn(left, bottom)], axis=-1)


def folded_cells(flow: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``[h - 1, w - 1] bool``: cells with a turn at or below ``margin`` (0: folded; a small margin: nearly)."""
    along_x, along_y = _edges(flow)
    top, bottom, left, right = along_x[:-1], along_x[1:], along_y[:, :-1], along_y[:, 1:]
    return ((_turn(left, top) <= margin) | (_turn(right, top) <= margin)
            | (_turn(right, bottom) <= margin) | (_turn(left, bottom) <= margin))


def _neighbourhood_mean(flow: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 3×3 neighbourhood, the border repeated outward."""
    padded = np.pad(flow, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = flow.shape[:2]
    return sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)) / 9.0


NEAR_FOLD = 0.05
"""The turn at or below which ``unfold`` treats a cell as folded by default (a little above 0: nearly)."""

UNFOLD_CHUNK = 8
"""Rounds run on crops between two looks at the whole flow (see ``unfold``)."""


def unfold(flow: np.ndarray, margin: float = NEAR_FOLD, rounds: int = 200) -> np.ndarray:
    """``flow`` (``[h, w, 2]``, see the module) with its folded cells smoothed away.

    Each round finds the cells with a turn at or below ``margin``, takes their
    corners and those corners' neighbours, and gives each of those pixels the
    mean of its 3×3 neighbourhood; rounds stop when no cell is left or after
    ``rounds``. Pixels never near a fold keep their values exactly. Returns a
    new ``float32`` array; a flow without folds comes back unchanged.

    The rounds run ``UNFOLD_CHUNK`` at a time on crops around the folds found
    at the start of each chunk, far enough out that nothing a chunk changes or
    reads reaches a crop's edge: the result is the whole-flow rounds' to the
    bit, at a cost that follows the folds' area rather than the flow's.
    """
    if flow.ndim != 3 or flow.shape[-1] != 2 or min(flow.shape[:2]) < 2:
        raise ValueError(f"flow must be [h, w, 2] with h, w >= 2, got shape {flow.shape}")
    result = flow.astype(np.float32, copy=True)
    done = 0
    while done < rounds:
        cells = folded_cells(result, margin)
        if not cells.any():
            break
        chunk = min(UNFOLD_CHUNK, rounds - done)
        # A round changes pixels within 2 of a folded cell and reads one further; the cells it may fold
        # in turn lie within 1 of what it changed: 3 a round, and a little to spare.
        for top, bottom, left, right in _boxes_around(cells, 3 * chunk + 3):
            result[top:bottom, left:right] = _unfold_rounds(result[top:bottom, left:right], margin, chunk)
        done += chunk
    return result


def _boxes_around(cells: np.ndarray, reach: int) -> list[tuple[int, int, int, int]]:
    """Disjoint ``(top, bottom, left, right)`` pixel boxes that hold every marked cell of ``cells``
    (``[h - 1, w - 1] bool``) with at least ``reach`` pixels around it, clipped to the ``[h, w]`` grid."""
    marked = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), np.uint8)
    marked[:-1, :-1] = cells
    side = 2 * reach + 3  # a cell's four pixels and ``reach`` around them
    covered = cv2.dilate(marked, np.ones((side, side), np.uint8))
    while True:  # boxes that overlap or touch become one, until every piece is its own box
        count, _, stats, _ = cv2.connectedComponentsWithStats(covered, connectivity=8)
        boxes = [(y, y + h, x, x + w) for x, y, w, h, _ in stats[1:count]]
        filled = np.zeros_like(covered)
        for top, bottom, left, right in boxes:
            filled[top:bottom, left:right] = 1
        if np.array_equal(filled, covered):
            return boxes
        covered = filled


def _unfold_rounds(flow: np.ndarray, margin: float, rounds: int) -> np.ndarray:
    """Up to ``rounds`` of ``unfold``'s smoothing on the whole of ``flow`` (a crop), as a new array."""
    result = flow.copy()
    for _ in range(rounds):
        cells = folded_cells(result, margin)
        if not cells.any():
            break
        corners = np.zeros(result.shape[:2], bool)
        for dy in (0, 1):
            for dx in (0, 1):
                corners[dy:dy + cells.shape[0], dx:dx + cells.shape[1]] |= cells
        near = np.pad(corners, 1)
        near = np.any([near[dy:dy + corners.shape[0], dx:dx + corners.shape[1]]
                       for dy in range(3) for dx in range(3)], axis=0)
        result[near] = _neighbourhood_mean(result)[near]
    return result

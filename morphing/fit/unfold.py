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

import numpy as np

__all__ = ["corner_turns", "folded_cells", "unfold"]


def corner_turns(flow: np.ndarray) -> np.ndarray:
    """``[h - 1, w - 1, 4]``: each cell's turns at its top-left, top-right, bottom-right, bottom-left corner."""
    height, width = flow.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1)
    sampling = grid - flow.astype(np.float64)
    top_left, top_right = sampling[:-1, :-1], sampling[:-1, 1:]
    bottom_left, bottom_right = sampling[1:, :-1], sampling[1:, 1:]

    def turn(along_y: np.ndarray, along_x: np.ndarray) -> np.ndarray:
        # det [[d(sy)/dy, d(sy)/dx], [d(sx)/dy, d(sx)/dx]] from the two edge vectors (dy, dx).
        return along_y[..., 0] * along_x[..., 1] - along_x[..., 0] * along_y[..., 1]

    return np.stack([
        turn(bottom_left - top_left, top_right - top_left),
        turn(bottom_right - top_right, top_right - top_left),
        turn(bottom_right - top_right, bottom_right - bottom_left),
        turn(bottom_left - top_left, bottom_right - bottom_left),
    ], axis=-1)


def folded_cells(flow: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``[h - 1, w - 1] bool``: cells with a turn at or below ``margin`` (0: folded; a small margin: nearly)."""
    return (corner_turns(flow) <= margin).any(axis=-1)


def _neighbourhood_mean(flow: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 3×3 neighbourhood, the border repeated outward."""
    padded = np.pad(flow, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = flow.shape[:2]
    return sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)) / 9.0


def unfold(flow: np.ndarray, margin: float = 0.05, rounds: int = 200) -> np.ndarray:
    """``flow`` (``[h, w, 2]``, see the module) with its folded cells smoothed away.

    Each round finds the cells with a turn at or below ``margin``, takes their
    corners and those corners' neighbours, and gives each of those pixels the
    mean of its 3×3 neighbourhood; rounds stop when no cell is left or after
    ``rounds``. Pixels never near a fold keep their values exactly. Returns a
    new ``float32`` array; a flow without folds comes back unchanged.
    """
    if flow.ndim != 3 or flow.shape[-1] != 2 or min(flow.shape[:2]) < 2:
        raise ValueError(f"flow must be [h, w, 2] with h, w >= 2, got shape {flow.shape}")
    result = flow.astype(np.float32, copy=True)
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

"""Measures of a morph's quality, in numpy: fidelity, pacing, folding, sharpness."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["psnr", "pacing", "fold_fraction", "sharpness", "PSNR_CAP_DB"]

PSNR_CAP_DB = 100.0


def psnr(image: np.ndarray, reference: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB, capped at ``PSNR_CAP_DB`` for identical images."""
    error = np.mean((np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2)
    if error <= peak**2 * 10 ** (-PSNR_CAP_DB / 10):
        return PSNR_CAP_DB
    return float(10 * np.log10(peak**2 / error))


def pacing(frames: Sequence[np.ndarray]) -> float:
    """max / mean of the mean absolute change between consecutive frames.

    1.0 is a perfectly even transition; a transition that happens in one jump
    over ``n`` frames scores ``n - 1``.
    """
    steps = [
        np.mean(np.abs(np.asarray(b, np.float64) - np.asarray(a, np.float64)))
        for a, b in zip(frames[:-1], frames[1:])
    ]
    mean = float(np.mean(steps))
    return float(np.max(steps) / mean) if mean > 0 else 1.0


def fold_fraction(flow: np.ndarray) -> float:
    """Share of pixels where the warp's sampling map folds.

    ``flow`` is ``[H, W, 2]`` (dy, dx) in pixels with ``dense_image_warp``'s
    semantics: pixel (y, x) samples (y - dy, x - dx). The sampling map's
    Jacobian is taken with each of the four one-sided finite differences
    (forward/backward in y, forward/backward in x); a pixel folds if any of
    the four determinants is <= 0.
    """
    sample_y = np.arange(flow.shape[0])[:, None] - flow[..., 0].astype(np.float64)
    sample_x = np.arange(flow.shape[1])[None, :] - flow[..., 1].astype(np.float64)
    folds = np.zeros(flow.shape[:2], bool)
    # d/dy and d/dx of (sample_y, sample_x), forward and backward, edge-padded.
    def forward_y(a: np.ndarray) -> np.ndarray:
        return np.diff(a, axis=0, append=a[-1:] + (a[-1:] - a[-2:-1]))

    def backward_y(a: np.ndarray) -> np.ndarray:
        return np.diff(a, axis=0, prepend=a[:1] - (a[1:2] - a[:1]))

    def forward_x(a: np.ndarray) -> np.ndarray:
        return np.diff(a, axis=1, append=a[:, -1:] + (a[:, -1:] - a[:, -2:-1]))

    def backward_x(a: np.ndarray) -> np.ndarray:
        return np.diff(a, axis=1, prepend=a[:, :1] - (a[:, 1:2] - a[:, :1]))

    for d_y in (forward_y, backward_y):
        for d_x in (forward_x, backward_x):
            determinant = d_y(sample_y) * d_x(sample_x) - d_x(sample_y) * d_y(sample_x)
            folds |= determinant <= 0
    return float(folds.mean())


def sharpness(image: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (higher = sharper)."""
    grey = np.asarray(image, np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    )
    return float(laplacian.var())

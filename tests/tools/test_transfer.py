"""Geometric transfer: the source's shapes land where the target has them."""

from __future__ import annotations

import dataclasses

import numpy as np

from morphing.fit.fitter import FitSettings, fit_maps
from morphing.io.images import to_float, to_uint8
from morphing.model.maps import CHANNELS_PER_DIRECTION, WARP, MorphMaps, Scales
from morphing.testing.scenes import Scene, random_scene
from morphing.tools.transfer import transfer_flow, warp_to_target


def shape_mask(scene: Scene, image: np.ndarray, alpha: float) -> np.ndarray:
    """Pixels that differ clearly from the scene's background at ``alpha``."""
    background = dataclasses.replace(scene, start=(), end=()).render(alpha).astype(np.float64)
    return np.abs(image.astype(np.float64) - background).sum(axis=-1) > 60


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_warped_source_shape_overlaps_the_target_shape() -> None:
    scene = random_scene(np.random.default_rng(0), 64, 64, shapes=1, gradient=False, motion=1.0)
    source, target = scene.render(0.0), scene.render(1.0)
    target_mask = shape_mask(scene, target, 1.0)
    assert iou(shape_mask(scene, source, 0.0), target_mask) < 0.3  # the shape has to move
    maps = fit_maps(to_float(source), to_float(target), Scales(), FitSettings(epochs=150))
    warped = to_uint8(warp_to_target(to_float(source), maps, Scales()))
    assert iou(shape_mask(scene, warped, 0.0), target_mask) >= 0.9
    # Colours are the source's: the warped shape keeps the source shape's colour.
    # Judged on the interior (the 4 neighbours inside too): edge pixels mix with
    # the background under bilinear sampling.
    inside = np.pad(shape_mask(scene, warped, 0.0) & target_mask, 1)
    interior = inside[1:-1, 1:-1] & inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    assert interior.sum() >= 50
    colour = warped[interior].mean(axis=0)
    np.testing.assert_allclose(colour, np.asarray(scene.start[0].colour) * 255, atol=6)
    assert np.abs(colour - np.asarray(scene.end[0].colour) * 255).max() > 50  # not the target's


def test_a_constant_warp_map_moves_the_image_by_that_many_pixels() -> None:
    grid = np.zeros((4, 5, CHANNELS_PER_DIRECTION), np.float32)
    grid[..., WARP] = (1.0, 2.0)  # grid pixels; the 8x10 image is twice the grid
    grid[..., :6] = 0.7  # colour maps, which the transfer must ignore
    maps = MorphMaps(forward=grid, backward=np.zeros_like(grid), scales=Scales(), image_shape=(8, 10))
    scales = Scales(warp=1.0)
    flow = transfer_flow(maps, scales, 8, 10)
    np.testing.assert_allclose(flow, np.broadcast_to([2.0, 4.0], (8, 10, 2)), atol=1e-6)
    image = np.random.default_rng(1).uniform(-1, 1, (8, 10, 3)).astype(np.float32)
    warped = warp_to_target(image, maps, scales)
    np.testing.assert_allclose(warped[2:, 4:], image[:-2, :-4], atol=1e-6)

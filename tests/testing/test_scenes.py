"""Synthetic scenes: deterministic, endpoints as specified, in-betweens in between."""

from __future__ import annotations

import numpy as np

from morphing.testing.scenes import Shape, random_scene, toy_scene


def test_scene_at_alpha_zero_and_one_draws_the_start_and_end_shapes() -> None:
    scene = toy_scene(48, 64)
    start, end = scene.render(0.0), scene.render(1.0)
    assert start.shape == (48, 64, 3) and start.dtype == np.uint8
    # The red disc starts at (0.30, 0.22) of the long side (64 px, the width).
    y, x = round(0.30 * 64), round(0.22 * 64)
    assert start[y, x][0] > 200 and start[y, x][2] < 80
    assert not np.array_equal(start, end)
    middle = scene.render(0.5).astype(int)
    assert np.abs(middle - start).mean() > 0 and np.abs(middle - end).mean() > 0


def test_random_scene_is_seeded() -> None:
    a = random_scene(np.random.default_rng(3), 32, 32).render(0.5)
    b = random_scene(np.random.default_rng(3), 32, 32).render(0.5)
    c = random_scene(np.random.default_rng(4), 32, 32).render(0.5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_polygon_coverage_matches_its_area() -> None:
    square = Shape(4, (0.5, 0.5), 0.25, 0.0, (1, 1, 1))
    ys, xs = np.meshgrid(np.linspace(0, 1, 801), np.linspace(0, 1, 801), indexing="ij")
    area = square.coverage(ys, xs).mean()
    assert abs(area - 2 * 0.25**2) < 0.005  # a square of circumradius r has area 2 r^2
    disc = Shape(0, (0.5, 0.5), 0.25, 0.0, (1, 1, 1))
    assert abs(disc.coverage(ys, xs).mean() - np.pi * 0.25**2) < 0.005

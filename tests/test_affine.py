"""The global stage: affine maps, their flows, and recovering a known similarity."""

from __future__ import annotations

import numpy as np

from morphing.affine import (
    Affine,
    GlobalSettings,
    affine_from_points,
    fit_affine,
    normalised_grid,
    to_normalised,
)
from morphing.scenes import Deformation, pixel_grid
from tests.helpers import moved_texture, similarity


class TestAffine:
    def test_identity_has_no_flow_and_inverse_undoes_the_map(self) -> None:
        np.testing.assert_array_equal(Affine.identity().flow(5, 7), np.zeros((5, 7, 2), np.float32))
        affine = Affine(similarity(0.3, 1.2), np.array([0.1, -0.2]))
        points = np.random.default_rng(0).uniform(-1, 1, (10, 2))
        np.testing.assert_allclose(affine.inverse().apply(affine.apply(points)), points, atol=1e-12)

    def test_normalised_grid_runs_over_the_long_side(self) -> None:
        grid = normalised_grid(4, 8)
        np.testing.assert_allclose(grid[0, [0, -1], 1], [-7 / 8, 7 / 8])
        np.testing.assert_allclose(grid[[0, -1], 0, 0], [-3 / 8, 3 / 8])
        np.testing.assert_allclose(to_normalised(np.array([[0.0, 0.0], [3.0, 7.0]]), 4, 8), grid[[0, -1], [0, -1]])

    def test_flow_warps_as_the_map_says(self) -> None:
        # A pure shift by a quarter of the long side (16 px of 32) to the right: flow dx = -8 px
        # means pixel p reads the source at p + 8 px.
        flow = Affine(np.eye(2), np.array([0.0, 0.5])).flow(16, 32)
        np.testing.assert_allclose(flow[..., 1], -8.0, atol=1e-5)
        np.testing.assert_allclose(flow[..., 0], 0.0, atol=1e-6)
        # In pixels, for any map: p - flow(p) is the map applied to p's normalised position.
        affine = Affine(similarity(-0.2, 0.9), np.array([0.05, 0.1]))
        height, width = 12, 20
        sampled = pixel_grid(height, width) - affine.flow(height, width)
        expected = affine.apply(normalised_grid(height, width)) * (width / 2) + np.array([height, width]) / 2 - 0.5
        np.testing.assert_allclose(sampled, expected, atol=1e-4)


class TestAffineFromPoints:
    def test_recovers_an_affine_a_similarity_and_a_shift(self) -> None:
        rng = np.random.default_rng(1)
        truth = Affine(np.array([[1.1, 0.2], [-0.1, 0.9]]), np.array([0.2, -0.3]))
        targets = rng.uniform(-1, 1, (6, 2))
        found = affine_from_points(targets, truth.apply(targets))
        np.testing.assert_allclose(found.matrix, truth.matrix, atol=1e-12)
        np.testing.assert_allclose(found.offset, truth.offset, atol=1e-12)
        turn = Affine(similarity(0.4, 1.3), np.array([0.1, 0.05]))
        pair = targets[:2]
        found = affine_from_points(pair, turn.apply(pair))
        np.testing.assert_allclose(found.matrix, turn.matrix, atol=1e-12)
        np.testing.assert_allclose(found.offset, turn.offset, atol=1e-12)
        found = affine_from_points(pair[:1], pair[:1] + np.array([0.3, -0.1]))
        np.testing.assert_allclose(found.offset, [0.3, -0.1], atol=1e-12)
        np.testing.assert_array_equal(found.matrix, np.eye(2))


class TestFitAffine:
    def test_recovers_a_known_similarity_with_a_recolouring(self) -> None:
        source, target, truth = moved_texture(angle=0.15, scale=1.25, shift=(-0.2, 0.25))
        target = 0.6 * target + 0.2  # another gain and offset: the fit compares structure
        found = fit_affine(source, target)
        grid = normalised_grid(96, 96)[20:-20, 20:-20]  # away from where the copy repeats its border
        error = np.abs(found.apply(grid) - truth.apply(grid)).max() * 48  # in pixels
        assert error < 1.5, (error, found)

    def test_points_replace_the_search(self) -> None:
        source, target, truth = moved_texture(angle=-0.1, scale=0.9, shift=(0.1, 0.1))
        flat = np.zeros_like(source)  # nothing to see: only the points say where things are
        target_points = np.array([[20.0, 20.0], [70.0, 30.0], [40.0, 80.0], [60.0, 60.0]])
        normalised = truth.apply(to_normalised(target_points, 96, 96))
        source_points = normalised * 48 + 48 - 0.5
        found = fit_affine(flat, flat, source_points=source_points, target_points=target_points)
        np.testing.assert_allclose(found.matrix, truth.matrix, atol=1e-3)
        np.testing.assert_allclose(found.offset, truth.offset, atol=1e-3)

    def test_identical_images_stay_put(self) -> None:
        source, _, _ = moved_texture(0.0, 1.0, (0.0, 0.0))
        found = fit_affine(source, source, GlobalSettings(steps=20))
        np.testing.assert_allclose(found.matrix, np.eye(2), atol=0.01)
        np.testing.assert_allclose(found.offset, 0.0, atol=0.01)


def test_deformation_helper_agrees_with_affine_convention() -> None:
    # scenes.Deformation (pixels) and Affine (normalised) describe the same similarity.
    size = 32
    affine = Affine(similarity(0.2, 1.1), np.array([0.1, -0.05]))
    matrix = affine.matrix
    centre = ((size - 1) / 2, (size - 1) / 2)
    deformation = Deformation(centre, matrix, affine.offset * size / 2, np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)))
    pixels = pixel_grid(size, size)
    expected = pixels - affine.flow(size, size)
    np.testing.assert_allclose(deformation.apply(pixels), expected, atol=1e-4)


class TestAffineFitter:
    def test_a_shared_fitter_answers_as_a_fresh_one_and_traces_once(self) -> None:
        from morphing.affine import AffineFitter

        settings = GlobalSettings(steps=10)
        pairs = [moved_texture(0.15, 1.25, (-0.2, 0.25))[:2], moved_texture(-0.1, 0.9, (0.1, 0.1))[:2],
                 moved_texture(0.15, 1.25, (-0.2, 0.25))[:2]]
        shared = AffineFitter(settings)
        together = [shared.fit(source, target) for source, target in pairs]
        alone = [fit_affine(source, target, settings) for source, target in pairs]
        for with_others, by_itself in zip(together, alone):
            np.testing.assert_array_equal(with_others.matrix, by_itself.matrix)
            np.testing.assert_array_equal(with_others.offset, by_itself.offset)
        assert not np.allclose(together[0].matrix, together[1].matrix)
        (refiner,) = shared._refiners.values()
        assert refiner.step.experimental_get_tracing_count() == len(settings.refine_sides)  # once per side

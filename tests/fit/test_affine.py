"""The global stage: affine maps, their flows, its numpy cost and gradient against TensorFlow's
warp and local NCC, and recovering a known similarity."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit import affine
from morphing.fit.affine import (
    Affine,
    GlobalSettings,
    affine_from_points,
    bilinear_sample,
    fit_affine,
    local_ncc_with_gradient,
    normalised_grid,
    to_normalised,
)
from morphing.fit.losses import local_ncc
from morphing.io.images import reduce_for_fit
from morphing.render.kernels import Adam
from morphing.render.warp import dense_image_warp
from morphing.testing.scenes import Deformation, pixel_grid
from tests.helpers import moved_texture, similarity, square_over_changing_gradients


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

    def test_finds_a_picture_at_twice_the_size(self) -> None:
        # The target shows the middle half of the source, turned and off centre: a portrait and
        # its close-up. Gradient descent from the nearest searched scale does not get there.
        source, target, truth = moved_texture(angle=0.1, scale=0.5, shift=(0.1, -0.15))
        found = fit_affine(source, target)
        grid = normalised_grid(96, 96)
        error = np.abs(found.apply(grid) - truth.apply(grid)).max() * 48
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

    def test_a_map_that_collapses_the_picture_is_refused(self) -> None:
        # Two vertical gradients of different colours, one small square: refined by cost alone, the search
        # squeezed the picture onto a line (stretches 0.23 and 0.002), which lays one gradient over the
        # other. No such map is kept: every stretch stays within the searched scales (0.5 to 2) widened
        # by SEARCH_STRETCH (2).
        source, target = reduce_for_fit(*square_over_changing_gradients(), 192)
        stretches = np.linalg.svd(fit_affine(source, target).matrix, compute_uv=False)
        assert 0.25 <= stretches.min() <= stretches.max() <= 4.0, stretches


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


class TestBilinearSample:
    def test_values_and_gradient_are_dense_image_warps(self) -> None:
        rng = np.random.default_rng(3)
        image = rng.uniform(-1, 1, (9, 12)).astype(np.float32)
        # Queries inside, outside on every side, and on whole pixels (where the warp's gradient is 0).
        queries = rng.uniform(-3, 14, (9, 12, 2)).astype(np.float32)
        queries[0, :4] = [[2.0, 3.0], [0.0, 0.0], [8.0, 11.0], [4.0, 5.5]]
        pixels = np.stack(np.meshgrid(np.arange(9), np.arange(12), indexing="ij"), -1).astype(np.float32)
        flow = tf.Variable((pixels - queries)[np.newaxis])
        with tf.GradientTape() as tape:
            warped = dense_image_warp(tf.constant(image[np.newaxis, ..., np.newaxis]), flow)
        d_flow = tape.gradient(warped, flow).numpy()[0]  # d(sum)/d flow = -d/d query
        values, d_query = bilinear_sample(image, queries)
        np.testing.assert_allclose(values, warped.numpy()[0, ..., 0], atol=1e-6)
        alone, nothing = bilinear_sample(image, queries, gradient=False)
        assert nothing is None
        np.testing.assert_array_equal(alone, values)
        np.testing.assert_allclose(d_query, -d_flow, atol=1e-5)
        assert np.abs(d_query).max() > 0.1
        np.testing.assert_array_equal(d_query[0, 0:2], 0.0)  # whole pixels inside
        assert np.all(d_query[0, 2] != 0)  # the last pixel: fraction 1 above the clamped floor
        assert d_query[0, 3, 0] == 0 and d_query[0, 3, 1] != 0  # whole along y, half along x


class TestLocalNccWithGradient:
    def test_loss_and_gradient_are_local_nccs(self) -> None:
        rng = np.random.default_rng(4)
        moved = rng.uniform(-1, 1, (3, 10, 13)).astype(np.float32)
        moved[2] = 0.25  # flat: no structure, the clipped variance passes no gradient
        fixed = rng.uniform(-1, 1, (10, 13)).astype(np.float32)
        weights = (rng.uniform(0, 1, (3, 10, 13)) > 0.3).astype(np.float32)
        variable = tf.Variable(moved[..., np.newaxis])
        with tf.GradientTape() as tape:
            reference = local_ncc(variable, tf.constant(np.broadcast_to(fixed, (3, 10, 13))[..., np.newaxis]), 5,
                                  weights=tf.constant(weights[..., np.newaxis]))
            total = tf.reduce_sum(reference)
        expected_gradient = tape.gradient(total, variable).numpy()[..., 0]
        loss, gradient = local_ncc_with_gradient(moved, fixed, 5, weights)
        np.testing.assert_allclose(loss, reference.numpy(), atol=1e-5)
        # (TensorFlow's float32 variance of the flat image is rounding noise, sometimes above 0.)
        np.testing.assert_allclose(gradient, expected_gradient, atol=2e-4 * np.abs(expected_gradient).max())
        assert np.abs(gradient[:2]).max() > 0
        np.testing.assert_array_equal(gradient[2], 0.0)

    def test_gradient_matches_finite_differences(self) -> None:
        rng = np.random.default_rng(5)
        moved = rng.uniform(-1, 1, (1, 8, 9))
        fixed = rng.uniform(-1, 1, (8, 9))
        weights = np.ones((1, 8, 9))
        _, gradient = local_ncc_with_gradient(moved, fixed, 3, weights)
        delta = 1e-6
        for y, x in [(0, 0), (3, 4), (7, 8), (5, 1)]:
            step = np.zeros_like(moved)
            step[0, y, x] = delta
            finite = (local_ncc_with_gradient(moved + step, fixed, 3, weights, gradient=False)[0]
                      - local_ncc_with_gradient(moved - step, fixed, 3, weights, gradient=False)[0]) / (2 * delta)
            assert gradient[0, y, x] == pytest.approx(finite[0], rel=1e-5, abs=1e-9)


class TestCost:
    def _reference(self, matrices: np.ndarray, offsets: np.ndarray, copies, settings: GlobalSettings):
        """The cost as TensorFlow computes it (warp, local NCC over the pixels sampled inside, prior) and
        its gradient by the tape."""
        matrix, offset = tf.Variable(matrices), tf.Variable(offsets)
        grid = tf.constant(copies.grid)
        with tf.GradientTape() as tape:
            mapped = tf.einsum("kij,hwj->khwi", matrix, grid) + offset[:, tf.newaxis, tf.newaxis, :]
            inside = tf.cast(tf.reduce_all(tf.abs(mapped) <= copies.limit, axis=-1, keepdims=True), tf.float32)
            count = len(matrices)
            source = tf.tile(tf.constant(copies.source[np.newaxis, ..., np.newaxis]), [count, 1, 1, 1])
            target = tf.tile(tf.constant(copies.target[np.newaxis, ..., np.newaxis]), [count, 1, 1, 1])
            moved = dense_image_warp(source, (grid[tf.newaxis] - mapped) * copies.half)
            costs = local_ncc(moved, target, settings.window, weights=inside) + settings.prior_weight * (
                tf.reduce_sum(tf.square(matrix - tf.eye(2)), axis=[1, 2]) + tf.reduce_sum(tf.square(offset), axis=1))
            total = tf.reduce_sum(costs)
        d_matrix, d_offset = tape.gradient(total, [matrix, offset])
        return costs.numpy(), d_matrix.numpy(), d_offset.numpy()

    def test_cost_and_gradient_are_tensorflows(self) -> None:
        source, target, _ = moved_texture(angle=0.15, scale=1.25, shift=(-0.2, 0.25))
        copies = affine.grey_copies(np.stack([source, target]), 40)
        rng = np.random.default_rng(6)
        matrices = (np.eye(2) + rng.normal(0, 0.15, (5, 2, 2))).astype(np.float32)
        offsets = rng.normal(0, 0.3, (5, 2)).astype(np.float32)  # some sample outside the source
        settings = GlobalSettings(prior_weight=0.01)
        costs, (d_matrices, d_offsets) = affine.search_cost(
            matrices, offsets, copies, affine.PointTerm(np.zeros((0, 2)), np.zeros((0, 2))), settings, gradient=True)
        expected_costs, expected_matrices, expected_offsets = self._reference(matrices, offsets, copies, settings)
        np.testing.assert_allclose(costs, expected_costs, atol=1e-5)
        np.testing.assert_allclose(d_matrices, expected_matrices, atol=2e-4 * np.abs(expected_matrices).max())
        np.testing.assert_allclose(d_offsets, expected_offsets, atol=2e-4 * np.abs(expected_offsets).max())
        assert np.abs(expected_offsets).max() > 0.01

    def test_point_term_gradient_matches_finite_differences(self) -> None:
        rng = np.random.default_rng(7)
        copies = affine.grey_copies(np.zeros((2, 16, 16, 3), np.float32), 16)  # flat: only points and prior
        points = affine.PointTerm(rng.uniform(-1, 1, (4, 2)), rng.uniform(-1, 1, (4, 2)))
        matrices, offsets = np.eye(2)[np.newaxis] + rng.normal(0, 0.1, (1, 2, 2)), rng.normal(0, 0.1, (1, 2))
        settings = GlobalSettings()
        _, (d_matrices, d_offsets) = affine.search_cost(matrices, offsets, copies, points, settings, gradient=True)
        delta = 1e-6
        for index in np.ndindex(2, 2):
            step = np.zeros((1, 2, 2))
            step[(0, *index)] = delta
            finite = (affine.search_cost(matrices + step, offsets, copies, points, settings)[0]
                      - affine.search_cost(matrices - step, offsets, copies, points, settings)[0]) / (2 * delta)
            assert d_matrices[(0, *index)] == pytest.approx(finite[0], rel=1e-4)
        for index in range(2):
            step = np.zeros((1, 2))
            step[0, index] = delta
            finite = (affine.search_cost(matrices, offsets + step, copies, points, settings)[0]
                      - affine.search_cost(matrices, offsets - step, copies, points, settings)[0]) / (2 * delta)
            assert d_offsets[0, index] == pytest.approx(finite[0], rel=1e-4)


class TestAdam:
    def test_steps_as_keras_adam(self) -> None:
        import keras

        rng = np.random.default_rng(8)
        start = rng.normal(0, 1, (3, 2)).astype(np.float32)
        gradients = [rng.normal(0, 1, (3, 2)).astype(np.float32) for _ in range(5)]
        variable = tf.Variable(start)
        optimizer = keras.optimizers.Adam(0.01)
        ours, value = Adam(0.01), start
        for gradient in gradients:
            optimizer.apply_gradients([(tf.constant(gradient), variable)])
            (value,) = ours.step([value], [gradient])
        np.testing.assert_allclose(value, variable.numpy(), atol=1e-6)
        assert np.abs(value - start).max() > 0.04

"""The fit's loss terms against slow numpy references, with gradient checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit import losses
from morphing.render.kernels import NCC_EPSILON
from morphing.testing.scenes import sample_bilinear
from tests.helpers import assert_gradients_match, reference_warp


def reference_ncc(a: np.ndarray, b: np.ndarray, window: int, epsilon: float, weights: np.ndarray | None = None) -> float:
    """1 - mean of cov²/(var·var + eps) over windows cut at the border, pixel by pixel (one image, one channel)."""
    height, width = a.shape
    radius = window // 2
    scores = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            box = (slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1))
            pa, pb = a[box].ravel(), b[box].ravel()
            covariance = np.mean(pa * pb) - pa.mean() * pb.mean()
            scores[y, x] = covariance**2 / (pa.var() * pb.var() + epsilon)
    if weights is None:
        return 1.0 - scores.mean()
    return 1.0 - (scores * weights).sum() / weights.sum()


class TestLuminance:
    def test_weights_sum_to_one_and_follow_rec_601(self) -> None:
        images = np.zeros((1, 2, 2, 3), np.float32)
        images[0, 0, 0] = (1, 0, 0)
        images[0, 0, 1] = (0, 1, 0)
        images[0, 1, 0] = (0, 0, 1)
        images[0, 1, 1] = (0.5, 0.5, 0.5)
        grey = losses.luminance(tf.constant(images)).numpy()[0, ..., 0]
        np.testing.assert_allclose(grey, [[0.299, 0.587], [0.114, 0.5]], atol=1e-6)


class TestForwardDifference:
    @pytest.mark.parametrize("axis", [1, 2])
    def test_matches_numpy_diff(self, axis: int) -> None:
        tensor = np.random.default_rng(5).normal(size=(2, 5, 7, 3)).astype(np.float32)
        got = losses.forward_difference(tf.constant(tensor), axis).numpy()
        np.testing.assert_array_equal(got, np.diff(tensor, axis=axis))

    @pytest.mark.parametrize("axis", [1, 2])
    def test_gradient_is_the_adjoint_of_numpy_diff(self, axis: int) -> None:
        rng = np.random.default_rng(6)
        tensor = tf.constant(rng.normal(size=(2, 4, 6, 2)))
        weights = rng.normal(size=np.diff(tensor.numpy(), axis=axis).shape)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = tf.reduce_sum(losses.forward_difference(tensor, axis) * weights)
        # d/dx sum(w * diff(x)): each entry gains the weight of the difference it ends and
        # loses that of the one it starts.
        expected = np.zeros(tensor.shape)
        ending = [slice(None)] * 4
        starting = [slice(None)] * 4
        ending[axis], starting[axis] = slice(1, None), slice(None, -1)
        expected[tuple(ending)] += weights
        expected[tuple(starting)] -= weights
        np.testing.assert_allclose(tape.gradient(value, tensor).numpy(), expected, atol=1e-12)


class TestLocalNcc:
    def test_matches_numpy_reference(self) -> None:
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(2, 2, 11, 13, 1))
        got = losses.local_ncc(tf.constant(a, tf.float32), tf.constant(b, tf.float32), 5, 1e-3).numpy()
        expected = [reference_ncc(a[i, ..., 0], b[i, ..., 0], 5, 1e-3) for i in range(2)]
        np.testing.assert_allclose(got, expected, rtol=1e-4)

    def test_weights_matches_numpy_reference(self) -> None:
        rng = np.random.default_rng(1)
        a, b = rng.normal(size=(2, 1, 9, 10, 1))
        weights = (rng.uniform(size=(1, 9, 10, 1)) > 0.4).astype(np.float64)
        got = losses.local_ncc(tf.constant(a), tf.constant(b), 3, 1e-3, weights=tf.constant(weights)).numpy()
        np.testing.assert_allclose(got, [reference_ncc(a[0, ..., 0], b[0, ..., 0], 3, 1e-3, weights[0, ..., 0])], rtol=1e-6)

    def test_blind_to_gain_offset_and_inverted_contrast_but_not_to_a_shift(self) -> None:
        rng = np.random.default_rng(2)
        image = rng.normal(size=(1, 24, 24, 1))
        recoloured = np.concatenate([2.5 * image - 0.7, -0.4 * image + 0.2])
        same = losses.local_ncc(tf.constant(np.repeat(image, 2, 0)), tf.constant(recoloured), 9, 1e-9).numpy()
        shifted = losses.local_ncc(tf.constant(image), tf.constant(np.roll(image, 3, axis=2)), 9, 1e-9).numpy()
        np.testing.assert_allclose(same, [0.0, 0.0], atol=1e-6)
        assert shifted[0] > 0.8

    def test_flat_windows_score_zero_correlation(self) -> None:
        flat = tf.zeros([1, 8, 8, 1], tf.float64)
        assert float(losses.local_ncc(flat, flat, 3)[0]) == pytest.approx(1.0)

    def test_gradient(self) -> None:
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=(2, 1, 6, 7, 1))
        assert_gradients_match(lambda x, y: losses.local_ncc(x, y, 3, 1e-2), [a, b], tolerance=1e-6)

    def test_rejects_an_even_window(self) -> None:
        with pytest.raises(ValueError, match="odd"):
            losses.local_ncc(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 4, 4, 1]), 4)


class TestOpponentColours:
    def test_blue_and_red_minus_luminance_and_zero_on_grey(self) -> None:
        rng = np.random.default_rng(11)
        images = rng.uniform(-1, 1, size=(2, 3, 4, 3)).astype(np.float32)
        images[1, 0, 0] = (0.25, 0.25, 0.25)  # a grey pixel
        grey = images @ np.array([0.299, 0.587, 0.114], np.float32)
        got = losses.opponent_colours(tf.constant(images)).numpy()
        np.testing.assert_allclose(got[..., 0], images[..., 2] - grey, atol=1e-6)
        np.testing.assert_allclose(got[..., 1], images[..., 0] - grey, atol=1e-6)
        np.testing.assert_allclose(got[1, 0, 0], [0.0, 0.0], atol=1e-6)

    def test_two_colours_of_one_brightness_differ_in_colour_only(self) -> None:
        # Rec. 601 luminance 124.5 of 255 for both: a red and a blue that luminance cannot tell apart.
        images = (np.array([[[[220.0, 86.0, 73.0], [86.0, 127.0, 213.0]]]], np.float32) / 127.5) - 1.0
        grey = losses.luminance(tf.constant(images)).numpy()[0, 0, :, 0]
        colour = losses.opponent_colours(tf.constant(images)).numpy()[0, 0]
        assert abs(grey[0] - grey[1]) < 1e-3
        assert np.abs(colour[0] - colour[1]).min() > 0.5


class TestStructureChannels:
    def test_luminance_alone_at_weight_zero_else_luminance_then_colour(self) -> None:
        images = tf.constant(np.random.default_rng(12).uniform(-1, 1, size=(2, 5, 6, 3)).astype(np.float32))
        np.testing.assert_array_equal(losses.structure_channels(images, 0.0).numpy(), losses.luminance(images).numpy())
        both = losses.structure_channels(images, 0.5).numpy()
        assert both.shape == (2, 5, 6, 3)
        np.testing.assert_array_equal(both[..., :1], losses.luminance(images).numpy())
        np.testing.assert_array_equal(both[..., 1:], losses.opponent_colours(images).numpy())


class TestStructure:
    def test_luminance_plus_weighted_colour_channels_each_against_the_reference(self) -> None:
        rng = np.random.default_rng(13)
        a, b = rng.normal(size=(2, 2, 9, 11, 3))
        got = losses.structure(tf.constant(a), tf.constant(b), 5, colour_weight=0.7).numpy()
        expected = [reference_ncc(a[i, ..., 0], b[i, ..., 0], 5, NCC_EPSILON)
                    + 0.7 * sum(reference_ncc(a[i, ..., c], b[i, ..., c], 5, NCC_EPSILON) for c in (1, 2))
                    for i in range(2)]
        np.testing.assert_allclose(got, expected, rtol=1e-6)

    def test_one_channel_is_local_ncc(self) -> None:
        rng = np.random.default_rng(14)
        a, b = rng.normal(size=(2, 1, 8, 8, 1))
        np.testing.assert_array_equal(losses.structure(tf.constant(a), tf.constant(b), 3, 0.5).numpy(),
                                      losses.local_ncc(tf.constant(a), tf.constant(b), 3).numpy())

    def test_a_grey_pair_adds_nothing_to_the_gradient(self) -> None:
        # Grey pictures have flat colour channels: the gradient is luminance's alone.
        rng = np.random.default_rng(15)
        grey = rng.normal(size=(2, 1, 7, 7, 1))
        with_colour = [np.concatenate([g, np.zeros_like(g), np.zeros_like(g)], axis=-1) for g in grey]
        gradients = []
        for pair, weight in ((grey, 0.0), (with_colour, 2.0)):
            moved = tf.Variable(pair[0])
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(losses.structure(moved, tf.constant(pair[1]), 3, weight))
            gradients.append(tape.gradient(value, moved).numpy()[..., 0])
        np.testing.assert_allclose(gradients[1], gradients[0], atol=1e-12)

    def test_gradient(self) -> None:
        rng = np.random.default_rng(16)
        a, b = rng.normal(size=(2, 1, 6, 7, 3))
        assert_gradients_match(lambda x, y: losses.structure(x, y, 3, 0.6), [a, b], tolerance=1e-6)


class TestSquaredError:
    def test_per_item_mean(self) -> None:
        a = np.arange(24, dtype=np.float64).reshape(2, 2, 2, 3)
        got = losses.squared_error(tf.constant(a), tf.constant(a + np.array([1.0, 3.0])[:, None, None, None])).numpy()
        np.testing.assert_allclose(got, [1.0, 9.0])


class TestSmoothness:
    def test_matches_numpy_and_ignores_constant_flows(self) -> None:
        rng = np.random.default_rng(4)
        flows = rng.normal(size=(2, 5, 6, 2))
        expected = [
            np.mean(np.diff(flow, axis=0) ** 2) + np.mean(np.diff(flow, axis=1) ** 2) for flow in flows / 2.0
        ]
        np.testing.assert_allclose(losses.smoothness(tf.constant(flows), 2.0).numpy(), expected, rtol=1e-12)
        constant = np.full((1, 5, 6, 2), 3.7)
        assert float(losses.smoothness(tf.constant(constant))[0]) == 0.0

    def test_edge_aware_weights_follow_the_guide(self) -> None:
        rng = np.random.default_rng(6)
        flows, guide = rng.normal(size=(2, 1, 5, 6, 2)), rng.normal(size=(1, 1, 5, 6, 3))
        weight_y = np.exp(-2.0 * np.abs(np.diff(guide[0], axis=1)).mean(axis=-1, keepdims=True))
        weight_x = np.exp(-2.0 * np.abs(np.diff(guide[0], axis=2)).mean(axis=-1, keepdims=True))
        expected = [
            np.mean(np.diff(flow, axis=0) ** 2 * weight_y[i]) + np.mean(np.diff(flow, axis=1) ** 2 * weight_x[i])
            for i, flow in enumerate(flows[0])
        ]
        got = losses.smoothness(tf.constant(flows[0]), guide=tf.constant(guide[0]), edge_awareness=2.0).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        # A step in the guide lets the flow step there almost for free.
        step_flow = np.zeros((1, 4, 6, 2))
        step_flow[:, :, 3:] = 1.0
        step_guide = np.zeros((1, 4, 6, 1))
        step_guide[:, :, 3:] = 1.0
        plain = float(losses.smoothness(tf.constant(step_flow))[0])
        aware = float(losses.smoothness(tf.constant(step_flow), guide=tf.constant(step_guide), edge_awareness=10.0)[0])
        assert aware < 1e-4 * plain

    def test_gradient(self) -> None:
        flows = np.random.default_rng(5).normal(size=(1, 4, 5, 2))
        assert_gradients_match(lambda f: losses.smoothness(f), [flows])


def reference_fold_penalty(flow: np.ndarray, margin: float) -> float:
    """One ``[h, w, 2]`` flow, pixel by pixel: mean of relu(margin - det J)^2 of ``p - flow``."""
    height, width = flow.shape[:2]
    total = 0.0
    for y in range(height - 1):
        for x in range(width - 1):
            # Jacobian of the sampling map (y - fy, x - fx) by forward differences.
            dy = -(flow[y + 1, x] - flow[y, x])
            dx = -(flow[y, x + 1] - flow[y, x])
            determinant = (1 + dy[0]) * (1 + dx[1]) - dx[0] * dy[1]
            total += max(margin - determinant, 0.0) ** 2
    return total / ((height - 1) * (width - 1))


class TestFoldPenalty:
    def test_matches_numpy_reference_and_finds_a_fold(self) -> None:
        rng = np.random.default_rng(4)
        smooth = rng.normal(0, 0.3, (6, 7, 2))
        folding = np.zeros((6, 7, 2))
        folding[:, 4:, 1] = 3.0  # columns 4.. sample 3 px further left: the map runs backwards at the step
        flows = np.stack([smooth, folding]).astype(np.float32)
        expected = [reference_fold_penalty(flow, 0.2) for flow in flows.astype(np.float64)]
        assert expected[1] > 0
        np.testing.assert_allclose(losses.fold_penalty(tf.constant(flows), 0.2).numpy(), expected, rtol=1e-5)
        assert float(tf.reduce_sum(losses.fold_penalty(tf.zeros([2, 6, 7, 2]), 0.2))) == 0.0

    def test_gradient(self) -> None:
        flows = np.random.default_rng(6).normal(0, 0.8, (1, 4, 4, 2))
        assert_gradients_match(lambda f: losses.fold_penalty(f, 0.9), [flows])


class TestInverseConsistency:
    def test_composes_each_flow_with_the_other_in_both_orders(self) -> None:
        rng = np.random.default_rng(5)
        flows = rng.normal(0, 1.5, (2, 7, 9, 2)).astype(np.float32)
        ys, xs = np.meshgrid(np.arange(7.0), np.arange(9.0), indexing="ij")
        grid = np.stack([ys, xs], axis=-1)[np.newaxis].astype(np.float32)
        expected = []
        for first, second in ((1, 0), (0, 1)):  # T→S then S→T, and S→T then T→S
            composed = reference_warp(reference_warp(grid, flows[first : first + 1]), flows[second : second + 1])
            expected.append(float(np.mean(np.square((composed - grid) * 2.0 / 9))))
        np.testing.assert_allclose(losses.inverse_consistency(tf.constant(flows)).numpy(), expected, rtol=1e-4)
        # Opposite shifts undo each other (but at the clamped border); equal ones add up.
        opposite = np.zeros((2, 7, 9, 2), np.float32)
        opposite[0, ..., 1], opposite[1, ..., 1] = 0.5, -0.5
        same = np.abs(opposite)
        total = lambda f: float(tf.reduce_sum(losses.inverse_consistency(tf.constant(f))))  # noqa: E731
        assert total(opposite) < 0.2 * total(same)

    def test_gradient(self) -> None:
        flows = np.random.default_rng(7).uniform(0.1, 0.9, (2, 4, 5, 2))  # away from integer query points
        assert_gradients_match(lambda f: losses.inverse_consistency(f), [flows], tolerance=1e-5)


class TestPointError:
    def test_sampling_matrix_reads_a_map_bilinearly(self) -> None:
        rng = np.random.default_rng(8)
        values = rng.normal(size=(6, 7, 2))
        points = np.array([[0.0, 0.0], [2.25, 3.5], [5.0, 6.0], [-1.0, 9.0], [4.9, 0.1]])
        matrix = losses.bilinear_sampling_matrix(points, 6, 7)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(matrix @ values.reshape(-1, 2), sample_bilinear(values, points), atol=1e-5)

    def test_error_is_where_the_flow_carries_points_from_their_partners(self) -> None:
        here = np.array([[10.0, 10.0], [20.0, 5.0]])
        there = np.array([[12.0, 7.0], [20.0, 5.0]])
        flow = np.array([[-2.0, 3.0], [0.0, 0.0]])  # carries both exactly
        assert float(losses.point_error(tf.constant(flow), tf.constant(here), tf.constant(there))) == 0.0
        off = flow + np.array([[3.0, 4.0], [0.0, 0.0]])  # the first lands 5 px away
        assert float(losses.point_error(tf.constant(off), tf.constant(here), tf.constant(there), 2.5)) == pytest.approx(
            (5.0 / 2.5) ** 2 / 2
        )

    def test_gradient(self) -> None:
        rng = np.random.default_rng(9)
        here, there, flow = rng.normal(size=(3, 4, 2))
        assert_gradients_match(lambda f: losses.point_error(f, tf.constant(here), tf.constant(there), 3.0), [flow])

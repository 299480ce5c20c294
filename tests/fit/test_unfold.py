"""Unfolding a fitted flow, against the fold measure of ``morphing.testing.metrics`` and known linear flows."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit.unfold import UNFOLD_CHUNK, corner_turns, folded_cells, unfold
from morphing.testing.metrics import fold_fraction


def linear_flow(matrix: np.ndarray, height: int = 6, width: int = 7) -> np.ndarray:
    """``[h, w, 2]`` flow ``matrix @ (y, x)``: its sampling map is ``(I - matrix) @ (y, x)``."""
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1).astype(np.float64)
    return (grid @ matrix.T).astype(np.float32)


def bump_flow(size: int = 48, amplitude: float = 6.0, sigma: float = 3.0) -> np.ndarray:
    """A narrow sideways push in the middle: strong enough to turn the sampling map over there."""
    yy, xx = np.mgrid[:size, :size]
    bump = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * sigma**2))
    flow = np.zeros((size, size, 2), np.float32)
    flow[..., 1] = amplitude * bump
    return flow


def upsampled(flow: np.ndarray, factor: int) -> np.ndarray:
    """The flow at ``factor`` times the size, bilinear (as frames are rendered), in the new pixels."""
    height, width = flow.shape[:2]
    resized = tf.image.resize(flow[np.newaxis], [height * factor, width * factor], method="bilinear")
    return resized[0].numpy() * factor


def slow_turns(flow: np.ndarray) -> np.ndarray:
    """``corner_turns`` cell by cell: the determinant of the sampling map's two edges at each corner."""
    height, width = flow.shape[:2]
    sampling = lambda y, x: np.array([y, x], np.float64) - flow[y, x].astype(np.float64)
    turns = np.zeros((height - 1, width - 1, 4))
    for y in range(height - 1):
        for x in range(width - 1):
            corners = [(y, x), (y, x + 1), (y + 1, x + 1), (y + 1, x)]  # clockwise from the top left
            for k, (cy, cx) in enumerate(corners):
                # the two edges that leave the corner: the one along y and the one along x
                along_y = sampling(y + 1 if cy == y else y, cx) - sampling(cy, cx)
                along_x = sampling(cy, x + 1 if cx == x else x) - sampling(cy, cx)
                if cy != y:
                    along_y = -along_y
                if cx != x:
                    along_x = -along_x
                turns[y, x, k] = np.linalg.det(np.stack([along_y, along_x], axis=-1))
    return turns


def reference_turns(flow: np.ndarray) -> np.ndarray:
    """``corner_turns`` from the sampling map's positions (a coordinate grid minus the flow), vectorised."""
    height, width = flow.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1)
    sampling = grid - flow.astype(np.float64)
    top_left, top_right = sampling[:-1, :-1], sampling[:-1, 1:]
    bottom_left, bottom_right = sampling[1:, :-1], sampling[1:, 1:]

    def det(along_y: np.ndarray, along_x: np.ndarray) -> np.ndarray:
        return along_y[..., 0] * along_x[..., 1] - along_x[..., 0] * along_y[..., 1]

    return np.stack([det(bottom_left - top_left, top_right - top_left),
                     det(bottom_right - top_right, top_right - top_left),
                     det(bottom_right - top_right, bottom_right - bottom_left),
                     det(bottom_left - top_left, bottom_right - bottom_left)], axis=-1)


def whole_flow_unfold(flow: np.ndarray, margin: float, rounds: int) -> np.ndarray:
    """``unfold`` as its docstring says, on the whole flow every round, written out plainly."""
    result = flow.astype(np.float32, copy=True)
    height, width = flow.shape[:2]
    for _ in range(rounds):
        cells = (reference_turns(result) <= margin).any(axis=-1)
        if not cells.any():
            break
        near = np.zeros((height, width), bool)
        for y, x in zip(*np.nonzero(cells)):
            near[max(0, y - 1):y + 3, max(0, x - 1):x + 3] = True  # the corners and their neighbours
        padded = np.pad(result, ((1, 1), (1, 1), (0, 0)), mode="edge")
        means = sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)) / 9.0
        result[near] = means[near]
    return result


def separate_pushes(seed: int, height: int, width: int) -> np.ndarray:
    """Three strong narrow pushes, far apart (one at the left edge), each folding the flow around it
    so that unfolding takes more than ``UNFOLD_CHUNK`` rounds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    flow = np.zeros((height, width, 2), np.float32)
    for centre_y, centre_x in ((0.2, 0.25), (0.75, 0.8), (0.55, 0.03)):
        size, sigma, angle = rng.uniform(9, 13), rng.uniform(3, 4.5), rng.uniform(0, 2 * np.pi)
        bump = size * np.exp(-((yy - centre_y * height) ** 2 + (xx - centre_x * width) ** 2) / (2 * sigma**2))
        flow[..., 0] += bump * np.sin(angle)
        flow[..., 1] += bump * np.cos(angle)
    return flow


def scattered_folds(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth random flow with a few sharp kicks that fold it in separate places."""
    rng = np.random.default_rng(seed)
    flow = rng.normal(size=(height, width, 2)).astype(np.float32)
    for _ in range(3):  # a cheap blur: the flow varies slowly between the kicks
        flow = (flow + np.roll(flow, 1, 0) + np.roll(flow, 1, 1) + np.roll(flow, (1, 1), (0, 1))) / 4
    flow = flow * 3.0 + rng.normal(scale=20.0, size=2).astype(np.float32)
    for y, x in zip(rng.integers(0, height, 6), rng.integers(0, width, 6)):
        flow[y, x] += rng.normal(scale=4.0, size=2).astype(np.float32)
    return flow


class TestCornerTurns:
    def test_random_flows_turn_as_a_cell_by_cell_determinant(self) -> None:
        flow = scattered_folds(0, 9, 11)
        np.testing.assert_allclose(corner_turns(flow), slow_turns(flow), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(reference_turns(flow), slow_turns(flow), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(corner_turns(flow), reference_turns(flow))

    def test_no_flow_turns_one_everywhere(self) -> None:
        np.testing.assert_allclose(corner_turns(np.zeros((4, 5, 2), np.float32)), np.ones((3, 4, 4)))

    @pytest.mark.parametrize("matrix", [np.array([[0.3, 0.1], [-0.2, 0.5]]), np.array([[1.4, 0.0], [0.0, 0.2]])])
    def test_a_linear_flow_turns_by_the_determinant_of_its_sampling_map(self, matrix: np.ndarray) -> None:
        expected = np.linalg.det(np.eye(2) - matrix)
        np.testing.assert_allclose(corner_turns(linear_flow(matrix)), np.full((5, 6, 4), expected), atol=1e-5)


class TestFoldedCells:
    def test_marks_the_cells_where_the_metric_sees_a_fold(self) -> None:
        flow = bump_flow()
        cells = folded_cells(flow)
        assert cells.any() and fold_fraction(flow) > 0
        rows, columns = np.nonzero(cells)
        # The push is sideways and centred: the folds lie around the middle column, in the middle rows.
        assert abs(rows.mean() - 23.5) < 2 and abs(columns.mean() - 23.5) < 4

    def test_the_margin_also_marks_cells_close_to_folding(self) -> None:
        flow = linear_flow(np.array([[0.97, 0.0], [0.0, 0.0]]))  # the sampling map squeezes rows to 0.03
        assert not folded_cells(flow).any()
        assert folded_cells(flow, margin=0.05).all()


class TestUnfold:
    def test_a_folded_flow_renders_without_folds_at_any_size(self) -> None:
        flow = bump_flow()
        assert fold_fraction(upsampled(flow, 4)) > 0
        result = unfold(flow)
        for factor in (1, 4, 8):
            assert fold_fraction(upsampled(result, factor)) == 0

    def test_pixels_far_from_the_fold_keep_their_values(self) -> None:
        flow = bump_flow()
        flow[..., 0] += 0.01 * np.arange(48)[None, :]  # a gentle slope that never folds
        result = unfold(flow)
        changed = np.abs(result - flow).max(axis=-1) > 0
        assert changed.any()
        rows, columns = np.nonzero(changed)
        assert rows.min() > 10 and rows.max() < 38 and columns.min() > 10 and columns.max() < 38

    def test_a_flow_without_folds_comes_back_unchanged(self) -> None:
        flow = linear_flow(np.array([[0.3, 0.1], [-0.2, 0.5]]), 20, 20) + 2.5
        np.testing.assert_array_equal(unfold(flow), flow)

    def test_the_input_is_not_changed(self) -> None:
        flow = bump_flow()
        kept = flow.copy()
        unfold(flow)
        np.testing.assert_array_equal(flow, kept)

    @pytest.mark.parametrize("seed, height, width", [(1, 140, 160), (3, 150, 150), (4, 130, 170)])
    def test_the_rounds_on_crops_match_the_rounds_on_the_whole_flow(self, seed: int, height: int,
                                                                     width: int) -> None:
        flow = separate_pushes(seed, height, width)
        assert folded_cells(unfold(flow, 0.05, UNFOLD_CHUNK), 0.05).any()  # one chunk of rounds is not enough
        for rounds in (1, UNFOLD_CHUNK, UNFOLD_CHUNK + 1, 200):
            np.testing.assert_array_equal(unfold(flow, 0.05, rounds), whole_flow_unfold(flow, 0.05, rounds))
        assert not folded_cells(unfold(flow, 0.05, 200), 0.05).any()

    def test_scattered_folds_unfold_as_on_the_whole_flow(self) -> None:
        flow = scattered_folds(2, 52, 37)
        assert folded_cells(flow, 0.05).any()
        np.testing.assert_array_equal(unfold(flow, 0.05, 200), whole_flow_unfold(flow, 0.05, 200))

    def test_refuses_what_is_not_a_flow(self) -> None:
        with pytest.raises(ValueError, match=r"\[h, w, 2\]"):
            unfold(np.zeros((8, 8, 3), np.float32))

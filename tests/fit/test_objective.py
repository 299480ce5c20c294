"""The fit's objective: each term on inputs with a known answer, and their weighted sum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit import losses
from morphing.model.maps import Scales
from morphing.render.transition import bilinear_matrix
from morphing.fit.objective import (
    FitFields,
    MorphObjective,
    flow_consistency,
    flow_folds,
    flow_smoothness,
    level_structure,
    map_colour,
    point_inputs,
    point_pairs,
)
from morphing.model.points import PointPairs
from morphing.testing.scenes import random_texture
from morphing.model.settings import FitSettings

GRID = (4, 5)
WORK = (8, 10)


def texture_pair(shift_x: int = 0, shape: tuple[int, int] = (16, 20)) -> np.ndarray:
    """``[2, H, W, 1]``: a texture (S) and it moved right by ``shift_x`` pixels (T), border repeated."""
    texture = random_texture(np.random.default_rng(3), *shape, falloff=1.0).mean(axis=-1)
    source = ((texture - texture.mean()) / (2 * texture.std())).astype(np.float32)
    target = np.concatenate([np.repeat(source[:, :1], shift_x, axis=1), source[:, : shape[1] - shift_x]], axis=1)
    return np.stack([source, target])[..., np.newaxis]


def fields(flows: np.ndarray | None = None, *, points=None, progress: float = 0.0, seed: int = 0) -> FitFields:
    """Fields of a small fit: grid ``GRID``, images ``WORK`` and half of it, random maps unless given."""
    rng = np.random.default_rng(seed)
    if flows is None:
        flows = rng.normal(size=(2, *GRID, 2)).astype(np.float32) * 0.3
    images = rng.uniform(-1, 1, size=(2, *WORK, 3)).astype(np.float32)
    grey = images.mean(axis=-1, keepdims=True)
    return FitFields(
        flows=tf.constant(flows),
        residual=tf.constant(flows * 0.5),
        grid_maps=tf.constant(rng.normal(size=(2, *GRID, 8)).astype(np.float32) * 0.1),
        levels=(tf.constant(grey), tf.constant(grey[:, ::2, ::2])),
        images=tf.constant(images),
        points=point_inputs(points, WORK, GRID),
        progress=tf.constant(progress),
        guides=tf.constant(rng.uniform(-1, 1, size=(2, *GRID, 3)).astype(np.float32)),
    )


class TestLevelStructure:
    def test_blind_to_gain_and_offset(self) -> None:
        pair = texture_pair()
        pair[1] = 0.5 * pair[1] - 0.3
        value = level_structure(tf.zeros([2, *GRID, 2]), tf.constant(pair), 5)
        unrelated = pair.copy()
        unrelated[1] = np.random.default_rng(4).normal(size=unrelated[1].shape)
        assert float(value) < 0.01 < 0.5 < float(level_structure(tf.zeros([2, *GRID, 2]), tf.constant(unrelated), 5))

    def test_the_flow_that_undoes_a_known_shift_scores_best(self) -> None:
        pair = tf.constant(texture_pair(shift_x=2))
        # Grid flows in grid pixels: 2 image pixels right is 2 * 5 / 20 grid pixels; T→S the other way.
        undoing = np.zeros([2, *GRID, 2], np.float32)
        undoing[0, ..., 1], undoing[1, ..., 1] = 0.5, -0.5
        scores = {dx: float(level_structure(tf.constant(undoing * dx / 0.5), pair, 5)) for dx in (0.0, 0.25, 0.5, 0.75)}
        assert min(scores, key=scores.get) == 0.5
        assert scores[0.5] < 0.2 * scores[0.0]

    def test_has_a_gradient_towards_the_right_flow(self) -> None:
        pair = tf.constant(texture_pair(shift_x=2))
        start = np.zeros([2, *GRID, 2], np.float32)
        start[0, ..., 1], start[1, ..., 1] = 0.3, -0.3  # part of the way (between pixels: a gradient everywhere)
        flows = tf.Variable(start)
        with tf.GradientTape() as tape:
            value = level_structure(flows, pair, 5)
        gradient = tape.gradient(value, flows).numpy()
        assert gradient[0, ..., 1].mean() < 0 < gradient[1, ..., 1].mean()  # descent moves S→T right, T→S left


    def test_with_colour_a_shift_of_colour_alone_is_found(self) -> None:
        # A texture drawn in two colours of one brightness (luminance flat): luminance alone sees no
        # difference between flows; with the colour channels the flow that undoes the shift scores best.
        pattern = texture_pair(shift_x=2)[..., 0]
        red, blue = np.array([220.0, 86.0, 73.0]) / 127.5 - 1, np.array([86.0, 127.0, 213.0]) / 127.5 - 1
        share = (pattern - pattern.min()) / (pattern.max() - pattern.min())
        rgb = (share[..., None] * red + (1 - share[..., None]) * blue).astype(np.float32)
        undoing = np.zeros([2, *GRID, 2], np.float32)
        undoing[0, ..., 1], undoing[1, ..., 1] = 0.5, -0.5
        scores = {}
        for weight in (0.0, 1.0):
            channels = losses.structure_channels(tf.constant(rgb), weight)
            scores[weight] = [float(level_structure(tf.constant(undoing * dx / 0.5), channels, 5, colour_weight=weight))
                              for dx in (0.0, 0.5)]
        assert abs(scores[0.0][0] - scores[0.0][1]) < 0.01
        assert scores[1.0][1] < scores[1.0][0] - 1.0

    def test_fine_flows_add_to_the_upsampled_grid_flows(self) -> None:
        # Grid flows plus fine flows at the level's size score as their sum given on a grid of that size
        # (whose upsampling is the identity); the fine flows take no gradient.
        pair = texture_pair(shift_x=2)
        height, width = pair.shape[1:3]
        rng = np.random.default_rng(9)
        grid_flows = rng.normal(size=(2, *GRID, 2)).astype(np.float32) * 0.2
        fine = rng.normal(size=(2, height, width, 2)).astype(np.float32) * 0.5
        rows = bilinear_matrix(height, GRID[0])
        columns = bilinear_matrix(width, GRID[1])
        upsampled = np.einsum("yh,bhwc,xw->byxc", rows, grid_flows, columns) * np.array(
            [height / GRID[0], width / GRID[1]], np.float32)
        together = float(level_structure(tf.constant(grid_flows), tf.constant(pair), 5, tf.constant(fine)))
        summed = float(level_structure(tf.constant(upsampled + fine), tf.constant(pair), 5))
        np.testing.assert_allclose(together, summed, rtol=1e-5)
        assert abs(together - float(level_structure(tf.constant(grid_flows), tf.constant(pair), 5))) > 1e-3
        fine_variable = tf.Variable(fine)
        with tf.GradientTape() as tape:
            value = level_structure(tf.constant(grid_flows), tf.constant(pair), 5, fine_variable)
        assert tape.gradient(value, fine_variable) is None


class TestMapColour:
    def test_equals_the_formula_in_numpy_when_nothing_moves(self) -> None:
        rng = np.random.default_rng(1)
        images = rng.uniform(-1, 1, size=(2, *GRID, 3)).astype(np.float32)
        maps = rng.normal(size=(2, *GRID, 8)).astype(np.float32)
        maps[..., 6:] = 0.0  # no warp: the term is the colour maps alone
        scales = Scales(mult=0.6, add=0.2, warp=0.05)
        value = map_colour(tf.constant(maps), tf.constant(images), scales, 0.0, tf.ones([1]))
        coloured = images * (1 + 0.6 * maps[..., 0:3]) + 0.2 * maps[..., 3:6]
        expected = sum(np.mean((coloured[i] - images[1 - i]) ** 2) for i in range(2))
        np.testing.assert_allclose(float(value), expected, rtol=1e-5)

    @pytest.mark.parametrize("share", [0.0, 0.25])
    def test_the_warp_gets_its_share_of_the_gradient(self, share: float) -> None:
        rng = np.random.default_rng(2)
        images = tf.constant(rng.uniform(-1, 1, size=(2, *WORK, 3)).astype(np.float32))
        maps = tf.Variable(rng.normal(size=(2, *GRID, 8)).astype(np.float32))
        gradients = {}
        for weight in (1.0, share):
            with tf.GradientTape() as tape:
                value = map_colour(maps, images, Scales(warp=2.0), weight, tf.ones([1]))
            gradients[weight] = tape.gradient(value, maps).numpy()
        np.testing.assert_allclose(gradients[share][..., :6], gradients[1.0][..., :6], rtol=1e-5)
        np.testing.assert_allclose(gradients[share][..., 6:], share * gradients[1.0][..., 6:], rtol=1e-4, atol=1e-7)
        assert np.abs(gradients[1.0][..., 6:]).max() > 0


class TestFlowTerms:
    def test_smoothness_is_zero_for_a_constant_residual_and_positive_otherwise(self) -> None:
        settings = FitSettings()
        constant = fields(np.full([2, *GRID, 2], 0.7, np.float32))
        assert float(flow_smoothness(constant, settings)) == 0.0
        assert float(flow_smoothness(fields(), settings)) > 0.0

    def test_consistency_is_zero_for_no_motion_and_positive_for_unrelated_flows(self) -> None:
        assert float(flow_consistency(fields(np.zeros([2, *GRID, 2], np.float32)), FitSettings())) == 0.0
        assert float(flow_consistency(fields(), FitSettings())) > 0.0

    def test_folds_only_where_the_sampling_map_folds(self) -> None:
        settings = FitSettings(fold_margin=0.2)
        assert float(flow_folds(fields(np.zeros([2, *GRID, 2], np.float32)), settings)) == 0.0
        folding = np.zeros([2, *GRID, 2], np.float32)
        folding[..., 1] = np.arange(GRID[1]) * 2.0  # x - 2x: the sampling map runs backwards
        # det J = 1 - 2 everywhere, in both directions (the term sums the two).
        assert float(flow_folds(fields(folding), settings)) == pytest.approx(2 * (0.2 - (1 - 2)) ** 2)


class TestPointPairs:
    def test_no_points_give_empty_inputs(self) -> None:
        inputs = point_inputs(None, WORK, GRID)
        assert inputs.readers.shape == (2, 0, GRID[0] * GRID[1]) and inputs.here.shape == (2, 0, 2)

    def test_a_constant_flow_moves_points_by_itself(self) -> None:
        points = PointPairs(np.array([[3.0, 4.0]]), np.array([[5.0, 2.0]]), WORK, WORK)
        flows = np.zeros([2, *GRID, 2], np.float32)
        flows[0] = (0.5, -0.5)  # grid pixels
        state = fields(flows, points=points)
        # Grid positions: (p + 0.5) * 0.5 - 0.5; S→T reads at the target's point and should land on the source's.
        here, there = np.array([2.25, 0.75]), np.array([1.25, 1.75])
        expected = np.sum((here - np.array([0.5, -0.5]) - there) ** 2) / 0.1**2
        assert float(point_pairs(state, 0, 0.1, fade=2.0)) == pytest.approx(expected, rel=1e-5)
        assert float(point_pairs(state, 1, 0.1, fade=2.0)) == pytest.approx(np.sum((there - here) ** 2) / 0.01,
                                                                          rel=1e-5)

    def test_automatic_pairs_weigh_their_strength_and_fade_while_user_pairs_hold(self) -> None:
        points = PointPairs(np.array([[3.0, 4.0], [6.0, 7.0]]), np.array([[5.0, 2.0], [6.0, 9.0]]), WORK, WORK)
        state = fields(np.zeros([2, *GRID, 2], np.float32), points=points, progress=0.25)
        full = float(point_pairs(state, 0, 0.1, fade=0.0))  # both at weight 1
        only_user = points.__class__(points.source[:1], points.target[:1], WORK, WORK)
        user_alone = float(point_pairs(fields(np.zeros([2, *GRID, 2], np.float32), points=only_user), 0, 0.1, 0.0))
        automatic_alone = 2 * full - user_alone  # the mean over two pairs
        faded = state._replace(points=point_inputs(points, WORK, GRID, automatic=1, automatic_strength=0.3))
        # At a quarter of the fit, fading by 2: the automatic pair weighs 0.3 * (1 - 0.5).
        expected = (user_alone + 0.3 * 0.5 * automatic_alone) / 2
        assert float(point_pairs(faded, 0, 0.1, fade=2.0)) == pytest.approx(expected, rel=1e-5)
        late = faded._replace(progress=tf.constant(0.75))  # faded out: only the user's pair is left
        assert float(point_pairs(late, 0, 0.1, fade=2.0)) == pytest.approx(user_alone / 2, rel=1e-5)


class TestMorphObjective:
    def test_is_the_weighted_sum_of_its_terms_in_order(self) -> None:
        points = PointPairs(np.array([[3.0, 4.0]]), np.array([[5.0, 2.0]]), WORK, WORK)
        objective = MorphObjective(FitSettings(colour_weight=0.5, fold_weight=2.0), Scales(), GRID)
        state = fields(points=points, progress=0.25)
        terms = list(objective.weighted_terms(state))
        assert [name for name, _, _ in terms] == ["structure", "structure 1", "colour", "smoothness", "consistency",
                                                  "folds", "points 0", "points 1"]
        expected = sum(float(weight) * float(value) for _, weight, value in terms)
        assert float(objective(state)) == pytest.approx(expected, rel=1e-5)
        assert [name for name, _, _ in objective.weighted_terms(fields())][-1] == "folds"  # no points, no term

    def test_coarse_levels_fade_with_progress(self) -> None:
        objective = MorphObjective(FitSettings(structure_weight=2.0, coarse_fade=1.0), Scales(), GRID)
        for progress, weight in ((0.0, 2.0), (0.5, 1.0), (1.0, 0.0)):
            terms = {name: w for name, w, _ in objective.weighted_terms(fields(progress=progress))}
            assert float(terms["structure 1"]) == pytest.approx(weight) and terms["structure"] == 2.0

    def test_a_zero_weight_removes_exactly_its_term(self) -> None:
        state = fields()
        settings = FitSettings()
        full = float(MorphObjective(settings, Scales(), GRID)(state))
        without = float(MorphObjective(dataclasses.replace(settings, smoothness_weight=0.0), Scales(), GRID)(state))
        assert full - without == pytest.approx(float(flow_smoothness(state, settings)), rel=1e-4)

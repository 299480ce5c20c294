"""Fitting on a synthetic pair with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit import FitDivergedError, FitSettings, MapFitter, _consistency, _fold_penalty, fit_maps
from morphing.images import to_float
from morphing.maps import Scales
from morphing.render import FrameRenderer
from tests.conftest import disc_image
from tests.test_warp import reference_warp


def test_fitted_middle_frame_beats_cross_dissolve_on_a_moving_disc() -> None:
    source = disc_image(64, 64, (32, 24), 10)
    target = disc_image(64, 64, (32, 34), 10)  # moved 10 px right
    halfway = disc_image(64, 64, (32, 29), 10).astype(float)
    steps: list[float] = []
    maps = fit_maps(
        to_float(source), to_float(target), Scales(),
        FitSettings(epochs=100, working_size=64, grid_size=32, seed=0),
        on_step=lambda step, loss: steps.append(loss),
    )
    assert len(steps) == 100 and steps[-1] < steps[0] / 5
    middle = FrameRenderer(source, target, maps, maps.scales).render([0.5])[0].astype(float)
    dissolve = (source.astype(float) + target) / 2
    morph_error = np.abs(middle - halfway).mean()
    dissolve_error = np.abs(dissolve - halfway).mean()
    assert morph_error < 0.3 * dissolve_error, (morph_error, dissolve_error)
    assert maps.grid_shape == (32, 32) and maps.image_shape == (64, 64)


def test_fit_rejects_mismatched_shapes_and_zero_epochs() -> None:
    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="must both be"):
        fit_maps(image, np.zeros((16, 17, 3), np.float32), Scales())
    with pytest.raises(ValueError, match="epochs"):
        fit_maps(image, image, Scales(), FitSettings(epochs=0))


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    rng = np.random.default_rng(0)
    source, target = (rng.uniform(-1, 1, (16, 16, 3)).astype(np.float32) for _ in range(2))
    overflowing = Scales(mult=1e30, add=1e30, warp=0.05)  # float32 overflows to inf, then NaN
    with pytest.raises(FitDivergedError, match=r"diverged at step \d+ \(loss is (inf|nan)\)"):
        fit_maps(source, target, overflowing, FitSettings(epochs=5, working_size=16))


def test_a_shared_fitter_traces_once_and_fits_each_pair_as_a_fresh_one() -> None:
    settings = FitSettings(epochs=6, working_size=32, grid_size=16, seed=3)
    pairs = [
        (to_float(disc_image(32, 32, (16, 12), 6)), to_float(disc_image(32, 32, (16, 20), 6))),
        (to_float(disc_image(32, 32, (10, 16), 8)), to_float(disc_image(32, 32, (22, 16), 5))),
    ]
    shared = MapFitter(Scales(), settings)
    together = [shared.fit(source, target) for source, target in pairs]
    alone = [fit_maps(source, target, Scales(), settings) for source, target in pairs]
    for with_others, by_itself in zip(together, alone):
        np.testing.assert_allclose(with_others.forward, by_itself.forward, rtol=0, atol=1e-5)
        np.testing.assert_allclose(with_others.backward, by_itself.backward, rtol=0, atol=1e-5)
    assert not np.allclose(together[0].forward, together[1].forward)
    (program,) = shared._programs.values()
    assert program.train_step.experimental_get_tracing_count() == 1


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


def test_fold_penalty_sums_each_flows_own_penalty_and_finds_a_fold() -> None:
    rng = np.random.default_rng(4)
    smooth = rng.normal(0, 0.3, (6, 7, 2))
    folding = np.zeros((6, 7, 2))
    folding[:, 4:, 1] = 3.0  # columns 4.. sample 3 px further left: the map runs backwards at the step
    flows = np.stack([smooth, folding]).astype(np.float32)
    expected = sum(reference_fold_penalty(flow, 0.2) for flow in flows.astype(np.float64))
    assert reference_fold_penalty(folding, 0.2) > 0
    assert float(_fold_penalty(tf.constant(flows), 0.2)) == pytest.approx(expected, rel=1e-5)
    assert float(_fold_penalty(tf.zeros([2, 6, 7, 2]), 0.2)) == 0.0


def test_consistency_composes_each_flow_with_the_other_in_both_orders() -> None:
    rng = np.random.default_rng(5)
    flows = rng.normal(0, 1.5, (2, 7, 9, 2)).astype(np.float32)
    ys, xs = np.meshgrid(np.arange(7.0), np.arange(9.0), indexing="ij")
    grid = np.stack([ys, xs], axis=-1)[np.newaxis].astype(np.float32)
    expected = 0.0
    for first, second in ((1, 0), (0, 1)):  # T→S then S→T, and S→T then T→S
        composed = reference_warp(reference_warp(grid, flows[first : first + 1]), flows[second : second + 1])
        expected += float(np.mean(np.square((composed - grid) * 2.0 / 9)))
    assert float(_consistency(tf.constant(flows))) == pytest.approx(expected, rel=1e-4)
    # Opposite shifts undo each other (but at the clamped border); equal ones add up.
    opposite = np.zeros((2, 7, 9, 2), np.float32)
    opposite[0, ..., 1], opposite[1, ..., 1] = 0.5, -0.5
    same = np.abs(opposite)
    assert float(_consistency(tf.constant(opposite))) < 0.2 * float(_consistency(tf.constant(same)))

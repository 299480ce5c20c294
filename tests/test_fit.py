"""Fitting on a synthetic pair with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from morphing.fit import FitDivergedError, FitSettings, fit_maps
from morphing.images import to_float
from morphing.maps import Scales
from morphing.render import FrameRenderer
from tests.conftest import disc_image


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

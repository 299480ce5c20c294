"""Quality measures on cases with a known answer."""

from __future__ import annotations

import numpy as np

from morphing.testing.metrics import PSNR_CAP_DB, fold_fraction, pacing, psnr, sharpness


def test_psnr_of_identical_images_is_capped_and_known_error_gives_known_value() -> None:
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3))
    assert psnr(image, image) == PSNR_CAP_DB
    shifted = image + 1  # mean squared error exactly 1
    assert abs(psnr(shifted, image) - 10 * np.log10(255**2)) < 1e-9


def test_fold_fraction_is_zero_for_identity_and_smooth_flows() -> None:
    assert fold_fraction(np.zeros((16, 16, 2))) == 0.0
    ys, xs = np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij")
    gentle = np.stack([0.2 * np.sin(xs / 3), 0.2 * np.cos(ys / 3)], axis=-1)
    assert fold_fraction(gentle) == 0.0


def test_fold_fraction_finds_a_synthetic_fold() -> None:
    flow = np.zeros((16, 16, 2))
    # Columns 6..9 sample at x = 8, 11, 14, 17 and column 10 at x = 10: the
    # sampling map runs backwards between columns 9 and 10, a fold seen by the
    # forward difference at column 9 and the backward difference at column 10.
    flow[:, 6:10, 1] = -np.arange(4) * 2.0 - 2.0
    assert fold_fraction(flow) == 2 / 16
    flow[:, 6:10, 0] = 0.5  # a vertical shift alone adds no fold
    assert fold_fraction(flow) == 2 / 16


def test_pacing_is_one_for_even_change_and_large_for_a_jump() -> None:
    even = [np.full((4, 4), 10.0 * i) for i in range(6)]
    assert abs(pacing(even) - 1.0) < 1e-12
    jump = [np.zeros((4, 4))] * 3 + [np.full((4, 4), 50.0)] * 3
    assert abs(pacing(jump) - 5.0) < 1e-12


def test_sharpness_drops_with_blur() -> None:
    rng = np.random.default_rng(1)
    sharp = rng.uniform(0, 255, (32, 32))
    blurred = (sharp + np.roll(sharp, 1, 0) + np.roll(sharp, 1, 1) + np.roll(sharp, (1, 1), (0, 1))) / 4
    assert sharpness(blurred) < 0.5 * sharpness(sharp)

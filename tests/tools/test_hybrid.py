"""Hybrid images: the far view is the far image's, the fine detail the near one's."""

from __future__ import annotations

import numpy as np
import pytest

from morphing.render.filters import gaussian_kernel
from morphing.tools.hybrid import (
    GAMMA,
    HybridSettings,
    blur_in_linear_light,
    classic_hybrid,
    fit_hybrid,
)
from morphing.testing.scenes import random_texture


def texture01(seed: int, size: int = 40) -> np.ndarray:
    """``[size, size, 3]`` float32 texture in [0, 1]."""
    return (random_texture(np.random.default_rng(seed), size, size, falloff=1.0) + 1.0) / 2.0


def blurred(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return blur_in_linear_light(image[np.newaxis], kernel)[0].numpy()


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


@pytest.mark.parametrize("near_term, start", [("detail", "grey"), ("pixels", "near"), ("pixels", "grey")])
def test_far_view_is_closer_to_far_and_detail_closer_to_near(near_term: str, start: str) -> None:
    near, far = texture01(0), texture01(1)
    settings = HybridSettings(sigma=2.0, steps=150, near_term=near_term, start=start,
                              far_weight=1.0 if near_term == "detail" else 10.0)
    hybrid = fit_hybrid(near, far, settings)
    assert hybrid.shape == near.shape and hybrid.dtype == np.float32
    assert hybrid.min() >= 0.0 and hybrid.max() <= 1.0
    kernel = gaussian_kernel(2.0)
    far_view = blurred(far, kernel)
    # From afar: the hybrid's blur is nearer the far image's blur than the near image's blur is.
    assert rms(blurred(hybrid, kernel) - far_view) < 0.5 * rms(blurred(near, kernel) - far_view)

    def detail(image: np.ndarray) -> np.ndarray:
        return image - blurred(image, kernel)

    # Up close: its fine detail is nearer the near image's detail than the far image's detail is.
    assert rms(detail(hybrid) - detail(near)) < 0.5 * rms(detail(far) - detail(near))


def test_linear_light_blur_averages_light_not_pixel_values() -> None:
    stripes = np.zeros((1, 24, 24, 3), np.float32)
    stripes[:, :, ::2] = 1.0  # black and white columns, one pixel each
    centre = blur_in_linear_light(stripes, gaussian_kernel(3.0)).numpy()[0, 12, 12]
    # Half the light: 0.5 in linear light is 0.5^(1/2.2) ≈ 0.73 in sRGB, not 0.5.
    np.testing.assert_allclose(centre, 0.5 ** (1 / GAMMA), atol=0.01)


def test_classic_hybrid_is_low_pass_of_far_plus_high_pass_of_near() -> None:
    near, far = texture01(2), texture01(3)
    kernel = gaussian_kernel(2.0)
    np.testing.assert_allclose(classic_hybrid(near, near, kernel), near, atol=1e-6)
    classic = classic_hybrid(near, far, kernel)
    np.testing.assert_allclose(classic - near, blurred(far, kernel) - blurred(near, kernel), atol=1e-6)


def test_fit_reports_steps_and_rejects_bad_inputs() -> None:
    near, far = texture01(4, 16), texture01(5, 16)
    losses: list[float] = []
    fit_hybrid(near, far, HybridSettings(sigma=1.0, steps=20), lambda step, loss: losses.append(loss))
    assert len(losses) == 20 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="one shape"):
        fit_hybrid(near, far[:-1])
    with pytest.raises(ValueError, match="too wide"):
        fit_hybrid(near, far, HybridSettings(sigma=6.0))
    with pytest.raises(ValueError, match="start"):
        fit_hybrid(near, far, HybridSettings(sigma=1.0, start="white"))  # type: ignore[arg-type]

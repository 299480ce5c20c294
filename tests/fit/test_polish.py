"""The polish of a fitted warp by the optical flow, against pictures with a known motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from morphing.fit.fitter import FitSettings, fit_maps
from morphing.fit.polish import answer_taken, polished_flows, polished_maps
from morphing.fit.unfold import folded_cells
from morphing.io.images import to_float, working_shape
from morphing.model.maps import WARP, MorphMaps, Scales
from morphing.model.points import PointPairs
from morphing.model.settings import PolishSettings
from morphing.render.opencv import upsample_grid
from morphing.testing.scenes import random_texture, sample_bilinear
from morphing.tools.transfer import morph_flows


def _smooth_field(rng: np.random.Generator, size: int, sigma: float, rms: float) -> np.ndarray:
    """``[size, size, 2] float32``: Gaussian-smoothed noise scaled to ``rms`` pixels."""
    field = rng.normal(size=(size, size, 2)).astype(np.float32)
    field = np.stack([cv2.GaussianBlur(field[..., axis], (0, 0), sigma) for axis in range(2)], axis=-1)
    return field * (rms / np.sqrt(np.mean(np.sum(field ** 2, axis=-1))))


def _warped(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` moved by ``flow`` (``dense_image_warp``'s sign: pixel ``p`` shows ``image`` at ``p - flow(p)``)."""
    ys, xs = np.mgrid[0:flow.shape[0], 0:flow.shape[1]].astype(np.float32)
    return cv2.remap(image, xs - flow[..., 1], ys - flow[..., 0], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _inverse(flow: np.ndarray, rounds: int = 40) -> np.ndarray:
    """The other direction's flow of a smooth ``flow`` (fixed-point iteration: ``b(q) = -flow(q - b(q))``)."""
    back = np.zeros_like(flow)
    for _ in range(rounds):
        back = -_warped(flow, back)
    return back


def bent_pair(seed: int = 3, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(source, target, flows)``: a texture (``[size, size, 3] uint8``) and the same texture bent by a smooth
    field of about 5 px, with the true ``[2, size, size, 2]`` flows (S→T, then T→S)."""
    rng = np.random.default_rng(seed)
    texture = random_texture(rng, size, size, falloff=1.1)
    source = np.clip(np.rint((texture + 1.0) * 127.5), 0, 255).astype(np.uint8)
    forward = _smooth_field(rng, size, size / 8, 5.0)
    target = _warped(source, forward)
    return source, target, np.stack([forward, _inverse(forward)])


def _error(flow: np.ndarray, truth: np.ndarray, margin: int = 12) -> float:
    """Median distance (px) of ``flow`` from ``truth``, away from the border."""
    return float(np.median(np.linalg.norm(flow - truth, axis=-1)[margin:-margin, margin:-margin]))


def _maps_of(flows: np.ndarray, grid: int, image_shape: tuple[int, int], scales: Scales | None = None,
             seed: int = 0) -> MorphMaps:
    """Maps on a ``grid``² grid whose warp is ``flows`` (``[2, H, W, 2]`` frame pixels) brought there, and
    random colour maps."""
    scales = Scales() if scales is None else scales
    rng = np.random.default_rng(seed)
    ratio = np.array([grid / image_shape[0], grid / image_shape[1]], np.float32)
    directions = []
    for flow in flows:
        maps = rng.normal(scale=0.3, size=(grid, grid, 8)).astype(np.float32)
        maps[..., WARP] = cv2.resize(flow, (grid, grid), interpolation=cv2.INTER_AREA) * ratio / scales.warp
        directions.append(maps)
    return MorphMaps(directions[0], directions[1], scales, image_shape)


class TestPolishedFlows:
    def test_a_flow_over_a_pixel_off_is_brought_within_a_fraction_of_a_pixel(self) -> None:
        source, target, truth = bent_pair()
        rng = np.random.default_rng(7)
        rough = truth + np.stack([_smooth_field(rng, 128, 12.0, 1.5) for _ in range(2)])
        polished, share, agreement = polished_flows(source, target, rough, PolishSettings())
        assert agreement > PolishSettings().least_agreement and share > 0.3
        for direction in range(2):
            before, after = _error(rough[direction], truth[direction]), _error(polished[direction], truth[direction])
            assert before > 1.0 and after < 0.5, (direction, before, after)

    def test_where_the_flow_matches_worse_the_fitted_warp_stays(self) -> None:
        # The truth itself: there is nothing to polish, so almost every pixel keeps it.
        source, target, truth = bent_pair()
        polished, share, _ = polished_flows(source, target, truth, PolishSettings(margin=0.05))
        assert share < 0.2
        assert _error(polished[0], truth[0]) < 0.2


class TestAnswerTaken:
    def test_a_near_fold_that_smoothing_irons_out_keeps_all_of_the_answer(self) -> None:
        fitted = np.zeros((48, 48, 2), np.float32)
        answer = fitted.copy()
        answer[24, 24] = (0.0, 1.2)  # one pixel pushed past its neighbour: the cells beside it fold
        assert folded_cells(answer).any()
        flow, weight = answer_taken(fitted, answer, np.ones((48, 48), np.float32), PolishSettings(), 2.0)
        np.testing.assert_array_equal(weight, 1.0)
        assert not folded_cells(flow, 0.05).any()
        changed = np.abs(flow - answer).max(axis=-1) > 0
        rows, columns = np.nonzero(changed)
        assert rows.min() > 12 and rows.max() < 36 and columns.min() > 12 and columns.max() < 36
        # Without the smoothing, the same fold costs the answer around it.
        _, unsmoothed = answer_taken(fitted, answer, np.ones((48, 48), np.float32),
                                     PolishSettings(smoothing_rounds=0), 2.0)
        assert unsmoothed[24, 24] < 0.5 and unsmoothed[0, 0] == 1.0

    def test_a_fold_too_wide_to_smooth_gives_the_answer_back_there_only(self) -> None:
        size = 64
        yy, xx = np.mgrid[:size, :size]
        answer = np.zeros((size, size, 2), np.float32)
        answer[..., 1] = 9.0 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 3.0 ** 2))  # a narrow strong push
        fitted = np.zeros_like(answer)
        settings = PolishSettings(smoothing_rounds=3)
        assert folded_cells(answer_taken(fitted, answer, np.ones((size, size), np.float32),
                                         PolishSettings(smoothing_rounds=3, fold_rounds=0), 2.0)[0]).any()
        flow, weight = answer_taken(fitted, answer, np.ones((size, size), np.float32), settings, 2.0)
        assert not folded_cells(flow).any()
        assert weight[32, 32] < 0.5
        assert weight[:8].min() == 1.0 and weight[-8:].min() == 1.0
        np.testing.assert_array_equal(flow[:8], answer[:8])


class TestPolishedMaps:
    def test_maps_come_back_at_the_polish_size_with_their_colour_maps_as_rendered(self) -> None:
        source, target, truth = bent_pair(size=96)
        maps = _maps_of(truth, 24, (96, 96))
        result = polished_maps(maps, source, target, PolishSettings(size=64))
        assert result.maps.grid_shape == working_shape(96, 96, 64) == (64, 64)
        for fitted, polished in ((maps.forward, result.maps.forward), (maps.backward, result.maps.backward)):
            np.testing.assert_allclose(polished[..., :WARP.start], upsample_grid(fitted, 64, 64)[..., :WARP.start],
                                       atol=1e-6)
        assert result.maps.scales == maps.scales and result.maps.image_shape == maps.image_shape

    def test_a_rough_fit_is_polished_at_the_frames_size_without_folds(self) -> None:
        source, target, truth = bent_pair()
        rng = np.random.default_rng(11)
        rough = truth + np.stack([_smooth_field(rng, 128, 12.0, 1.5) for _ in range(2)])
        maps = _maps_of(rough, 32, (128, 128))
        result = polished_maps(maps, source, target, PolishSettings())
        fitted = morph_flows(maps, maps.scales, 128, 128)
        polished = morph_flows(result.maps, maps.scales, 128, 128)
        for direction in range(2):
            assert _error(polished[direction], truth[direction]) < 0.5 * _error(fitted[direction], truth[direction])
            assert not folded_cells(polished[direction]).any()

    def test_pictures_that_are_not_one_scene_keep_the_fitted_maps(self) -> None:
        rng = np.random.default_rng(5)
        source, target = (np.clip(np.rint((random_texture(rng, 96, 96) + 1.0) * 127.5), 0, 255).astype(np.uint8)
                          for _ in range(2))  # two unrelated textures: the flow's directions disagree
        maps = _maps_of(np.zeros((2, 96, 96, 2), np.float32), 24, (96, 96))
        result = polished_maps(maps, source, target, PolishSettings())
        assert result.agreement < PolishSettings().least_agreement
        assert result.maps is maps

    def test_no_warp_leaves_the_maps_as_they_are(self) -> None:
        source, target, truth = bent_pair(size=64)
        maps = _maps_of(truth, 16, (64, 64), Scales(warp=0.05))
        still = MorphMaps(maps.forward, maps.backward, Scales(warp=0.0), maps.image_shape)
        result = polished_maps(still, source, target, PolishSettings())
        assert result.maps is still and result.describe() == "not polished (no warp)"

    def test_pictures_too_small_for_the_flow_keep_the_fitted_maps(self) -> None:
        source, target, truth = bent_pair(size=64)
        small_source, small_target = (np.ascontiguousarray(image[:10, :40]) for image in (source, target))
        maps = _maps_of(truth[:, :10, :40], 5, (10, 40))
        result = polished_maps(maps, small_source, small_target, PolishSettings())
        assert result.maps is maps and result.describe() == "not polished (pictures under 12 px)"


class TestPolishSettings:
    @pytest.mark.parametrize("field, value", [("size", 4), ("window", 0), ("margin", -0.1), ("tolerance", 0.0),
                                              ("least_agreement", 1.5), ("feather", -1.0), ("fold_rounds", -1),
                                              ("smoothing_rounds", -1)])
    def test_out_of_range_values_are_refused(self, field: str, value: float) -> None:
        with pytest.raises(ValueError, match=field):
            PolishSettings(**{field: value})


class TestFitterPolish:
    def test_the_fit_given_its_frames_is_polished_there_and_closer_to_the_truth(self) -> None:
        source, target, truth = bent_pair()
        settings = FitSettings(epochs=30, working_size=64, grid_size=32, seed=0, face_points=False)
        heard = []
        plain = fit_maps(to_float(source), to_float(target), Scales(), settings)
        polished = fit_maps(to_float(source), to_float(target), Scales(), settings, frames=(source, target),
                            on_polish=heard.append)
        assert plain.grid_shape == (32, 32) and polished.grid_shape == (128, 128)
        assert len(heard) == 1 and heard[0].share > 0.3
        errors = [_error(morph_flows(maps, maps.scales, 128, 128)[0], truth[0]) for maps in (plain, polished)]
        assert errors[1] < 0.6 * errors[0], errors

    def test_user_points_are_still_honoured_after_the_polish(self) -> None:
        source, target, _ = bent_pair()
        points = PointPairs(np.array([[30.0, 30.0], [90.0, 70.0]]), np.array([[36.0, 24.0], [84.0, 78.0]]),
                            (128, 128), (128, 128))
        settings = FitSettings(epochs=20, working_size=64, grid_size=32, seed=0, face_points=False)
        maps = fit_maps(to_float(source), to_float(target), Scales(), settings, points=points,
                        frames=(source, target))
        forward, backward = morph_flows(maps, maps.scales, 128, 128)
        landed = points.target - sample_bilinear(forward, points.target)
        came_back = points.source - sample_bilinear(backward, points.source)
        assert np.hypot(*(landed - points.source).T).max() < 0.1
        assert np.hypot(*(came_back - points.target).T).max() < 0.1

"""The fit's start: candidates (no motion, global search, point pairs, matched features) and the choice
among them, on synthetic pairs with a known answer."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from morphing.fit.affine import Affine, fit_affine, normalised_grid
from morphing.fit.paths import along_paths
from morphing.fit.regions import flat_regions
from morphing.io.images import reduce_for_fit, to_float, to_uint8
from morphing.model.maps import Scales
from morphing.model.points import PointPairs
from morphing.testing.scenes import Scene, Shape, fourier_shift, random_texture, sample_bilinear
from morphing.model.settings import FitSettings, StartSettings
from morphing.fit.starts import (
    FEATURES,
    NO_MOTION,
    Candidate,
    FeatureLayer,
    MatchedFeatures,
    choose_start,
    matched_features,
    feature_cover,
    features_candidate,
    key_points,
    layered_flows,
    refined_by_flow,
    FLOW,
    consistent_share,
    dis_flows,
    alignment,
    fused_flows,
    leg_start_candidates,
    spans_an_area,
    middle_cost,
    motion_size,
    probe_winner,
    regions_candidate,
    required_gain,
    start_candidates,
    start_cost,
)
from tests.helpers import grainy, moved_texture, similarity, slow_correlation, square_over_changing_gradients


def shown_at(image: np.ndarray, affine: Affine) -> np.ndarray:
    """``[h, w, 3]`` float image sampled at ``affine`` (the target that map describes)."""
    size = image.shape[0]
    sampled = affine.apply(normalised_grid(size, size)) * (size / 2) + size / 2 - 0.5
    return sample_bilinear(image, sampled).astype(np.float32)


def stripes_with_a_disc(disc_x: float, size: int = 96) -> np.ndarray:
    """Vertical stripes (period a fifth of the side: a shift by one period matches them all) and a
    disc at ``disc_x`` (pixels)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    stripes = 0.5 * np.sin(2 * np.pi * xs / (size / 5))
    disc = np.hypot(ys - size / 2, xs - disc_x) < size / 10
    grey = np.where(disc, 0.9, stripes)
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


class TestMotionSize:
    def test_no_motion_is_zero_and_a_shift_is_its_length(self) -> None:
        assert motion_size(Affine.identity()) == 0.0
        assert abs(motion_size(Affine(np.eye(2), np.array([0.3, 0.4]))) - 0.5) < 1e-9


class TestRequiredGain:
    """``required_gain``: how much a candidate must beat no motion by."""

    def test_no_motion_and_conclusive_starts_need_nothing_and_a_move_more_the_further_it_goes(self) -> None:
        settings = StartSettings(margin=0.02, motion_unit=0.2)
        shift = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.2])))
        assert required_gain(Candidate(NO_MOTION, Affine.identity()), settings) == 0.0
        assert required_gain(Candidate(FEATURES, shift.affine, conclusive=True), settings) == 0.0
        assert abs(required_gain(shift, settings) - 0.02 * (1 + 0.2 / 0.2)) < 1e-9
        assert abs(required_gain(Candidate(FEATURES, shift.affine), settings) - 0.02 * (1 + 0.2 / 0.2)) < 1e-9


class TestStartCost:
    def test_the_true_map_costs_less_than_no_motion_and_than_a_wrong_one(self) -> None:
        source, target, truth = moved_texture(angle=0.1, scale=1.2, shift=(0.15, -0.2))
        right = start_cost(source, target, truth)
        assert right < start_cost(source, target, Affine.identity()) - 0.2
        assert right < start_cost(source, target, Affine(truth.matrix, truth.offset + 0.3)) - 0.2

    def test_filling_from_outside_the_picture_costs(self) -> None:
        image = to_float(np.full((64, 64, 3), 128, np.uint8))  # flat: the NCC says nothing either way
        far = Affine(np.eye(2), np.array([0.0, 1.0]))  # half the picture from outside, both directions
        settings = StartSettings(outside_weight=0.5)
        difference = start_cost(image, image, far, settings) - start_cost(image, image, Affine.identity(), settings)
        assert abs(difference - 0.5 * 0.5) < 0.03


def disc_on_texture(centre_x: float, size: int = 96, colour: tuple[float, ...] = (0.8, -0.6, -0.5)) -> np.ndarray:
    """``[size, size, 3] float32``: a disc of radius 12 at (48, centre_x) over a faint fixed texture."""
    ys, xs = np.mgrid[0:size, 0:size]
    image = 0.15 * random_texture(np.random.default_rng(3), size, size)
    inside = (ys - size / 2) ** 2 + (xs - centre_x) ** 2 <= 12.0**2
    image[inside] = colour
    return image.astype(np.float32)


def blob_over_still_grain(centre_x: float, size: int = 192) -> np.ndarray:
    """``[size, size, 3] float32``: a soft blob (sigma 28 px) at (size/2, ``centre_x``) over a coarse
    random grain (3-px cells) that is the same in every picture."""
    ys, xs = np.mgrid[0:size, 0:size]
    grain = cv2.resize(random_texture(np.random.default_rng(5), size // 3, size // 3, falloff=0.0), (size, size),
                       interpolation=cv2.INTER_NEAREST)
    blob = np.exp(-((ys - size / 2) ** 2 + (xs - centre_x) ** 2) / (2 * 28.0**2))
    return np.clip(0.6 * blob[..., None] - 0.3 + 0.15 * grain, -1, 1).astype(np.float32)


class TestMiddleCost:
    """``middle_cost``: the two halves of the frame at alpha ½, compared by structure."""

    @staticmethod
    def uniform_flows(dx: float, size: int = 96) -> np.ndarray:
        flows = np.zeros((2, size, size, 2), np.float32)
        flows[0, ..., 1], flows[1, ..., 1] = dx, -dx  # S→T moves right by dx, T→S back
        return flows

    def test_the_flow_that_meets_the_disc_halfway_costs_less_than_none(self) -> None:
        source, target = disc_on_texture(30.0), disc_on_texture(60.0)  # moved further than its own radius
        right = np.zeros((2, 96, 96, 2), np.float32)
        ys, xs = np.mgrid[0:96, 0:96]
        near_middle = (ys - 48) ** 2 + (xs - 45) ** 2 <= 26.0**2  # where the halves show the disc at ½
        right[0][near_middle, 1], right[1][near_middle, 1] = 30.0, -30.0
        assert middle_cost(source, target, right) < middle_cost(source, target, np.zeros_like(right)) - 0.02

    def test_colour_does_not_count_only_structure(self) -> None:
        source = disc_on_texture(48.0)
        recoloured = disc_on_texture(48.0, colour=(-0.7, 0.6, 0.9))  # same place, other colour
        moved = disc_on_texture(70.0, colour=(-0.7, 0.6, 0.9))
        zero = np.zeros((2, 96, 96, 2), np.float32)
        assert middle_cost(source, recoloured, zero) < middle_cost(source, moved, zero) - 0.02

    def test_filling_the_frame_from_outside_costs_its_share(self) -> None:
        image = to_float(np.full((64, 64, 3), 128, np.uint8))  # flat: the NCC says nothing either way
        settings = StartSettings(side=64, outside_weight=0.5)
        # Half of 64 px moves each half frame by 16 px: a quarter of the columns from outside, on
        # opposite sides for the two halves, so half the frame has one half from outside.
        shifted = middle_cost(image, image, self.uniform_flows(32.0, 64), settings)
        assert abs(shifted - middle_cost(image, image, np.zeros((2, 64, 64, 2), np.float32), settings)
                   - 0.5 * 0.5) < 0.03

    def test_the_cost_is_the_mean_over_the_probe_sides(self) -> None:
        source, target = blob_over_still_grain(72.0), blob_over_still_grain(120.0)
        meeting = self.uniform_flows(48.0, 192)
        each = [middle_cost(source, target, meeting, StartSettings(probe_sides=(side,))) for side in (64, 32)]
        assert abs(each[0] - each[1]) > 0.05  # the sizes see the pair differently
        both = middle_cost(source, target, meeting, StartSettings(probe_sides=(64, 32)))
        assert abs(both - np.mean(each)) < 1e-6

    def test_coarser_copies_see_a_moved_shape_that_a_still_grain_hides(self) -> None:
        """A soft blob moved by a quarter of the side over a coarse grain that stayed: at 64 px alone the
        flow that leaves everything in place matches the grain and looks better than the one that meets
        the blob halfway; with the 32-px copies averaged in (the default) the blob's outline decides."""
        source, target = blob_over_still_grain(72.0), blob_over_still_grain(120.0)
        still, meeting = np.zeros((2, 192, 192, 2), np.float32), self.uniform_flows(48.0, 192)
        fine_only = StartSettings(probe_sides=(64,))
        assert middle_cost(source, target, still, fine_only) < middle_cost(source, target, meeting, fine_only) - 0.03
        assert middle_cost(source, target, meeting) < middle_cost(source, target, still) - 0.03

    def test_flows_on_a_coarser_grid_are_scaled_to_the_copies(self) -> None:
        source, target = disc_on_texture(30.0), disc_on_texture(60.0)
        fine = self.uniform_flows(30.0)
        coarse = self.uniform_flows(7.5, 24)  # the same motion in pixels of a 24-px grid
        assert abs(middle_cost(source, target, fine) - middle_cost(source, target, coarse)) < 1e-3


class TestFeatureAffine:
    def test_recovers_a_similarity_of_a_textured_picture(self) -> None:
        rng = np.random.default_rng(3)
        texture = ((random_texture(rng, 192, 192, falloff=1.1) + 1) / 2 * 2 - 1).astype(np.float32)
        truth = Affine(similarity(0.15, 1.15), np.array([0.1, -0.12]))
        found = matched_features(texture, shown_at(texture, truth)).layers
        assert found and len(found[0].target_points) >= StartSettings().min_inliers
        grid = normalised_grid(32, 32)[8:-8, 8:-8]
        assert np.abs(found[0].affine.apply(grid) - truth.apply(grid)).max() * 96 < 1.5  # pixels of the 192-px image

    def test_none_for_flat_pictures(self) -> None:
        flat = np.zeros((96, 96, 3), np.float32)
        found = matched_features(flat, flat)
        assert found.layers == [] and found.target_features.shape == (0, 2)


def faint_texture(rng: np.random.Generator, size: int = 192, contrast: float = 0.3) -> np.ndarray:
    """A texture at low contrast (at most ``contrast`` either side of grey, in the [-1, 1] range), as a
    soft or hazy picture has: ``[size, size, 3] float32``."""
    return (contrast * random_texture(rng, size, size, falloff=1.1)).astype(np.float32)


def grey_of(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2GRAY)


class TestKeyPoints:
    def test_a_faint_picture_is_looked_at_again_at_a_lower_threshold(self) -> None:
        grey = grey_of(faint_texture(np.random.default_rng(4)))
        settings = StartSettings()
        first_only = key_points(grey, StartSettings(feature_contrasts=settings.feature_contrasts[:1]))
        assert len(first_only[0]) < settings.feature_floor
        points, descriptors = key_points(grey, settings)
        assert len(points) >= settings.feature_floor and descriptors is not None
        lowest = cv2.SIFT_create(nfeatures=settings.features, contrastThreshold=settings.feature_contrasts[-1])
        assert len(points) == len(lowest.detect(grey, None))

    def test_a_picture_with_plenty_keeps_the_first_thresholds_points(self) -> None:
        grey = grey_of(random_texture(np.random.default_rng(4), 192, 192, falloff=1.1))
        settings = StartSettings()
        points, _ = key_points(grey, settings)
        first = cv2.SIFT_create(nfeatures=settings.features, contrastThreshold=settings.feature_contrasts[0])
        expected = first.detect(grey, None)
        assert len(expected) >= settings.feature_floor
        assert sorted(point.pt for point in points) == sorted(point.pt for point in expected)

    def test_a_faint_pictures_similarity_is_recovered(self) -> None:
        texture = faint_texture(np.random.default_rng(6))
        truth = Affine(similarity(0.1, 1.1), np.array([0.08, -0.1]))
        moved = shown_at(texture, truth)
        assert matched_features(texture, moved, StartSettings(feature_contrasts=(0.04,))).layers == []
        found = matched_features(texture, moved).layers
        assert found and len(found[0].target_points) >= StartSettings().min_inliers
        grid = normalised_grid(32, 32)[8:-8, 8:-8]
        assert np.abs(found[0].affine.apply(grid) - truth.apply(grid)).max() * 96 < 1.5

    def test_thresholds_must_be_given_and_inside_zero_to_one(self) -> None:
        for contrasts in ((), (0.0,), (0.04, 1.5)):
            with pytest.raises(ValueError, match="feature_contrasts"):
                StartSettings(feature_contrasts=contrasts)


class TestChooseStart:
    def test_point_pairs_decide_when_there_are_any(self) -> None:
        source, target, truth = moved_texture(angle=0.0, scale=1.0, shift=(0.2, 0.0))
        candidates = [Candidate("no motion", Affine.identity()), Candidate("point pairs", truth, "3 pairs")]
        choice = choose_start(source, target, candidates)
        assert choice.chosen.name == "point pairs" and "points decide" in choice.describe()

    def test_a_known_global_motion_is_taken(self) -> None:
        source, target, truth = moved_texture(angle=0.1, scale=1.25, shift=(-0.2, 0.25))
        choice = choose_start(source, target, start_candidates(source, target))
        assert choice.chosen.name in ("global search", "matched features"), choice.describe()
        error = np.abs(choice.chosen.grid_flows(96, 96) - np.stack([truth.flow(96, 96), truth.inverse().flow(96, 96)]))
        assert np.percentile(error[:, 24:-24, 24:-24], 90) < 0.05 * 48  # pixels: 0.05 of half the side

    def test_a_shift_that_only_the_background_supports_is_refused(self) -> None:
        # The disc moves a little; a shift by one stripe period matches the stripes exactly as well
        # as no motion does, and misplaces the disc: no motion must win.
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        period = Affine(np.eye(2), np.array([0.0, 0.4]))
        candidates = [Candidate("no motion", Affine.identity()), Candidate("global search", period)]
        choice = choose_start(source, target, candidates)
        assert choice.chosen.name == "no motion", choice.describe()

    def test_the_whole_choice_on_that_pair_moves_little(self) -> None:
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        choice = choose_start(source, target, start_candidates(source, target))
        assert choice.chosen.motion() < 0.05, choice.describe()

    def test_when_nothing_correlates_where_it_stands_a_dense_probe_is_asked_for(self) -> None:
        rng = np.random.default_rng(11)
        source, target = (rng.uniform(-1, 1, (96, 96, 3)).astype(np.float32) for _ in range(2))  # unrelated noise
        shifted = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.3])))
        settings = StartSettings(no_evidence=0.93)
        choice = choose_start(source, target, [Candidate("no motion", Affine.identity()), shifted], settings)
        assert dict(choice.costs)["no motion"] >= settings.no_evidence
        never = StartSettings(no_evidence=float("inf"))  # the probe turned off
        assert choose_start(source, target, [Candidate("no motion", Affine.identity()), shifted], never).probe == ()
        assert [c.name for c in choice.probe] == ["no motion", "global search"]
        decided = choice.probed(shifted, [("no motion", 2.0), ("global search", 1.5)])
        assert decided.chosen is shifted and not decided.probe and "probe losses" in decided.describe()

    def test_no_probe_where_no_motion_explains_the_pictures(self) -> None:
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        period = Affine(np.eye(2), np.array([0.0, 0.4]))
        choice = choose_start(source, target, [Candidate("no motion", Affine.identity()),
                                               Candidate("global search", period)], StartSettings(no_evidence=0.93))
        assert choice.probe == ()

    def test_by_default_every_undecided_pair_is_probed(self) -> None:
        # No motion explains the pictures (its cost is low) and the shift does not beat it by its margin:
        # the default still lets the dense probe look at both, no motion staying the start until then.
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        period = Affine(np.eye(2), np.array([0.0, 0.4]))
        choice = choose_start(source, target, [Candidate("no motion", Affine.identity()),
                                               Candidate("global search", period)])
        assert dict(choice.costs)["no motion"] < 0.93
        assert choice.chosen.name == "no motion"
        assert [c.name for c in choice.probe] == ["no motion", "global search"]

    def test_a_start_that_moves_less_than_a_pixel_is_not_probed(self) -> None:
        # On 96-px pictures one pixel is 2/96 half-sides: a search map short of it is no motion again, and
        # the choice says so at once (no dense steps spent on telling two equal starts apart).
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        for shift, probed in ((0.5 / 48, False), (0.9 / 48, False), (1.5 / 48, True)):
            nudge = Candidate("global search", Affine(np.eye(2), np.array([0.0, shift])))
            choice = choose_start(source, target, [Candidate("no motion", Affine.identity()), nudge])
            assert choice.chosen.name == "no motion"
            assert [c.name for c in choice.probe] == (["no motion", "global search"] if probed else []), shift
            assert choice.kept_still  # no motion stays the start either way (until a probe says otherwise)

    def test_the_probe_keeps_no_motion_on_a_tie(self) -> None:
        assert probe_winner([0.5, 0.4], tie=1e-3) == 1
        assert probe_winner([0.5, 0.4995], tie=1e-3) == 0  # within the tie: nothing moves
        assert probe_winner([0.5, 0.45, 0.3], tie=1e-3) == 2
        assert probe_winner([0.5, 0.3, 0.2995], tie=1e-3) == 1  # the third must beat the second by the tie too
        assert probe_winner([0.5], tie=1e-3) == 0

    def test_kept_still_only_when_candidates_were_tried_and_none_moved_the_start(self) -> None:
        source, target = stripes_with_a_disc(40.0), stripes_with_a_disc(46.0)
        still = Candidate("no motion", Affine.identity())
        period = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.4])))
        assert choose_start(source, target, [still, period]).kept_still  # tried, refused
        assert not choose_start(source, target, [still]).kept_still  # nothing else was tried (alignment off)
        textured, moved, truth = moved_texture(angle=0.0, scale=1.0, shift=(0.0, 0.2))
        found = choose_start(textured, moved, [still, Candidate("global search", truth)])
        assert found.chosen.name == "global search" and not found.kept_still
        pointed = choose_start(textured, moved, [still, Candidate("point pairs", truth, "3 pairs")])
        assert not pointed.kept_still

    def test_a_conclusive_candidate_outranks_a_larger_gain_by_cost(self) -> None:
        # The global search's map lines the pictures up better than the conclusive one does, and both pass:
        # evidence is chosen from first, and the reason says what it was preferred to.
        textured, moved, truth = moved_texture(angle=0.0, scale=1.0, shift=(0.0, 0.2))
        half = Affine(np.eye(2), truth.offset / 2)
        candidates = [Candidate(NO_MOTION, Affine.identity()), Candidate("global search", truth),
                      Candidate("matched regions", half, "1 shape", conclusive=True)]
        choice = choose_start(textured, moved, candidates)
        costs = dict(choice.costs)
        surplus = {c.name: costs[NO_MOTION] - costs[c.name] - required_gain(c) for c in candidates[1:]}
        assert surplus["global search"] > surplus["matched regions"] > 0  # both pass; cost alone picks the search
        assert choice.chosen.name == "matched regions", choice.describe()
        assert "preferred to the lower cost of the global search" in choice.describe()
        unproven = [candidates[0], candidates[1], Candidate("matched regions", half, "1 shape")]
        assert choose_start(textured, moved, unproven).chosen.name == "global search"  # without evidence, cost

    def test_a_square_over_changing_gradients_is_not_turned_with_them(self) -> None:
        # One square moves, turns and recolours over a vertical gradient whose colours change (a scene of
        # benchmarks/quality.py's fresh draw 16026): the global search lines the two gradients up under a
        # large turn and beats no motion by more than the square's paired outline does. The outline is the
        # evidence; started from the search, the middle frame was a fan of smeared colour.
        source, target = reduce_for_fit(*square_over_changing_gradients(), 192)
        candidates = start_candidates(source, target)
        choice = choose_start(source, target, candidates)
        assert choice.chosen.name == "matched regions", choice.describe()
        # What the search proposed before it refused maps that collapse the picture (affine.fit_affine):
        collapse = Candidate("global search", Affine(
            np.array([[0.22415317442781738, -0.0026661081611446327], [-0.047374545206138964, -0.0010730394047678692]]),
            np.array([-0.12053377224260725, -0.007154368860854294])))
        regions = next(c for c in candidates if c.name == "matched regions")
        choice = choose_start(source, target, [candidates[0], collapse, regions])
        costs = dict(choice.costs)
        surplus = {c.name: costs[NO_MOTION] - costs[c.name] - required_gain(c) for c in (collapse, regions)}
        assert surplus["global search"] > surplus["matched regions"] > 0  # cost alone took the collapse
        assert choice.chosen.name == "matched regions", choice.describe()

    def test_the_reason_names_the_costs(self) -> None:
        source, target, _ = moved_texture(angle=0.0, scale=1.0, shift=(0.0, 0.0))
        choice = choose_start(source, target, [Candidate("no motion", Affine.identity())])
        assert choice.chosen.name == "no motion" and "costs no motion" in choice.describe()

    def test_chosen_matched_features_are_held_along_their_paths(self) -> None:
        # A textured square moves 24 px over a faint still texture: matched features win, and their flows
        # then hold its motion along the path it travels (morphing.fit.paths), not before the costs.
        rng = np.random.default_rng(3)
        source = random_texture(rng, 192, 192, falloff=1.6) * 0.5
        target = source.copy()
        thing = random_texture(rng, 56, 56, falloff=0.9)
        source[60:116, 40:96], target[60:116, 64:120] = thing, thing
        plain_settings = StartSettings(feature_paths=False)
        candidates = start_candidates(source, target, settings=plain_settings)
        plain = choose_start(source, target, candidates, plain_settings)
        held = choose_start(source, target, candidates)
        assert plain.chosen.name == held.chosen.name == FEATURES
        assert "held along their paths" in held.describe() and "held" not in plain.describe()
        np.testing.assert_array_equal(held.chosen.flows, along_paths(plain.chosen.flows))
        assert dict(held.costs) == dict(plain.costs)  # the costs saw the flows as found


class TestCandidates:
    def test_points_replace_the_search(self) -> None:
        source, target, _ = moved_texture(angle=0.15, scale=1.25, shift=(-0.2, 0.25))
        points = PointPairs(np.array([[10.0, 10.0], [50.0, 20.0], [30.0, 60.0]]),
                            np.array([[12.0, 9.0], [51.0, 24.0], [33.0, 58.0]]), (96, 96), (96, 96))
        names = [c.name for c in start_candidates(source, target, points=points)]
        assert names == ["no motion", "point pairs"]
        found = start_candidates(source, target, points=points)[1].affine
        expected = fit_affine(source, target, source_points=points.source, target_points=points.target)
        np.testing.assert_array_equal(found.matrix, expected.matrix)

    def test_leg_candidates_are_each_legs_candidates_on_its_working_images(self) -> None:
        keys = [to_uint8(image) for image in moved_texture(angle=0.15, scale=1.25, shift=(-0.2, 0.25))[:2]]
        keys.append(keys[0])
        settings = FitSettings(working_size=64)
        points = [None, PointPairs(np.array([[10.0, 10.0], [50.0, 20.0], [30.0, 60.0]]),
                                   np.array([[12.0, 9.0], [51.0, 24.0], [33.0, 58.0]]), (96, 96), (96, 96))]
        found = leg_start_candidates(keys, settings, Scales(), points)
        assert len(found) == 2
        for leg, candidates in enumerate(found):
            source, target = reduce_for_fit(keys[leg], keys[leg + 1], 64)
            leg_points = None if points[leg] is None else points[leg].resized(64, 64)
            expected = start_candidates(source, target, points=leg_points)
            assert [c.name for c in candidates] == [c.name for c in expected]
            for got, want in zip(candidates, expected):
                np.testing.assert_array_equal(got.affine.matrix, want.affine.matrix)

    def test_only_no_motion_when_nothing_warps_or_alignment_is_off(self) -> None:
        keys = [to_uint8(image) for image in moved_texture(angle=0.15, scale=1.25, shift=(-0.2, 0.25))[:2]]
        for settings, scales in ((FitSettings(), Scales(warp=0.0)), (FitSettings(global_alignment=False), Scales())):
            (candidates,) = leg_start_candidates(keys, settings, scales)
            assert [c.name for c in candidates] == ["no motion"]


def far_moved_shapes(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A dark pentagon and a light disc over a gradient, each moving further than its own size while its
    hue changes: nothing correlates where they stand. ``[size, size, 3] float32``."""
    start = (Shape(5, (0.3, 0.28), 0.1, 0.0, (0.1, 0.1, 0.6)), Shape(0, (0.72, 0.7), 0.09, 0.0, (0.95, 0.9, 0.6)))
    end = (Shape(5, (0.34, 0.68), 0.11, 0.2, (0.5, 0.1, 0.1)), Shape(0, (0.7, 0.3), 0.08, 0.0, (0.7, 0.95, 0.95)))
    background = ((0.8, 0.5, 0.4), (0.6, 0.5, 0.7))
    scene = Scene(size, size, start, end, background, background)
    return to_float(scene.render(0.0)), to_float(scene.render(1.0))


class TestRegionsCandidate:
    def test_shapes_that_moved_beyond_their_size_are_carried_onto_each_other(self) -> None:
        source, target = far_moved_shapes()
        candidate = regions_candidate(source, target)
        assert candidate is not None and candidate.name == "matched regions" and "2 shapes" in candidate.evidence
        assert start_cost(source, target, candidate) < start_cost(source, target, Affine.identity()) - 0.05
        choice = choose_start(source, target, start_candidates(source, target))
        assert choice.chosen.name == "matched regions", choice.describe()

    def test_the_shapes_are_paired_through_a_cameras_grain(self) -> None:
        # Grain of 10 levels, a different draw in each picture: flat colour is no longer flat pixel by pixel.
        source, target = (grainy(image, 10.0, seed) for seed, image in enumerate(far_moved_shapes(128)))
        candidate = regions_candidate(source, target)
        assert candidate is not None and "2 shapes" in candidate.evidence and candidate.conclusive
        centre = np.array([0.34, 0.68]) * 128 - 0.5  # where the pentagon ends: it began at (0.3, 0.28)
        np.testing.assert_allclose(candidate.flows[0][round(centre[0]), round(centre[1])],
                                   centre - (np.array([0.3, 0.28]) * 128 - 0.5), atol=2.0)
        choice = choose_start(source, target, start_candidates(source, target))
        assert choice.chosen.name == "matched regions", choice.describe()
        # Unsmoothed, the grain leaves scraps of flat colour: no pair of whole outlines settles it.
        unsmoothed = regions_candidate(source, target, StartSettings(region_quiet=0.0))
        assert unsmoothed is None or not unsmoothed.conclusive

    def test_paired_outlines_are_evidence_enough_like_matched_features(self) -> None:
        candidate = regions_candidate(*far_moved_shapes())
        assert candidate is not None and candidate.motion() > 0.1 and candidate.conclusive
        assert required_gain(candidate) == 0.0

    def test_shapes_that_touch_are_paired_but_need_the_margin(self) -> None:
        # The disc lies over the square's corner at the start, hiding it; both move apart, colours change.
        start = (Shape(4, (0.35, 0.3), 0.14, math.pi / 4, (0.1, 0.6, 0.3)),
                 Shape(0, (0.47, 0.42), 0.09, 0.0, (0.9, 0.2, 0.2)))
        end = (Shape(4, (0.3, 0.68), 0.14, math.pi / 4, (0.9, 0.8, 0.2)),
               Shape(0, (0.72, 0.35), 0.09, 0.0, (0.2, 0.3, 0.9)))
        background = ((0.8, 0.5, 0.4), (0.6, 0.5, 0.7))
        scene = Scene(128, 128, start, end, background, background)
        source, target = to_float(scene.render(0.0)), to_float(scene.render(1.0))
        candidate = regions_candidate(source, target)
        assert candidate is not None and "2 shapes" in candidate.evidence and "touching" in candidate.evidence
        assert not candidate.conclusive and required_gain(candidate) > StartSettings().margin
        for before, after in zip(start, end):
            # Where each shape ends, the target shows the source where it began (the square not turned
            # by a quarter or a half though its hidden corner breaks its symmetry).
            centre = np.asarray(after.centre) * 128 - 0.5
            shift = centre - (np.asarray(before.centre) * 128 - 0.5)
            np.testing.assert_allclose(candidate.flows[0][round(centre[0]), round(centre[1])], shift, atol=1.5)
        assert start_cost(source, target, candidate) < start_cost(source, target, Affine.identity())
        assert regions_candidate(source, target, StartSettings(region_touching=False)) is None

    def test_shapes_that_stand_still_are_no_candidate(self) -> None:
        source, _ = far_moved_shapes()
        assert len(flat_regions(source)) == 2
        assert regions_candidate(source, source.copy()) is None

    def test_not_a_candidate_where_no_shape_is_flat_or_when_turned_off(self) -> None:
        source, target, _ = moved_texture(angle=0.1, scale=1.1, shift=(0.1, 0.0))
        assert regions_candidate(source, target) is None
        assert "matched regions" not in [c.name for c in start_candidates(source, target)]
        shapes = far_moved_shapes()
        assert "matched regions" not in [c.name for c in start_candidates(*shapes, settings=StartSettings(regions=False))]
        assert "matched regions" in [c.name for c in start_candidates(*shapes)]


def patch_moved_over_texture(shift_x: float, size: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """A still textured background with a disc of another texture (radius a fifth of the side) that moves
    ``shift_x`` pixels to the right: ``[size, size, 3] float32`` (source, target)."""
    rng = np.random.default_rng(5)
    background = random_texture(rng, size, size, falloff=1.1)
    patch = random_texture(rng, size, size, falloff=1.1)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    images = []
    for centre_x in (size * 0.3, size * 0.3 + shift_x):
        inside = np.hypot(ys - size / 2, xs - centre_x) < size / 5
        # The patch's texture moves with it: it is read at the position relative to its centre.
        moved_patch = np.roll(patch, round(centre_x - size * 0.3), axis=1)
        images.append(np.where(inside[..., None], moved_patch, background).astype(np.float32))
    return images[0], images[1]


def assert_patch_moved_and_background_still(flows: np.ndarray) -> None:
    """``patch_moved_over_texture(60.0)``'s start flows: the patch carried 60 px, the corners still."""
    forward, backward = flows
    # dense_image_warp's sign: the target's pixel p shows the source at p - flow.
    np.testing.assert_allclose(forward[96, round(0.3 * 192 + 60)], [0.0, 60.0], atol=2.0)
    np.testing.assert_allclose(backward[96, round(0.3 * 192)], [0.0, -60.0], atol=2.0)
    for flow in (forward, backward):
        np.testing.assert_allclose(flow[10, 180], [0.0, 0.0], atol=1.0)
        np.testing.assert_allclose(flow[180, 10], [0.0, 0.0], atol=1.0)


class TestMatchedFeatures:
    def test_a_patch_moved_over_a_still_background_is_a_second_layer(self) -> None:
        source, target = patch_moved_over_texture(60.0)
        layers, target_features, source_features = matched_features(source, target)
        assert len(layers) == 2
        grid = normalised_grid(16, 16)
        half = source.shape[0] / 2
        # The background (more matches) first, standing still; then the patch: the target shows the source
        # 60 px to the left of where it stands.
        assert np.abs(layers[0].affine.apply(grid) - grid).max() * half < 1.0
        assert np.abs(layers[1].affine.apply(grid) - grid - np.array([0.0, -60.0 / half])).max() * half < 2.0
        assert np.all(np.abs(layers[1].target_points[:, 1] - (0.3 * 192 + 60)) < 192 / 5 + 4)
        # Every inlier is one of its picture's key points, which lie on the picture.
        for features, inliers in ((target_features, [layer.target_points for layer in layers]),
                                  (source_features, [layer.source_points for layer in layers])):
            assert len(features) >= sum(len(points) for points in inliers)
            assert features.min() >= 0.0 and features.max() <= 192.0
            for points in inliers:
                assert np.abs(points[:, None] - features[None]).sum(axis=-1).min(axis=1).max() < 1e-3

    def test_one_motion_is_one_layer(self) -> None:
        source, target, truth = moved_texture(angle=0.1, scale=1.1, shift=(0.1, -0.1), size=192)
        assert len(matched_features(source, target).layers) == 1
        plain = features_candidate(source, target, StartSettings(feature_flow=False))
        assert plain is not None and plain.flows is None
        grid = normalised_grid(32, 32)[8:-8, 8:-8]
        assert np.abs(plain.affine.apply(grid) - truth.apply(grid)).max() * 96 < 1.5
        refined = features_candidate(source, target)
        assert refined is not None and "refined by optical flow" in refined.evidence
        assert "fused" not in refined.evidence  # one layer has no neighbour to spill onto
        inner = (slice(40, -40), slice(40, -40))
        np.testing.assert_allclose(refined.flows[0][inner], truth.flow(192, 192)[inner], atol=1.5)

    def test_layers_are_capped_by_the_settings(self) -> None:
        source, target = patch_moved_over_texture(60.0)
        settings = StartSettings(feature_layers=1, feature_flow=False)
        assert len(matched_features(source, target, settings).layers) == 1
        candidate = features_candidate(source, target, settings)
        assert candidate is not None and candidate.flows is None

    def test_the_layered_candidate_moves_the_patch_and_keeps_the_background(self) -> None:
        source, target = patch_moved_over_texture(60.0)
        candidate = features_candidate(source, target, StartSettings(feature_flow=False))
        assert candidate is not None and candidate.flows is not None and "2 layers" in candidate.evidence
        assert_patch_moved_and_background_still(candidate.flows)

    def test_a_refined_start_of_layers_is_fused_and_moves_each_part_by_its_own_motion(self) -> None:
        source, target = patch_moved_over_texture(60.0)
        candidate = features_candidate(source, target)
        assert candidate is not None and candidate.pixelwise
        assert "2 layers" in candidate.evidence and "fused with the flow from scratch" in candidate.evidence
        assert_patch_moved_and_background_still(candidate.flows)
        unfused = features_candidate(source, target, StartSettings(flow_fusion=0))
        assert unfused is not None and "fused" not in unfused.evidence

    def test_the_start_from_layers_beats_no_motion(self) -> None:
        source, target = patch_moved_over_texture(60.0)
        choice = choose_start(source, target, start_candidates(source, target))
        assert choice.chosen.name == "matched features" and choice.chosen.flows is not None


class TestLayeredFlows:
    def test_matches_gaussian_weights_written_out(self) -> None:
        height, width, reach = 40, 50, 0.4  # every pixel within OpenCV's kernel (4 sigmas) of every point
        rng = np.random.default_rng(0)
        layers = [
            FeatureLayer(Affine(similarity(0.05, 1.02), np.array([0.01, -0.02])),
                         rng.uniform(0, 20, (6, 2)), rng.uniform(0, 20, (6, 2))),
            FeatureLayer(Affine(np.eye(2), np.array([0.2, 0.1])),
                         rng.uniform(20, 40, (4, 2)), rng.uniform(20, 40, (4, 2))),
        ]
        flows = layered_flows(layers, height, width, reach)
        sigma = reach * width
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        for direction in range(2):
            total, weight = 0.0, 0.0
            for layer in layers:
                points = np.round(layer.target_points if direction == 0 else layer.source_points)
                affine = layer.affine if direction == 0 else layer.affine.inverse()
                votes = sum(np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2 * sigma**2)) for y, x in points)
                total, weight = total + votes[..., None] * affine.flow(height, width), weight + votes
            # OpenCV's kernel is sampled: within 0.04 px (the layers' flows differ by 2.5 px and more).
            np.testing.assert_allclose(flows[direction], total / weight[..., None], atol=0.04)


class TestRefinedByFlow:
    @staticmethod
    def shifted_texture(dx: float, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """A periodic texture and the same moved ``dx`` px to the right, exactly (Fourier shift)."""
        texture = random_texture(np.random.default_rng(8), size, size, falloff=1.2)
        return texture, fourier_shift(texture, 0.0, dx).astype(np.float32)

    def test_chains_the_start_and_the_flow_left_after_it(self) -> None:
        source, target = self.shifted_texture(14.0)
        start = np.zeros((2, 128, 128, 2), np.float32)
        start[0, ..., 1], start[1, ..., 1] = 9.0, -9.0  # most of the motion; 5 px are left to the flow
        refined = refined_by_flow(source, target, start)
        inner = (slice(24, -24), slice(24, -24))
        # The target's pixel p shows the source 14 px to its left: flow +14; the other way -14.
        assert np.abs(np.median(refined[0][inner][..., 1]) - 14.0) < 0.3
        assert np.abs(np.median(refined[1][inner][..., 1]) + 14.0) < 0.3
        assert np.abs(np.median(refined[..., 0])) < 0.3

    def test_a_right_start_stays(self) -> None:
        source, target = self.shifted_texture(10.0)
        start = np.zeros((2, 128, 128, 2), np.float32)
        start[0, ..., 1], start[1, ..., 1] = 10.0, -10.0
        refined = refined_by_flow(source, target, start)
        assert np.abs(refined[:, 24:-24, 24:-24] - start[:, 24:-24, 24:-24]).mean() < 0.3


    def test_fused_with_the_flow_from_scratch_where_a_layer_spilled(self) -> None:
        # The whole texture moved 10 px right; the start says so on the left half but carries the right half
        # 30 px the wrong way (as a neighbour's layer would), further than the flow left after it can undo.
        # The flow from scratch matches better there.
        source, target = self.shifted_texture(10.0)
        start = np.zeros((2, 128, 128, 2), np.float32)
        start[0, ..., 1], start[1, ..., 1] = 10.0, -10.0
        start[0, :, 64:, 1], start[1, :, 64:, 1] = -20.0, 20.0
        fused = refined_by_flow(source, target, start, fusion_window=5)
        unfused = refined_by_flow(source, target, start)
        for columns in (slice(20, 50), slice(80, 108)):
            assert np.abs(np.median(fused[0][20:-20, columns, 1]) - 10.0) < 0.3
            assert np.abs(np.median(fused[1][20:-20, columns, 1]) + 10.0) < 0.3
        # Unfused, the spill stays: the search from the start finds the motion there, but parts from the
        # chained flow by far more than a pixel, as a match one period off a repeating pattern would.
        assert np.abs(np.median(unfused[0][20:-20, 80:108, 1]) - 10.0) > 10.0
        right = np.zeros((2, 128, 128, 2), np.float32)
        right[0, ..., 1], right[1, ..., 1] = 10.0, -10.0
        kept = refined_by_flow(source, target, right, fusion_window=5)  # a right start stays right
        assert np.abs(kept[:, 24:-24, 24:-24] - right[:, 24:-24, 24:-24]).mean() < 0.3
        # The flow from scratch found ahead is the one it would find.
        ahead = refined_by_flow(source, target, start, fusion_window=5, scratch=dis_flows(source, target))
        np.testing.assert_array_equal(ahead, fused)

    def test_keeps_the_refinement_that_lines_the_pictures_up_better(self) -> None:
        # Whatever the two refinements find, the one returned scores at least as well as the start and as
        # a flow a pixel off it.
        source, target = self.shifted_texture(6.0)
        start = np.zeros((2, 128, 128, 2), np.float32)
        start[0, ..., 1], start[1, ..., 1] = 4.0, -4.0
        refined = refined_by_flow(source, target, start)
        off = refined.copy()
        off[0, ..., 1] += 1.0
        off[1, ..., 1] -= 1.0
        assert alignment(source, target, refined, 5) > alignment(source, target, off, 5)
        assert alignment(source, target, refined, 5) > alignment(source, target, start, 5)


class TestAlignment:
    def test_matches_a_plain_numpy_reference(self) -> None:
        rng = np.random.default_rng(4)
        source = rng.uniform(-1, 1, (20, 24, 3)).astype(np.float32)
        target = rng.uniform(-1, 1, (20, 24, 3)).astype(np.float32)
        flows = np.zeros((2, 20, 24, 2), np.float32)
        flows[0, ..., 1], flows[1, ..., 1] = 1.0, -1.0  # whole pixels: the moved pictures are shifted copies
        luminance = lambda image: image @ np.array([0.299, 0.587, 0.114], np.float32)
        # dense_image_warp's sign, the border repeated: pixel p shows p - flow(p).
        moved_source = luminance(source)[:, np.r_[0, 0:23]]
        moved_target = luminance(target)[:, np.r_[1:24, 23]]
        expected = 0.5 * (slow_correlation(moved_source, luminance(target), 5).mean()
                          + slow_correlation(moved_target, luminance(source), 5).mean())
        assert alignment(source, target, flows, 5) == pytest.approx(expected, abs=1e-4)

    def test_the_true_motion_scores_highest_also_recoloured(self) -> None:
        texture = random_texture(np.random.default_rng(8), 96, 96, falloff=1.2).astype(np.float32)
        moved = fourier_shift(texture, 0.0, 5.0).astype(np.float32)
        flows = lambda dx: np.stack([np.full((96, 96, 2), (0.0, dx), np.float32),
                                     np.full((96, 96, 2), (0.0, -dx), np.float32)])
        for target in (moved, 0.5 * moved + 0.2):  # the second recoloured: gain and offset
            scores = {dx: alignment(texture, target, flows(dx), 5) for dx in (3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0)}
            assert max(scores, key=scores.get) == 5.0
            assert scores[5.0] > 1.3 * max(scores[4.5], scores[5.5])


class TestConsistentShare:
    def test_counts_the_pixels_where_the_two_flows_undo_each_other(self) -> None:
        flows = np.zeros((2, 48, 64, 2), np.float32)
        flows[0, ..., 1], flows[1, ..., 1] = 4.0, -4.0
        assert consistent_share(flows, 1.0) == 1.0
        flows[1, :, 32:, 1] = -6.0  # the way back is 2 px off on the right half
        # Forward, column x reads the way back at x - 4: off from x = 36 on; the way back is off from 32 on.
        assert consistent_share(flows, 1.0) == (36 + 32) / 128
        # The tolerance is in pixels of a 192-px picture: 5 of them are 1.67 px of this one, 6.5 are 2.17.
        assert consistent_share(flows, 5.0) == (36 + 32) / 128 and consistent_share(flows, 6.5) == 1.0

    def test_the_optical_flow_of_one_scene_is_consistent_and_between_unrelated_pictures_is_not(self) -> None:
        texture = random_texture(np.random.default_rng(4), 96, 96, falloff=1.2)
        moved = fourier_shift(texture, 2.0, 5.0).astype(np.float32)
        unrelated = random_texture(np.random.default_rng(5), 96, 96, falloff=1.2)
        assert consistent_share(dis_flows(texture, moved), 1.0) > 0.8
        assert consistent_share(dis_flows(texture, unrelated), 1.0) < 0.3

    def test_the_optical_flow_is_a_candidate_only_where_it_is_consistent(self) -> None:
        texture = random_texture(np.random.default_rng(4), 96, 96, falloff=1.2)
        moved = fourier_shift(texture, 2.0, 5.0).astype(np.float32)
        unrelated = random_texture(np.random.default_rng(5), 96, 96, falloff=1.2)
        (flow,) = [c for c in start_candidates(texture, moved) if c.name == FLOW]
        assert "consistent on" in flow.evidence and flow.flows is not None
        assert FLOW not in [c.name for c in start_candidates(texture, moved, settings=StartSettings(probe_flow_share=1.5))]
        assert FLOW not in [c.name for c in start_candidates(texture, unrelated)]
        tiny = texture[:8, :8]  # OpenCV's DIS refuses pictures under 12 px: no flow, and no error
        assert FLOW not in [c.name for c in start_candidates(tiny, np.roll(tiny, 1, axis=1))]


class TestFusedFlows:
    def test_equals_a_plain_per_pixel_choice(self) -> None:
        rng = np.random.default_rng(4)
        moving = random_texture(rng, 24, 30, falloff=1.0).astype(np.float32)
        fixed = random_texture(rng, 24, 30, falloff=1.0).astype(np.float32)
        proposals = [rng.normal(scale=2.0, size=(24, 30, 2)).astype(np.float32) for _ in range(3)]
        grid = np.stack(np.mgrid[0:24, 0:30], axis=-1).astype(np.float64)
        rec601 = np.array([0.299, 0.587, 0.114])
        for margin in (0.0, 0.1):
            scores = np.stack([slow_correlation(sample_bilinear(moving, grid - flow) @ rec601, fixed @ rec601, 5)
                               for flow in proposals])
            scores[0] += margin
            best = np.argmax(scores, axis=0)
            expected = np.stack(proposals)[best, np.arange(24)[:, None], np.arange(30)[None, :]]
            np.testing.assert_allclose(fused_flows(moving, fixed, proposals, 5, margin), expected, atol=1e-6)

    def test_each_part_takes_the_motion_it_made_whatever_its_colour(self) -> None:
        texture = random_texture(np.random.default_rng(6), 64, 96, falloff=1.2).astype(np.float32)
        moved = fourier_shift(texture, 0.0, 6.0).astype(np.float32)
        fixed = np.concatenate([texture[:, :48], moved[:, 48:]], axis=1)  # the right half moved 6 px right
        fixed = 0.5 * fixed - 0.3  # and the whole picture recoloured
        still, shifted = np.zeros((64, 96, 2), np.float32), np.zeros((64, 96, 2), np.float32)
        shifted[..., 1] = 6.0
        fused = fused_flows(texture, fixed, (still, shifted), 5)
        assert np.all(fused[8:-8, 8:40, 1] == 0.0) and np.all(fused[8:-8, 60:88, 1] == 6.0)
        assert np.all(fused_flows(texture, fixed, (shifted, shifted.copy()), 5) == shifted)  # a tie: the first
        # The margin keeps the first proposal wherever the other is not clearly better.
        assert np.all(fused_flows(texture, fixed, (still, shifted), 5, margin=1.0) == still)


class TestSpansAnArea:
    def test_a_triangle_does_and_one_spot_or_one_line_does_not(self) -> None:
        assert spans_an_area(np.array([[0.0, 0.0], [0.0, 4.0], [3.0, 0.0]]))  # 6 square pixels
        assert not spans_an_area(np.array([[5.0, 5.0]] * 13))  # thirteen key points on one blob
        assert not spans_an_area(np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [5.0, 5.0]]))
        assert not spans_an_area(np.array([[0.0, 0.0], [0.0, 4.0], [3.0, 0.0]]), least=10.0)


class TestFeatureCover:
    def test_is_the_inliers_hull_over_the_features_hull_on_the_poorer_side(self) -> None:
        corners = np.array([[10.0, 10.0], [10.0, 30.0], [30.0, 30.0], [30.0, 10.0], [20.0, 20.0]])
        layers = [FeatureLayer(Affine.identity(), corners[:3], corners[:3]),
                  FeatureLayer(Affine.identity(), corners[3:], corners[3:])]
        square = np.array([[0.0, 0.0], [0.0, 40.0], [40.0, 40.0], [40.0, 0.0]])
        features = np.concatenate([corners, square])
        # 20 x 20 of the features' 40 x 40 in the target; all of the source's.
        assert abs(feature_cover(MatchedFeatures(layers, features, corners)) - 400.0 / 1600.0) < 1e-6
        assert abs(feature_cover(MatchedFeatures(layers, corners, features)) - 400.0 / 1600.0) < 1e-6
        assert feature_cover(MatchedFeatures(layers, corners, corners)) == 1.0
        assert feature_cover(MatchedFeatures(layers[1:], features, features)) == 0.0  # two points span nothing
        assert feature_cover(MatchedFeatures([], features, features)) == 0.0
        assert feature_cover(MatchedFeatures(layers, features[:2], features)) == 0.0  # no textured area at all

    def test_a_textured_thing_on_a_plain_picture_is_refined(self) -> None:
        # All the texture there is lies on one small square (a sixth of the picture), which moves 6 px:
        # its matches span all there is to match, so the flow refines the start.
        rng = np.random.default_rng(4)
        source = np.zeros((192, 192, 3), np.float32)
        target = source.copy()
        thing = random_texture(rng, 78, 78, falloff=1.1)
        source[57:135, 57:135], target[57:135, 63:141] = thing, thing
        candidate = features_candidate(source, target)
        assert candidate is not None and "refined by optical flow" in candidate.evidence
        np.testing.assert_allclose(candidate.flows[0][96, 100], [0.0, 6.0], atol=1.0)

    def test_a_stamp_on_a_plain_picture_and_a_textured_one_is_not_refined(self) -> None:
        # The target is plain but for the stamp, so the stamp's matches span all it offers; the source is
        # textured all over and they span a tenth of it: the gate looks at both pictures.
        rng = np.random.default_rng(12)
        source = random_texture(rng, 192, 192, falloff=1.1)
        target = np.zeros_like(source)
        stamp = random_texture(rng, 60, 60, falloff=0.9)
        source[-60:, -60:], target[-60:, -60:] = stamp, stamp
        matched = matched_features(source, target)
        assert matched.layers and feature_cover(matched) < StartSettings().flow_cover
        candidate = features_candidate(source, target)
        assert candidate is not None and "refined" not in candidate.evidence

    def test_a_shared_corner_stamp_leaves_the_rest_of_the_start_alone(self) -> None:
        # Two unrelated textures that share one textured stamp in a corner: the features match the stamp
        # only, which says nothing about the rest; the flow between the unrelated rest must not enter the
        # start (it would be a wild flow).
        rng = np.random.default_rng(12)
        source, target = (random_texture(rng, 192, 192, falloff=1.1) for _ in range(2))
        stamp = random_texture(rng, 60, 60, falloff=0.9)
        source[-60:, -60:], target[-60:, -60:] = stamp, stamp
        candidate = features_candidate(source, target)
        assert candidate is not None and "refined" not in candidate.evidence
        assert np.abs(candidate.grid_flows(192, 192)).max() < 1.0  # the stamp did not move: nothing moves
        flowing = features_candidate(source, target, StartSettings(flow_cover=0.0))
        assert flowing is not None and np.abs(flowing.flows[:, :80, :80]).max() > 5.0  # what the gate keeps out

    def test_a_thing_whose_matches_span_little_moves_alone(self) -> None:
        # A textured stamp moves (10, 16) px between two unrelated textures: its matches span a tenth of
        # what the pictures offer, so they say nothing about the rest, which stays where it is.
        rng = np.random.default_rng(12)
        source, target = (random_texture(rng, 192, 192, falloff=1.1) for _ in range(2))
        stamp = random_texture(rng, 60, 60, falloff=0.9)
        source[20:80, 20:80], target[30:90, 36:96] = stamp, stamp
        candidate = features_candidate(source, target)
        assert candidate is not None and "moved only near them" in candidate.evidence
        forward, backward = candidate.flows
        # dense_image_warp's sign: the target's pixel p shows the source at p - forward(p).
        np.testing.assert_allclose(forward[60, 66], [10.0, 16.0], atol=1.5)
        np.testing.assert_allclose(backward[50, 50], [-10.0, -16.0], atol=1.5)
        for flow in (forward, backward):
            np.testing.assert_allclose(flow[170, 170], [0.0, 0.0], atol=0.5)
            np.testing.assert_allclose(flow[20, 170], [0.0, 0.0], atol=0.5)
        # Evidence for the stamp, none for the rest: the start competes on cost with the margin of its motion
        # (a whole picture that moved, matched on one spot, must not be held still by it) unless told otherwise.
        assert not candidate.conclusive
        assert required_gain(candidate) == pytest.approx(
            StartSettings().margin * (1.0 + candidate.motion() / StartSettings().motion_unit))
        trusting = features_candidate(source, target, StartSettings(spot_evidence=True))
        assert trusting is not None and trusting.conclusive and required_gain(trusting) == 0.0
        np.testing.assert_array_equal(trusting.flows, candidate.flows)

    def test_a_picture_that_bends_takes_the_consistent_flow_beyond_its_matches(self) -> None:
        # One texture bent by a smooth random field (up to ~8 px): no similarity holds over more than a
        # patch, so RANSAC's inliers span little, yet the optical flow undoes itself both ways on most
        # pixels: one scene, and the flow carries the rest of it.
        rng = np.random.default_rng(3)
        source = random_texture(rng, 192, 192, falloff=1.1)
        field = rng.normal(size=(192, 192, 2)).astype(np.float32)
        field = np.stack([cv2.GaussianBlur(field[..., axis], (0, 0), 20.0) for axis in range(2)], axis=-1)
        field *= 8.0 / field.std()
        ys, xs = np.mgrid[0:192, 0:192].astype(np.float32)
        # dense_image_warp's sign: the target's pixel p shows the source at p - field(p).
        target = cv2.remap(source, xs - field[..., 1], ys - field[..., 0], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
        assert feature_cover(matched_features(source, target)) < StartSettings().flow_cover
        assert consistent_share(dis_flows(source, target), 1.0) >= StartSettings().probe_flow_share

        def error(candidate: Candidate) -> float:
            """90th percentile of the S→T flow's distance from the truth, px, away from the border."""
            found = candidate.flows[0] if candidate.flows is not None else candidate.grid_flows(192, 192)[0]
            return float(np.percentile(np.linalg.norm(found - field, axis=-1)[16:-16, 16:-16], 90))

        candidate = features_candidate(source, target)
        assert candidate is not None and "moved only near them" in candidate.evidence
        assert "the rest by the optical flow" in candidate.evidence and candidate.pixelwise
        assert error(candidate) < 2.5
        still = features_candidate(source, target, StartSettings(probe_flow_share=1.01))  # the gate shut
        assert still is not None and "the rest" not in still.evidence and error(still) > 5.0

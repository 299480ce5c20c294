"""Fitting on a synthetic pair with a known answer."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import tensorflow as tf

from morphing.fit.affine import Affine
from morphing.fit.starts import Candidate
from morphing.render.transition import upsample_direction
from morphing.fit.fitter import FitDivergedError, FitSettings, MapFitter, fine_flows, fit_maps, grid_maps_of, with_fine_flows
from morphing.io.images import resize_float_image, to_float, working_shape
from morphing.model.maps import MorphMaps, Scales
from morphing.fit.objective import COMPILED_LEVEL_PIXELS, MorphObjective
from morphing.model.points import PointPairs
from morphing.render.renderer import FrameRenderer
from morphing.testing.metrics import fold_fraction
from morphing.testing.scenes import sample_bilinear
from morphing.tools.transfer import morph_flows
from tests.conftest import disc_image


def test_fitted_middle_frame_beats_cross_dissolve_on_a_moving_disc() -> None:
    source = disc_image(64, 64, (32, 24), 10)
    target = disc_image(64, 64, (32, 34), 10)  # moved 10 px right
    halfway = disc_image(64, 64, (32, 29), 10).astype(float)
    steps: list[tuple[int, float]] = []
    settings = FitSettings(epochs=100, working_size=64, grid_size=32, seed=0)
    maps = fit_maps(
        to_float(source), to_float(target), Scales(), settings,
        on_step=lambda step, loss: steps.append((step, loss)),
    )
    indices = [step for step, _ in steps]
    # Three starts probed (140 steps: no motion, another, a consistent optical flow), two (120) or one start
    # chosen outright (its 100 steps end the count).
    assert settings.total_steps == 140 and len(steps) in (100, 120, 140)
    assert indices == list(range(settings.total_steps - len(steps), settings.total_steps))
    assert steps[-1][1] < steps[0][1] / 2
    middle = FrameRenderer(source, target, maps, maps.scales).render([0.5])[0].astype(float)
    dissolve = (source.astype(float) + target) / 2
    morph_error = np.abs(middle - halfway).mean()
    dissolve_error = np.abs(dissolve - halfway).mean()
    assert morph_error < 0.3 * dissolve_error, (morph_error, dissolve_error)
    assert maps.grid_shape == (32, 32) and maps.image_shape == (64, 64)


def test_a_disc_that_differs_from_its_ground_by_colour_alone_is_carried_by_the_fit() -> None:
    # A red disc on blue of the same luminance (Rec. 601, 124.5 of 255) moves 10 px: luminance sees no
    # edge, so with the colour channels left out the middle frame is no better than a cross-dissolve.
    red, blue = (220, 86, 73), (86, 127, 213)
    source = disc_image(64, 64, (32, 24), 10, disc=red, background=blue)
    target = disc_image(64, 64, (32, 34), 10, disc=red, background=blue)
    halfway = disc_image(64, 64, (32, 29), 10, disc=red, background=blue).astype(float)
    dissolve_error = np.abs((source.astype(float) + target) / 2 - halfway).mean()
    errors = {}
    for colour in (0.0, FitSettings().structure_colour):
        settings = FitSettings(epochs=100, working_size=64, grid_size=32, seed=0, structure_colour=colour)
        maps = fit_maps(to_float(source), to_float(target), Scales(), settings)
        middle = FrameRenderer(source, target, maps, maps.scales).render([0.5])[0].astype(float)
        errors[colour] = np.abs(middle - halfway).mean()
    assert FitSettings().structure_colour > 0
    assert errors[FitSettings().structure_colour] < 0.1 * dissolve_error < 0.8 * dissolve_error < errors[0.0], errors


def test_grid_maps_split_the_network_output_into_directions_in_grid_pixels() -> None:
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(1, 5, 7, 16)).astype(np.float32)
    base_flows = rng.normal(size=(2, 5, 7, 2)).astype(np.float32)
    scales = Scales(warp=0.5)
    got = grid_maps_of(tf.constant(raw), tf.constant(base_flows), scales).numpy()
    # Channels 0-7 are S→T, 8-15 T→S; the warp (last two of each) is in units of the long side.
    expected = np.stack([raw[0, ..., :8], raw[0, ..., 8:]]).astype(np.float64)
    expected[..., 6:] *= 7.0
    np.testing.assert_allclose(grid_maps_of(tf.constant(raw), None, scales).numpy(), expected, rtol=1e-6)
    expected[..., 6:] += base_flows / 0.5
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_fit_rejects_mismatched_shapes_and_zero_epochs() -> None:
    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="must both be"):
        fit_maps(image, np.zeros((16, 17, 3), np.float32), Scales())
    with pytest.raises(ValueError, match="epochs"):
        fit_maps(image, image, Scales(), FitSettings(epochs=0))
    with pytest.raises(ValueError, match="colour_level"):
        fit_maps(image, image, Scales(), FitSettings(colour_level=-1))


def test_the_colour_term_compares_images_at_its_pyramid_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """Level 0 is the working size, each level halves it, and a level past the coarsest is the coarsest."""
    seen: list[tuple[int, ...]] = []
    original = MorphObjective.__call__

    def spy(self: MorphObjective, fields) -> object:
        seen.append(tuple(fields.images.shape))
        return original(self, fields)

    monkeypatch.setattr(MorphObjective, "__call__", spy)
    rng = np.random.default_rng(4)
    source, target = (rng.uniform(-1, 1, (32, 32, 3)).astype(np.float32) for _ in range(2))
    for level in (0, 1, 7):
        settings = FitSettings(epochs=1, working_size=32, grid_size=16, pyramid_levels=3, colour_level=level)
        fit_maps(source, target, Scales(), settings)
    assert seen == [(2, 32, 32, 3), (2, 16, 16, 3), (2, 8, 8, 3)]


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    rng = np.random.default_rng(0)
    source, target = (rng.uniform(-1, 1, (16, 16, 3)).astype(np.float32) for _ in range(2))
    overflowing = Scales(mult=1e30, add=1e30, warp=0.05)  # float32 overflows to inf, then NaN
    with pytest.raises(FitDivergedError, match=r"diverged at step \d+ \(loss is (inf|nan)\)"):
        fit_maps(source, target, overflowing, FitSettings(epochs=5, working_size=16))


SMALL_FIT = FitSettings(epochs=6, working_size=32, grid_size=16, seed=3)
"""A few steps at 32²: enough to tell one fit's maps from another's."""


def small_disc_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Two different 32² disc pairs (float images)."""
    return [
        (to_float(disc_image(32, 32, (16, 12), 6)), to_float(disc_image(32, 32, (16, 20), 6))),
        (to_float(disc_image(32, 32, (10, 16), 8)), to_float(disc_image(32, 32, (22, 16), 5))),
    ]


def assert_same_maps(first: MorphMaps, second: MorphMaps) -> None:
    """Both directions' maps equal to float rounding."""
    np.testing.assert_allclose(first.forward, second.forward, rtol=0, atol=1e-5)
    np.testing.assert_allclose(first.backward, second.backward, rtol=0, atol=1e-5)


def test_a_shared_fitter_traces_once_and_fits_each_pair_as_a_fresh_one() -> None:
    settings, pairs = SMALL_FIT, small_disc_pairs()
    shared = MapFitter(Scales(), settings)
    together = [shared.fit(source, target) for source, target in pairs]
    alone = [fit_maps(source, target, Scales(), settings) for source, target in pairs]
    for with_others, by_itself in zip(together, alone):
        assert_same_maps(with_others, by_itself)
    assert not np.allclose(together[0].forward, together[1].forward)
    (program,) = shared.programs
    assert program.train_step.experimental_get_tracing_count() == 1


def test_a_prepared_shape_is_fitted_with_the_terms_traced_ahead_and_the_maps_of_a_fresh_fitter() -> None:
    settings = SMALL_FIT  # a 32² working size: the 64² images are reduced to it, as the prepared shape is
    source, target = (to_float(disc_image(64, 64, (32, x), 12)) for x in (24, 32))
    fitter = MapFitter(Scales(), settings)
    fitter.prepare(source.shape[:2])
    fitter.prepare(source.shape[:2])  # again: nothing more to do
    (program,) = fitter.programs
    assert "terms" in program.traced and "step" not in program.traced
    assert program.term_gradients.experimental_get_tracing_count() == 1
    maps = fitter.fit(source, target)
    assert len(fitter.programs) == 1 and "step" in program.traced
    assert program.term_gradients.experimental_get_tracing_count() == 1  # the fit traced them no more
    assert_same_maps(maps, fit_maps(source, target, Scales(), settings))


def test_threads_sharing_a_fitter_each_get_the_maps_of_a_fit_alone() -> None:
    # Two fits started at once on one fitter (one network, one optimizer) must not interleave their steps.
    settings, pairs = SMALL_FIT, small_disc_pairs()
    alone = [fit_maps(source, target, Scales(), settings) for source, target in pairs]
    shared = MapFitter(Scales(), settings)
    shared.fit(*pairs[0])  # the shape's program built: both threads below use its one set of variables
    together: list[object] = [None, None]
    both_running = threading.Barrier(2)

    def fit(index: int) -> None:
        both_running.wait()
        together[index] = shared.fit(*pairs[index])

    threads = [threading.Thread(target=fit, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for with_others, by_itself in zip(together, alone):
        assert_same_maps(with_others, by_itself)


def test_a_fit_stopped_while_its_step_compiles_leaves_the_fitter_to_fit_as_a_fresh_one() -> None:
    settings, ((source, target), _) = SMALL_FIT, small_disc_pairs()
    fitter = MapFitter(Scales(), settings)

    class Stopped(Exception):
        pass

    def stop_once_the_step_is_traced() -> None:  # the global stage runs then, and the compile thread with it
        if fitter.programs and "step" in fitter.programs[0].traced:
            raise Stopped

    with pytest.raises(Stopped):
        fitter.fit(source, target, check=stop_once_the_step_is_traced)
    again = fitter.fit(source, target)
    alone = fit_maps(source, target, Scales(), settings)
    assert_same_maps(again, alone)


def test_the_throwaway_compile_step_does_not_change_the_maps() -> None:
    # The first fit of a shape runs one training step in a thread, to compile it
    # while the global stage runs; the second fit of that shape does not.
    settings = FitSettings(epochs=8, working_size=32, grid_size=16, seed=1)
    source, target = to_float(disc_image(32, 32, (16, 12), 6)), to_float(disc_image(32, 32, (14, 20), 7))
    fitter = MapFitter(Scales(), settings)
    with_compile_step = fitter.fit(source, target)
    assert fitter.warmed == 1
    without = fitter.fit(source, target)
    np.testing.assert_array_equal(with_compile_step.forward, without.forward)
    np.testing.assert_array_equal(with_compile_step.backward, without.backward)


def test_full_size_floats_are_fitted_on_lanczos_working_copies() -> None:
    # Larger images are reduced first, with the filter of the command line's reduce_for_fit
    # (resize_float_image: the same Lanczos in floats), so that both ways of calling fit the same copies.
    settings = FitSettings(epochs=6, working_size=32, grid_size=16, seed=2)
    source, target = to_float(disc_image(96, 80, (40, 30), 18)), to_float(disc_image(96, 80, (52, 46), 20))
    direct = fit_maps(source, target, Scales(), settings)
    work_h, work_w = working_shape(96, 80, settings.working_size)
    reduced = fit_maps(resize_float_image(source, work_h, work_w), resize_float_image(target, work_h, work_w),
                       Scales(), settings, image_shape=(96, 80))
    np.testing.assert_array_equal(direct.forward, reduced.forward)
    np.testing.assert_array_equal(direct.backward, reduced.backward)
    assert direct.image_shape == reduced.image_shape == (96, 80)


def _called_functions(graph) -> set[str]:
    """Names of the functions that ``graph``'s call operations call."""
    return {operation.get_attr("f").name for operation in graph.get_operations()
            if operation.type in ("PartitionedCall", "StatefulPartitionedCall")}


def test_the_compiled_terms_are_compiled_ahead_as_the_step_calls_them() -> None:
    # The fit compiles XLA's programs by running the compiled terms' gradients while the step is
    # traced: that only helps if the step calls the very same forward and backward functions.
    # Levels 64², 32² and 16² (under COMPILED_LEVEL_PIXELS: left to the graph), and colour.
    assert COMPILED_LEVEL_PIXELS == 32 * 32
    settings = FitSettings(epochs=2, working_size=64, grid_size=16)
    source, target = to_float(disc_image(64, 64, (32, 24), 12)), to_float(disc_image(64, 64, (28, 40), 14))
    fitter = MapFitter(Scales(), settings)
    fitter.fit(source, target)
    (program,) = fitter.programs
    terms, step = program.traced["terms"], program.traced["step"]
    ahead = {name for name in _called_functions(terms.graph) if "forward" in name or "backward" in name}
    assert len(ahead) == 2 * (2 + 1)  # forward and backward of the 64² and 32² levels' structure and of colour
    assert ahead <= _called_functions(step.graph)
    assert program.term_gradients.experimental_get_tracing_count() == 1


def test_fitters_of_other_seeds_and_epochs_run_the_compiled_terms_of_the_first() -> None:
    # XLA compiles a program once per function and shape in a process: a fitter of another seed (a page
    # user's retry) calls the very functions the first compiled; another NCC window is another program.
    base = FitSettings(epochs=2, working_size=64, grid_size=16)
    source, target = to_float(disc_image(64, 64, (32, 24), 12)), to_float(disc_image(64, 64, (28, 40), 14))

    def compiled_calls(settings: FitSettings) -> set[str]:
        fitter = MapFitter(Scales(), settings)
        fitter.fit(source, target)
        (program,) = fitter.programs
        return {name for name in _called_functions(program.traced["step"].graph)
                if "forward" in name or "backward" in name}

    first = compiled_calls(base)
    assert len(first) == 2 * (2 + 1)
    assert compiled_calls(dataclasses.replace(base, seed=3, epochs=3, point_weight=2.0)) == first
    wider = compiled_calls(dataclasses.replace(base, structure_window=base.structure_window + 2))
    assert len(wider & first) == 2 and len(wider - first) == 2 * 2  # colour shared; both structure levels anew


def test_a_fit_at_32_pixels_square_runs_wholly_as_the_graph() -> None:
    # Compiling costs seconds, more than so small a fit's steps would save: nothing of it is compiled.
    settings, ((source, target), _) = SMALL_FIT, small_disc_pairs()
    assert settings.working_size ** 2 == COMPILED_LEVEL_PIXELS
    fitter = MapFitter(Scales(), settings)
    fitter.fit(source, target)
    (program,) = fitter.programs
    assert not _called_functions(program.traced["step"].graph)
    assert not _called_functions(program.traced["terms"].graph)


def test_a_point_pair_pulls_the_warp_through_a_known_displacement() -> None:
    # Nothing to see (flat images): only the point pair says where things go. The
    # source point (y 20, x 16) is the target point (y 26, x 30).
    flat = np.zeros((48, 48, 3), np.float32)
    points = PointPairs(np.array([[20.0, 16.0]]), np.array([[26.0, 30.0]]), (48, 48), (48, 48))
    settings = FitSettings(epochs=80, working_size=48, grid_size=24, seed=0)
    maps = fit_maps(flat, flat, Scales(), settings, points=points)
    forward, backward = morph_flows(maps, maps.scales, 48, 48)
    # S→T lives on the target: target pixel t shows the source at t - forward(t).
    landed = points.target[0] - sample_bilinear(forward, points.target)[0]
    came_back = points.source[0] - sample_bilinear(backward, points.source)[0]
    assert np.hypot(*(landed - points.source[0])) < 1.0, landed
    assert np.hypot(*(came_back - points.target[0])) < 1.0, came_back
    unguided = fit_maps(flat, flat, Scales(), settings)
    assert np.abs(morph_flows(unguided, unguided.scales, 48, 48)[0]).max() < 1.0  # the pull came from the points


def test_global_stage_brings_a_far_moved_picture_into_register() -> None:
    # A texture moved by a quarter of the image and shrunk: too far for the dense warp's
    # local gradient alone, found by the global stage.
    from tests.helpers import moved_texture

    source, target, truth = moved_texture(angle=0.0, scale=1.25, shift=(0.0, 0.5), size=64)
    settings = FitSettings(epochs=40, working_size=64, grid_size=32, seed=0)
    maps = fit_maps(source, target, Scales(), settings)
    forward, _ = morph_flows(maps, maps.scales, 64, 64)
    expected = Affine(truth.matrix, truth.offset).flow(64, 64)
    error = np.hypot(*np.moveaxis(forward - expected, -1, 0))[16:-16, 16:-16]
    assert np.median(error) < 1.0, np.median(error)


def test_user_points_are_honoured_within_a_fraction_of_a_pixel_at_full_size() -> None:
    # Three user pairs that a plain fit would not honour (their motions disagree with the texture's:
    # nothing moves), read from the full-size flows the frames use.
    from tests.helpers import moved_texture

    source, _, _ = moved_texture(angle=0.0, scale=1.0, shift=(0.0, 0.0), size=64)
    points = PointPairs(np.array([[40.0, 40.0], [120.0, 60.0], [80.0, 150.0]]),
                        np.array([[52.0, 30.0], [110.0, 75.0], [90.0, 140.0]]), (200, 200), (200, 200))
    settings = FitSettings(epochs=30, working_size=64, grid_size=32, seed=0, face_points=False)
    maps = fit_maps(source, source, Scales(), settings, image_shape=(200, 200), points=points)
    forward, backward = morph_flows(maps, maps.scales, 200, 200)
    landed = points.target - sample_bilinear(forward, points.target)
    came_back = points.source - sample_bilinear(backward, points.source)
    assert np.hypot(*(landed - points.source).T).max() < 0.1
    assert np.hypot(*(came_back - points.target).T).max() < 0.1


def test_an_undecided_start_is_probed_and_the_winner_reported() -> None:
    rng = np.random.default_rng(12)
    source, target = (rng.uniform(-1, 1, (64, 64, 3)).astype(np.float32) for _ in range(2))  # unrelated noise
    from morphing.fit.starts import Candidate

    shifted = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.25])))
    choices, steps = [], []
    from morphing.model.settings import StartSettings

    settings = FitSettings(epochs=6, working_size=64, grid_size=16, probe_steps=2, face_points=False,
                           starts=StartSettings(no_evidence=0.93, probe_flow_share=1.5))  # no optical flow here
    fit_maps(source, target, Scales(), settings, on_step=lambda step, loss: steps.append(step),
             on_start=choices.append, candidates=[Candidate("no motion", Affine.identity()), shifted])
    (choice,) = choices
    assert choice.chosen.name in ("no motion", "global search") and not choice.probe
    assert "probe middle-frame costs no motion" in choice.describe()
    assert steps == list(range(settings.total_steps))  # both starts' probes, then the rest of the winner's epochs


def test_the_probe_keeps_the_start_whose_middle_frame_shows_one_picture() -> None:
    from morphing.fit.starts import Candidate
    from morphing.model.settings import StartSettings
    from morphing.testing.scenes import random_texture

    source = random_texture(np.random.default_rng(5), 64, 64)
    target = np.roll(source, 16, axis=1)  # the whole picture 16 px to the right (it is periodic)
    truth = Candidate("global search", Affine(np.eye(2), np.array([0.0, -0.5])))  # target x ← source x - 16
    starts = [Candidate("no motion", Affine.identity()), truth]
    undecided = StartSettings(margin=10.0, no_evidence=0.0)  # the costs decide nothing: the probe must
    for judge, measure in (("middle", "middle-frame costs"), ("loss", "losses")):
        choices = []
        settings = FitSettings(epochs=8, working_size=64, grid_size=16, probe_steps=3, face_points=False,
                               starts=undecided, probe_judge=judge)
        fit_maps(source, target, Scales(), settings, on_start=choices.append, candidates=starts)
        (choice,) = choices
        assert f"probe {measure} no motion" in choice.describe()
        if judge == "middle":
            assert choice.chosen is truth, choice.describe()


def test_the_probe_takes_a_consistent_optical_flow_that_shows_one_picture() -> None:
    from morphing.fit.starts import FLOW, dis_flows
    from morphing.model.settings import StartSettings
    from morphing.testing.scenes import random_texture

    source = random_texture(np.random.default_rng(5), 64, 64)
    target = np.roll(source, 6, axis=1)  # the whole picture 6 px to the right (it is periodic)
    flow = Candidate(FLOW, Affine.identity(), "DIS", dis_flows(source, target))
    choices = []
    settings = FitSettings(epochs=8, working_size=64, grid_size=16, probe_steps=3, face_points=False,
                           starts=StartSettings(margin=10.0, no_evidence=0.0))
    fit_maps(source, target, Scales(), settings, on_start=choices.append,
             candidates=[Candidate("no motion", Affine.identity()), flow])
    (choice,) = choices
    assert choice.chosen is flow and "probe middle-frame costs no motion" in choice.describe(), choice.describe()


def test_total_steps_counts_the_probes_that_can_run() -> None:
    from morphing.model.settings import StartSettings

    # No motion, the best other start and the optical flow, where it is consistent enough to join.
    assert FitSettings(epochs=50, probe_steps=10).total_steps == 70
    assert FitSettings(epochs=50, probe_steps=10, starts=StartSettings(probe_flow_share=1.5)).total_steps == 60
    assert FitSettings(epochs=50, probe_steps=10, starts=StartSettings(no_evidence=float("inf"))).total_steps == 50
    assert FitSettings(epochs=5, probe_steps=10).total_steps == 15  # a probe is never longer than the fit


def test_user_points_given_for_another_image_size_are_honoured_at_the_frames_size() -> None:
    from tests.helpers import moved_texture

    source, _, _ = moved_texture(angle=0.0, scale=1.0, shift=(0.0, 0.0), size=64)
    given = PointPairs(np.array([[20.0, 20.0], [60.0, 75.0]]), np.array([[26.0, 15.0], [55.0, 80.0]]),
                       (100, 100), (100, 100))  # pixels of a 100-px copy
    settings = FitSettings(epochs=10, working_size=64, grid_size=32, seed=0, face_points=False)
    maps = fit_maps(source, source, Scales(), settings, image_shape=(200, 200), points=given)
    frame_points = given.resized(200, 200)
    forward, _ = morph_flows(maps, maps.scales, 200, 200)
    landed = frame_points.target - sample_bilinear(forward, frame_points.target)
    assert np.hypot(*(landed - frame_points.source).T).max() < 0.1


def test_a_patch_that_moved_over_a_still_background_is_carried_by_the_fit() -> None:
    # Matched features find two motions (the still background, the patch 60 px to the right); the fit
    # starts from them and its flow carries the patch while the background stays.
    from tests.fit.test_starts import patch_moved_over_texture

    source, target = patch_moved_over_texture(60.0)
    choices = []
    maps = fit_maps(source, target, Scales(), FitSettings(epochs=20), on_start=choices.append)
    assert choices[0].chosen.name == "matched features" and "2 layers" in choices[0].chosen.evidence
    forward, backward = morph_flows(maps, Scales(), 192, 192)
    np.testing.assert_allclose(forward[96, round(0.3 * 192 + 60)], [0.0, 60.0], atol=3.0)
    np.testing.assert_allclose(backward[96, round(0.3 * 192)], [0.0, -60.0], atol=3.0)
    assert np.abs(forward[10:30, 150:180]).max() < 2.0  # a corner of the background far from the patch


def test_a_patch_moved_over_a_background_comes_back_without_folds() -> None:
    # The start that carries the patch (matched features refined by the optical flow) folds where the
    # patch covers the background; the fit unfolds the whole flow, so neither direction's warp folds.
    from tests.fit.test_starts import patch_moved_over_texture

    source, target = patch_moved_over_texture(60.0)
    folded = fit_maps(source, target, Scales(), FitSettings(epochs=20, unfold_rounds=0))
    maps = fit_maps(source, target, Scales(), FitSettings(epochs=20))
    assert max(fold_fraction(flow) for flow in morph_flows(folded, Scales(), 192, 192)) > 0
    assert max(fold_fraction(flow) for flow in morph_flows(maps, Scales(), 192, 192)) == 0
    forward, _ = morph_flows(maps, Scales(), 192, 192)
    np.testing.assert_allclose(forward[96, round(0.3 * 192 + 60)], [0.0, 60.0], atol=3.0)  # still carried


def square_push(size: int = 48, push: float = 5.0) -> np.ndarray:
    """``[2, size, size, 2]``: a square in the middle pushed ``push`` px right (S→T) and back (T→S)."""
    flows = np.zeros((2, size, size, 2), np.float32)
    flows[0, 16:32, 16:32, 1] = push
    flows[1, 16:32, 16:32, 1] = -push
    return flows


class TestFineFlows:
    def test_the_grid_copy_and_the_fine_flows_add_up_to_the_start(self) -> None:
        start = Candidate("matched features", Affine.identity(), "", square_push(), conclusive=True, pixelwise=True)
        fine = fine_flows(start, (48, 48), (12, 12))
        grid = start.grid_flows(12, 12)
        whole = with_fine_flows(np.concatenate([np.zeros((2, 12, 12, 6), np.float32), grid], axis=-1), fine, 1.0)
        np.testing.assert_allclose(whole[..., 6:], square_push(), atol=1e-5)
        assert np.abs(fine).max() > 1.0  # the square's edges, which a 12-px grid smooths over 4 px each

    def test_at_a_coarser_size_the_start_is_area_averaged(self) -> None:
        start = Candidate("matched features", Affine.identity(), "", square_push(), conclusive=True, pixelwise=True)
        fine = fine_flows(start, (24, 24), (12, 12))
        grid = start.grid_flows(12, 12)
        whole = with_fine_flows(np.concatenate([np.zeros((2, 12, 12, 6), np.float32), grid], axis=-1), fine, 1.0)
        np.testing.assert_allclose(whole[0, 8:16, 8:16, 7], 2.5, atol=1e-5)  # 5 px at 48 is 2.5 px at 24

    def test_a_start_that_is_not_pixelwise_has_none(self) -> None:
        start = Candidate("matched regions", Affine.identity(), "", square_push(), conclusive=True)
        assert not np.any(fine_flows(start, (48, 48), (12, 12)))
        assert not np.any(fine_flows(Candidate("no motion", Affine.identity()), (24, 30), (8, 10)))

    def test_without_fine_flows_the_maps_are_the_grid_maps_as_rendered(self) -> None:
        rng = np.random.default_rng(7)
        grid_maps = rng.normal(size=(2, 10, 14, 8)).astype(np.float32)
        up = with_fine_flows(grid_maps, np.zeros((2, 30, 42, 2), np.float32), 2.0)
        for direction in range(2):
            reference = upsample_direction(tf.constant(grid_maps[direction][np.newaxis]), 30, 42)
            np.testing.assert_allclose(up[direction, ..., 0:3], reference.mult[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(up[direction, ..., 3:6], reference.add[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(up[direction, ..., 6:8], reference.warp[0].numpy(), atol=1e-5)


def test_a_pixelwise_start_comes_back_whole_in_maps_at_the_working_size() -> None:
    # The patch moved over a still texture: the start (matched features refined by the optical flow) holds
    # the patch's motion pixel by pixel. With no step taken, the maps hold that start whole at the working
    # size: exactly its fine flows more than the same fit on the 64-px grid alone.
    from tests.fit.test_starts import patch_moved_over_texture

    source, target = patch_moved_over_texture(60.0)
    still = {"epochs": 1, "learning_rate": 0.0, "unfold_rounds": 0}
    choices: list = []
    fine = fit_maps(source, target, Scales(), FitSettings(**still), on_start=choices.append)
    coarse = fit_maps(source, target, Scales(), FitSettings(**still, fine_start=False))
    start = choices[0].chosen
    assert start.pixelwise and fine.grid_shape == (192, 192) and coarse.grid_shape == (64, 64)
    warp = Scales().warp
    expected = fine_flows(start, (192, 192), (64, 64))
    for index, (sharp, smooth) in enumerate(((fine.forward, coarse.forward), (fine.backward, coarse.backward))):
        coarse_up = with_fine_flows(smooth[np.newaxis], np.zeros((1, 192, 192, 2), np.float32), warp)[0]
        np.testing.assert_allclose(warp * (sharp[..., 6:] - coarse_up[..., 6:]), expected[index], atol=1e-3)
        np.testing.assert_allclose(sharp[..., :6], coarse_up[..., :6], atol=1e-5)  # the colour maps as fitted
    assert np.abs(expected).max() > 10.0  # the patch's edge, which the grid smooths


def test_a_pixelwise_start_fitted_in_full_leaves_no_folds() -> None:
    from tests.fit.test_starts import patch_moved_over_texture

    source, target = patch_moved_over_texture(60.0)
    maps = fit_maps(source, target, Scales(), FitSettings(epochs=20))
    assert maps.grid_shape == (192, 192)
    assert max(fold_fraction(flow) for flow in morph_flows(maps, Scales(), 192, 192)) == 0
    forward, _ = morph_flows(maps, Scales(), 192, 192)
    np.testing.assert_allclose(forward[96, round(0.3 * 192 + 60)], [0.0, 60.0], atol=3.0)  # carried

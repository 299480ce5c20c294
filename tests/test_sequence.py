"""Whole morphs from Python: every leg fitted, the timeline built, the frames yielded in order."""

from __future__ import annotations

import numpy as np
import pytest

from morphing.fit.fitter import MapFitter, reduce_for_fit
from morphing.model.maps import Scales
from morphing.render.renderer import FrameRenderer, even_pacing_alphas
from morphing.testing.scenes import toy_scene
from morphing.sequence import (
    MorphFrames,
    ProgramCache,
    fit_sequence,
    leg_alphas,
    preview_keys,
    sequence_keys,
    timeline_frames,
)
from morphing.model.settings import FitSettings, FrameSettings
from morphing.model.timeline import build_timeline, ease, frame_alphas, paced
from tests.helpers import random_maps, random_pair

TINY_FIT = FitSettings(epochs=3, working_size=32, face_points=False)


def toy_keys(count: int = 3) -> tuple[np.ndarray, ...]:
    scene = toy_scene(24, 32)
    return tuple(scene.render(alpha) for alpha in np.linspace(0.0, 1.0, count))


def test_timeline_frames_render_each_entry_in_order_with_holds() -> None:
    first, second = random_pair(seed=7)
    third = np.random.default_rng(8).integers(0, 256, first.shape, dtype=np.uint8)
    renderers = [
        FrameRenderer(first, second, random_maps(seed=9), Scales()),
        FrameRenderer(second, third, random_maps(seed=10), Scales()),
    ]
    timeline = build_timeline([frame_alphas(3), frame_alphas(3)], hold=1)
    frames = list(timeline_frames(renderers, timeline))
    assert len(frames) == len(timeline) == 2 + 1 + 2 + 1 + 2  # each key shown twice
    for (leg, alpha), frame in zip(timeline, frames):
        np.testing.assert_array_equal(frame, renderers[leg].render([alpha])[0])
    np.testing.assert_array_equal(frames[0], first)
    np.testing.assert_array_equal(frames[3], second)
    np.testing.assert_array_equal(frames[-1], third)


def test_each_legs_renderer_lets_go_of_its_working_arrays_when_its_frames_are_done() -> None:
    first, second = random_pair(seed=7)
    third = np.random.default_rng(8).integers(0, 256, first.shape, dtype=np.uint8)
    renderers = [
        FrameRenderer(first, second, random_maps(seed=9), Scales(), engine="opencv"),
        FrameRenderer(second, third, random_maps(seed=10), Scales(), engine="opencv"),
    ]
    timeline = build_timeline([frame_alphas(4), frame_alphas(4)])
    kept = []
    for (leg, _), _ in zip(timeline, timeline_frames(renderers, timeline)):
        kept.append([renderer.frame_engine.kept_working_arrays for renderer in renderers])
    first_of_second_leg = [leg for leg, _ in timeline].index(1)
    assert kept[first_of_second_leg - 1][0] >= 1  # the first leg's frames in flight kept theirs while it ran
    assert kept[first_of_second_leg][0] == 0  # and let go once the second leg began
    assert [renderer.frame_engine.kept_working_arrays for renderer in renderers] == [0, 0]


class TestProgramCache:
    def test_parts_are_kept_for_the_three_latest_frame_sizes(self) -> None:
        cache = ProgramCache()
        cache.use_shape((48, 64))
        program = cache.program("bicubic", "detail")
        fitter = cache.fitter(FitSettings(), Scales())
        cache.use_shape((48, 64))
        assert cache.program("bicubic", "detail") is program and cache.fitter(FitSettings(), Scales()) is fitter
        assert cache.program("bilinear", "linear") is not program
        cache.use_shape((64, 64))
        assert cache.program("bicubic", "detail") is not program
        assert cache.fitter(FitSettings(), Scales()) is not fitter
        cache.use_shape((48, 64))  # a batch alternating between two sizes keeps both
        assert cache.program("bicubic", "detail") is program and cache.fitter(FitSettings(), Scales()) is fitter
        for shape in ((10, 10), (20, 20), (30, 30)):  # three newer sizes push the oldest out
            cache.use_shape(shape)
            cache.program("bicubic", "detail")
        assert len(cache.programs) == 3 and len(cache.fitters) == 0
        cache.use_shape((48, 64))
        assert cache.program("bicubic", "detail") is not program
        assert cache.fitter(FitSettings(), Scales()) is not fitter
        assert len(cache.programs) == 3 and cache.recent_shapes == [(20, 20), (30, 30), (48, 64)]

    def test_a_shape_given_with_the_request_is_used_whatever_shape_another_thread_set(self) -> None:
        cache = ProgramCache()
        fitter = cache.fitter(FitSettings(), Scales(), (48, 64))
        program = cache.program("bicubic", "detail", frame_shape=(48, 64))
        cache.use_shape((10, 10))  # another thread's morph
        assert cache.fitter(FitSettings(), Scales(), (48, 64)) is fitter
        assert cache.engine_and_program(FrameSettings(engine="tensorflow"), (48, 64)) == ("tensorflow", program)
        assert cache.frame_shape == (48, 64) and cache.recent_shapes == [(10, 10), (48, 64)]

    def test_only_the_most_recently_used_fitters_are_kept(self) -> None:
        cache = ProgramCache(kept_fitters=2)
        cache.use_shape((48, 64))
        first, second = (cache.fitter(FitSettings(seed=seed), Scales()) for seed in (1, 2))
        assert cache.fitter(FitSettings(seed=1), Scales()) is first  # now the most recent
        cache.fitter(FitSettings(seed=3), Scales())  # the least recently used (seed 2) goes
        assert len(cache.fitters) == 2
        assert cache.fitter(FitSettings(seed=1), Scales()) is first
        assert cache.fitter(FitSettings(seed=2), Scales()) is not second


class TestKeys:
    def test_a_loop_ends_on_the_first_key(self) -> None:
        a, b = random_pair()
        assert len(sequence_keys([a, b])) == 2
        looped = sequence_keys([a, b], loop=True)
        assert len(looped) == 3 and looped[-1] is a

    def test_preview_keys_shrink_to_the_long_side_and_never_enlarge(self) -> None:
        keys = toy_keys(2)  # 24x32
        small = preview_keys(keys, 16)
        assert [key.shape for key in small] == [(12, 16, 3)] * 2
        assert preview_keys(keys, 64)[0].shape == (24, 32, 3)


class TestFitSequence:
    def test_each_leg_is_the_fit_of_its_pair_and_steps_name_their_leg(self) -> None:
        keys = toy_keys(3)
        steps: list[tuple[int, int]] = []
        all_maps = fit_sequence(keys, Scales(), TINY_FIT, on_step=lambda leg, step, loss: steps.append((leg, step)))
        assert len(all_maps) == 2
        assert {leg for leg, _ in steps} == {0, 1} and steps[0][0] == 0 and steps[-1][0] == 1
        alone = MapFitter(Scales(), TINY_FIT).fit(*reduce_for_fit(keys[1], keys[2], 32), image_shape=(24, 32))
        np.testing.assert_array_equal(all_maps[1].forward, alone.forward)
        assert all_maps[0].image_shape == (24, 32)

    def test_a_cache_is_filled_and_reused(self) -> None:
        keys = toy_keys(2)
        cache = ProgramCache()
        first = fit_sequence(keys, Scales(), TINY_FIT, cache=cache)
        fitter = cache.fitter(TINY_FIT, Scales())
        second = fit_sequence(keys, Scales(), TINY_FIT, cache=cache)
        assert cache.fitter(TINY_FIT, Scales()) is fitter
        np.testing.assert_array_equal(first[0].forward, second[0].forward)

    def test_bad_arguments_are_refused(self) -> None:
        keys = toy_keys(2)
        with pytest.raises(ValueError, match="at least 2 key images"):
            fit_sequence(keys[:1], Scales(), TINY_FIT)
        with pytest.raises(ValueError, match="points are needed per leg"):
            fit_sequence(keys, Scales(), TINY_FIT, points=[None, None])


class TestLegAlphas:
    def test_without_even_pacing_every_leg_runs_the_eased_progress(self) -> None:
        keys, maps = random_pair(), [random_maps(), random_maps(seed=2)]
        keys = (*keys, keys[0])
        settings = FrameSettings(frames=7, easing="ease-in-out")
        alphas = leg_alphas(keys, maps, Scales(), settings)
        assert len(alphas) == 2
        for leg in alphas:
            np.testing.assert_array_equal(leg, ease(frame_alphas(7), "ease-in-out"))

    def test_even_pacing_reads_the_eased_progress_along_the_probe(self) -> None:
        source, target = random_pair()
        maps = random_maps()
        settings = FrameSettings(frames=6, easing="ease-in-out", even_pacing=True, engine="opencv")
        (alphas,) = leg_alphas((source, target), [maps], Scales(), settings)
        even = even_pacing_alphas(source, target, maps, Scales(), count=6, engine="opencv")
        np.testing.assert_allclose(alphas, paced(ease(frame_alphas(6), "ease-in-out"), even))
        assert alphas[0] == 0.0 and alphas[-1] == 1.0 and np.all(np.diff(alphas) > 0)


class TestMorphFrames:
    def test_frames_follow_the_timeline_and_end_on_the_keys(self) -> None:
        first, second = random_pair(seed=3)
        keys = sequence_keys([first, second], loop=True)
        maps = [random_maps(seed=4), random_maps(seed=5)]
        ready: list[int] = []
        frames = MorphFrames(keys, maps, Scales(), FrameSettings(frames=4, hold=1, loop=True, engine="opencv"),
                             on_leg_ready=ready.append)
        rendered = list(frames)
        assert ready == [0, 1] and frames.shape == (12, 16)
        assert len(rendered) == len(frames) == len(build_timeline([frame_alphas(4)] * 2, hold=1, loop=True))
        np.testing.assert_array_equal(rendered[0], first)
        np.testing.assert_array_equal(rendered[1], first)  # held
        for (leg, alpha), frame in zip(frames.timeline, rendered):
            np.testing.assert_array_equal(frame, frames.renderers[leg].render([alpha])[0])

    def test_samples_are_the_keys_and_three_frames_of_the_first_leg(self) -> None:
        first, second = random_pair(seed=6)
        frames = MorphFrames((first, second), [random_maps()], Scales(), FrameSettings(frames=3, engine="opencv"))
        samples = list(frames.samples())
        assert len(samples) == 2 + 3
        np.testing.assert_array_equal(samples[0], first)
        np.testing.assert_array_equal(samples[2], frames.renderers[0].render([0.25])[0])

    def test_legs_and_maps_must_agree(self) -> None:
        first, second = random_pair()
        with pytest.raises(ValueError, match="need 1 legs of maps, got 2"):
            MorphFrames((first, second), [random_maps(), random_maps()], Scales())

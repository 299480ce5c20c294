"""The formula and the frames: exact endpoints, and each map scaled by alpha."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from morphing.io.images import to_float
from morphing.model.maps import ADD, MULT, WARP, MorphMaps, Scales
from morphing.render.renderer import FrameRenderer, even_pacing_alphas
from morphing.render.xla import RenderProgram
from morphing.model.timeline import frame_alphas
from tests.helpers import random_maps, random_pair

ENGINES = ["opencv", "tensorflow"]


@pytest.mark.parametrize("engine", ENGINES)
def test_first_and_last_frames_equal_source_and_target_exactly(engine: str) -> None:
    source, target = random_pair()
    renderer = FrameRenderer(source, target, random_maps(), Scales(mult=0.6, add=0.2, warp=0.5), engine=engine)
    frames = list(renderer.frames(frame_alphas(7), batch=3))
    assert len(frames) == 7
    np.testing.assert_array_equal(frames[0], source)
    np.testing.assert_array_equal(frames[-1], target)
    assert not np.array_equal(frames[3], source) and not np.array_equal(frames[3], target)


@pytest.mark.parametrize("engine", ENGINES)
def test_render_matches_a_numpy_evaluation_of_the_formula(engine: str) -> None:
    """The blend of both directions, recomputed with numpy and the slow reference warp."""
    from tests.helpers import reference_warp

    source, target = random_pair(shape=(6, 8, 3), seed=5)
    maps = random_maps(grid=(6, 8), image_shape=(6, 8), scale=0.5, seed=6)
    scales = Scales(mult=0.6, add=0.2, warp=2.0)
    alpha = 0.3
    s, t = to_float(source)[None].astype(np.float64), to_float(target)[None].astype(np.float64)

    def direction(image, packed, a):
        coloured = image * (1 + a * scales.mult * packed[..., MULT]) + a * scales.add * packed[..., ADD]
        return reference_warp(coloured, a * scales.warp * packed[..., WARP].astype(np.float64))

    expected = (1 - alpha) * direction(s, maps.forward[None], alpha) + alpha * direction(
        t, maps.backward[None], 1 - alpha
    )
    frame = FrameRenderer(
        source, target, maps, scales, interpolation="bilinear", blend="linear", engine=engine
    ).render([alpha])[0]
    expected_uint8 = np.clip(np.rint((expected[0] + 1) * 127.5), 0, 255)
    assert np.abs(frame.astype(int) - expected_uint8).max() <= 1



def test_even_pacing_evens_out_an_uneven_transition() -> None:
    from morphing.testing.metrics import pacing

    yy, xx = np.mgrid[0:48, 0:48]
    source = np.stack([(yy * 5) % 256, (xx * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    target = source[::-1, ::-1].copy()
    maps = random_maps(grid=(6, 6), image_shape=(48, 48), scale=2.0, seed=12)
    scales = Scales(mult=0.3, add=0.3, warp=1.0)
    renderer = FrameRenderer(source, target, maps, scales)
    uneven = pacing(list(renderer.render(frame_alphas(21))))
    alphas = even_pacing_alphas(source, target, maps, scales, 21, probe_side=48)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0 and np.all(np.diff(alphas) > 0)
    even = pacing(list(renderer.render(alphas)))
    assert even < uneven and even < 1.15, (even, uneven)


def test_even_pacing_with_a_shared_program_compiles_its_probe_once() -> None:
    pairs = [random_pair(seed=seed) for seed in (3, 4)]
    maps = [random_maps(seed=seed) for seed in (5, 6)]
    program = RenderProgram("bilinear", "detail")
    shared = [
        even_pacing_alphas(
            source, target, leg_maps, Scales(warp=0.5), 11, probe_side=24, program=program, engine="tensorflow"
        )
        for (source, target), leg_maps in zip(pairs, maps)
    ]
    assert program.traces() == 1
    for (source, target), leg_maps, alphas in zip(pairs, maps, shared):
        alone = even_pacing_alphas(
            source, target, leg_maps, Scales(warp=0.5), 11, probe_side=24, interpolation="bilinear", blend="detail",
            engine="tensorflow",
        )
        np.testing.assert_array_equal(alphas, alone)
        assert alphas[0] == 0.0 and alphas[-1] == 1.0 and np.all(np.diff(alphas) > 0)


def test_huge_frames_recompute_the_maps_and_give_the_same_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    import morphing.render.xla as render_module

    source, target = random_pair()
    maps = random_maps()
    cached = FrameRenderer(source, target, maps, Scales(warp=0.5), engine="tensorflow").render([0.3, 0.7])
    monkeypatch.setattr(render_module, "MAPS_CACHE_BYTES", 0)
    uncached_renderer = FrameRenderer(source, target, maps, Scales(warp=0.5), engine="tensorflow")
    assert uncached_renderer.frame_engine.caches_maps is False
    np.testing.assert_array_equal(uncached_renderer.render([0.3, 0.7]), cached)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("interpolation, blend", [("bicubic", "detail"), ("bicubic", "linear"), ("bilinear", "detail")])
def test_every_render_mode_keeps_the_endpoints_exact(interpolation: str, blend: str, engine: str) -> None:
    source, target = random_pair(shape=(20, 24, 3), seed=13)
    renderer = FrameRenderer(
        source, target, random_maps(image_shape=(20, 24)), Scales(warp=0.5), interpolation=interpolation, blend=blend,
        engine=engine,
    )
    frames = renderer.render([0.0, 0.5, 1.0])
    np.testing.assert_array_equal(frames[0], source)
    np.testing.assert_array_equal(frames[2], target)
    plain = FrameRenderer(
        source, target, random_maps(image_shape=(20, 24)), Scales(warp=0.5), interpolation="bilinear", blend="linear"
    ).render([0.5])[0]
    assert not np.array_equal(frames[1], plain)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_detail_blend_keeps_a_halfway_frame_of_two_textures_sharp(engine: str) -> None:
    from morphing.testing.metrics import sharpness

    rng = np.random.default_rng(14)
    source, target = (rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(2))
    still = MorphMaps(
        forward=np.zeros((4, 4, 8), np.float32), backward=np.zeros((4, 4, 8), np.float32),
        scales=Scales(), image_shape=(48, 48),
    )
    endpoints = np.mean([sharpness(source), sharpness(target)])
    linear = FrameRenderer(source, target, still, Scales(), blend="linear", engine=engine).render([0.5])[0]
    detail = FrameRenderer(source, target, still, Scales(), blend="detail", engine=engine).render([0.5])[0]
    assert sharpness(linear) / endpoints < 0.6
    assert sharpness(detail) / endpoints > 0.8


def test_unknown_render_modes_are_refused() -> None:
    source, target = random_pair()
    with pytest.raises(ValueError, match="interpolation"):
        FrameRenderer(source, target, random_maps(), Scales(), interpolation="nearest")
    with pytest.raises(ValueError, match="blend"):
        FrameRenderer(source, target, random_maps(), Scales(), blend="max")
    with pytest.raises(ValueError, match="engine"):
        FrameRenderer(source, target, random_maps(), Scales(), engine="vulkan")


def test_renderers_sharing_a_program_compile_once_and_render_as_their_own() -> None:
    program = RenderProgram()
    (first, second), (third, fourth) = random_pair(seed=15), random_pair(seed=16)
    shared = [
        FrameRenderer(first, second, random_maps(seed=17), Scales(warp=0.5), program=program, engine="tensorflow"),
        FrameRenderer(third, fourth, random_maps(seed=18), Scales(warp=0.5), program=program, engine="tensorflow"),
    ]
    alone = [
        FrameRenderer(first, second, random_maps(seed=17), Scales(warp=0.5), engine="tensorflow"),
        FrameRenderer(third, fourth, random_maps(seed=18), Scales(warp=0.5), engine="tensorflow"),
    ]
    for with_program, by_itself in zip(shared, alone):
        np.testing.assert_array_equal(with_program.render([0.2, 0.6]), by_itself.render([0.2, 0.6]))
    assert program.traces() == 1


def test_a_program_of_another_mode_is_refused() -> None:
    source, target = random_pair()
    with pytest.raises(ValueError, match="bilinear/linear"):
        FrameRenderer(
            source, target, random_maps(), Scales(), blend="detail", program=RenderProgram("bilinear", "linear")
        )


def test_the_default_engine_is_opencv_on_a_cpu_and_frames_come_in_order() -> None:
    from morphing.render.renderer import default_engine

    assert not tf.config.list_logical_devices("GPU")
    assert default_engine() == "opencv"
    source, target = random_pair(seed=19)
    renderer = FrameRenderer(source, target, random_maps(seed=20), Scales(warp=0.5))
    assert renderer.engine == "opencv"
    alphas = np.linspace(0.0, 1.0, 7)
    # frames() renders two at a time in threads; they must come out in order.
    np.testing.assert_array_equal(np.stack(list(renderer.frames(alphas))), renderer.render(alphas))


def _sliding_maps(shift: float) -> MorphMaps:
    """Maps of a 64² frame (8² grid) whose S→T flow is ``shift`` px to the right and T→S the reverse."""
    forward, backward = np.zeros((8, 8, 8), np.float32), np.zeros((8, 8, 8), np.float32)
    forward[..., 7], backward[..., 7] = shift / 8.0, -shift / 8.0  # grid pixels (frame / 8), w = 1
    return MorphMaps(forward, backward, Scales(mult=0.0, add=0.0, warp=1.0), (64, 64))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_detail_blend_fills_what_one_direction_samples_outside_from_the_other(engine: str) -> None:
    # Black slides 20 px right into white. Halfway, S→T reads outside the source in the leftmost 10
    # columns and T→S outside the target in the rightmost 10: each is filled by the other direction
    # (white on the left, black on the right), not by a stretched border; the middle is the plain blend.
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    maps = _sliding_maps(20.0)
    detail = FrameRenderer(black, white, maps, maps.scales, blend="detail", engine=engine).render([0.5])[0]
    linear = FrameRenderer(black, white, maps, maps.scales, blend="linear", engine=engine).render([0.5])[0]
    assert (detail[:, :7] == 255).all() and (detail[:, 57:] == 0).all()
    assert np.isin(detail[:, 14:50], (127, 128)).all()
    assert np.isin(linear, (127, 128)).all()  # the formula's blend: the clamped border, averaged


def _shrinking_maps(size: int) -> MorphMaps:
    """Maps of a ``size``² frame (on a grid of the frame's size) whose S→T flow is zero and whose T→S flow
    shrinks the target to half its size about the centre at amount 1 (``q = c + 2 (p - c)``)."""
    centre = (size - 1) / 2.0
    rows, columns = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")
    forward, backward = np.zeros((size, size, 8), np.float32), np.zeros((size, size, 8), np.float32)
    backward[..., WARP] = np.stack([centre - rows, centre - columns], axis=-1)  # p - q
    return MorphMaps(forward, backward, Scales(mult=0.0, add=0.0, warp=1.0), (size, size))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shrinking_direction_fades_before_its_edge_and_never_shows_its_border_stretched(engine: str) -> None:
    # The target (red top rows, blue below) is shrunk by T→S; halfway it samples q = c + 1.5 (p - c),
    # so the frame rows above y ≈ 42.5 read beyond its top. A stretched border would show its red top
    # row there; instead the grey source fills in, and the target's own top rows fade as they near
    # the edge (the feather: 0.03 · 256 ≈ 7.7 px of the target).
    size = 256
    grey = np.full((size, size, 3), 128, np.uint8)
    target = np.zeros((size, size, 3), np.uint8)
    target[..., 2] = 255
    target[:4] = (255, 0, 0)
    maps = _shrinking_maps(size)
    frame = FrameRenderer(grey, target, maps, maps.scales, blend="detail", engine=engine).render([0.5])[0]
    centre = (size - 1) / 2.0
    sampled_row = centre + 1.5 * (np.arange(size) - centre)  # the target row T→S reads on each frame row
    columns = slice(100, 156)
    beyond = (sampled_row > -12.0) & (sampled_row < -1.0)  # just past the target's top edge
    assert beyond.sum() >= 6
    assert np.abs(frame[beyond, columns].astype(float) - 128.0).max() <= 3.0
    # The target's red rows, at its very edge, weigh q / feather against the source's 1 (not half each).
    red_rows = (sampled_row >= 0.0) & (sampled_row < 3.0)
    weight = sampled_row[red_rows] / (0.03 * size)
    expected_red = 128.0 + 127.0 * weight / (1.0 + weight)
    assert np.abs(frame[red_rows, columns, 0].astype(float) - expected_red[:, None]).max() <= 6.0
    middle = (sampled_row > 60.0) & (sampled_row < 196.0)  # well inside: the plain blend of grey and blue
    assert np.abs(frame[middle, columns].astype(float) - [64.0, 64.0, 191.5]).max() <= 3.0


def test_both_engines_fade_the_border_alike() -> None:
    rng = np.random.default_rng(9)
    source, target = (rng.integers(0, 256, (64, 64, 3)).astype(np.uint8) for _ in range(2))
    maps = _sliding_maps(24.0)
    frames = [FrameRenderer(source, target, maps, maps.scales, engine=engine).render([0.3, 0.5, 0.8])
              for engine in ("opencv", "tensorflow")]
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() <= 1

"""The OpenCV render against TensorFlow's: the same frames, strip by strip as whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from morphing.render.blend import detail_energy, restore_detail
from morphing.io.images import load_image, resize_image, to_float
from morphing.model.maps import MorphMaps, Scales
from morphing.render.renderer import FrameRenderer
from morphing.render.opencv import OpenCVRenderer, _DetailPlan, upsample_grid
from morphing.model.settings import DetailSettings
from morphing.render.transition import bilinear_matrix

IMAGES = Path(__file__).resolve().parents[2] / "images"


def photo_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Two of the repository's sample pictures at ``[height, width]``: detail, edges and flat parts."""
    names = ("texture_a.png", "shapes_b.png")
    return tuple(resize_image(load_image(IMAGES / name).pixels, height, width) for name in names)


def smooth_maps(grid: tuple[int, int], image_shape: tuple[int, int], seed: int, warp: float = 2.0) -> MorphMaps:
    rng = np.random.default_rng(seed)

    def direction() -> np.ndarray:
        packed = rng.normal(size=(*grid, 8)) * 0.5
        packed[..., 6:] *= warp
        return packed.astype(np.float32)

    return MorphMaps(forward=direction(), backward=direction(), scales=Scales(), image_shape=image_shape)


class TestUpsampleGrid:
    @pytest.mark.parametrize(
        "grid, frame", [((4, 5), (12, 20)), ((64, 48), (257, 190)), ((9, 7), (4, 3)), ((6, 6), (6, 6))]
    )
    def test_is_bilinear_with_half_pixel_centres(self, grid: tuple[int, int], frame: tuple[int, int]) -> None:
        packed = np.random.default_rng(0).normal(size=(*grid, 8)).astype(np.float32)
        rows, columns = bilinear_matrix(frame[0], grid[0]), bilinear_matrix(frame[1], grid[1])
        expected = np.einsum("yh,hwc,xw->yxc", rows, packed, columns)
        np.testing.assert_allclose(upsample_grid(packed, *frame), expected, atol=5e-5)
        rows = slice(frame[0] // 3, frame[0] // 3 + 2)  # a block of rows alone
        some = upsample_grid(packed, *frame, rows.start, rows.stop)
        np.testing.assert_array_equal(some, upsample_grid(packed, *frame)[rows])


class TestAgainstTensorFlow:
    @pytest.mark.parametrize(
        "interpolation, blend",
        [("bicubic", "detail"), ("bicubic", "linear"), ("bilinear", "detail"), ("bilinear", "linear")],
    )
    def test_frames_agree_within_a_grey_level(self, interpolation: str, blend: str) -> None:
        source, target = photo_pair(90, 121)
        maps = smooth_maps((23, 30), (90, 121), seed=1)
        scales = Scales(mult=0.6, add=0.2, warp=0.5)
        alphas = [0.0, 0.2, 0.5, 0.85, 1.0]
        ours = OpenCVRenderer(source, target, maps, scales, interpolation=interpolation, blend=blend).render(alphas)
        theirs = FrameRenderer(
            source, target, maps, scales, interpolation=interpolation, blend=blend, engine="tensorflow"
        ).render(alphas)
        difference = np.abs(ours.astype(int) - theirs.astype(int))
        assert difference.max() <= 1
        assert difference.mean() < 0.01
        assert not np.array_equal(ours[2], ours[0])  # the frames do change

    def test_detail_energies_and_restoration_agree(self) -> None:
        settings = DetailSettings()
        image = to_float(photo_pair(70, 96)[0])
        plan = _DetailPlan.of(settings, 70, 96)
        ours = plan.energies(image)
        theirs = [energy.numpy()[0, ..., 0] for energy in detail_energy(tf.constant(image[np.newaxis]), settings)]
        assert [e.shape for e in ours] == [e.shape for e in theirs] == [(35, 48), (18, 24)]  # pooled by 2 and 4
        for mine, reference in zip(ours, theirs):
            np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-7)
        wanted = [2.0 * energy for energy in ours]
        restored = image + plan.detail(image, wanted)[..., np.newaxis]
        batched = [energy[np.newaxis, ..., np.newaxis] for energy in wanted]
        expected = restore_detail(tf.constant(image[np.newaxis]), batched, settings)
        np.testing.assert_allclose(restored, expected.numpy()[0], atol=1e-5)
        assert np.abs(restored - image).max() > 0.01


class TestStrips:
    @pytest.mark.parametrize("blend", ["detail", "linear"])
    @pytest.mark.parametrize("shape", [(203, 150), (130, 97)])
    def test_strips_give_the_whole_frame(self, blend: str, shape: tuple[int, int]) -> None:
        source, target = photo_pair(*shape)
        maps = smooth_maps((16, 12), shape, seed=2, warp=6.0)  # flows of tens of pixels: strips read across strips
        whole = OpenCVRenderer(source, target, maps, Scales(warp=0.5), blend=blend)
        strips = OpenCVRenderer(source, target, maps, Scales(warp=0.5), blend=blend, strip_rows=8)
        assert whole.strip_rows >= shape[0] and strips.strip_rows < shape[0] // 2
        np.testing.assert_array_equal(strips.render([0.3, 0.6]), whole.render([0.3, 0.6]))

    @pytest.mark.parametrize("blend", ["detail", "linear"])
    def test_warps_in_chunks_give_the_same_frames(self, blend: str, monkeypatch: pytest.MonkeyPatch) -> None:
        import morphing.render.opencv as render_cv

        source, target = photo_pair(203, 150)
        maps = smooth_maps((16, 12), (203, 150), seed=11, warp=6.0)  # flows of tens of rows: chunks read far
        whole = OpenCVRenderer(source, target, maps, Scales(warp=0.5), blend=blend).render([0.3, 0.8])
        monkeypatch.setattr(render_cv, "WARP_CHUNK_PIXELS", 1)  # 8-row chunks
        chunked = OpenCVRenderer(source, target, maps, Scales(warp=0.5), blend=blend, strip_rows=24)
        np.testing.assert_array_equal(chunked.render([0.3, 0.8]), whole)

    def test_huge_frames_make_their_maps_for_each_strip_and_give_the_same_frames(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import morphing.render.opencv as render_cv

        source, target = photo_pair(130, 97)
        maps = smooth_maps((16, 12), (130, 97), seed=6, warp=6.0)
        kept = OpenCVRenderer(source, target, maps, Scales(warp=0.5), strip_rows=8)
        monkeypatch.setattr(render_cv, "CACHE_BYTES", 0)
        made = OpenCVRenderer(source, target, maps, Scales(warp=0.5), strip_rows=8)
        assert kept.caches_maps and not made.caches_maps
        np.testing.assert_array_equal(made.render([0.25, 0.7]), kept.render([0.25, 0.7]))

    def test_endpoint_energies_by_strips_equal_the_whole_frames(self) -> None:
        source, target = photo_pair(130, 97)
        maps = smooth_maps((16, 12), (130, 97), seed=7)
        renderer = OpenCVRenderer(source, target, maps, Scales(), strip_rows=8)
        whole = renderer.detail_plan.energies(to_float(source))
        for by_strips, at_once in zip(renderer.endpoint_energies(0), whole):
            np.testing.assert_array_equal(by_strips, at_once)

    def test_the_margin_is_what_keeps_them_equal(self) -> None:
        source, target = photo_pair(203, 150)
        maps = smooth_maps((16, 12), (203, 150), seed=3)
        whole = OpenCVRenderer(source, target, maps, Scales(warp=0.5)).render([0.4])
        strips = OpenCVRenderer(source, target, maps, Scales(warp=0.5), strip_rows=8, strip_margin=8)
        assert not np.array_equal(strips.render([0.4]), whole)


class TestScratch:
    """Each frame in flight writes its intermediates into arrays kept from the frames before."""

    def test_later_frames_reuse_the_arrays_of_the_first(self) -> None:
        source, target = photo_pair(130, 97)
        renderer = OpenCVRenderer(source, target, smooth_maps((16, 12), (130, 97), seed=8), Scales(), strip_rows=24)
        renderer.frame(0.5)
        assert renderer.kept_working_arrays == 1
        frames = [renderer.frame(alpha) for alpha in (0.2, 0.8, 0.35)]
        assert renderer.kept_working_arrays == 1  # one frame at a time: the first's arrays serve every later one
        fresh = OpenCVRenderer(source, target, smooth_maps((16, 12), (130, 97), seed=8), Scales(), strip_rows=24)
        np.testing.assert_array_equal(np.stack(frames), fresh.render([0.2, 0.8, 0.35]))

    def test_frames_in_flight_together_use_their_own(self) -> None:
        source, target = photo_pair(130, 97)
        maps = smooth_maps((16, 12), (130, 97), seed=9, warp=6.0)
        renderer = FrameRenderer(source, target, maps, Scales(warp=0.5), engine="opencv")
        alphas = np.linspace(0.1, 0.9, 7)
        streamed = np.stack(list(renderer.frames(alphas)))  # two threads, two frames at a time
        assert renderer.frame_engine.kept_working_arrays >= 1  # kept for the next frames
        renderer.release_working_arrays()
        assert renderer.frame_engine.kept_working_arrays == 0
        one_by_one = OpenCVRenderer(source, target, maps, Scales(warp=0.5))
        np.testing.assert_array_equal(streamed, one_by_one.render(alphas))
        assert one_by_one.kept_working_arrays == 1

    def test_a_name_gives_the_first_rows_of_its_array_and_grows_it_when_needed(self) -> None:
        from morphing.render.opencv import ScratchArrays

        scratch = ScratchArrays()
        big = scratch("a", (10, 4))
        small = scratch("a", (6, 4))
        assert small.shape == (6, 4) and np.shares_memory(small, big)
        bigger = scratch("a", (12, 4))
        assert bigger.shape == (12, 4) and not np.shares_memory(bigger, big)
        assert scratch("a", (12, 5)).shape == (12, 5) and scratch("a", (3, 5), np.uint8).dtype == np.uint8

    @pytest.mark.parametrize("shape", [(7, 9), (8, 9), (7, 8), (6, 8)])
    def test_halving_a_view_with_spare_sides_equals_halving_a_copy(self, shape: tuple[int, int]) -> None:
        from morphing.render.opencv import halve, ScratchArrays

        image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        scratch = ScratchArrays()
        view = scratch("image", shape, even=True)
        view[...] = image
        assert view.shape == shape and view.base.shape == (shape[0] + shape[0] % 2, shape[1] + shape[1] % 2)
        by_copy = halve(image.copy(), ScratchArrays(), "halved")
        np.testing.assert_array_equal(halve(view, scratch, "halved"), by_copy)
        padded = np.pad(image, [(0, shape[0] % 2), (0, shape[1] % 2)], mode="edge")
        blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(by_copy, blocks, atol=1e-6)  # 2×2 block means, the edge repeated


def test_bad_arguments_are_refused() -> None:
    source, target = photo_pair(20, 24)
    maps = smooth_maps((4, 4), (20, 24), seed=4)
    with pytest.raises(ValueError, match="interpolation"):
        OpenCVRenderer(source, target, maps, Scales(), interpolation="nearest")
    with pytest.raises(ValueError, match="blend"):
        OpenCVRenderer(source, target, maps, Scales(), blend="max")
    with pytest.raises(ValueError, match="shape"):
        OpenCVRenderer(source, target[:10], maps, Scales())


def test_it_imports_no_tensorflow() -> None:
    code = ("import sys, morphing.render.opencv; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=IMAGES.parent, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_the_check_runs_before_every_strip_and_can_stop_the_frames() -> None:
    source, target = photo_pair(120, 40)
    maps = smooth_maps((8, 4), (120, 40), seed=5)
    calls = []
    renderer = OpenCVRenderer(source, target, maps, Scales(), blend="linear", strip_rows=16)
    renderer.frame(0.5, check=lambda: calls.append(1))
    assert len(calls) == 120 // 16 + 1

    class Stop(Exception):
        pass

    def stop_at_the_third() -> None:
        calls.append(1)
        if len(calls) > 10:
            raise Stop

    wrapped = FrameRenderer(source, target, maps, Scales(), blend="linear", engine="opencv", check=stop_at_the_third)
    with pytest.raises(Stop):
        list(wrapped.frames(np.linspace(0.1, 0.9, 5)))

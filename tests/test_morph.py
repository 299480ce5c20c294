"""The public morph object: fit once, render any frame, any multipliers, any file, never refitting."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from morphing import Morph
from morphing.model.maps import WARP, MapsFileError, MorphMaps, Scales
from morphing.model.points import PointPairs
from morphing.testing.scenes import toy_scene
from morphing.model.settings import FitSettings, FrameSettings
from morphing.sequence import ProgramCache, shared_program_cache

ROOT = Path(__file__).resolve().parent.parent
TINY_FIT = FitSettings(epochs=3, working_size=32, face_points=False)
FORMULA = FrameSettings(frames=5, interpolation="bilinear", blend="linear")
ENGINES = ("opencv", "tensorflow")


def toy_pair() -> tuple[np.ndarray, np.ndarray]:
    scene = toy_scene(24, 32)
    return scene.render(0.0), scene.render(1.0)


@pytest.fixture(scope="module")
def fitted() -> Morph:
    source, target = toy_pair()
    return Morph(source, target, settings=TINY_FIT).fit()


class TestFit:
    def test_progress_hears_every_step_of_every_leg_and_the_start_is_kept(self) -> None:
        source, target = toy_pair()
        third = np.ascontiguousarray(source[::-1])
        heard: list[tuple[int, int]] = []
        morph = Morph(source, [target, third], settings=TINY_FIT)
        assert morph.legs == 2
        morph.fit(lambda leg, step, loss: heard.append((leg, step)))
        for leg in range(2):  # consecutive steps to the last (a probe's steps are skipped when none runs)
            steps = [step for heard_leg, step in heard if heard_leg == leg]
            assert len(steps) >= TINY_FIT.epochs
            assert steps == list(range(morph.total_steps - len(steps), morph.total_steps))
        assert [leg for leg, _ in heard] == sorted(leg for leg, _ in heard)
        assert len(morph.maps) == 2
        assert all(choice is not None and choice.describe().startswith("start: ") for choice in morph.start_choices)
        # Each leg's polish ran on its own keys and said what it did.
        assert len(morph.polishes) == 2 and all("polished" in polished.describe() for polished in morph.polishes)

    def test_morphs_given_no_cache_share_the_processs_and_fit_as_they_would_alone(self) -> None:
        source, target = toy_pair()
        first, second = Morph(source, target, settings=TINY_FIT), Morph(target, source, settings=TINY_FIT)
        assert first.cache is second.cache is shared_program_cache()
        own = ProgramCache()
        alone = Morph(target, source, settings=TINY_FIT, cache=own)
        assert alone.cache is own
        first.fit()
        second.fit()
        alone.fit()
        assert first.cache.fitter(TINY_FIT, Scales()) is not own.fitter(TINY_FIT, Scales())
        np.testing.assert_allclose(second.maps[0].forward, alone.maps[0].forward, rtol=0, atol=1e-5)
        np.testing.assert_allclose(second.maps[0].backward, alone.maps[0].backward, rtol=0, atol=1e-5)

    def test_a_prepared_morph_fits_with_what_it_compiled_and_takes_face_points_found_meanwhile(self) -> None:
        source, target = toy_pair()
        own = ProgramCache()
        morph = Morph(source, target, settings=TINY_FIT, cache=own)
        assert morph.prepare() is morph
        (program,) = own.fitter(TINY_FIT, Scales()).programs
        assert "terms" in program.traced
        face = PointPairs(np.array([[8.0, 10.0]]), np.array([[9.0, 12.0]]), source.shape[:2], target.shape[:2])
        morph.face_points = [face]
        with pytest.raises(ValueError, match="per leg"):
            morph.face_points = [face, face]
        morph.fit()
        assert len(own.fitter(TINY_FIT, Scales()).programs) == 1
        assert program.term_gradients.experimental_get_tracing_count() == 1
        alone = Morph(source, target, settings=TINY_FIT, face_points=[face], cache=ProgramCache()).fit()
        np.testing.assert_allclose(morph.maps[0].forward, alone.maps[0].forward, rtol=0, atol=1e-5)
        np.testing.assert_allclose(morph.maps[0].backward, alone.maps[0].backward, rtol=0, atol=1e-5)

    def test_maps_are_refused_before_a_fit(self) -> None:
        with pytest.raises(RuntimeError, match="fit"):
            Morph(*toy_pair(), settings=TINY_FIT).frame(0.5)

    def test_loop_adds_a_leg_back_to_the_source(self) -> None:
        source, target = toy_pair()
        morph = Morph(source, target, loop=True, settings=TINY_FIT)
        assert morph.legs == 2
        np.testing.assert_array_equal(morph.keys[-1], source)

    def test_bad_arguments_are_refused_with_what_is_wrong(self) -> None:
        source, target = toy_pair()
        with pytest.raises(ValueError, match="uint8"):
            Morph(source.astype(np.float32), target)
        with pytest.raises(TypeError, match="FitSettings"):
            Morph(source, target, settings={"epochs": 3})
        with pytest.raises(ValueError, match="per leg"):
            Morph(source, [target, target], points=[None])
        with pytest.raises(ValueError, match="at least one target"):
            Morph(source, [])


class TestFrames:
    @pytest.mark.parametrize("engine", ENGINES)
    def test_the_ends_are_the_key_images_pixel_for_pixel(self, fitted: Morph, engine: str) -> None:
        frames = FrameSettings(engine=engine)
        np.testing.assert_array_equal(fitted.frame(0.0, frames=frames), fitted.keys[0])
        np.testing.assert_array_equal(fitted.frame(1.0, frames=frames), fitted.keys[1])

    @pytest.mark.parametrize("engine", ENGINES)
    def test_zero_multipliers_render_the_plain_cross_dissolve(self, fitted: Morph, engine: str) -> None:
        # With every map scaled by 0 the formula is (1 - alpha) S + alpha T: an independent numpy reference.
        source, target = (key.astype(np.float64) for key in fitted.keys)
        alphas = [0.25, 0.5, 0.75]
        frames = list(fitted.frames(alphas, scales=Scales(mult=0.0, add=0.0, warp=0.0),
                                    frames=FrameSettings(interpolation="bilinear", blend="linear", engine=engine)))
        for alpha, frame in zip(alphas, frames):
            expected = (1 - alpha) * source + alpha * target
            assert np.abs(frame.astype(np.float64) - expected).max() <= 1.0

    def test_other_multipliers_re_render_the_same_maps_without_a_refit(self, fitted: Morph) -> None:
        maps = fitted.maps
        plain = fitted.frame(0.5, frames=FORMULA)
        exaggerated = fitted.frame(0.5, frames=FORMULA, scales=Scales(warp=3.0, add=2.0, mult=2.0))
        assert fitted.maps is maps
        assert np.abs(plain.astype(int) - exaggerated.astype(int)).max() > 0
        np.testing.assert_array_equal(fitted.frame(0.5, frames=FORMULA), plain)

    def test_the_animation_follows_its_frame_settings(self, fitted: Morph) -> None:
        frames = list(fitted.frames(frames=FrameSettings(frames=4, hold=2, boomerang=True)))
        # source held 3 times, 2 in-betweens, target held 3 times, then the in-betweens backwards (the
        # source follows when the animation loops).
        assert len(frames) == 3 + 2 + 3 + 2
        for index in (0, 1, 2):
            np.testing.assert_array_equal(frames[index], fitted.keys[0])
        for index in (5, 6, 7):
            np.testing.assert_array_equal(frames[index], fitted.keys[1])
        np.testing.assert_array_equal(frames[-1], frames[3])

    def test_a_smaller_render_of_the_same_fit(self, fitted: Morph) -> None:
        assert fitted.frame(0.5, long_side=16).shape == (12, 16, 3)


class TestFiles:
    def test_save_writes_the_animation_and_its_frames(self, fitted: Morph, tmp_path: Path) -> None:
        count = fitted.save(tmp_path / "out.gif", frames=FrameSettings(frames=6), frames_dir=tmp_path / "frames")
        assert count == 6
        assert iio.imread(tmp_path / "out.gif", index=None).shape[0] == 6
        assert sorted(path.name for path in (tmp_path / "frames").iterdir()) == [f"{i:04d}.png" for i in range(6)]
        assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []

    def test_maps_saved_and_loaded_render_the_same_frames(self, fitted: Morph, tmp_path: Path) -> None:
        fitted.save_maps(tmp_path / "maps.npz")
        again = Morph(*fitted.keys, settings=TINY_FIT).load_maps(tmp_path / "maps.npz")
        np.testing.assert_array_equal(again.frame(0.5, frames=FORMULA), fitted.frame(0.5, frames=FORMULA))

    def test_a_file_that_is_not_maps_is_refused(self, fitted: Morph, tmp_path: Path) -> None:
        (tmp_path / "bad.npz").write_bytes(b"not a zip")
        with pytest.raises(MapsFileError):
            Morph(*fitted.keys).load_maps(tmp_path / "bad.npz")


class TestInputs:
    def test_a_target_of_another_size_is_brought_to_the_source_and_said(self) -> None:
        source, target = toy_pair()
        larger = np.repeat(np.repeat(target, 2, axis=0), 2, axis=1)
        morph = Morph(source, larger, settings=TINY_FIT)
        assert morph.keys[1].shape == source.shape
        assert len(morph.notes) == 1 and "match the source" in morph.notes[0]

    def test_points_in_the_targets_own_pixels_are_carried_into_the_key_images(self) -> None:
        source, target = toy_pair()
        larger = np.repeat(np.repeat(target, 2, axis=0), 2, axis=1)  # 48x64: every pixel doubled
        given = PointPairs(np.array([[5.0, 7.0]]), np.array([[11.5, 15.5]]), source.shape[:2], larger.shape[:2])
        morph = Morph(source, larger, points=given, settings=TINY_FIT)
        (leg_points,) = morph.points
        np.testing.assert_allclose(leg_points.source, [[5.0, 7.0]])
        np.testing.assert_allclose(leg_points.target, [[5.5, 7.5]])  # pixel centres halve: (p + .5) / 2 - .5


def test_the_readme_python_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## From Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shutil.copytree(ROOT / "images", tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    written = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    assert written, "the example wrote nothing"
    for name in written:
        assert (tmp_path / name).stat().st_size > 0


class TestTransparency:
    """Opacity is carried by the warp alone: a disc on a transparent ground moves with its mask."""

    @staticmethod
    def disc_alpha(centre_x: float, height: int = 32, width: int = 48) -> np.ndarray:
        yy, xx = np.mgrid[0:height, 0:width]
        return np.where((yy - 16) ** 2 + (xx - centre_x) ** 2 <= 36, 255, 0).astype(np.uint8)

    @staticmethod
    def shifted_maps(dx: float, height: int = 32, width: int = 48) -> MorphMaps:
        # A constant warp moving the source dx pixels right (and the target back): flow = map * w * size / cells.
        grid = (8, 12)
        forward = np.zeros((*grid, 8), np.float32)
        backward = np.zeros((*grid, 8), np.float32)
        warp_scale = Scales().warp
        forward[..., WARP.start + 1] = dx / (warp_scale * width / grid[1])
        backward[..., WARP.start + 1] = -dx / (warp_scale * width / grid[1])
        return MorphMaps(forward, backward, Scales(), (height, width))

    def test_the_mask_moves_with_the_warp_and_the_ends_are_exact(self) -> None:
        colour = np.full((32, 48, 3), 200, np.uint8)
        source_alpha, target_alpha = self.disc_alpha(12), self.disc_alpha(28)
        morph = Morph(colour, colour.copy(), alphas=[source_alpha, target_alpha], settings=TINY_FIT)
        morph.maps = [self.shifted_maps(16.0)]
        frames = list(morph.frames([0.0, 0.5, 1.0], frames=FrameSettings(engine="opencv")))
        assert all(frame.shape == (32, 48, 4) for frame in frames)
        np.testing.assert_array_equal(frames[0][..., 3], source_alpha)
        np.testing.assert_array_equal(frames[2][..., 3], target_alpha)
        middle = frames[1][..., 3].astype(np.float64)
        centre_x = (middle.sum(axis=0) * np.arange(48)).sum() / middle.sum()
        assert abs(centre_x - 20.0) < 0.5  # halfway: one disc, not two half-faded ones
        assert middle.max() >= 250

    def test_an_opaque_image_beside_a_transparent_one_is_opaque(self, tmp_path: Path) -> None:
        colour = np.full((32, 48, 3), 90, np.uint8)
        morph = Morph(colour, colour.copy(), alphas=[self.disc_alpha(12), None], settings=TINY_FIT)
        morph.maps = [self.shifted_maps(0.0)]
        np.testing.assert_array_equal(morph.frame(1.0)[..., 3], 255)
        morph.save(tmp_path / "a.gif", frames=FrameSettings(frames=4))
        with Image.open(tmp_path / "a.gif") as gif:
            first = np.asarray(gif.convert("RGBA"))
        assert first[16, 12, 3] == 255 and first[0, 0, 3] == 0  # the disc opaque, the ground transparent


def test_every_frame_setting_is_reachable_from_the_object(fitted: Morph) -> None:
    from morphing.model.settings import DetailSettings

    plain = fitted.frame(0.5)
    ungained = fitted.frame(0.5, frames=FrameSettings(detail=DetailSettings(max_gain=1.0)))
    assert np.abs(plain.astype(int) - ungained.astype(int)).max() > 0

"""The render seam: every ``FrameEngine`` keeps one contract, tested here through ``FrameRenderer`` for each.

Adding an engine: add its name to ``ENGINES`` and it is held to the same tests.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from morphing.model.maps import Scales, save_maps
from morphing.render.renderer import FrameRenderer
from tests.conftest import ROOT
from tests.helpers import random_maps, random_pair

ENGINES = ("opencv", "tensorflow")
MODES = [("bicubic", "detail"), ("bicubic", "linear"), ("bilinear", "detail"), ("bilinear", "linear")]
SCALES = Scales(mult=0.6, add=0.2, warp=0.5)


def renderer(engine: str, interpolation: str = "bicubic", blend: str = "detail", scales: Scales = SCALES,
             seed: int = 3) -> FrameRenderer:
    source, target = random_pair(shape=(20, 24, 3), seed=seed)
    return FrameRenderer(source, target, random_maps(image_shape=(20, 24), seed=seed + 1), scales,
                         interpolation=interpolation, blend=blend, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
class TestContract:
    def test_it_names_itself_and_its_frames_shape(self, engine: str) -> None:
        made = renderer(engine)
        assert made.engine == engine
        assert tuple(made.frame_engine.shape) == (20, 24)
        assert made.render([0.5]).shape == (1, 20, 24, 3) and made.render([0.5]).dtype == np.uint8

    @pytest.mark.parametrize("interpolation, blend", MODES)
    def test_the_ends_are_the_key_images_exactly(self, engine: str, interpolation: str, blend: str) -> None:
        source, target = random_pair(shape=(20, 24, 3), seed=3)
        frames = renderer(engine, interpolation, blend).render([0.0, 1.0])
        np.testing.assert_array_equal(frames[0], source)
        np.testing.assert_array_equal(frames[1], target)

    def test_frames_yield_what_render_returns_in_order(self, engine: str) -> None:
        made = renderer(engine)
        alphas = np.linspace(0.0, 1.0, 7)
        np.testing.assert_array_equal(np.stack(list(made.frames(alphas, batch=3))), made.render(alphas))

    def test_zero_multipliers_give_the_plain_cross_dissolve(self, engine: str) -> None:
        # An independent numpy reference: with every map scaled by 0, frame = (1 - alpha) S + alpha T.
        source, target = (image.astype(np.float64) for image in random_pair(shape=(20, 24, 3), seed=3))
        frames = renderer(engine, "bilinear", "linear", Scales(mult=0.0, add=0.0, warp=0.0)).render([0.3, 0.6])
        for alpha, frame in zip((0.3, 0.6), frames):
            assert np.abs(frame - ((1 - alpha) * source + alpha * target)).max() <= 1.0

    def test_releasing_the_working_arrays_changes_no_frame(self, engine: str) -> None:
        made = renderer(engine)
        before = made.render([0.25, 0.75])
        made.release_working_arrays()
        np.testing.assert_array_equal(made.render([0.25, 0.75]), before)

    def test_bad_alphas_are_refused(self, engine: str) -> None:
        with pytest.raises(ValueError, match="finite"):
            renderer(engine).render([0.5, float("nan")])


@pytest.mark.parametrize("interpolation, blend", MODES)
def test_the_engines_agree_within_one_grey_level(interpolation: str, blend: str) -> None:
    alphas = [0.2, 0.5, 0.8]
    frames = [renderer(engine, interpolation, blend).render(alphas).astype(int) for engine in ENGINES]
    assert np.abs(frames[0] - frames[1]).max() <= 1


def test_rendering_with_opencv_from_saved_maps_imports_no_tensorflow(tmp_path: Path) -> None:
    source, target = random_pair(shape=(20, 24, 3), seed=5)
    np.save(tmp_path / "source.npy", source)
    np.save(tmp_path / "target.npy", target)
    save_maps(random_maps(image_shape=(20, 24), seed=6), tmp_path / "maps.npz")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from morphing import Morph, FrameSettings
        folder = {str(tmp_path)!r}
        morph = Morph(np.load(folder + "/source.npy"), np.load(folder + "/target.npy"))
        morph.load_maps(folder + "/maps.npz")
        count = morph.save(folder + "/out.gif", frames=FrameSettings(frames=4, engine="opencv"))
        morph.frame(0.5, frames=FrameSettings(engine="opencv"))
        print(count, "tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "False"]
    assert (tmp_path / "out.gif").stat().st_size > 0


def test_the_detail_settings_reach_both_engines() -> None:
    from morphing.model.settings import DetailSettings

    source, target = random_pair(shape=(20, 24, 3), seed=3)
    maps = random_maps(image_shape=(20, 24), seed=4)
    frames = {}
    for engine in ENGINES:
        for name, detail in (("default", None), ("no gain", DetailSettings(max_gain=1.0))):
            made = FrameRenderer(source, target, maps, SCALES, engine=engine, detail_settings=detail)
            frames[engine, name] = made.render([0.5]).astype(int)
    for engine in ENGINES:
        assert np.abs(frames[engine, "default"] - frames[engine, "no gain"]).max() > 1
    assert np.abs(frames["opencv", "no gain"] - frames["tensorflow", "no gain"]).max() <= 1

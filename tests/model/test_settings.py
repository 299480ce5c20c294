"""Settings and mode names: one TensorFlow-free home that the CLI and the core share."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from morphing.model import settings
from tests.conftest import ROOT


def test_the_settings_and_the_command_line_import_no_tensorflow() -> None:
    code = ("import sys, morphing.model.settings, morphing.cli, morphing.io.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_the_core_modules_use_these_very_settings() -> None:
    from morphing.fit import affine
    from morphing.fit import fitter as fit
    from morphing.model import timeline
    from morphing.render import blend, warp
    from morphing.tools import hybrid, shift

    assert fit.FitSettings is settings.FitSettings and affine.GlobalSettings is settings.GlobalSettings
    assert hybrid.HybridSettings is settings.HybridSettings and shift.AlignSettings is settings.AlignSettings
    assert warp.WARP_INTERPOLATIONS is settings.WARP_INTERPOLATIONS and blend.BLENDS is settings.BLENDS
    assert timeline.EASINGS is settings.EASINGS
    assert shift.INTERPOLATIONS is settings.SHIFT_INTERPOLATIONS and hybrid.STARTS is settings.HYBRID_STARTS


@pytest.mark.parametrize("sigma, size", [(0.3, 3), (1.0, 7), (2.5, 17), (4.0, 25), (33.3, 201)])
def test_default_kernel_size_covers_three_sigma(sigma: float, size: int) -> None:
    assert settings.default_kernel_size(sigma) == size  # 2·ceil(3σ) + 1


def test_help_shows_the_real_defaults(capsys) -> None:
    from morphing.cli import main

    fit, hybrid, align = settings.FitSettings(), settings.HybridSettings(), settings.AlignSettings()
    expected = {
        (): [f"default {fit.working_size}", f"(default: {fit.epochs})"],
        ("warp",): [f"[default {fit.working_size}", f"(default: {fit.epochs})"],
        ("hybrid",): [f"(default: {hybrid.steps})", f"(default: {hybrid.sigma})"],
        ("align",): [f"(default: {align.steps_per_level})", f"(default: {align.interpolation})"],
    }
    for command, pieces in expected.items():
        assert main([*command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for piece in pieces:
            assert piece in text, (command, piece)


def test_frame_settings_refuse_what_cannot_be_rendered() -> None:
    assert settings.FrameSettings().frames == 100
    for bad in ({"frames": 1}, {"hold": -1}, {"loop": True, "boomerang": True}, {"easing": "bounce"},
                {"blend": "x"}, {"interpolation": "nearest"}, {"engine": "cuda"}):
        with pytest.raises(ValueError):
            settings.FrameSettings(**bad)


class TestArgumentChecks:
    def test_settings_refuse_what_is_not_a_whole_number_or_too_small(self) -> None:
        from morphing.model.settings import FitSettings, FrameSettings

        with pytest.raises(ValueError, match="working_size must be at least 8, got 0"):
            FitSettings(working_size=0)
        with pytest.raises(TypeError, match="frames must be a whole number, got 2.5"):
            FrameSettings(frames=2.5)
        with pytest.raises(TypeError, match="epochs must be a whole number"):
            FitSettings(epochs=True)
        assert FitSettings(epochs=np.int64(5)).epochs == 5  # numpy's integers are whole numbers
        with pytest.raises(ValueError, match="probe_judge must be 'loss' or 'middle', got 'ghost'"):
            FitSettings(probe_judge="ghost")
        with pytest.raises(ValueError, match="unfold_rounds must be at least 0, got -1"):
            FitSettings(unfold_rounds=-1)
        with pytest.raises(ValueError, match="unfold_tail must be between 0 and 1, got 1.5"):
            FitSettings(unfold_tail=1.5)
        for bad in (-0.5, float("nan")):
            with pytest.raises(ValueError, match="structure_colour must be at least 0"):
                FitSettings(structure_colour=bad)
        from morphing.model.settings import StartSettings

        with pytest.raises(ValueError, match=r"probe_sides must name one or more sides of at least 8 pixels, got \(\)"):
            StartSettings(probe_sides=())
        with pytest.raises(ValueError, match="probe_sides must name"):
            StartSettings(probe_sides=(64, 4))
        with pytest.raises(ValueError, match="flow_fusion must be a whole number of pixels, 0 or more, got -1"):
            StartSettings(flow_fusion=-1)
        with pytest.raises(ValueError, match="flow_fusion must be a whole number"):
            StartSettings(flow_fusion=2.5)
        assert StartSettings(flow_fusion=0).flow_fusion == 0
        with pytest.raises(ValueError, match="flow_fusion_margin must be 0 or more, got -0.1"):
            StartSettings(flow_fusion_margin=-0.1)
        for name in ("probe_flow_share", "flow_consistency", "region_step", "region_quiet"):
            for bad in (-0.5, math.nan):
                with pytest.raises(ValueError, match=f"{name} must be 0 or more"):
                    StartSettings(**{name: bad})

    def test_the_api_names_the_argument_a_wrong_image_was_given_for(self) -> None:
        from morphing import FitSettings, Scales, fit_maps, fit_sequence
        from morphing.tools.transfer import warp_to_target
        from tests.helpers import random_maps

        good = np.zeros((16, 16, 3), np.uint8)
        with pytest.raises(ValueError, match=r"keys\[1\] must be \[H, W, 3\] uint8"):
            fit_sequence([good, good.astype(np.float32)], Scales(), FitSettings(face_points=False))
        with pytest.raises(ValueError, match=r"keys must all have one shape"):
            fit_sequence([good, np.zeros((16, 18, 3), np.uint8)], Scales(), FitSettings(face_points=False))
        with pytest.raises(TypeError, match=r"keys\[0\] must be an \[H, W, 3\] uint8 array, got list"):
            fit_sequence([[0], good], Scales(), FitSettings(face_points=False))
        with pytest.raises(ValueError, match=r"source must be \[H, W, 3\] floats"):
            fit_maps(good, good, Scales())
        nan = np.full((16, 16, 3), np.nan, np.float32)
        with pytest.raises(ValueError, match="target holds NaN"):
            fit_maps(np.zeros((16, 16, 3), np.float32), nan, Scales())
        with pytest.raises(ValueError, match=r"source must be \[H, W, C\] floats"):
            warp_to_target(good, random_maps(), Scales())

    def test_nan_alphas_shifts_and_integer_hybrid_images_are_named(self) -> None:
        from morphing import FrameRenderer, Scales, fit_hybrid, shift_pixels
        from tests.helpers import random_maps, random_pair

        source, target = random_pair()
        renderer = FrameRenderer(source, target, random_maps(), Scales(warp=0.5), engine="opencv")
        with pytest.raises(ValueError, match="alphas must be finite numbers"):
            renderer.render([0.5, float("nan")])
        with pytest.raises(ValueError, match="shift must be finite numbers"):
            shift_pixels(source, (float("nan"), 1.0))
        with pytest.raises(ValueError, match="near must be .* floats in"):
            fit_hybrid(source, target)

"""Frame order for sequences, holds, loops and boomerangs; easing; pacing."""

from __future__ import annotations

import numpy as np
import pytest

from morphing.model.timeline import FrameAt, build_timeline, ease, frame_alphas, is_key


def test_three_legs_share_their_keys_once() -> None:
    timeline = build_timeline([frame_alphas(5)] * 3)
    assert len(timeline) == 1 + 3 * 4
    keys = [i for i, frame in enumerate(timeline) if is_key(frame)]
    assert keys == [0, 4, 8, 12]
    assert timeline[4] == FrameAt(0, 1.0) and timeline[5] == FrameAt(1, 0.25)
    assert timeline[-1] == FrameAt(2, 1.0)


def test_hold_repeats_every_key_frame() -> None:
    timeline = build_timeline([frame_alphas(3)] * 2, hold=2)
    assert timeline == [FrameAt(0, 0.0)] * 3 + [FrameAt(0, 0.5)] + [FrameAt(0, 1.0)] * 3 + [FrameAt(1, 0.5)] + [
        FrameAt(1, 1.0)
    ] * 3


def test_loop_drops_the_final_repeat_of_the_first_key() -> None:
    timeline = build_timeline([frame_alphas(4)] * 2, loop=True)
    assert len(timeline) == 6 and timeline[-1] == FrameAt(1, 2 / 3)


def test_boomerang_plays_forward_then_back_without_repeating_the_turns() -> None:
    timeline = build_timeline([frame_alphas(4)], boomerang=True)
    alphas = [frame.alpha for frame in timeline]
    np.testing.assert_allclose(alphas, [0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    with pytest.raises(ValueError):
        build_timeline([frame_alphas(4)], boomerang=True, loop=True)


def test_ease_in_out_is_slow_at_the_ends_and_exact_at_them() -> None:
    progress = np.linspace(0, 1, 11)
    eased = ease(progress, "ease-in-out")
    assert eased[0] == 0.0 and eased[-1] == 1.0 and abs(eased[5] - 0.5) < 1e-12
    assert eased[1] < progress[1] and eased[9] > progress[9]
    np.testing.assert_array_equal(ease(progress, "linear"), progress)
    with pytest.raises(ValueError):
        ease(progress, "bounce")


def test_frame_alphas_run_from_zero_to_one() -> None:
    alphas = frame_alphas(5)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    with pytest.raises(ValueError):
        frame_alphas(1)

"""Which frame shows what: the alphas of a transition and the order of (leg, alpha) pairs.

The alpha schedule in one place: ``frame_alphas`` (evenly spaced), ``ease``
(progress → alpha), ``paced`` (progress → alpha along a re-timed transition,
see ``morphing.render.renderer.even_pacing_alphas``) and ``build_timeline`` (legs,
holds, loop, boomerang); ``morphing.sequence.leg_alphas`` combines them.

A sequence of key images ``k0 → k1 → … → kn`` has ``n`` legs; leg ``i`` morphs
``k_i`` into ``k_{i+1}``, its alpha running from 0 to 1. Consecutive legs share
their key image, which is shown once. Pure functions of counts and options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from morphing.model.settings import EASINGS

__all__ = ["FrameAt", "EASINGS", "frame_alphas", "ease", "paced", "build_timeline", "is_key"]


class FrameAt(NamedTuple):
    """One output frame: leg ``leg`` at ``alpha`` (0 = its first key, 1 = its second)."""

    leg: int
    alpha: float


def frame_alphas(count: int) -> np.ndarray:
    """``[count]`` float64 alphas ``i / (count - 1)``, from exactly 0 to exactly 1."""
    if count < 2:
        raise ValueError(f"a transition needs at least 2 frames, got {count}")
    return np.arange(count, dtype=np.float64) / (count - 1)


def ease(progress: np.ndarray, easing: str) -> np.ndarray:
    """Map progress in [0, 1] to alpha in [0, 1]; 0 and 1 stay exactly 0 and 1.

    ``linear`` is the identity; ``ease-in-out`` is ``(1 - cos(pi t)) / 2``:
    it starts and ends slowly.
    """
    progress = np.asarray(progress, np.float64)
    if easing == "linear":
        return progress
    if easing == "ease-in-out":
        eased = (1.0 - np.cos(np.pi * progress)) / 2.0
        eased[progress <= 0.0] = 0.0
        eased[progress >= 1.0] = 1.0
        return eased
    raise ValueError(f"unknown easing {easing!r}; use one of {', '.join(EASINGS)}")


def paced(progress: np.ndarray, even: np.ndarray) -> np.ndarray:
    """Progress in [0, 1] → alpha along ``even`` (alphas at equal steps of visible change).

    ``even``: ``[n]`` alphas from 0 to 1 (``morphing.render.renderer.even_pacing_alphas``),
    read as alpha at progress ``i / (n - 1)`` and interpolated linearly between;
    the ends stay exactly 0 and 1. Easing applies to progress, before this.
    """
    alphas = np.interp(progress, np.linspace(0.0, 1.0, len(even)), even)
    alphas[0], alphas[-1] = 0.0, 1.0
    return alphas


def is_key(frame: FrameAt) -> bool:
    """Whether ``frame`` shows a key image exactly."""
    return frame.alpha in (0.0, 1.0)


def build_timeline(
    leg_alphas: Sequence[np.ndarray],
    *,
    hold: int = 0,
    boomerang: bool = False,
    loop: bool = False,
) -> list[FrameAt]:
    """The animation's frames in order.

    Args:
      leg_alphas: per leg, its alphas from exactly 0 to exactly 1.
      hold: extra copies of every key-image frame (a pause on each key).
      boomerang: play forward, then backward to just after the start.
      loop: the last leg returns to the first key image, so the final frame
        (equal to the first) is dropped; the animation wraps seamlessly.

    With neither ``loop`` nor ``boomerang`` the frame count is
    ``1 + sum(len(a) - 1 for a in leg_alphas)`` plus the holds.
    """
    if loop and boomerang:
        raise ValueError("loop and boomerang cannot be combined")
    frames: list[FrameAt] = []
    for leg, alphas in enumerate(leg_alphas):
        alphas = np.asarray(alphas, np.float64)
        if alphas[0] != 0.0 or alphas[-1] != 1.0:
            raise ValueError(f"leg {leg}'s alphas must run from 0 to 1")
        start = 0 if leg == 0 else 1  # the shared key is already there
        frames.extend(FrameAt(leg, float(alpha)) for alpha in alphas[start:])
    if loop:
        frames = frames[:-1]
    if boomerang:
        frames = frames + frames[-2:0:-1]
    if hold:
        held: list[FrameAt] = []
        for frame in frames:
            held.extend([frame] * (1 + hold if is_key(frame) else 1))
        frames = held
    return frames

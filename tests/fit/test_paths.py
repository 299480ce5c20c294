"""Dense starts held along the paths things travel (``morphing.fit.paths``), on flows with a known answer."""

from __future__ import annotations

import math

import cv2
import numpy as np

from morphing.fit.paths import (
    agreeing,
    along_paths,
    dominant_motion,
    forward_backward_mismatch,
)
from morphing.testing.scenes import sample_bilinear


def similarity_flows(size: int, turn: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """``[2, size, size, 2]``: both directions' flows (dy, dx; ``dense_image_warp``'s sign) of a similarity
    about the picture's centre, written out pixel by pixel: the target's pixel ``p`` shows the source at
    ``c + scale·R(turn)·(p - c) + shift``."""
    centre = (size - 1) / 2.0
    cos, sin = np.cos(turn), np.sin(turn)
    forward = np.zeros((size, size, 2))
    backward = np.zeros((size, size, 2))
    for y in range(size):
        for x in range(size):
            dy, dx = y - centre, x - centre
            sampled_y = centre + scale * (cos * dy - sin * dx) + shift[0]
            sampled_x = centre + scale * (sin * dy + cos * dx) + shift[1]
            forward[y, x] = (y - sampled_y, x - sampled_x)
            # The inverse: the source's pixel q shows the target at c + R(-turn)·(q - c - shift) / scale.
            qy, qx = dy - shift[0], dx - shift[1]
            back_y = centre + (cos * qy + sin * qx) / scale
            back_x = centre + (-sin * qy + cos * qx) / scale
            backward[y, x] = (y - back_y, x - back_x)
    return np.stack([forward, backward]).astype(np.float32)


def moving_square(size: int, corner: tuple[int, int], side: int, step: tuple[int, int]) -> np.ndarray:
    """``[2, size, size, 2]``: the flows of a ``side``-px square at ``corner`` (in the source) that moves by
    ``step`` (whole pixels) over a still picture: the S→T flow holds ``step`` where the square stands in the
    target, the T→S flow ``-step`` where it stands in the source, no motion elsewhere."""
    flows = np.zeros((2, size, size, 2), np.float32)
    (y, x), (dy, dx) = corner, step
    flows[0, y + dy:y + dy + side, x + dx:x + dx + side] = (dy, dx)
    flows[1, y:y + side, x:x + side] = (-dy, -dx)
    return flows


class TestDominantMotion:
    def test_recovers_a_similarity_under_a_thing_that_moved_on_its_own(self) -> None:
        scene = similarity_flows(64, turn=0.1, scale=1.08, shift=(2.5, -4.0))
        flows = scene.copy()
        flows[0, 10:22, 40:52] += (7.0, -9.0)  # a tenth of the picture moved on its own
        np.testing.assert_allclose(dominant_motion(flows), scene, atol=0.05)

    def test_a_still_picture_is_no_motion(self) -> None:
        np.testing.assert_allclose(dominant_motion(np.zeros((2, 32, 48, 2), np.float32)), 0.0, atol=1e-5)


class TestAgreeing:
    def test_a_square_that_moved_agrees_but_where_it_was_and_went(self) -> None:
        flows = moving_square(48, corner=(20, 8), side=12, step=(0, 8))
        agree = agreeing(flows)
        # The S→T flow on the target's pixels: the square where it went comes back; where it was (now
        # background in the target, the square in the source) does not.
        assert agree[0][25, 20:32].all() and not agree[0][25, 8:16].any()
        # The T→S flow on the source's pixels: the square where it was comes back; where it went does not.
        assert agree[1][25, 8:20].all() and not agree[1][25, 20:28].any()
        assert agree[:, :18].all() and agree[:, 34:].all()  # rows the square never touched

    def test_a_similarity_agrees_everywhere_inside(self) -> None:
        flows = similarity_flows(40, turn=0.1, scale=1.1, shift=(2.0, -1.0))
        assert agreeing(flows)[:, 6:-6, 6:-6].all()


def swept_band(size: int, corner: tuple[int, int], side: int, step: tuple[int, int]) -> np.ndarray:
    """``[size, size] bool``: every pixel the square covers at some alpha, found by moving its mask a
    hundredth of the step at a time (an independent reference for ``along_paths``)."""
    band = np.zeros((size, size), bool)
    for alpha in np.linspace(0.0, 1.0, 101):
        y, x = round(corner[0] + alpha * step[0]), round(corner[1] + alpha * step[1])
        band[y:y + side, x:x + side] = True
    return band


class TestAlongPaths:
    def test_a_square_that_moved_holds_its_motion_along_its_path(self) -> None:
        # A 12-px square moves 8 px right over a still picture: every place it passes shows it at some
        # alpha, so both directions' flows hold its motion on the whole swept band and nowhere else.
        flows = moving_square(48, corner=(20, 8), side=12, step=(0, 8))
        held = along_paths(flows)
        band = swept_band(48, (20, 8), 12, (0, 8))
        np.testing.assert_allclose(held[0][band], np.tile([0.0, 8.0], (band.sum(), 1)))
        np.testing.assert_allclose(held[1][band], np.tile([0.0, -8.0], (band.sum(), 1)))
        np.testing.assert_array_equal(held[:, ~band], 0.0)

    def test_a_diagonal_move_holds_where_it_covered_or_uncovered(self) -> None:
        # Moving diagonally, the square sweeps two corners that it covers in neither picture: both show
        # the still picture there and agree, so they stay still; where it was and where it went, it holds.
        flows = moving_square(64, corner=(10, 10), side=16, step=(10, 12))
        held = along_paths(flows)
        covered = np.zeros((64, 64), bool)
        covered[10:26, 10:26] = covered[20:36, 22:38] = True
        np.testing.assert_allclose(held[0][covered], np.tile([10.0, 12.0], (covered.sum(), 1)))
        np.testing.assert_array_equal(held[0][~covered], 0.0)
        assert (swept_band(64, (10, 10), 16, (10, 12)) & ~covered).any()  # those corners exist

    def test_a_global_motion_changes_nothing(self) -> None:
        # A zoom and turn of the whole picture: every pixel's motion is the scene's own.
        flows = similarity_flows(40, turn=0.15, scale=0.9, shift=(3.0, 1.0))
        np.testing.assert_allclose(along_paths(flows), flows, atol=1e-5)

    def test_a_thing_moving_over_a_panning_picture_is_held_against_the_pan(self) -> None:
        # The picture pans 3 px down; a 12-px square moves (3, 8) besides: only its departure from the
        # pan is carried, along its own path.
        flows = similarity_flows(64, turn=0.0, scale=1.0, shift=(-3.0, 0.0))
        flows[0, 23:35, 16:28] = (3.0, 8.0)
        flows[1, 20:32, 8:20] = (-3.0, -8.0)
        held = along_paths(flows)
        np.testing.assert_allclose(held[0][30, 10], [3.0, 8.0])  # where it was: the pan alone said (3, 0)
        np.testing.assert_allclose(held[0][50, 50], [3.0, 0.0], atol=1e-5)  # far from it: the pan
        np.testing.assert_allclose(held[0][10, 12], [3.0, 0.0], atol=1e-5)

    def test_a_thing_the_two_directions_disagree_on_moves_nothing_along(self) -> None:
        # The source's square says it went 8 px right, but the target holds something that came from
        # elsewhere: not the same thing in both, so its motion is not carried along any path.
        flows = moving_square(48, corner=(20, 8), side=12, step=(0, 8))
        flows[0, 20:32, 16:28] = (0.0, 3.0)
        np.testing.assert_array_equal(along_paths(flows)[0], flows[0])

    def test_a_still_picture_stays_still(self) -> None:
        flows = np.zeros((2, 24, 24, 2), np.float32)
        np.testing.assert_array_equal(along_paths(flows), flows)


class TestForwardBackwardMismatch:
    def test_equals_a_plain_loop(self) -> None:
        rng = np.random.default_rng(3)
        flow = cv2.GaussianBlur(rng.normal(0, 4, (24, 30, 2)).astype(np.float32), (0, 0), 3) * 3
        other = cv2.GaussianBlur(rng.normal(0, 4, (24, 30, 2)).astype(np.float32), (0, 0), 3) * 3
        expected = np.zeros((24, 30))
        for y in range(24):
            for x in range(30):
                read = sample_bilinear(other, np.array([y - flow[y, x, 0], x - flow[y, x, 1]], np.float64))
                expected[y, x] = math.hypot(flow[y, x, 0] + read[0], flow[y, x, 1] + read[1])
        # OpenCV's remap reads at steps of 1/32 pixel; the flows change by at most about 1 px per pixel.
        np.testing.assert_allclose(forward_backward_mismatch(flow, other), expected, atol=0.03)
        assert expected.max() > 1.0  # the two flows are far from undoing each other: the check checks

    def test_a_shift_and_its_inverse_undo_each_other(self) -> None:
        flow = np.broadcast_to(np.array([2.0, -3.5], np.float32), (20, 20, 2)).copy()
        assert np.abs(forward_backward_mismatch(flow, -flow)).max() < 1e-5
        # The same shift both ways is off by twice its length.
        np.testing.assert_allclose(forward_backward_mismatch(flow, flow), 2 * math.hypot(2.0, 3.5), rtol=1e-5)

"""Face key points: the detector interface, pairing, merging with user points, and the bundled detector
on a real portrait."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphing.fit.keypoints import (
    FACE_LABELS,
    Keypoints,
    FramedDetector,
    MirroredDetector,
    MtcnnDetector,
    default_face_detector,
    default_second_look,
    describe_face_points,
    largest,
    leg_face_points,
    merge_point_pairs,
    pair_keypoints,
)
from morphing.model.points import PointPairs

PORTRAIT = Path(__file__).resolve().parent.parent / "data" / "portrait_lon005.jpg"
# Hand-placed (y, x) of the portrait's eye centres and mouth corners (the detector's nose is the tip,
# not checked against the hand-placed nose base).
PORTRAIT_EYES_AND_MOUTH = np.array([[69.7, 67.8], [70.3, 92.5], [97.8, 68.8], [97.5, 87.8]])


def face(offset: tuple[float, float] = (0.0, 0.0), size: float = 40.0, labels=FACE_LABELS) -> Keypoints:
    base = np.array([[40.0, 40.0], [40.0, 60.0], [50.0, 50.0], [60.0, 42.0], [60.0, 58.0]])[: len(labels)]
    return Keypoints(base + np.array(offset), tuple(labels), (30.0 + offset[0], 30.0 + offset[1], size, size), 0.99)


class StubDetector:
    """Returns the faces it was given for each image (by its first pixel's value), counting its calls."""

    def __init__(self, faces: dict[int, list[Keypoints]]) -> None:
        self.faces, self.calls = faces, 0

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        self.calls += 1
        return self.faces.get(int(image[0, 0, 0]), [])


def key(value: int) -> np.ndarray:
    return np.full((100, 100, 3), value, np.uint8)


class TestLargest:
    def test_picks_the_largest_box(self) -> None:
        small, big = face(size=20.0), face(offset=(5.0, 5.0), size=50.0)
        assert largest([small, big]) is big

    def test_none_for_nothing(self) -> None:
        assert largest([]) is None


class TestPairKeypoints:
    def test_pairs_labels_found_in_both(self) -> None:
        pairs = pair_keypoints(face(), face((3.0, -2.0), labels=FACE_LABELS[:3]), (100, 100), (100, 100))
        assert len(pairs) == 3
        np.testing.assert_allclose(pairs.target - pairs.source, np.tile([3.0, -2.0], (3, 1)))

    def test_none_when_either_has_no_face(self) -> None:
        assert pair_keypoints(face(), None, (100, 100), (100, 100)) is None
        assert pair_keypoints(None, face(), (100, 100), (100, 100)) is None

    def test_none_when_no_label_is_shared(self) -> None:
        other = Keypoints(np.zeros((1, 2)), ("tail",), (0, 0, 10, 10), 1.0)
        assert pair_keypoints(face(), other, (100, 100), (100, 100)) is None


class TestMergePointPairs:
    automatic = PointPairs(np.array([[40.0, 40.0], [40.0, 60.0], [60.0, 50.0]]),
                           np.array([[42.0, 41.0], [42.0, 61.0], [62.0, 51.0]]), (100, 100), (100, 100))

    def test_user_points_win_where_they_disagree(self) -> None:
        user = PointPairs(np.array([[41.0, 41.0]]), np.array([[30.0, 20.0]]), (100, 100), (100, 100))
        merged, dropped = merge_point_pairs(user, self.automatic)
        assert dropped == 1 and len(merged) == 3
        np.testing.assert_array_equal(merged.source[0], [41.0, 41.0])
        np.testing.assert_array_equal(merged.target[0], [30.0, 20.0])  # the user's match, not the detector's
        np.testing.assert_array_equal(merged.source[1:], self.automatic.source[1:])

    def test_a_user_point_near_an_automatic_target_point_drops_it_too(self) -> None:
        user = PointPairs(np.array([[90.0, 90.0]]), np.array([[62.0, 52.0]]), (100, 100), (100, 100))
        merged, dropped = merge_point_pairs(user, self.automatic)
        assert dropped == 1 and len(merged) == 3

    def test_agreeing_far_points_are_all_kept(self) -> None:
        user = PointPairs(np.array([[90.0, 10.0]]), np.array([[91.0, 10.0]]), (100, 100), (100, 100))
        merged, dropped = merge_point_pairs(user, self.automatic)
        assert dropped == 0 and len(merged) == 4

    def test_either_alone(self) -> None:
        assert merge_point_pairs(None, self.automatic) == (self.automatic, 0)
        assert merge_point_pairs(self.automatic, None) == (self.automatic, 0)

    def test_points_of_other_images_are_refused(self) -> None:
        user = PointPairs(np.zeros((1, 2)), np.zeros((1, 2)), (50, 50), (50, 50))
        with pytest.raises(ValueError, match="same images"):
            merge_point_pairs(user, self.automatic)


class TestLegFacePoints:
    def test_each_key_is_searched_once_and_legs_pair_neighbours(self) -> None:
        keys = [key(1), key(2), key(3)]
        keys.append(keys[0])  # a loop
        detector = StubDetector({1: [face()], 2: [face((5.0, 0.0))], 3: []})
        legs = leg_face_points(keys, detector)
        assert detector.calls == 3
        assert len(legs) == 3 and legs[1] is None and legs[2] is None
        np.testing.assert_allclose(legs[0].target - legs[0].source, np.tile([5.0, 0.0], (5, 1)))

    def test_the_log_line_says_what_was_used(self) -> None:
        pairs = pair_keypoints(face(), face(), (100, 100), (100, 100))
        assert describe_face_points(pairs) == "face points: a face in both images, 5 point pairs used"
        assert "3 point pairs used (2 overridden by --points)" in describe_face_points(pairs, 2)
        assert "no face" in describe_face_points(None)


class TestMtcnnDetector:
    def test_finds_the_portraits_eyes_and_mouth(self) -> None:
        image = np.asarray(Image.open(PORTRAIT).convert("RGB"))
        (found,) = MtcnnDetector().detect(image)
        assert found.labels == FACE_LABELS and found.score > 0.9
        eyes_and_mouth = found.points[[0, 1, 3, 4]]
        assert np.abs(eyes_and_mouth - PORTRAIT_EYES_AND_MOUTH).max() < 4.0  # pixels of a 160-px image
        top, left, height, width = found.box
        assert top < 70 < top + height and left < 67 < left + width

    def test_points_scale_with_a_larger_image(self) -> None:
        image = Image.open(PORTRAIT).convert("RGB")
        big = np.asarray(image.resize((1280, 1280), Image.Resampling.BICUBIC))  # reduced to 640 for detection
        (found,) = MtcnnDetector().detect(big)
        assert np.abs(found.points[[0, 1, 3, 4]] / 8.0 - PORTRAIT_EYES_AND_MOUTH).max() < 4.0

    def test_no_face_is_an_empty_list(self) -> None:
        flat = np.full((120, 160, 3), 128, np.uint8)
        assert MtcnnDetector().detect(flat) == []

    def test_refuses_what_is_not_an_rgb_uint8_image(self) -> None:
        with pytest.raises(ValueError, match="uint8"):
            MtcnnDetector().detect(np.zeros((20, 20, 3), np.float32))


class FramedOnlyNetwork:
    """A stand-in for mtcnn's network that finds one face only in an image framed by grey (corner pixel
    128), at fixed places 20 px inside the frame's corner: as mtcnn misses some faces that fill the frame."""

    def __init__(self) -> None:
        self.calls = 0

    def detect_faces(self, image: np.ndarray) -> list[dict]:
        self.calls += 1
        if tuple(image[0, 0]) != (128, 128, 128):
            return []
        keypoints = {"left_eye": (50, 40), "right_eye": (70, 40), "nose": (60, 50), "mouth_left": (52, 60),
                     "mouth_right": (68, 60)}  # (x, y) in the framed image
        return [{"box": [40, 30, 40, 45], "confidence": 0.99, "keypoints": keypoints}]


class UnsureNetwork:
    """A stand-in for mtcnn's network that finds one face scored 0.85 in any image, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def detect_faces(self, image: np.ndarray) -> list[dict]:
        self.calls += 1
        keypoints = {"left_eye": (30, 30), "right_eye": (50, 30), "nose": (40, 40), "mouth_left": (32, 50),
                     "mouth_right": (48, 50)}
        return [{"box": [20, 20, 40, 45], "confidence": 0.85, "keypoints": keypoints}]


class TestMtcnnScore:
    def test_a_copy_with_a_lower_least_score_keeps_what_the_original_drops_on_the_same_network(self) -> None:
        network = UnsureNetwork()
        detector = MtcnnDetector(network=network)
        lenient = detector.with_min_score(0.8)
        image = np.zeros((80, 80, 3), np.uint8)
        assert detector.detect(image) == []
        (found,) = lenient.detect(image)
        assert found.score == pytest.approx(0.85) and found.labels == FACE_LABELS
        assert (lenient.min_score, lenient.min_size) == (0.8, detector.min_size)
        assert network.calls == 2  # both looked through the one network


class TestFramedDetector:
    def test_a_face_found_only_in_the_frame_comes_back_in_the_images_pixels(self) -> None:
        image = np.full((100, 80, 3), 30, np.uint8)  # margin: 0.15 of the long side = 15 px
        network = FramedOnlyNetwork()
        assert MtcnnDetector(network=network).detect(image) == []  # the plain look misses it
        (found,) = FramedDetector(MtcnnDetector(network=network), 0.15).detect(image)
        np.testing.assert_allclose(found.points, [[25, 35], [25, 55], [35, 45], [45, 37], [45, 53]])
        assert found.box == (15.0, 25.0, 45.0, 40.0)

    def test_refuses_a_margin_that_frames_nothing(self) -> None:
        with pytest.raises(ValueError, match="margin"):
            FramedDetector(StubDetector({}), 0.0)


class MirrorStub:
    """Finds one face in an image and its mirror (told apart by the first pixel's value, which the test sets
    differently at the left and right edges), each with its own points, counting its calls."""

    def __init__(self, plain: Keypoints | None, mirrored: Keypoints | None) -> None:
        self.plain, self.mirrored, self.calls = plain, mirrored, 0

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        self.calls += 1
        found = self.plain if image[0, 0, 0] == 1 else self.mirrored
        return [] if found is None else [found]


def two_sided_key(width: int = 100) -> np.ndarray:
    image = np.zeros((80, width, 3), np.uint8)
    image[:, 0], image[:, -1] = 1, 2  # the mirror image starts with 2
    return image


class TestMirroredDetector:
    def test_each_point_is_averaged_with_its_mirrored_partner_of_the_other_side(self) -> None:
        # The face as the image shows it, and as a detector sees it in the mirror image (100 px wide):
        # there its left eye is the image's right eye, at x' = 99 - x, each point 2 px off in y.
        truth = face()
        mirrored_points = truth.points[[1, 0, 2, 4, 3]].copy()
        mirrored_points[:, 1] = 99 - mirrored_points[:, 1]
        top, left, height, width = truth.box
        mirrored = Keypoints(mirrored_points + [2.0, 0.0], FACE_LABELS, (top, 100 - left - width, height, width), 0.9)
        skewed = Keypoints(truth.points - [2.0, 0.0], FACE_LABELS, truth.box, 0.99)  # 2 px off the other way
        (found,) = MirroredDetector(MirrorStub(skewed, mirrored)).detect(two_sided_key())
        np.testing.assert_allclose(found.points, truth.points)
        assert found.labels == FACE_LABELS
        np.testing.assert_allclose(found.box, truth.box)

    def test_a_face_the_mirror_does_not_show_keeps_its_points(self) -> None:
        far_away = face((0.0, 40.0))  # a mirrored face whose box does not overlap the image's face
        for partner in (None, far_away):
            (found,) = MirroredDetector(MirrorStub(face(), partner)).detect(two_sided_key())
            np.testing.assert_allclose(found.points, face().points)

    def test_a_picture_without_a_face_is_looked_at_once(self) -> None:
        stub = MirrorStub(None, face())
        assert MirroredDetector(stub).detect(two_sided_key()) == []
        assert stub.calls == 1

    def test_labels_without_a_partner_in_the_mirror_keep_their_points(self) -> None:
        truth = face()
        seen = Keypoints(truth.points + [0.0, 2.0], FACE_LABELS, truth.box, 0.99)  # every point 2 px right
        # The mirror shows the eyes alone, where they are: its left eye is the image's right one.
        mirror_eyes = truth.points[[1, 0]] * [1.0, -1.0] + [0.0, 99.0]
        mirror_view = Keypoints(mirror_eyes, FACE_LABELS[:2], (30.0, 100.0 - 30.0 - 40.0, 40.0, 40.0), 0.9)
        (found,) = MirroredDetector(MirrorStub(seen, mirror_view)).detect(two_sided_key())
        np.testing.assert_allclose(found.points[:2], truth.points[:2] + [0.0, 1.0])  # averaged
        np.testing.assert_allclose(found.points[2:], seen.points[2:])  # their own

    def test_the_bundled_detector_looks_at_the_portrait_both_ways(self) -> None:
        image = np.asarray(Image.open(PORTRAIT).convert("RGB"))
        plain, = MtcnnDetector().detect(image)
        mirror, = MtcnnDetector().detect(np.ascontiguousarray(image[:, ::-1]))
        (found,) = MirroredDetector(MtcnnDetector()).detect(image)
        back = mirror.points[[1, 0, 2, 4, 3]].copy()
        back[:, 1] = image.shape[1] - 1 - back[:, 1]
        np.testing.assert_allclose(found.points, (plain.points + back) / 2)
        assert np.abs(found.points[[0, 1, 3, 4]] - PORTRAIT_EYES_AND_MOUTH).max() < 4.0

    def test_a_face_found_less_surely_counts_only_where_the_mirror_shows_it(self) -> None:
        unsure = Keypoints(face().points, FACE_LABELS, face().box, 0.85)
        sure = Keypoints(face().points, FACE_LABELS, face().box, 0.95)
        mirrored_box = (30.0, 100.0 - 30.0 - 40.0, 40.0, 40.0)  # the face's box in the 100-px mirror image
        mirror_points = face().points[[1, 0, 2, 4, 3]] * [1.0, -1.0] + [0.0, 99.0]
        in_mirror = Keypoints(mirror_points, FACE_LABELS, mirrored_box, 0.93)
        elsewhere = Keypoints(mirror_points, FACE_LABELS, (30.0, 0.0, 40.0, 20.0), 0.93)  # boxes overlap < ½
        assert MirroredDetector(MirrorStub(unsure, None), alone_min_score=0.9).detect(two_sided_key()) == []
        assert MirroredDetector(MirrorStub(unsure, elsewhere), alone_min_score=0.9).detect(two_sided_key()) == []
        (confirmed,) = MirroredDetector(MirrorStub(unsure, in_mirror), alone_min_score=0.9).detect(two_sided_key())
        np.testing.assert_allclose(confirmed.points, face().points)
        assert confirmed.score == pytest.approx(0.89)
        (alone,) = MirroredDetector(MirrorStub(sure, None), alone_min_score=0.9).detect(two_sided_key())
        assert alone.score == 0.95
        (kept,) = MirroredDetector(MirrorStub(unsure, None)).detect(two_sided_key())  # no least score: as found
        assert kept.score == 0.85

    def test_a_less_sure_mirror_look_does_not_move_a_face_found_surely(self) -> None:
        sure = Keypoints(face().points, FACE_LABELS, face().box, 0.95)
        mirror_points = face().points[[1, 0, 2, 4, 3]] * [1.0, -1.0] + [0.0, 99.0] + [4.0, 0.0]  # 4 px lower
        mirrored_box = (30.0, 100.0 - 30.0 - 40.0, 40.0, 40.0)
        for score, shift in ((0.85, 0.0), (0.92, 2.0)):  # an unsure partner is left out, a sure one averaged
            partner = Keypoints(mirror_points, FACE_LABELS, mirrored_box, score)
            (found,) = MirroredDetector(MirrorStub(sure, partner), alone_min_score=0.9).detect(two_sided_key())
            np.testing.assert_allclose(found.points, face().points + [shift, 0.0])

    def test_the_default_looks_find_the_portraits_face(self) -> None:
        image = np.asarray(Image.open(PORTRAIT).convert("RGB"))
        for detector in (default_face_detector(), default_second_look()):
            (found,) = detector.detect(image)
            assert found.labels == FACE_LABELS
            assert np.abs(found.points[[0, 1, 3, 4]] - PORTRAIT_EYES_AND_MOUTH).max() < 4.0

    def test_refuses_an_overlap_outside_zero_to_one(self) -> None:
        with pytest.raises(ValueError, match="least_overlap"):
            MirroredDetector(StubDetector({}), least_overlap=0.0)


class TestSecondLook:
    def test_only_the_faceless_end_of_a_leg_whose_other_end_shows_a_face_is_searched_again(self) -> None:
        # Faces: key 1 at once, key 2 only at a second look, keys 3 and 4 never.
        keys = [key(1), key(2), key(3), key(4)]
        first, second = StubDetector({1: [face()]}), StubDetector({2: [face((5.0, 0.0))]})
        legs = leg_face_points(keys, first, second)
        assert first.calls == 4
        # Key 2 is looked at again (key 1 shows a face), then key 3 (key 2 now does); key 4 never (its
        # only neighbour, key 3, shows none).
        assert second.calls == 2
        np.testing.assert_allclose(legs[0].target - legs[0].source, np.tile([5.0, 0.0], (5, 1)))
        assert legs[1] is None and legs[2] is None

    def test_two_faceless_pictures_are_not_looked_at_again(self) -> None:
        second = StubDetector({})
        assert leg_face_points([key(3), key(4)], StubDetector({}), second) == [None]
        assert second.calls == 0

    def test_a_check_before_each_look_can_stop_between_pictures(self) -> None:
        class Stop(Exception):
            pass

        detector, checks = StubDetector({1: [face()]}), []

        def check() -> None:
            checks.append(detector.calls)
            if len(checks) == 2:
                raise Stop

        with pytest.raises(Stop):
            leg_face_points([key(1), key(2)], detector, StubDetector({}), check)
        assert checks == [0, 1] and detector.calls == 1  # stopped before the second picture was looked at

    def test_no_second_look_without_one(self) -> None:
        legs = leg_face_points([key(1), key(2)], StubDetector({1: [face()]}))
        assert legs == [None]


def test_a_missing_detector_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from morphing.fit.keypoints import MissingDetectorError

    monkeypatch.setitem(sys.modules, "mtcnn", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(MissingDetectorError, match="pip install mtcnn.*--face-points off"):
        MtcnnDetector().detect(np.zeros((32, 32, 3), np.uint8))

"""Automatic key points: faces found in both images become point pairs for the fit.

A *detector* is anything with ``detect(image) -> list[Keypoints]`` (the
``KeypointDetector`` protocol): the bundled one wraps the ``mtcnn`` package
(MIT licence; its 2 MB of weights ship inside its wheel, so nothing is
downloaded and it works offline), which finds each face's eye centres, nose
tip and mouth corners; each point is averaged with the one found in the
mirror image (``MirroredDetector``), which halves the worst scatter. Where one
picture of a pair shows a face and the other none, the other is looked at
again (framed, and a face the detector is less sure of counts where the
mirror image shows it too). Another detector, or points clicked on a page, plug in
the same way: whatever returns ``Keypoints`` with matching labels in both
images becomes ``PointPairs``.

Conventions: images are ``[H, W, 3] uint8`` RGB; points are ``[K, 2] float64``
(y, x) in that image's pixels, the centre of the top-left pixel at (0, 0), as
in ``morphing.model.points``.

The pairs are *soft*: the fit pulls its warp towards them, the global start
is laid through them, and user points (``--points``) win where the two
disagree (``merge_point_pairs``). No face in either image is not an error:
there are simply no face pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from morphing.model.points import PointPairs

__all__ = [
    "FACE_LABELS",
    "Keypoints",
    "KeypointDetector",
    "MissingDetectorError",
    "MtcnnDetector",
    "FramedDetector",
    "MirroredDetector",
    "MIRRORED_LABELS",
    "FACE_SCORE",
    "CONFIRMED_FACE_SCORE",
    "default_face_detector",
    "default_second_look",
    "largest",
    "pair_keypoints",
    "merge_point_pairs",
    "leg_face_points",
    "describe_face_points",
]

FACE_LABELS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""The labels of the bundled face detector's points (left and right as the viewer sees them)."""

DETECTION_SIDE = 640
"""Images are reduced to this long side (never enlarged) before detection: faces are found as well and a
12-megapixel photo costs what a small one does."""

FACE_SCORE = 0.9
"""The least mtcnn score of a face the bundled detector keeps on one look."""

CONFIRMED_FACE_SCORE = 0.8
"""The least mtcnn score of a face the bundled detector's second look keeps when the mirror image shows
it too (at least this sure, the boxes overlapping by half): a painted or tightly cropped face often
scores 0.8–0.9 in one of the two and above 0.9 in the other (chosen on detection alone:
docs/correspondence.md)."""


class MissingDetectorError(RuntimeError):
    """The face detector's package is not installed; the message names the install command."""


@dataclass(frozen=True)
class Keypoints:
    """The key points of one object (a face) found in one image.

    Attributes:
      points: ``[K, 2] float64`` (y, x) pixels.
      labels: ``K`` names, the same for the same feature in every image.
      box: ``(top, left, height, width)`` pixels of the object's box.
      score: the detector's confidence in [0, 1].
    """

    points: np.ndarray
    labels: tuple[str, ...]
    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])


class KeypointDetector(Protocol):
    """Finds objects and their key points in an image."""

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        """Every object found in ``image`` (``[H, W, 3] uint8``); an empty list for none."""
        ...


def _check_rgb_uint8(image: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``image`` is ``[H, W, 3] uint8`` (what the detectors take)."""
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.shape} {image.dtype}")


class MtcnnDetector:
    """Faces and five key points each, by the ``mtcnn`` package (TensorFlow, weights in its wheel).

    ``min_score``: faces the detector is less sure of are dropped;
    ``min_size``: so are faces whose box is smaller than this share of the
    image's long side (a face in the crowd should not steer the morph).
    ``network``: anything with mtcnn's ``detect_faces`` (an ``[H, W, 3]
    uint8`` image → a list of dicts with ``box``, ``confidence``,
    ``keypoints``); by default mtcnn's own, built on first use.
    """

    def __init__(self, min_score: float = FACE_SCORE, min_size: float = 0.08, network: object | None = None) -> None:
        self.min_score, self.min_size = min_score, min_size
        self._shared: list[object | None] = [network]  # one network for this detector and its copies

    def with_min_score(self, min_score: float) -> MtcnnDetector:
        """This detector keeping the faces scored at least ``min_score``, on the same network (built once
        for both)."""
        copy = MtcnnDetector(min_score, self.min_size)
        copy._shared = self._shared
        return copy

    def _network(self):
        if self._shared[0] is None:
            try:
                from mtcnn import MTCNN
            except ImportError:
                raise MissingDetectorError(
                    "face key points need the mtcnn package: pip install mtcnn (or turn them off with "
                    "--face-points off)") from None
            self._shared[0] = MTCNN()
        return self._shared[0]

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        _check_rgb_uint8(image)
        import cv2

        height, width = image.shape[:2]
        scale = min(1.0, DETECTION_SIDE / max(height, width))
        small = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        ratio = np.array([height / small.shape[0], width / small.shape[1]])
        faces = []
        for face in self._network().detect_faces(np.ascontiguousarray(small)):
            left, top, box_w, box_h = (float(v) for v in face["box"])
            score = float(face["confidence"])
            if score < self.min_score or max(box_w * ratio[1], box_h * ratio[0]) < self.min_size * max(height, width):
                continue
            xy = np.array([face["keypoints"][name] for name in ("left_eye", "right_eye", "nose", "mouth_left",
                                                                  "mouth_right")], np.float64)
            points = (xy[:, ::-1] + 0.5) * ratio - 0.5
            faces.append(Keypoints(points, FACE_LABELS, (top * ratio[0], left * ratio[1], box_h * ratio[0],
                                                         box_w * ratio[1]), score))
        return faces


class FramedDetector:
    """Another detector's look at the image framed by a grey margin: ``margin`` share of its long side on
    every side, what is found given back in the image's own pixels.

    The detectors here miss some faces that fill the frame or run off its
    edge; with room around them they are found more surely. Used as the
    *second look* of ``leg_face_points``. Objects smaller than the inner
    detector's ``min_size`` of the framed picture are still kept or dropped
    by its rule (the frame makes the picture ``1 + 2·margin`` times larger).
    """

    def __init__(self, inner: KeypointDetector, margin: float = 0.15) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.inner, self.margin = inner, margin

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        import cv2

        _check_rgb_uint8(image)
        width = round(self.margin * max(image.shape[:2]))
        framed = cv2.copyMakeBorder(image, width, width, width, width, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        return [Keypoints(found.points - width, found.labels,
                          (found.box[0] - width, found.box[1] - width, found.box[2], found.box[3]), found.score)
                for found in self.inner.detect(framed)]


MIRRORED_LABELS: dict[str, str] = {"left_eye": "right_eye", "right_eye": "left_eye", "mouth_left": "mouth_right",
                                   "mouth_right": "mouth_left"}
"""What each face label becomes in the mirror image (labels not named here, the nose, stay)."""


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(top, left, height, width)`` boxes."""
    height = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    width = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    common = max(height, 0.0) * max(width, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - common
    return common / union if union > 0 else 0.0


class MirroredDetector:
    """Another detector's objects with each point averaged with the same point found in the mirror image.

    A detector's points scatter by a few pixels, and not alike in a picture
    and its mirror: on a face it sees poorly (low contrast, dark skin under
    flat light) the bundled detector may set the mouth corners on the upper
    lip in one and where they are in the other. Each object found in the
    image is paired with the mirror image's object whose box overlaps it most
    (at least ``least_overlap``, intersection over union), that object's
    points carried back (``x → W - 1 - x``) and relabelled (``mirrored_labels``:
    its left eye is the image's right eye); the two are averaged label by
    label. An object the mirror does not show keeps its own points if its
    score is at least ``alone_min_score`` (``None``: whatever its score) and
    is dropped otherwise: the inner detector may keep objects it is less sure
    of, which then count only where the mirror image confirms them; such a
    less sure look never moves the points of an object found surely (a sure
    object pairs with sure partners only), so where every look is sure the
    detector finds what it found without ``alone_min_score``. The
    mirror is only looked at when the image showed something, so a picture
    with no face costs one look, as before.
    """

    def __init__(self, inner: KeypointDetector, mirrored_labels: dict[str, str] | None = None,
                 least_overlap: float = 0.5, alone_min_score: float | None = None) -> None:
        if not 0.0 < least_overlap <= 1.0:
            raise ValueError(f"least_overlap must be in (0, 1], got {least_overlap}")
        self.inner = inner
        self.mirrored_labels = MIRRORED_LABELS if mirrored_labels is None else mirrored_labels
        self.least_overlap = least_overlap
        self.alone_min_score = alone_min_score

    def _carried_back(self, found: Keypoints, width: int) -> Keypoints:
        """An object of the mirror image in the image's own pixels and labels."""
        points = found.points.copy()
        points[:, 1] = width - 1 - points[:, 1]
        top, left, height, box_width = found.box
        labels = tuple(self.mirrored_labels.get(label, label) for label in found.labels)
        return Keypoints(points, labels, (top, width - left - box_width, height, box_width), found.score)

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        _check_rgb_uint8(image)
        found = self.inner.detect(image)
        if not found:
            return found
        width = image.shape[1]
        mirrored = [self._carried_back(item, width) for item in self.inner.detect(np.ascontiguousarray(image[:, ::-1]))]
        averaged = []
        for item in found:
            sure = self.alone_min_score is None or item.score >= self.alone_min_score
            # A sure object is averaged with sure partners only; a less sure one with any (they confirm it).
            partners = [other for other in mirrored if not sure or other.score >= (self.alone_min_score or 0.0)]
            overlap, partner = max(((_overlap(item.box, other.box), other) for other in partners),
                                   key=lambda pair: pair[0], default=(0.0, None))
            if partner is None or overlap < self.least_overlap:
                if sure:
                    averaged.append(item)
                continue
            points = np.array([(point + partner.points[partner.labels.index(label)]) / 2
                               if label in partner.labels else point for point, label in zip(item.points, item.labels)])
            box = tuple((a + b) / 2 for a, b in zip(item.box, partner.box))
            averaged.append(Keypoints(points, item.labels, box, (item.score + partner.score) / 2))
        return averaged


@functools.cache
def default_face_detector() -> MirroredDetector:
    """The bundled face detector, built once per process (its networks load in about a second): mtcnn's
    faces scored ``FACE_SCORE`` or more, each point averaged with its look at the mirror image
    (``MirroredDetector``)."""
    return MirroredDetector(MtcnnDetector())


SECOND_LOOK_MARGIN = 0.15
"""The grey frame of the default second look, a share of the long side (chosen on detection alone: see
docs/correspondence.md)."""


@functools.cache
def default_second_look() -> FramedDetector:
    """The bundled detector's second look at a picture whose partner shows a face: framed by a grey margin,
    and a face scored ``CONFIRMED_FACE_SCORE`` or more counts there too where the mirror image shows it
    (on the same network as ``default_face_detector``)."""
    first = default_face_detector()
    confirmed = MirroredDetector(first.inner.with_min_score(CONFIRMED_FACE_SCORE), first.mirrored_labels,
                                 first.least_overlap, alone_min_score=FACE_SCORE)
    return FramedDetector(confirmed, SECOND_LOOK_MARGIN)


def largest(found: Sequence[Keypoints]) -> Keypoints | None:
    """The object with the largest box, or ``None`` for none."""
    return max(found, key=lambda item: item.area, default=None)


def pair_keypoints(source: Keypoints | None, target: Keypoints | None, source_shape: tuple[int, int],
                   target_shape: tuple[int, int]) -> PointPairs | None:
    """Point pairs of the labels found in both (``None`` when either is ``None`` or nothing matches)."""
    if source is None or target is None:
        return None
    common = [label for label in source.labels if label in target.labels]
    if not common:
        return None
    pick = lambda item: np.array([item.points[item.labels.index(label)] for label in common])  # noqa: E731
    return PointPairs(pick(source), pick(target), tuple(source_shape), tuple(target_shape))


def merge_point_pairs(user: PointPairs | None, automatic: PointPairs | None,
                      radius: float = 0.06) -> tuple[PointPairs | None, int]:
    """The user's pairs and those automatic pairs that do not contradict them.

    An automatic pair is dropped where its source point or its target point
    lies within ``radius`` (a share of the long side) of a user point of that
    image: the user has said what that place matches. Both must be in the
    same images' pixels. Returns the merged pairs (user pairs first) and how
    many automatic pairs were dropped.
    """
    if automatic is None or len(automatic) == 0:
        return user, 0
    if user is None or len(user) == 0:
        return automatic, 0
    if user.source_shape != automatic.source_shape or user.target_shape != automatic.target_shape:
        raise ValueError("user and automatic points must be in the same images' pixels")
    limit = radius * max(*user.source_shape, *user.target_shape)

    def near(points: np.ndarray, others: np.ndarray) -> np.ndarray:
        return (np.linalg.norm(points[:, None] - others[None], axis=-1) < limit).any(axis=1)

    keep = ~(near(automatic.source, user.source) | near(automatic.target, user.target))
    merged = PointPairs(np.concatenate([user.source, automatic.source[keep]]),
                        np.concatenate([user.target, automatic.target[keep]]),
                        user.source_shape, user.target_shape)
    return merged, int((~keep).sum())


def leg_face_points(keys: Sequence[np.ndarray], detector: KeypointDetector,
                    second_look: KeypointDetector | None = None,
                    check: Callable[[], None] | None = None) -> list[PointPairs | None]:
    """Per leg of key images (``[H, W, 3] uint8``), the pairs of the largest face of each end, or ``None``.

    Each distinct key image is searched once (a loop's last key is its
    first). Where one end of a leg shows a face and the other shows none,
    ``second_look`` (e.g. ``FramedDetector``; ``None``: none) searches that
    other end again: a morph's two pictures mostly show the same kind of
    thing, and a picture with no face on either end costs nothing more.
    ``check`` (if given) is called before each look; it may raise to stop.
    """
    found: dict[int, Keypoints | None] = {}
    for key in keys:
        if id(key) not in found:
            if check is not None:
                check()
            found[id(key)] = largest(detector.detect(key))
    looked_again: set[int] = set()
    for a, b in zip(keys, keys[1:]):
        for missing, other in ((a, b), (b, a)):
            if (second_look is not None and found[id(missing)] is None and found[id(other)] is not None
                    and id(missing) not in looked_again):
                looked_again.add(id(missing))
                if check is not None:
                    check()
                found[id(missing)] = largest(second_look.detect(missing))
    return [pair_keypoints(found[id(a)], found[id(b)], a.shape[:2], b.shape[:2]) for a, b in zip(keys, keys[1:])]


def describe_face_points(face: PointPairs | None, dropped: int = 0) -> str:
    """The log line for one leg's face points."""
    if face is None or len(face) == 0:
        return "face points: no face in both images, none used"
    used = len(face) - dropped
    line = f"face points: a face in both images, {used} point pair{'s' if used != 1 else ''} used"
    if dropped:
        line += f" ({dropped} overridden by --points)"
    return line

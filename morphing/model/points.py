"""User point pairs: "this point of the source is that point of the target".

A points file is CSV text, one pair per row::

    # x_source, y_source, x_target, y_target   (pixels of each image)
    120.5, 88, 131, 90
    200, 140, 214, 151

in each image's own pixels (x to the right, y down, the centre of the top-left
pixel at (0, 0)). A header row of names is optional, ``#`` starts a comment,
blank lines are ignored. Arrays here are (y, x), like flows everywhere else.

Reading and checking only: no TensorFlow. The fit turns the pairs into a soft
loss term (``morphing.fit.losses.point_pairs``).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PointsFileError", "PointPairs", "parse_points", "read_points", "pinned_flow", "bilinear_reader",
           "MAX_POINTS"]

MAX_POINTS = 1000
MAX_FILE_BYTES = 1 << 20
"""A points file larger than this is refused before it is read whole (1000 rows take ~50 KB; a device such as
/dev/zero never ends)."""
HEADER_NAMES = ("x_source", "y_source", "x_target", "y_target")


class PointsFileError(Exception):
    """A points file that cannot be used; the message names the file, the line and why."""


@dataclass(frozen=True)
class PointPairs:
    """Matching points of a source and a target.

    Attributes:
      source: ``[N, 2] float64``, (y, x) in pixels of the image they were given for.
      target: ``[N, 2] float64``, (y, x), the matching points.
      source_shape, target_shape: ``(H, W)`` of the images the points are in.
    """

    source: np.ndarray
    target: np.ndarray
    source_shape: tuple[int, int]
    target_shape: tuple[int, int]

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def resized(self, height: int, width: int) -> PointPairs:
        """The same points in images of ``(height, width)`` (pixel centres scale with the image)."""

        def move(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
            ratio = np.array([height / shape[0], width / shape[1]])
            return (points + 0.5) * ratio - 0.5

        return PointPairs(move(self.source, self.source_shape), move(self.target, self.target_shape),
                          (height, width), (height, width))

    def cropped(
        self, source_crop: tuple[int, int, int, int], target_crop: tuple[int, int, int, int], shape: tuple[int, int]
    ) -> PointPairs:
        """The points once each image is cropped to its ``(top, left, h, w)`` and resized to
        ``shape`` (what ``images.fit_to_size`` does to a key image of another size).

        Raises ``ValueError`` for a point outside its image's crop.
        """
        moved = []
        for points, (top, left, crop_h, crop_w), which in (
            (self.source, source_crop, "source"),
            (self.target, target_crop, "target"),
        ):
            inside = points - np.array([top, left], np.float64)
            outside = ~np.all((inside >= -0.5) & (inside <= np.array([crop_h, crop_w]) - 0.5), axis=1)
            if outside.any():
                y, x = points[int(np.argmax(outside))]
                raise ValueError(
                    f"{which} point ({x:g}, {y:g}) is outside the part of the {which} image that is used "
                    f"(x {left} to {left + crop_w - 1}, y {top} to {top + crop_h - 1}; "
                    "it is centre-cropped to the first image's aspect ratio)"
                )
            ratio = np.array(shape, np.float64) / np.array([crop_h, crop_w], np.float64)
            moved.append((inside + 0.5) * ratio - 0.5)
        return PointPairs(moved[0], moved[1], tuple(shape), tuple(shape))


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank, non-comment row."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            rows.append((number, [cell.strip() for cell in next(csv.reader(io.StringIO(content)))]))
    return rows


def parse_points(
    text: str, source_shape: tuple[int, int], target_shape: tuple[int, int], *, name: str = "points"
) -> PointPairs:
    """Point pairs from the text of a points file, checked against both images' ``(H, W)``.

    Raises ``PointsFileError`` naming ``name``, the line and the problem: a
    row without four numbers, a value that is not a finite number, a point
    outside its image, no pairs at all, or more than ``MAX_POINTS``.
    """
    rows = _rows(text.lstrip("\ufeff"))
    if rows and [cell.lower() for cell in rows[0][1]] == list(HEADER_NAMES):
        rows = rows[1:]
    if not rows:
        raise PointsFileError(f"{name}: no point pairs (rows of x_source, y_source, x_target, y_target)")
    if len(rows) > MAX_POINTS:
        raise PointsFileError(f"{name}: {len(rows)} point pairs; at most {MAX_POINTS} are supported")
    values = []
    for number, cells in rows:
        if len(cells) != 4:
            raise PointsFileError(
                f"{name}: line {number}: expected 4 values (x_source, y_source, x_target, y_target), got {len(cells)}"
            )
        try:
            numbers = [float(cell) for cell in cells]
        except ValueError:
            raise PointsFileError(f"{name}: line {number}: not a number in {', '.join(cells)}") from None
        if not all(math.isfinite(v) for v in numbers):
            raise PointsFileError(f"{name}: line {number}: values must be finite numbers")
        for (x, y), (height, width), which in (
            (numbers[0:2], source_shape, "source"),
            (numbers[2:4], target_shape, "target"),
        ):
            if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
                raise PointsFileError(
                    f"{name}: line {number}: {which} point ({x:g}, {y:g}) is outside the {which} image "
                    f"({width}x{height}; x from 0 to {width - 1}, y from 0 to {height - 1})"
                )
        values.append(numbers)
    array = np.asarray(values, np.float64)
    return PointPairs(
        source=array[:, [1, 0]], target=array[:, [3, 2]], source_shape=tuple(source_shape), target_shape=tuple(target_shape)
    )


def read_points(
    path: str | os.PathLike[str], source_shape: tuple[int, int], target_shape: tuple[int, int]
) -> PointPairs:
    """``parse_points`` of a file; ``PointsFileError`` for a missing or unreadable one."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise PointsFileError(f"{path}: larger than {MAX_FILE_BYTES // (1 << 20)} MiB, not a points file "
                                  f"(at most {MAX_POINTS} rows of four numbers)")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise PointsFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PointsFileError(f"{path}: is a directory, not a points file") from None
    except UnicodeDecodeError:
        raise PointsFileError(f"{path}: not a text file (expected CSV rows of four numbers)") from None
    except OSError as error:
        raise PointsFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    return parse_points(text, source_shape, target_shape, name=str(path))


def bilinear_reader(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[N, height·width] float64``: row ``i`` reads a ``[height, width]`` map at ``points[i]`` ((y, x),
    bilinear, clamped to the border: how a map upsampled with half-pixel centres is read there)."""
    y = np.clip(np.asarray(points[:, 0], np.float64), 0.0, height - 1.0)
    x = np.clip(np.asarray(points[:, 1], np.float64), 0.0, width - 1.0)
    y0 = np.minimum(np.floor(y).astype(np.int64), max(height - 2, 0))
    x0 = np.minimum(np.floor(x).astype(np.int64), max(width - 2, 0))
    wy, wx = y - y0, x - x0
    matrix = np.zeros((len(points), height * width), np.float64)
    rows = np.arange(len(points))
    for dy, weight_y in ((0, 1.0 - wy), (1, wy)):
        for dx, weight_x in ((0, 1.0 - wx), (1, wx)):
            column = np.minimum(y0 + dy, height - 1) * width + np.minimum(x0 + dx, width - 1)
            np.add.at(matrix, (rows, column), weight_y * weight_x)
    return matrix


def pinned_flow(flow: np.ndarray, at: np.ndarray, wanted: np.ndarray, sigma: float) -> np.ndarray:
    """``flow`` plus the smallest smooth bend that makes it read ``wanted`` at ``at``.

    ``flow``: ``[h, w, 2]``; ``at``: ``[N, 2]`` (y, x) positions in its
    pixels; ``wanted``: ``[N, 2]`` the values it should have there (read
    bilinearly). The bend is a sum of Gaussian bumps of ``sigma`` pixels, one
    centred on each point, whose heights are solved so that every point reads
    exactly its wanted value (a tiny ridge keeps coincident points solvable).
    Returns ``[h, w, 2]`` of ``flow``'s dtype.
    """
    height, width = flow.shape[:2]
    reader = bilinear_reader(at, height, width)
    residual = np.asarray(wanted, np.float64) - reader @ flow.reshape(-1, 2).astype(np.float64)
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    nodes = np.stack([ys.ravel(), xs.ravel()], axis=-1).astype(np.float64)
    bumps = np.exp(-np.sum(np.square(nodes[:, None] - np.asarray(at, np.float64)[None]), axis=-1) / (2 * sigma**2))
    system = reader @ bumps
    heights = np.linalg.solve(system + 1e-9 * np.trace(system) * np.eye(len(at)), residual)
    return (flow + (bumps @ heights).reshape(height, width, 2)).astype(flow.dtype)

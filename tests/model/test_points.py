"""Points files: what parses, what is refused and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morphing.model.points import (
    MAX_POINTS,
    PointPairs,
    PointsFileError,
    parse_points,
    read_points,
)

SHAPE = (100, 200)  # H, W


def test_rows_comments_header_and_bom() -> None:
    text = "\ufeffx_source, y_source, x_target, y_target\n# a comment\n\n10, 20, 30.5, 40  # eye\n199,99,0,0\n"
    points = parse_points(text, SHAPE, (50, 60 * 2))
    np.testing.assert_array_equal(points.source, [[20, 10], [99, 199]])  # (y, x)
    np.testing.assert_array_equal(points.target, [[40, 30.5], [0, 0]])
    assert len(points) == 2 and points.source_shape == SHAPE and points.target_shape == (50, 120)


def test_without_header() -> None:
    assert len(parse_points("1,2,3,4", SHAPE, SHAPE)) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no point pairs"),
        ("# only a comment\n", "no point pairs"),
        ("x_source,y_source,x_target,y_target\n", "no point pairs"),
        ("1,2,3\n", "line 1: expected 4 values"),
        ("1,2,3,4\n1,2,3,4,5\n", "line 2: expected 4 values"),
        ("1,2,three,4\n", "line 1: not a number"),
        ("1,nan,3,4\n", "finite"),
        ("1,2,3,inf\n", "finite"),
        ("200,2,3,4\n", "source point \\(200, 2\\) is outside the source image \\(200x100"),
        ("1,2,3,-1\n", "target point \\(3, -1\\) is outside the target image"),
    ],
)
def test_malformed_files_name_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(PointsFileError, match=message):
        parse_points(text, SHAPE, SHAPE, name="p.csv")


def test_too_many_points() -> None:
    with pytest.raises(PointsFileError, match=f"at most {MAX_POINTS}"):
        parse_points("1,1,1,1\n" * (MAX_POINTS + 1), SHAPE, SHAPE)


def test_read_points_errors(tmp_path: Path) -> None:
    with pytest.raises(PointsFileError, match="no such file"):
        read_points(tmp_path / "missing.csv", SHAPE, SHAPE)
    with pytest.raises(PointsFileError, match="is a directory"):
        read_points(tmp_path, SHAPE, SHAPE)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(PointsFileError, match="not a text file"):
        read_points(binary, SHAPE, SHAPE)
    good = tmp_path / "good.csv"
    good.write_text("5, 6, 7, 8\n")
    assert len(read_points(good, SHAPE, SHAPE)) == 1


def test_a_file_too_large_to_be_points_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    from morphing.model.points import MAX_FILE_BYTES

    huge = tmp_path / "huge.csv"
    row = b"5, 6, 7, 8\n"
    huge.write_bytes(row * (MAX_FILE_BYTES // len(row) + 1))
    with pytest.raises(PointsFileError, match="larger than 1 MiB, not a points file"):
        read_points(huge, SHAPE, SHAPE)
    at_the_cap = tmp_path / "cap.csv"
    at_the_cap.write_bytes(b"5, 6, 7, 8\n" + b"#" * (MAX_FILE_BYTES - len(row) - 1) + b"\n")
    assert len(read_points(at_the_cap, SHAPE, SHAPE)) == 1  # a comment-padded file of exactly the cap is read


def test_resized_points_keep_pixel_centres() -> None:
    points = PointPairs(np.array([[-0.5, -0.5], [99.5, 199.5], [49.5, 99.5]]), np.array([[0.0, 0.0]] * 3), SHAPE, (10, 10))
    half = points.resized(50, 100)
    np.testing.assert_allclose(half.source, [[-0.5, -0.5], [49.5, 99.5], [24.5, 49.5]])  # the image's edges and centre
    np.testing.assert_allclose(half.target, [[2.0, 4.5]] * 3)  # pixel 0 of a 10-px image at 5x / 10x
    assert half.source_shape == half.target_shape == (50, 100)


def test_cropped_follows_a_centre_crop_and_resize() -> None:
    # Target 100x300 (H, W) centre-cropped to 100x200 (left 50) and resized to 50x100.
    points = PointPairs(np.array([[10.0, 20.0]]), np.array([[49.5, 149.5], [0.0, 50.0]]), (100, 200), (100, 300))
    moved = points.cropped((0, 0, 100, 200), (0, 50, 100, 200), (50, 100))
    np.testing.assert_allclose(moved.target, [[24.5, 49.5], [-0.25, -0.25]])
    np.testing.assert_allclose(moved.source, [[4.75, 9.75]])
    with pytest.raises(ValueError, match=r"target point \(10, 0\) is outside the part of the target image"):
        PointPairs(points.source, np.array([[0.0, 10.0]]), (100, 200), (100, 300)).cropped(
            (0, 0, 100, 200), (0, 50, 100, 200), (50, 100)
        )


class TestPinnedFlow:
    def test_reads_the_wanted_values_at_the_points_and_stays_smooth(self) -> None:
        from morphing.model.points import bilinear_reader, pinned_flow

        rng = np.random.default_rng(4)
        flow = rng.normal(0, 0.2, (24, 32, 2)).astype(np.float32)
        at = np.array([[5.3, 7.8], [12.0, 20.5], [18.7, 3.1]])
        wanted = np.array([[2.0, -1.0], [0.5, 3.0], [-2.0, 0.0]])
        pinned = pinned_flow(flow, at, wanted, sigma=3.0)
        np.testing.assert_allclose(bilinear_reader(at, 24, 32) @ pinned.reshape(-1, 2), wanted, atol=1e-4)
        assert np.abs(pinned - flow)[:, 30:].max() < 0.05  # far from every point (3 sigma): nearly untouched

    def test_a_flow_that_already_agrees_is_unchanged(self) -> None:
        from morphing.model.points import bilinear_reader, pinned_flow

        flow = np.random.default_rng(5).normal(0, 1, (16, 16, 2))
        at = np.array([[3.5, 4.25], [10.0, 12.0]])
        wanted = bilinear_reader(at, 16, 16) @ flow.reshape(-1, 2)
        np.testing.assert_allclose(pinned_flow(flow, at, wanted, 2.0), flow, atol=1e-9)

    def test_reader_is_bilinear_interpolation(self) -> None:
        from morphing.model.points import bilinear_reader

        image = np.arange(12.0).reshape(3, 4)
        values = bilinear_reader(np.array([[0.5, 0.5], [2.0, 3.0], [-1.0, 1.25]]), 3, 4) @ image.ravel()
        np.testing.assert_allclose(values, [2.5, 11.0, 1.25])  # the last clamped to the top row

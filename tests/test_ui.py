"""The web page's functions as plain Python: uploads, point editing, the points CSV, fit and re-render."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from morphing.fit.keypoints import FACE_LABELS, Keypoints
from morphing.model.maps import Scales
from morphing.model.points import read_points
from morphing.testing.scenes import toy_scene
from morphing.ui import (
    MAX_UPLOAD_BYTES,
    PageError,
    PagePoints,
    Pair,
    draw_points,
    face_pairs,
    fit_page_morph,
    page_fit_settings,
    points_csv,
    points_from_csv,
    read_upload,
    start_preparing_page_fit,
    write_animation,
)


def toy_pair() -> tuple[np.ndarray, np.ndarray]:
    scene = toy_scene(24, 32)
    return scene.render(0.0), scene.render(1.0)


class TestUploads:
    def test_an_image_file_loads_as_rgb_pixels(self, tmp_path: Path) -> None:
        iio.imwrite(tmp_path / "a.png", np.full((10, 14, 4), 200, np.uint8))  # RGBA: colours and opacity
        loaded = read_upload(tmp_path / "a.png", "source")
        assert loaded.pixels.shape == (10, 14, 3) and loaded.pixels.dtype == np.uint8
        assert (loaded.alpha == 200).all()

    def test_a_file_that_is_not_an_image_gets_the_command_lines_message(self, tmp_path: Path) -> None:
        (tmp_path / "notes.png").write_text("hello")
        with pytest.raises(PageError, match="^target: .*notes.png"):
            read_upload(tmp_path / "notes.png", "target")

    def test_no_file_and_a_file_too_large_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PageError, match="no source image"):
            read_upload(None, "source")
        big = tmp_path / "big.png"
        with big.open("wb") as handle:
            handle.truncate(MAX_UPLOAD_BYTES + 1)
        with pytest.raises(PageError, match="MB"):
            read_upload(big, "source")


class TestPoints:
    def test_a_source_click_then_a_target_click_make_a_pair(self) -> None:
        points = PagePoints().click("source", 3, 4)
        assert points.pending == (3.0, 4.0) and points.pairs == ()
        points = points.click("target", 5.5, 6)
        assert points.pairs == (Pair((3.0, 4.0), (5.5, 6.0)),) and points.pending is None
        assert points.table() == [[1, 3.0, 4.0, 5.5, 6.0, "clicked"]]

    def test_a_target_click_without_its_source_is_refused(self) -> None:
        with pytest.raises(PageError, match="source first"):
            PagePoints().click("target", 1, 1)

    def test_any_pair_moves_and_is_removed_detected_ones_too(self) -> None:
        points = PagePoints().with_automatic([Pair((1, 1), (2, 2), automatic=True)]).click("source", 3, 3)
        points = points.click("target", 4, 4)
        moved = points.move(0).click("target", 9, 8)
        assert moved.pairs[0] == Pair((1, 1), (9.0, 8.0), automatic=False)  # moved by hand: now the user's
        assert moved.remove(1).pairs == (moved.pairs[0],)
        with pytest.raises(PageError, match="no pair 3"):
            moved.remove(2)

    def test_new_detections_replace_the_old_and_keep_the_clicked(self) -> None:
        points = PagePoints().with_automatic([Pair((1, 1), (2, 2), True)]).click("source", 3, 3).click("target", 4, 4)
        again = points.with_automatic([Pair((5, 5), (6, 6), True)])
        assert again.pairs == (Pair((3.0, 3.0), (4.0, 4.0)), Pair((5, 5), (6, 6), True))

    def test_points_are_drawn_where_they_are_on_their_side(self) -> None:
        image = np.zeros((60, 80, 3), np.uint8)
        points = PagePoints((Pair((20, 30), (50, 10)),))
        source_view, target_view = draw_points(image, points, "source"), draw_points(image, points, "target")
        changed_source = np.argwhere(source_view.any(axis=-1))
        changed_target = np.argwhere(target_view.any(axis=-1))
        assert np.abs(changed_source.mean(axis=0) - [30, 20]).max() < 6  # (row, column) around (y, x)
        assert np.abs(changed_target.mean(axis=0) - [10, 50]).max() < 6
        np.testing.assert_array_equal(image, 0)  # the original is untouched

    def test_the_csv_written_is_what_points_reads_and_reads_back(self, tmp_path: Path) -> None:
        points = PagePoints((Pair((1.5, 2.0), (3.0, 4.25)), Pair((10, 11), (12, 13))))
        path = tmp_path / "points.csv"
        path.write_text(points_csv(points))
        read = read_points(path, (20, 30), (20, 30))  # the command line's reader
        np.testing.assert_allclose(read.source, [[2.0, 1.5], [11, 10]])  # (y, x)
        np.testing.assert_allclose(read.target, [[4.25, 3.0], [13, 12]])
        again = points_from_csv(path.read_text(), (20, 30), (20, 30))
        assert again.pairs == points.pairs

    def test_a_bad_csv_names_its_line(self) -> None:
        with pytest.raises(PageError, match="line 2"):
            points_from_csv("x_source,y_source,x_target,y_target\n1,2,3\n", (20, 30), (20, 30))
        with pytest.raises(PageError, match="outside"):
            points_from_csv("100,2,3,4\n", (20, 30), (20, 30))


class StubDetector:
    """Finds one 'face' at fixed points in every image (a stand-in for the bundled detector)."""

    def __init__(self, shift: float) -> None:
        self.calls = 0
        self.shift = shift

    def detect(self, image: np.ndarray) -> list[Keypoints]:
        self.calls += 1
        points = np.array([[5.0, 6.0], [5.0, 20.0], [10.0, 13.0], [15.0, 8.0], [15.0, 18.0]]) + self.shift * (
            self.calls - 1)
        return [Keypoints(points, FACE_LABELS, (0, 0, 20, 25), 0.99)]


def test_detected_faces_become_automatic_pairs_in_x_y() -> None:
    source, target = toy_pair()
    pairs = face_pairs(source, target, StubDetector(shift=1.0))
    assert len(pairs) == 5 and all(pair.automatic for pair in pairs)
    assert pairs[0] == Pair((6.0, 5.0), (7.0, 6.0), True)


def test_two_uploaded_images_prepare_the_fit_that_the_fit_button_then_runs() -> None:
    # The page prepares at upload, in a thread (the user places points meanwhile): the fit finds its
    # terms traced.
    from morphing.sequence import shared_program_cache

    scene = toy_scene(26, 30)  # a size no other test fits at, so nothing else traced it
    source, target = scene.render(0.0), scene.render(1.0)
    start_preparing_page_fit(source, target).join()
    fitter = shared_program_cache().fitter(page_fit_settings(source.shape), Scales())
    (program,) = fitter.programs
    assert "terms" in program.traced and fitter.warmed == 0
    morph = fit_page_morph(source, target, PagePoints())
    assert fitter.programs == (program,) and fitter.warmed == 1  # the fit ran on the prepared fitter
    assert program.term_gradients.experimental_get_tracing_count() == 1
    np.testing.assert_array_equal(morph.frame(1.0), target)


@pytest.fixture(scope="class")
def fitted() -> object:
    """One page fit of the toy pair with one clicked pair, shared by ``TestFitAndRender``."""
    source, target = toy_pair()
    points = PagePoints().click("source", 8, 8).click("target", 12, 10)
    heard: list[tuple[int, int]] = []
    morph = fit_page_morph(source, target, points, epochs=3, progress=lambda step, total: heard.append(
        (step, total)))
    assert heard and heard[-1][0] == heard[-1][1]  # the bar ends full
    return morph


class TestFitAndRender:

    def test_the_clicked_pair_is_a_user_point_and_the_ends_are_exact(self, fitted: object) -> None:
        (leg_points,) = fitted.points
        np.testing.assert_allclose(leg_points.source, [[8, 8]])
        np.testing.assert_allclose(leg_points.target, [[10, 12]])
        np.testing.assert_array_equal(fitted.frame(0.0), fitted.keys[0])
        np.testing.assert_array_equal(fitted.frame(1.0), fitted.keys[1])

    @pytest.mark.parametrize("file_format", ["gif", "webp", "mp4"])
    def test_each_format_is_written_from_the_same_maps(self, fitted: object, file_format: str,
                                                       tmp_path: Path) -> None:
        maps = fitted.maps
        path = write_animation(fitted, tmp_path, scales=Scales(warp=0.1), frames=6, file_format=file_format)
        assert path.suffix == f".{file_format}" and path.stat().st_size > 0
        if file_format == "gif":
            assert iio.imread(path, index=None).shape[0] == 6
        assert fitted.maps is maps  # re-rendered, not refitted

    def test_a_boomerang_and_a_new_file_each_time(self, fitted: object, tmp_path: Path) -> None:
        first = write_animation(fitted, tmp_path, scales=Scales(), frames=4, ends="boomerang")
        second = write_animation(fitted, tmp_path, scales=Scales(), frames=4)
        assert first != second
        assert iio.imread(first, index=None).shape[0] == 4 + 2 and iio.imread(second, index=None).shape[0] == 4

    def test_impossible_choices_are_refused(self, fitted: object, tmp_path: Path) -> None:
        with pytest.raises(PageError, match="format"):
            write_animation(fitted, tmp_path, scales=Scales(), file_format="avi")


def test_a_transparent_upload_keeps_its_transparency_through_the_page(tmp_path: Path) -> None:
    image = np.zeros((24, 32, 4), np.uint8)
    image[..., 1] = 180
    image[6:18, 8:20, 3] = 255
    iio.imwrite(tmp_path / "a.png", image)
    loaded = read_upload(tmp_path / "a.png", "source")
    np.testing.assert_array_equal(loaded.alpha, image[..., 3])
    morph = fit_page_morph(loaded.pixels, loaded.pixels.copy(), PagePoints(), epochs=2,
                           alphas=[loaded.alpha, None])
    np.testing.assert_array_equal(morph.frame(0.0)[..., 3], image[..., 3])
    np.testing.assert_array_equal(morph.frame(1.0)[..., 3], 255)  # the opaque target
    from PIL import Image

    webp = write_animation(morph, tmp_path, scales=Scales(), frames=3, file_format="webp")
    with Image.open(webp) as decoded:
        assert decoded.mode == "RGBA" and np.asarray(decoded)[0, 0, 3] == 0
    mp4 = write_animation(morph, tmp_path, scales=Scales(), frames=3, file_format="mp4")  # composited on white
    assert mp4.stat().st_size > 0


def test_loop_fits_the_way_back_and_other_ends_ask_for_a_refit(tmp_path: Path) -> None:
    source, target = toy_pair()
    points = PagePoints().click("source", 8, 8).click("target", 12, 10)
    looped = fit_page_morph(source, target, points, epochs=2, loop=True)
    assert looped.legs == 2
    np.testing.assert_allclose(looped.points[1].source, [[10, 12]])  # the way back starts at the target's point
    path = write_animation(looped, tmp_path, scales=Scales(), frames=4, ends="loop")
    assert iio.imread(path, index=None).shape[0] == 4 + 3 - 1  # back to the source, its repeat dropped
    with pytest.raises(PageError, match="fit again"):
        write_animation(looped, tmp_path, scales=Scales(), frames=4, ends="none")
    with pytest.raises(PageError, match="fit again"):
        write_animation(fit_page_morph(source, target, points, epochs=2), tmp_path, scales=Scales(), ends="loop")


def test_the_start_line_hints_at_point_pairs_only_when_nothing_moved_the_start() -> None:
    from morphing.fit.affine import Affine
    from morphing.fit.starts import Candidate, StartChoice
    from morphing.ui import describe_start

    still = Candidate("no motion", Affine.identity())
    moved = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.2])))
    kept = StartChoice(still, (("no motion", 0.9), ("global search", 0.95)), "no candidate beat it by its margin")
    said = describe_start(kept)
    assert said.startswith("start: no motion") and "click two or three point pairs" in said
    taken = StartChoice(moved, (("no motion", 0.9), ("global search", 0.5)), "cost 0.400 below no motion")
    assert describe_start(taken) == taken.describe()


def test_the_fit_line_says_what_the_polish_did_after_the_start() -> None:
    from morphing.fit.affine import Affine
    from morphing.fit.polish import Polished
    from morphing.fit.starts import Candidate, StartChoice
    from morphing.model.maps import MorphMaps, Scales
    from morphing.ui import describe_fit

    moved = Candidate("global search", Affine(np.eye(2), np.array([0.0, 0.2])))
    taken = StartChoice(moved, (("no motion", 0.9), ("global search", 0.5)), "cost 0.400 below no motion")
    maps = MorphMaps(np.zeros((8, 8, 8), np.float32), np.zeros((8, 8, 8), np.float32), Scales(), (8, 8))
    assert describe_fit(taken, None) == taken.describe()
    said = describe_fit(taken, Polished(maps, 0.42, 0.9))
    assert said.startswith(taken.describe()) and "polished by the optical flow on 42% of the pixels at 8x8" in said
    refused = describe_fit(taken, Polished(maps, 0.0, 0.2))
    assert "not polished" in refused and "agree on 20% of the pixels" in refused

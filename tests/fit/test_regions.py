"""Matched regions: flat shapes found by their outlines, paired by outline, moved along their paths; on
synthetic pictures whose shapes, motions and turns are known."""

from __future__ import annotations

import math

import cv2
import numpy as np

from morphing.fit.regions import (
    Region,
    RegionMatch,
    flat_regions,
    match_regions,
    noise_level,
    quieted,
    region_flows,
    similarity_flow,
    travelling_flow,
)
from morphing.io.images import to_float
from morphing.model.settings import StartSettings
from morphing.testing.scenes import Scene, Shape, random_texture
from tests.helpers import grainy

SIDE = 128
GREY = (0.45, 0.45, 0.45)
RED = (0.9, 0.1, 0.1)
BLUE = (0.1, 0.2, 0.9)
SLOPE = ((0.30, 0.40, 0.50), (0.50, 0.40, 0.30))  # a background gradient, top and bottom colours


def picture(*shapes: Shape, background: tuple = SLOPE, side: int = SIDE) -> np.ndarray:
    """``[side, side, 3] float32`` in [-1, 1]: ``shapes`` over ``background`` (top, bottom colours)."""
    return to_float(Scene(side, side, shapes, shapes, background, background).render(0.0))


def pixels(centre: tuple[float, float], side: int = SIDE) -> np.ndarray:
    """A shape's centre (long-side fractions) in (y, x) pixels."""
    return np.asarray(centre) * side - 0.5


def shape_mask(shape: Shape, side: int = SIDE) -> np.ndarray:
    """``[side, side]`` bool: pixel centres inside ``shape``."""
    grid = (np.arange(side) + 0.5) / side
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    return shape.coverage(ys, xs)


def box(top: int, left: int, bottom: int, right: int, side: int = SIDE) -> np.ndarray:
    """``[side, side]`` bool: the rows ``top`` to ``bottom`` and columns ``left`` to ``right``, ends excluded."""
    mask = np.zeros((side, side), bool)
    mask[top:bottom, left:right] = True
    return mask


def painted(*layers: tuple[np.ndarray, tuple], side: int = SIDE) -> np.ndarray:
    """``[side, side, 3] float32`` in [-1, 1]: each ``(mask, colour)`` of ``layers`` painted over the ones
    before it, over the ``SLOPE`` background."""
    image = picture(side=side)
    for mask, colour in layers:
        image[mask] = np.asarray(colour, np.float32) * 2.0 - 1.0
    return image


def iou(first: np.ndarray, second: np.ndarray) -> float:
    first, second = first > 0.5, second > 0.5
    return float((first & second).sum() / max((first | second).sum(), 1))


def warped_by(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (``[h, w]``) moved by ``flow`` ((dy, dx)): pixel ``p`` shows ``p - flow(p)``, bilinear."""
    rows, columns = np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(np.float32)
    return cv2.remap(image.astype(np.float32), columns - flow[..., 1], rows - flow[..., 0], cv2.INTER_LINEAR)


class TestNoiseLevel:
    def test_the_grain_of_a_flat_picture_is_its_standard_deviation(self) -> None:
        flat = np.full((96, 96, 3), 0.1, np.float32)
        for levels in (3.0, 8.0, 16.0):
            assert abs(noise_level(grainy(flat, levels)) * 255 - levels) < 0.15 * levels

    def test_flat_colours_gradients_and_sharp_outlines_have_no_grain(self) -> None:
        disc = Shape(0, (0.3, 0.3), 0.12, 0.0, (0.9, 0.2, 0.1))
        square = Shape(4, (0.68, 0.65), 0.14, 0.3, (0.1, 0.2, 0.9))
        assert noise_level(picture(disc, square)) == 0.0

    def test_outlines_barely_move_the_estimate(self) -> None:
        # Twelve shapes' outlines in grain of 6 levels: the median ignores the few pixels they touch.
        shapes = [Shape(index % 6, (0.15 + 0.23 * (index // 4), 0.15 + 0.23 * (index % 4)), 0.08, 0.0, RED)
                  for index in range(12)]
        assert abs(noise_level(grainy(picture(*shapes), 6.0)) * 255 - 6.0) < 1.0


class TestQuieted:
    def test_a_picture_without_grain_is_returned_as_it_is(self) -> None:
        image = picture(Shape(0, (0.5, 0.5), 0.2, 0.0, RED))
        assert quieted(image, 0.0, 4.0) is image
        assert quieted(image, 0.05, 0.0) is image

    def test_grain_is_smoothed_away_and_a_step_stays_sharp(self) -> None:
        clean = painted((box(0, 64, SIDE, SIDE), RED), (box(0, 0, SIDE, 64), BLUE))
        noisy = grainy(clean, 10.0)
        smooth = quieted(noisy, noise_level(noisy), 4.0)
        inside = (slice(8, -8), slice(8, 56))
        assert (np.std(smooth[inside], axis=(0, 1)) < 0.4 * np.std(noisy[inside], axis=(0, 1))).all()
        # Across the step (columns 63 | 64) the colour still changes in about one pixel: two pixels
        # either side of it already hold the two colours (within the grain left).
        left, right = smooth[8:-8, 61].mean(axis=0), smooth[8:-8, 66].mean(axis=0)
        assert np.abs(left - clean[8:-8, 61].mean(axis=0)).max() < 0.03
        assert np.abs(right - clean[8:-8, 66].mean(axis=0)).max() < 0.03


class TestFlatRegions:
    def test_shapes_are_found_through_a_cameras_grain(self) -> None:
        disc = Shape(0, (0.3, 0.3), 0.12, 0.0, (0.9, 0.2, 0.1))
        square = Shape(4, (0.68, 0.65), 0.14, 0.3, (0.1, 0.2, 0.9))
        noisy = grainy(picture(disc, square), 12.0)
        found = flat_regions(noisy)
        assert len(found) == 2
        for region, shape in zip(found, (disc, square)):
            assert np.linalg.norm(region.centre - pixels(shape.centre)) < 1.5
        # The grain breaks flat colour up: unsmoothed, neither shape is found whole (where one is found,
        # it is a scrap of it).
        for region in flat_regions(noisy, StartSettings(region_quiet=0.0)):
            assert all(region.area < shape_mask(shape).sum() for shape in (disc, square))

    def test_finds_each_whole_shape_with_its_centre_and_area(self) -> None:
        disc = Shape(0, (0.3, 0.3), 0.12, 0.0, (0.9, 0.2, 0.1))
        square = Shape(4, (0.68, 0.65), 0.14, 0.3, (0.1, 0.2, 0.9))
        found = flat_regions(picture(disc, square))
        assert len(found) == 2
        assert found[0].area > found[1].area  # largest first: the disc
        for region, shape in zip(found, (disc, square)):
            assert np.linalg.norm(region.centre - pixels(shape.centre)) < 1.0
            # The mask covers the shape and its edge: within a two-pixel band of the outline.
            assert shape_mask(shape).sum() <= region.area <= 1.5 * shape_mask(shape).sum()
            assert region.crisp > 0.6

    def test_a_shape_cut_by_the_frame_is_left_out(self) -> None:
        alone = Shape(5, (0.25, 0.7), 0.1, 0.0, (0.9, 0.9, 0.2))
        cut = Shape(3, (0.55, 0.98), 0.1, 0.0, (0.1, 0.1, 0.1))  # runs off the right edge
        found = flat_regions(picture(alone, cut))
        assert len(found) == 1 and not found[0].touching
        assert np.linalg.norm(found[0].centre - pixels(alone.centre)) < 1.0

    def test_a_shape_partly_hidden_by_another_counts_as_its_convex_hull(self) -> None:
        # A small square over the middle of a larger one's top edge: what shows of the larger is a U,
        # whose convex hull is the whole square.
        under, over = box(40, 30, 100, 90), box(28, 50, 52, 70)
        found = flat_regions(painted((under, BLUE), (over, RED)))
        assert len(found) == 2 and all(region.touching for region in found)
        whole = max(found, key=lambda region: region.area)
        assert np.linalg.norm(whole.centre - [69.5, 59.5]) < 1.0
        assert iou(whole.mask, under) > 0.95
        small = min(found, key=lambda region: region.area)
        assert np.linalg.norm(small.centre - [39.5, 59.5]) < 1.0

    def test_touching_shapes_are_left_out_when_the_settings_say_so(self) -> None:
        pictured = painted((box(40, 30, 100, 90), BLUE), (box(28, 50, 52, 70), RED), (box(104, 100, 122, 120), RED))
        assert len(flat_regions(pictured)) == 3
        (found,) = flat_regions(pictured, StartSettings(region_touching=False))
        assert not found.touching and np.linalg.norm(found.centre - [112.5, 109.5]) < 1.0

    def test_a_shape_mostly_hidden_is_left_out(self) -> None:
        # The square over covers 0.8 of the side of the one under it, at a corner: what shows is a thin L,
        # less than two thirds of its convex hull.
        under, over = box(30, 30, 90, 90), box(20, 20, 78, 78)
        (found,) = flat_regions(painted((under, BLUE), (over, RED)))
        assert np.linalg.norm(found.centre - [48.5, 48.5]) < 1.0
        assert len(flat_regions(painted((under, BLUE), (over, RED)), StartSettings(region_most_hidden=0.6))) == 2

    def test_a_faint_shape_drawn_sharply_counts(self) -> None:
        # A step of 0.12 of the range: its outline's edge strength stays under region_edge everywhere, but
        # reaches far more than region_step of the step across it.
        faint = Shape(0, (0.45, 0.5), 0.15, 0.0, (0.57, 0.57, 0.57))
        pictured = picture(faint, background=(GREY, GREY))
        (found,) = flat_regions(pictured)
        assert np.linalg.norm(found.centre - pixels(faint.centre)) < 1.0
        assert found.crisp > 0.6
        # Judged by the absolute strength alone, as a bold shape is, it would not count.
        assert flat_regions(pictured, StartSettings(region_step=100.0)) == []

    def test_a_strong_step_blurred_is_not_an_outline(self) -> None:
        bold = Shape(0, (0.45, 0.5), 0.15, 0.0, (0.95, 0.95, 0.95))
        sharp = picture(bold, background=(GREY, GREY))
        assert len(flat_regions(sharp)) == 1
        for sigma in (1.5, 2.5):  # a sharp step reaches half its step in the outline's band, these under 0.3
            assert flat_regions(cv2.GaussianBlur(sharp, (0, 0), sigma)) == []

    def test_a_soft_blob_and_a_photograph_hold_no_shape(self) -> None:
        rows, columns = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
        blob = np.exp(-((rows - 64) ** 2 + (columns - 64) ** 2) / (2 * 12.0 ** 2))
        soft = np.repeat((blob * 1.6 - 0.8)[..., None], 3, axis=-1).astype(np.float32)
        texture = random_texture(np.random.default_rng(5), SIDE, SIDE)
        assert flat_regions(soft) == []
        assert flat_regions(texture) == []

    def test_a_flat_picture_holds_no_shape(self) -> None:
        assert flat_regions(picture(background=(GREY, GREY))) == []


class TestMatchRegions:
    def test_pairs_by_outline_not_by_colour_or_place(self) -> None:
        source_shapes = (Shape(3, (0.3, 0.3), 0.13, 0.0, (0.9, 0.1, 0.1)), Shape(0, (0.7, 0.7), 0.11, 0.0, (0.1, 0.1, 0.9)))
        # The triangle moves to where the disc was and takes its colour, and the other way round.
        target_shapes = (Shape(3, (0.68, 0.62), 0.12, 0.1, (0.1, 0.1, 0.9)), Shape(0, (0.32, 0.36), 0.12, 0.0, (0.9, 0.1, 0.1)))
        source, target = picture(*source_shapes), picture(*target_shapes)
        matches = match_regions(flat_regions(source), flat_regions(target), SIDE)
        assert len(matches) == 2
        for source_shape, target_shape in zip(source_shapes, target_shapes):
            match = min(matches, key=lambda m: np.linalg.norm(m.target.centre - pixels(target_shape.centre)))
            assert np.linalg.norm(match.source.centre - pixels(source_shape.centre)) < 1.0

    def test_the_source_turned_and_scaled_by_the_match_covers_the_target(self) -> None:
        source_shape = Shape(3, (0.4, 0.4), 0.12, 0.2, (0.9, 0.6, 0.1))
        target_shape = Shape(3, (0.55, 0.6), 0.15, 0.5, (0.2, 0.3, 0.8))
        source, target = flat_regions(picture(source_shape)), flat_regions(picture(target_shape))
        (match,) = match_regions(source, target, SIDE)
        assert abs(match.scale - 0.15 / 0.12) < 0.06
        # The turn as the module defines it, written out with OpenCV: turn the source about its centre,
        # scale it, carry its centre onto the target's.
        rotation = cv2.getRotationMatrix2D((float(match.source.centre[1]), float(match.source.centre[0])),
                                           math.degrees(match.turn), match.scale)
        rotation[:, 2] += match.target.centre[::-1] - match.source.centre[::-1]
        moved = cv2.warpAffine(shape_mask(source_shape).astype(np.float32), rotation, (SIDE, SIDE))
        assert iou(moved, shape_mask(target_shape)) > 0.9
        assert abs(abs(match.turn) - 0.3) < 0.07  # the scene turns it by 0.3 rad

    def test_a_symmetric_shape_takes_its_smallest_turn(self) -> None:
        source = flat_regions(picture(Shape(4, (0.45, 0.45), 0.13, 0.0, RED)))
        target = flat_regions(picture(Shape(4, (0.5, 0.55), 0.13, 0.25, (0.9, 0.9, 0.9))))
        (match,) = match_regions(source, target, SIDE)
        assert abs(abs(match.turn) - 0.25) < 0.07  # not 0.25 + a quarter turn

    def test_a_square_with_a_hidden_corner_keeps_its_turn(self) -> None:
        # What shows of the square under the red one has lost the square's quarter-turn symmetry; the
        # whole square in the target still has it, so the smallest turn that fits is none.
        source = flat_regions(painted((box(30, 30, 80, 80), BLUE), (box(67, 67, 90, 90), RED)))
        target = flat_regions(painted((box(50, 60, 100, 110), BLUE)))
        square = max(source, key=lambda region: region.area)
        (match,) = match_regions([square], target, SIDE)
        assert square.touching and abs(match.turn) < 0.05
        assert abs(match.scale - 1.0) < 0.1

    def test_unlike_outlines_are_not_paired(self) -> None:
        source = flat_regions(picture(Shape(3, (0.4, 0.4), 0.13, 0.0, RED)))
        target = flat_regions(picture(Shape(0, (0.45, 0.45), 0.1, 0.0, RED)))
        assert len(source) == len(target) == 1
        assert match_regions(source, target, SIDE) == []

    def test_a_large_square_is_not_a_disc(self) -> None:
        # Of equal area the two overlap by about 0.86 at best here: close, but not the same outline. (A
        # square of a radius under about 20 pixels looks round enough on the patch to pass.)
        source = flat_regions(picture(Shape(4, (0.4, 0.4), 0.18, 0.3, RED), side=192))
        target = flat_regions(picture(Shape(0, (0.45, 0.5), 0.18 * math.sqrt(2 / math.pi), 0.0, RED), side=192))
        assert len(source) == len(target) == 1
        assert match_regions(source, target, 192) == []
        assert len(match_regions(source, target, 192, StartSettings(region_overlap=0.75))) == 1

    def test_nothing_to_pair_is_no_pair(self) -> None:
        assert match_regions([], flat_regions(picture(Shape(0, (0.5, 0.5), 0.1, 0.0, RED))), SIDE) == []


def region_at(centre: tuple[float, float], radius: float, side: int = SIDE) -> Region:
    """A disc region of ``radius`` pixels at ``centre`` ((y, x) pixels)."""
    mask = np.zeros((side, side), np.uint8)
    cv2.circle(mask, (round(centre[1]), round(centre[0])), round(radius), 1, -1)
    return Region(mask, float(mask.sum()), np.asarray(centre, np.float64), 1.0)


class TestSimilarityFlow:
    def test_matches_the_map_written_out_pixel_by_pixel(self) -> None:
        here, there, turn, scale = np.array([50.0, 60.0]), np.array([40.0, 30.0]), 0.4, 1.25
        flow = similarity_flow(here, there, turn, scale, 96, 112)
        # Independent reference: OpenCV's forward map (other picture → this one), inverted.
        forward = cv2.getRotationMatrix2D((float(there[1]), float(there[0])), math.degrees(turn), scale)
        forward[:, 2] += here[::-1] - there[::-1]
        backward = cv2.invertAffineTransform(forward)
        for y, x in ((0, 0), (50, 60), (10, 100), (95, 111), (70, 20)):
            shown_x, shown_y = backward @ np.array([x, y, 1.0])
            np.testing.assert_allclose(flow[y, x], [y - shown_y, x - shown_x], atol=1e-3)

    def test_no_turn_and_no_scale_is_the_shift_everywhere(self) -> None:
        flow = similarity_flow(np.array([20.0, 30.0]), np.array([25.0, 10.0]), 0.0, 1.0, 40, 50)
        np.testing.assert_allclose(flow, np.broadcast_to([-5.0, 20.0], flow.shape), atol=1e-4)


class TestTravellingFlow:
    here, there, turn, scale = np.array([120.0, 130.0]), np.array([60.0, 50.0]), 0.5, 1.4

    def test_is_the_similarity_where_the_shape_ends_and_beyond(self) -> None:
        flow = travelling_flow(self.here, self.there, self.turn, self.scale, 200, 200)
        plain = similarity_flow(self.here, self.there, self.turn, self.scale, 200, 200)
        for y, x in ((120, 130), (150, 170), (190, 199)):
            np.testing.assert_allclose(flow[y, x], plain[y, x], atol=1e-3)

    def test_half_way_it_shows_the_shape_half_turned_and_half_grown(self) -> None:
        middle = (self.here + self.there) / 2
        half = cv2.getRotationMatrix2D((0.0, 0.0), math.degrees(self.turn / 2), math.sqrt(self.scale))

        def misses(flow: np.ndarray) -> list[float]:
            """How far frame ½ samples each point of the source shape from where it should."""
            found = []
            for offset in ((0.0, 0.0), (0.0, 6.0), (-5.0, 0.0), (4.0, 4.0)):  # (y, x) from the source's centre
                # Where the point sits at alpha ½: turned by half (OpenCV's sense, on (x, y)), grown by half.
                moved_x, moved_y = half[:, :2] @ np.asarray(offset)[::-1]
                y, x = middle[0] + moved_y, middle[1] + moved_x
                at = np.array([cv2.getRectSubPix(flow[..., k], (1, 1), (float(x), float(y)))[0, 0] for k in range(2)])
                found.append(float(np.linalg.norm(np.array([y, x]) - 0.5 * at - (self.there + offset))))
            return found

        travelling = misses(travelling_flow(self.here, self.there, self.turn, self.scale, 200, 200))
        plain = misses(similarity_flow(self.here, self.there, self.turn, self.scale, 200, 200))
        assert travelling[0] < 0.1  # the centre exactly
        assert max(travelling) < 2.0  # points off the centre pass a little earlier or later
        assert min(plain) > 10.0  # the plain similarity puts the halves a tenth of the travel apart

    def test_a_shift_is_the_shift_everywhere(self) -> None:
        flow = travelling_flow(self.here, self.there, 0.0, 1.0, 200, 200)
        np.testing.assert_allclose(flow, np.broadcast_to(self.here - self.there, flow.shape), atol=1e-3)


class TestRegionFlows:
    def setup_method(self) -> None:
        self.source, self.target = region_at((40.0, 30.0), 10.0), region_at((80.0, 90.0), 10.0)
        self.match = RegionMatch(self.target, self.source, 0.0, 1.0, 1.0)
        self.flows = region_flows([self.match], SIDE, SIDE)
        self.shift = self.target.centre - self.source.centre

    def test_the_shape_moves_in_full_along_its_path_both_ways(self) -> None:
        for point in (self.target.centre, (self.target.centre + self.source.centre) / 2, self.source.centre):
            y, x = np.round(point).astype(int)
            np.testing.assert_allclose(self.flows[0, y, x], self.shift, atol=1e-3)  # S→T, on the target's pixels
            np.testing.assert_allclose(self.flows[1, y, x], -self.shift, atol=1e-3)  # T→S

    def test_far_from_the_path_nothing_moves(self) -> None:
        assert np.abs(self.flows[:, 5, 120]).max() < 1e-3
        assert np.abs(self.flows[:, 120, 5]).max() < 1e-3

    def test_the_middle_frame_shows_the_shape_once_halfway(self) -> None:
        # At alpha ½ each picture is sampled half-way along the flow: both halves put the disc midway.
        halfway = (self.source.centre + self.target.centre) / 2
        expected = region_at(tuple(halfway), 10.0).mask
        from_source = warped_by(self.source.mask, 0.5 * self.flows[0])
        from_target = warped_by(self.target.mask, 0.5 * self.flows[1])
        assert iou(from_source, expected) > 0.9
        assert iou(from_target, expected) > 0.9

    def test_a_shape_that_shrinks_on_its_way_shows_once_at_its_middle_size(self) -> None:
        source, target = region_at((40.0, 30.0), 20.0), region_at((80.0, 90.0), 14.0)
        scale = math.sqrt(target.area / source.area)
        flows = region_flows([RegionMatch(target, source, 0.0, scale, 1.0)], SIDE, SIDE)
        middle = region_at(tuple((source.centre + target.centre) / 2), 20.0 * math.sqrt(scale)).mask
        from_source = warped_by(source.mask, 0.5 * flows[0])
        from_target = warped_by(target.mask, 0.5 * flows[1])
        assert iou(from_source, middle) > 0.93
        assert iou(from_target, middle) > 0.93
        assert iou(from_source, from_target) > 0.93

    def test_settings_spread_the_fade_beyond_the_path(self) -> None:
        wide = region_flows([self.match], SIDE, SIDE, StartSettings(region_spread=2.0))
        y, x = 80, 110  # ten pixels beyond the target disc's edge
        assert np.linalg.norm(wide[0, y, x]) > np.linalg.norm(self.flows[0, y, x]) + 1.0

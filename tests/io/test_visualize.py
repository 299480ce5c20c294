"""Map pictures: flow colours encode direction and length."""

from __future__ import annotations

import numpy as np

from morphing.model.maps import MorphMaps, Scales
from morphing.io.visualize import flow_to_colour, maps_picture


def test_flow_colour_is_white_at_rest_and_distinct_by_direction() -> None:
    flow = np.zeros((2, 2, 2), np.float32)
    flow[0, 1] = (0, 5)  # right
    flow[1, 0] = (0, -5)  # left
    flow[1, 1] = (5, 0)  # down
    colours = flow_to_colour(flow).astype(int)
    assert tuple(colours[0, 0]) == (255, 255, 255)
    assert len({tuple(c) for c in colours.reshape(-1, 3)}) == 4
    half = flow_to_colour(flow * 0.5, max_magnitude=5).astype(int)
    assert half[0, 1].min() > colours[0, 1].min()  # shorter flow is paler


def test_maps_picture_has_six_tiles() -> None:
    rng = np.random.default_rng(0)
    maps = MorphMaps(rng.normal(size=(8, 8, 8)), rng.normal(size=(8, 8, 8)), Scales(), (32, 32))
    sheet = maps_picture(maps, tile=64)
    assert sheet.dtype == np.uint8 and sheet.shape[0] > 2 * 64 and sheet.shape[1] > 3 * 64


def test_maps_picture_marks_points_on_the_tiles_of_their_image() -> None:
    from morphing.model.points import PointPairs

    maps = MorphMaps(np.zeros((8, 8, 8)), np.zeros((8, 8, 8)), Scales(), (32, 32))
    points = PointPairs(np.array([[3.5, 3.5]]), np.array([[27.5, 27.5]]), (32, 32), (32, 32))
    plain = maps_picture(maps, tile=64).astype(int)
    marked = maps_picture(maps, tile=64, points=points).astype(int)
    changed = np.argwhere(np.abs(marked - plain).sum(axis=-1) > 0)
    assert len(changed) > 0
    # Tile column 0 (mult) of row 0 lives on the source: a mark near its top-left corner (pad 6,
    # label 18, point at 1/8 of 64 px); the same tile of row 1 lives on the target: near its bottom-right.
    top_left = (changed[:, 0] < 6 + 18 + 20) & (changed[:, 1] < 6 + 20)
    assert top_left.any()
    row_1_tile_top = 6 + (18 + 64 + 6) + 18
    bottom_right = (changed[:, 0] > row_1_tile_top + 44) & (changed[:, 1] > 6 + 44) & (changed[:, 1] < 6 + 64 + 6)
    assert bottom_right.any()

"""Pictures of maps: a flow colour wheel and a labelled sheet of the six maps."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from morphing.model.maps import ADD, MULT, WARP, MorphMaps
from morphing.model.points import PointPairs

__all__ = ["flow_to_colour", "signed_to_colour", "maps_picture"]


def flow_to_colour(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """``[H, W, 2]`` flow (dy, dx) → ``[H, W, 3] uint8``: hue = direction, saturation = length.

    White is no motion; full saturation is ``max_magnitude`` (default: the
    largest length in ``flow``).
    """
    dy, dx = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    magnitude = np.hypot(dy, dx)
    top = float(max_magnitude) if max_magnitude else float(magnitude.max())
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    saturation = np.clip(magnitude / top, 0.0, 1.0) if top > 0 else np.zeros_like(magnitude)
    hsv = np.stack([hue * 255, saturation * 255, np.full_like(hue, 255)], axis=-1)
    return np.asarray(Image.fromarray(np.rint(hsv).astype(np.uint8), "HSV").convert("RGB"))


def signed_to_colour(values: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` signed values → ``uint8``, 0 at mid-grey, symmetric in ±max|v|."""
    top = float(np.abs(values).max())
    scaled = values / top if top > 0 else np.zeros_like(values)
    return np.clip(np.rint(127.5 + 127.5 * scaled), 0, 255).astype(np.uint8)


def _mark_points(draw: ImageDraw.ImageDraw, points: np.ndarray, shape: tuple[int, int], box: tuple[int, int, int, int]) -> None:
    """Numbered crosses at ``points`` ((y, x) in pixels of an image of ``shape``) on the tile at ``box``."""
    left, top, tile_w, tile_h = box
    for number, (y, x) in enumerate(points, start=1):
        u = left + (x + 0.5) * tile_w / shape[1]
        v = top + (y + 0.5) * tile_h / shape[0]
        for colour, width in (("white", 3), ("black", 1)):
            draw.line([(u - 4, v), (u + 4, v)], fill=colour, width=width)
            draw.line([(u, v - 4), (u, v + 4)], fill=colour, width=width)
        draw.text((u + 4, v - 12), str(number), fill="black")


def maps_picture(maps: MorphMaps, tile: int = 192, points: PointPairs | None = None) -> np.ndarray:
    """A ``[h, w, 3] uint8`` sheet: rows source→target and target→source;
    columns mult, add, warp (colour wheel), each tile labelled.

    With ``points`` (user point pairs in pixels of ``maps.image_shape``), each
    tile marks the points of the image it lives on: the source→target colour
    maps apply to the source and its warp lives on the target, and the other
    way round for target→source.
    """
    grid_h, grid_w = maps.grid_shape
    scale = tile / max(grid_h, grid_w)
    tile_h, tile_w = max(1, round(grid_h * scale)), max(1, round(grid_w * scale))
    label_h, pad = 18, 6
    rows = [("source->target", maps.forward), ("target->source", maps.backward)]
    sheet = Image.new("RGB", (3 * (tile_w + pad) + pad, 2 * (tile_h + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, (direction, packed) in enumerate(rows):
        tiles = [
            ("mult", signed_to_colour(packed[..., MULT])),
            ("add", signed_to_colour(packed[..., ADD])),
            ("warp", flow_to_colour(packed[..., WARP])),
        ]
        for column, (name, picture) in enumerate(tiles):
            left = pad + column * (tile_w + pad)
            top = pad + row * (tile_h + label_h + pad)
            draw.text((left, top), f"{direction} {name}", fill="black", font=font)
            resized = Image.fromarray(picture, "RGB").resize((tile_w, tile_h), Image.Resampling.BILINEAR)
            sheet.paste(resized, (left, top + label_h))
            if points is not None:
                on_source = (name == "warp") == (row == 1)
                marked = points.source if on_source else points.target
                _mark_points(draw, marked, maps.image_shape, (left, top + label_h, tile_w, tile_h))
    return np.asarray(sheet)

"""Pictures of maps: a flow colour wheel and a labelled sheet of the six maps."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .maps import ADD, MULT, WARP, MorphMaps

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


def maps_picture(maps: MorphMaps, tile: int = 192) -> np.ndarray:
    """A ``[h, w, 3] uint8`` sheet: rows source→target and target→source;
    columns mult, add, warp (colour wheel), each tile labelled."""
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
    return np.asarray(sheet)

"""Geometric transfer: the source moved into the target's geometry, colours untouched.

After a morph fit, the source→target warp alone (no add or multiply map) at
alpha = 1 carries the source's pixels to where the target has its shapes: the
target's "geometric style" applied to the source.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from morphing.model.maps import MorphMaps, Scales
from morphing.render.transition import upsample_direction
from morphing.render.warp import dense_image_warp

__all__ = ["morph_flows", "transfer_flow", "warp_to_target"]


def morph_flows(maps: MorphMaps, scales: Scales, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions' flows at alpha = 1 for ``[height, width]`` frames.

    Returns ``(forward, backward)``, each ``[height, width, 2] float32`` (dy, dx)
    in pixels with the ``dense_image_warp`` sign convention, already
    multiplied by ``scales.warp``: the source→target flow lives on the
    target's pixels (target pixel ``p`` shows the source at ``p - forward[p]``),
    the target→source flow on the source's.
    """
    packed = tf.constant(np.stack([maps.forward, maps.backward]))
    flows = (scales.warp * upsample_direction(packed, height, width).warp).numpy()
    return flows[0], flows[1]


def transfer_flow(maps: MorphMaps, scales: Scales, height: int, width: int) -> np.ndarray:
    """The source→target flow at alpha = 1 for an ``[height, width]`` image (see ``morph_flows``)."""
    return morph_flows(maps, scales, height, width)[0]


def warp_to_target(source: np.ndarray, maps: MorphMaps, scales: Scales) -> np.ndarray:
    """``[H, W, C]`` float source warped by its maps' flow at alpha = 1 (bilinear).

    The colour maps are ignored. Returns ``[H, W, C] float32``.
    """
    if not isinstance(source, np.ndarray) or source.ndim != 3 or source.dtype.kind != "f":
        raise ValueError(f"source must be [H, W, C] floats (to_float of uint8 pixels), got "
                         f"{getattr(source, 'shape', type(source).__name__)} {getattr(source, 'dtype', '')}")
    height, width = source.shape[:2]
    flow = transfer_flow(maps, scales, height, width)
    warped = dense_image_warp(tf.constant(source[np.newaxis], tf.float32), tf.constant(flow[np.newaxis]))
    return warped[0].numpy()

"""Differentiable image morphing: gradient descent finds multiply, add and warp
maps that turn a source image into a target; scaling the maps by alpha gives
the transition.

Public API (imported lazily, so that ``import morphing`` does not start
TensorFlow)::

    from morphing import load_image, to_float, fit_maps, FrameRenderer, Scales
    maps = fit_maps(to_float(source), to_float(target), Scales())
    frames = FrameRenderer(source, target, maps, maps.scales).render([0.0, 0.5, 1.0])

Many pairs of one size: one ``MapFitter`` and one ``RenderProgram`` for all
(``FrameRenderer(..., program=program)``) trace and compile once.

The sibling tools: ``fit_hybrid`` (hybrid images), ``shift_image`` and
``align_shift`` (sub-pixel shifts and alignment), ``warp_to_target``
(geometric transfer).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.6.0"

_EXPORTS = {
    "dense_image_warp": "warp",
    "fit_maps": "fit",
    "FitSettings": "fit",
    "MapFitter": "fit",
    "FrameRenderer": "render",
    "RenderProgram": "render",
    "frame_alphas": "render",
    "DetailSettings": "blend",
    "MorphMaps": "maps",
    "Scales": "maps",
    "save_maps": "maps",
    "load_maps": "maps",
    "load_image": "images",
    "to_float": "images",
    "to_uint8": "images",
    "fit_hybrid": "hybrid",
    "HybridSettings": "hybrid",
    "shift_image": "shift",
    "align_shift": "shift",
    "AlignSettings": "shift",
    "warp_to_target": "transfer",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Differentiable image morphing: gradient descent finds multiply, add and warp
maps that turn a source image into a target; scaling the maps by alpha gives
the transition.

Public API (imported lazily, so that ``import morphing`` does not start
TensorFlow). A whole morph is one object (``morphing.morph``)::

    from morphing import FrameSettings, Morph, load_image
    morph = Morph(load_image("a.jpg").pixels, load_image("b.jpg").pixels).fit()   # [H, W, 3] uint8 in
    middle = morph.frame(0.5)                                                    # [H, W, 3] uint8 out
    morph.save("a_to_b.gif", frames=FrameSettings(frames=50))

The pieces it is made of, one pair, one step at a time::

    from morphing import load_image, to_float, fit_maps, FrameRenderer, Scales
    # frames: the key images at the frames' size, for the polish (as Morph and the CLI fit)
    maps = fit_maps(to_float(source), to_float(target), Scales(), frames=(source, target))
    frames = FrameRenderer(source, target, maps, maps.scales).render([0.0, 0.5, 1.0])

Many pairs of one size: ``Morph`` objects given no ``cache=`` share the
process's ``ProgramCache`` (``sequence.shared_program_cache``), so the fit and
the render are traced and compiled once; ``cache=ProgramCache()`` keeps a
morph's programs apart.

The sibling tools: ``fit_hybrid`` (hybrid images), ``shift_image`` and
``shift_pixels`` and ``align_shift`` (sub-pixel shifts and alignment), ``warp_to_target``
(geometric transfer).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.36.0"

_EXPORTS = {
    "Morph": "morph",
    "dense_image_warp": "render.warp",
    "fit_maps": "fit.fitter",
    "FitSettings": "model.settings",
    "FrameSettings": "model.settings",
    "fit_sequence": "sequence",
    "MorphFrames": "sequence",
    "ProgramCache": "sequence",
    "sequence_keys": "sequence",
    "preview_keys": "sequence",
    "MapFitter": "fit.fitter",
    "FrameRenderer": "render.renderer",
    "RenderProgram": "render.xla",
    "frame_alphas": "model.timeline",
    "DetailSettings": "model.settings",
    "PolishSettings": "model.settings",
    "EncoderSettings": "model.settings",
    "OutputSize": "model.settings",
    "MorphMaps": "model.maps",
    "Scales": "model.maps",
    "save_maps": "model.maps",
    "load_maps": "model.maps",
    "load_image": "io.images",
    "to_float": "io.images",
    "to_uint8": "io.images",
    "fit_hybrid": "tools.hybrid",
    "HybridSettings": "model.settings",
    "shift_image": "tools.shift",
    "shift_pixels": "tools.shift",
    "align_shift": "tools.shift",
    "AlignSettings": "model.settings",
    "warp_to_target": "tools.transfer",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Baselines the benchmarks measure ours against, in the same run: a cross-dissolve and
an optical-flow morph (OpenCV's DIS flow both ways). Needs ``requirements-bench.txt``.
Also the benchmarks' shared ``--set FIELD=VALUE`` parsing (``overridden``) and the line naming the
libraries a run used (``library_versions``: figures move a little between their releases)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable, Sequence
from typing import TypeVar

import cv2
import numpy as np

from morphing.fit import starts

__all__ = ["dis_flows", "dissolve", "flow_morph", "formula_morph", "library_versions", "overridden"]

Settings = TypeVar("Settings")


def library_versions() -> str:
    """``"morphing 0.19.0, tensorflow 2.21.0, ..."``: the versions of this project and of the libraries
    whose numerics the figures depend on (the fit, SIFT and DIS, the face detector), as installed."""
    import morphing

    names = ("tensorflow", "keras", "numpy", "mtcnn")
    installed = []
    for name in names:
        try:
            installed.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join([f"morphing {morphing.__version__}", *installed, f"OpenCV {cv2.__version__}"])


def overridden(settings: Settings, items: Sequence[str]) -> Settings:
    """``settings`` (a dataclass) with ``FIELD=VALUE`` items applied, each value parsed as its field's type;
    a dotted ``FIELD.SUBFIELD=VALUE`` reaches into a nested settings dataclass (``starts.margin=0.05``); a tuple
    field takes comma-separated items (``global_search.turns=-0.4,0,0.4``)."""
    for item in items:
        key, value = item.split("=", 1)
        head, _, rest = key.partition(".")
        if rest:
            settings = dataclasses.replace(settings, **{head: overridden(getattr(settings, head), [f"{rest}={value}"])})
            continue
        current = getattr(settings, key)
        field_type = type(current)
        if field_type is bool:
            parsed = value.lower() in ("1", "true", "yes")
        elif field_type is tuple:  # comma-separated items of the current items' type: turns=-0.4,0,0.4
            parsed = tuple(type(current[0])(part) for part in value.split(",")) if current else tuple(value.split(","))
        else:
            parsed = field_type(value)
        settings = dataclasses.replace(settings, **{key: parsed})
    return settings


Render = Callable[[np.ndarray], list[np.ndarray]]


def dis_flows(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS optical flow (OpenCV, medium preset, on grey) as our morph's two flows (``morphing.fit.starts.dis_flows``).

    ``source``, ``target``: ``[H, W, 3] uint8``. Returns ``(forward, backward)``
    ``[H, W, 2] float32`` (dy, dx) in ``dense_image_warp``'s convention, like
    ``morphing.tools.transfer.morph_flows``: target pixel ``p`` shows the source at
    ``p - forward[p]``, source pixel ``q`` the target at ``q - backward[q]``.
    """
    forward, backward = starts.dis_flows(source, target)
    return forward, backward


def dissolve(source: np.ndarray, target: np.ndarray) -> tuple[Render, list[np.ndarray]]:
    """The cross-dissolve: ``(render(alphas) -> frames, [])``."""
    s, t = source.astype(np.float64), target.astype(np.float64)

    def render(alphas: np.ndarray) -> list[np.ndarray]:
        return [np.clip(np.rint((1 - a) * s + a * t), 0, 255).astype(np.uint8) for a in alphas]

    return render, []


def formula_morph(source: np.ndarray, target: np.ndarray, forward: np.ndarray,
                  backward: np.ndarray) -> tuple[Render, list[np.ndarray]]:
    """The formula's plain render of given flows, no colour maps:
    frame(a) = (1 - a)·S(p - a·f(p)) + a·T(p - (1 - a)·b(p)), bilinear, the border's pixels repeated.

    ``source``, ``target``: ``[H, W, 3] uint8``; ``forward``, ``backward``: ``[H, W, 2]``
    (dy, dx) pixels as in ``dis_flows``. Returns ``(render(alphas) -> frames, [forward, backward])``.
    """
    height, width = source.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def warp(image: np.ndarray, flow: np.ndarray, amount: float) -> np.ndarray:
        amount = np.float32(amount)
        return cv2.remap(image, grid_x - amount * flow[..., 1], grid_y - amount * flow[..., 0],
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)

    def render(alphas: np.ndarray) -> list[np.ndarray]:
        return [
            np.clip(np.rint((1 - a) * warp(source, forward, a) + a * warp(target, backward, 1 - a)), 0, 255)
            .astype(np.uint8)
            for a in alphas
        ]

    return render, [forward, backward]


def flow_morph(source: np.ndarray, target: np.ndarray) -> tuple[Render, list[np.ndarray]]:
    """The DIS flow morph: ``formula_morph`` of the flows ``dis_flows`` finds (the same linear-in-alpha
    backward warps as our formula, bilinear). Returns ``(render(alphas) -> frames, [forward flow,
    backward flow])``."""
    return formula_morph(source, target, *dis_flows(source, target))

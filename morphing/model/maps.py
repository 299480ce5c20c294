"""The fitted maps of a morph, and their ``.npz`` file.

A morph between a source S and a target T is described by two sets of maps on a
small grid of ``[h, w]`` cells, one per direction (source→target, then
target→source). Each set has 8 channels:

- ``mult`` (3): per-channel gain, applied as ``image * (1 + alpha * m * mult)``;
- ``add`` (3): per-channel offset, applied as ``+ alpha * a * add``;
- ``warp`` (2): a flow in pixels *of the maps' own grid*, as (dy, dx), applied
  as ``alpha * w * warp`` (see ``morphing.render.warp`` for the sign convention).

``m``, ``a`` and ``w`` are the ``Scales``. Maps are resolution-free: resampled to
an ``[H, W]`` frame, the flow is multiplied by ``H / h`` and ``W / w``.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "load_maps_for",
    "Scales",
    "MorphMaps",
    "MapsFileError",
    "MULT",
    "ADD",
    "WARP",
    "CHANNELS_PER_DIRECTION",
    "save_maps",
    "load_maps",
]

MULT = slice(0, 3)
ADD = slice(3, 6)
WARP = slice(6, 8)
CHANNELS_PER_DIRECTION = 8
FORMAT_VERSION = 1
#: Largest sensible flow in a maps file, in grid sides (scaled by the fitted warp multiplier).
MAX_FLOW_GRID_SIDES = 4.0
#: Largest sensible scaled multiply or add value (frames are in [-1, 1]).
MAX_COLOUR_MAP = 1e3
MAX_GRID_SIDE = 4096
"""A maps file whose grid has a longer side is refused before it is read (fits make 64)."""
_FIELD_SHAPES = {"format_version": "scalar", "forward": "maps", "backward": "maps", "scales": (3,),
                 "image_shape": (2,)}


@dataclass(frozen=True)
class Scales:
    """The map multipliers of the formula: ``m`` (mult), ``a`` (add), ``w`` (warp)."""

    mult: float = 0.6
    add: float = 0.2
    warp: float = 0.05

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} scale must be a finite number >= 0, got {value}")


class MapsFileError(Exception):
    """A maps file that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class MorphMaps:
    """Maps for both directions of one morph.

    Attributes:
      forward: ``[h, w, 8] float32``, source→target: mult, add, warp (grid pixels).
      backward: ``[h, w, 8] float32``, target→source, same layout.
      scales: the ``Scales`` the maps were fitted with.
      image_shape: ``(H, W)`` of the source the maps were fitted for.
    """

    forward: np.ndarray
    backward: np.ndarray
    scales: Scales
    image_shape: tuple[int, int]

    def __post_init__(self) -> None:
        for name in ("forward", "backward"):
            array = getattr(self, name)
            if array.ndim != 3 or array.shape[-1] != CHANNELS_PER_DIRECTION:
                raise ValueError(
                    f"{name} maps must be [h, w, {CHANNELS_PER_DIRECTION}], got {array.shape}"
                )
        if self.forward.shape != self.backward.shape:
            raise ValueError(
                f"forward maps {self.forward.shape} and backward maps "
                f"{self.backward.shape} differ in shape"
            )
        if min(self.forward.shape[:2]) < 1:
            raise ValueError(f"the maps' grid is empty ({self.forward.shape[0]}x{self.forward.shape[1]})")
        if not (np.isfinite(self.forward).all() and np.isfinite(self.backward).all()):
            raise ValueError("maps hold NaN or infinite values")
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be two sizes >= 1, got {self.image_shape}")

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the maps' grid."""
        return self.forward.shape[0], self.forward.shape[1]


def save_maps(maps: MorphMaps, path: str | os.PathLike[str]) -> None:
    """Write ``maps`` to ``path`` as ``.npz`` (the caller makes it atomic)."""
    with open(path, "wb") as handle:
        np.savez_compressed(
            handle,
            format_version=np.int64(FORMAT_VERSION),
            forward=maps.forward.astype(np.float32),
            backward=maps.backward.astype(np.float32),
            scales=np.array([maps.scales.mult, maps.scales.add, maps.scales.warp], np.float64),
            image_shape=np.array(maps.image_shape, np.int64),
        )


def _check_headers(path: Path, data: np.lib.npyio.NpzFile) -> None:
    """Refuse an archive whose arrays are not the fields ``save_maps`` writes, with their shapes and real
    number types, reading only each array's header (a 1 KB file may declare terabytes)."""
    for key in data.files:
        if key not in _FIELD_SHAPES:
            continue
        with data.zip.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
        expected = _FIELD_SHAPES[key]
        wrong_type = dtype.kind not in ("iu" if key in ("format_version", "image_shape") else "fiu")
        if expected == "maps":
            fits = len(shape) == 3 and shape[2] == 8 and 0 < max(shape[:2]) <= MAX_GRID_SIDE
        else:
            fits = shape == (() if expected == "scalar" else expected)
        if wrong_type or not fits:
            raise MapsFileError(f"{path}: not a maps file written by --save-maps ({key} is {dtype} {shape})")


def load_maps(path: str | os.PathLike[str]) -> MorphMaps:
    """Read maps written by ``save_maps``; ``MapsFileError`` names what is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(6) == b"\x93NUMPY":
                raise MapsFileError(f"{path}: not a maps file written by --save-maps (a single array, not .npz)")
        if not zipfile.is_zipfile(path):
            raise MapsFileError(f"{path}: not a maps file written by --save-maps (not an .npz archive)")
        with np.load(path, allow_pickle=False) as data:
            _check_headers(path, data)  # shapes and types, before any array is read
            fields = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise MapsFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MapsFileError(f"{path}: is a directory, not a maps file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise MapsFileError(f"{path}: not a maps file written by --save-maps ({error})") from None
    missing = {"format_version", "forward", "backward", "scales", "image_shape"} - set(fields)
    if missing:
        raise MapsFileError(
            f"{path}: not a maps file written by --save-maps (missing {', '.join(sorted(missing))})"
        )
    version = np.asarray(fields["format_version"])
    if version.shape != () or version.dtype.kind not in "iu":
        raise MapsFileError(f"{path}: not a maps file written by --save-maps (format_version is not a whole number)")
    if int(version) != FORMAT_VERSION:
        raise MapsFileError(
            f"{path}: maps file format {int(version)} is not supported (this version reads {FORMAT_VERSION})"
        )
    try:
        scales = Scales(*(float(v) for v in np.asarray(fields["scales"]).reshape(3)))
        image_shape = tuple(int(v) for v in np.asarray(fields["image_shape"]).reshape(2))
        maps = MorphMaps(
            forward=np.asarray(fields["forward"], np.float32),
            backward=np.asarray(fields["backward"], np.float32),
            scales=scales,
            image_shape=image_shape,  # type: ignore[arg-type]
        )
    except (ValueError, TypeError, IndexError) as error:
        raise MapsFileError(f"{path}: maps file has the wrong shape or values ({error})") from None
    if maps.grid_shape[0] > image_shape[0] or maps.grid_shape[1] > image_shape[1]:
        raise MapsFileError(f"{path}: maps file's grid ({maps.grid_shape[1]}x{maps.grid_shape[0]}) is larger than "
                            f"the image it was fitted for ({image_shape[1]}x{image_shape[0]})")
    if not (np.isfinite(maps.forward).all() and np.isfinite(maps.backward).all()):
        raise MapsFileError(f"{path}: maps file holds NaN or infinite values")
    both = np.stack([maps.forward, maps.backward])
    if np.abs(both[..., WARP]).max() * scales.warp > MAX_FLOW_GRID_SIDES * max(maps.grid_shape):
        raise MapsFileError(f"{path}: maps file's warp moves pixels over {MAX_FLOW_GRID_SIDES:g} image sides")
    if max(np.abs(both[..., MULT]).max() * scales.mult, np.abs(both[..., ADD]).max() * scales.add) > MAX_COLOUR_MAP:
        raise MapsFileError(f"{path}: maps file's multiply or add map is beyond {MAX_COLOUR_MAP:g}")
    return maps


def load_maps_for(path: str | os.PathLike[str], height: int, width: int) -> MorphMaps:
    """``load_maps``, refusing maps fitted for an image of another aspect ratio than ``height`` × ``width``
    (over 2 % apart: the warp would be stretched)."""
    maps = load_maps(path)
    fit_h, fit_w = maps.image_shape
    if abs((fit_w / fit_h) / (width / height) - 1.0) > 0.02:
        raise MapsFileError(
            f"{path}: maps were fitted for a {fit_w}x{fit_h} image, "
            f"but the source is {width}x{height} (another aspect ratio)"
        )
    return maps

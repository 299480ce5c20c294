"""Image files in, arrays out: the only place that knows pixel formats.

Everything downstream works on ``[H, W, 3] uint8`` RGB arrays (what files hold)
or ``[H, W, 3] float32 in [-1, 1]`` (what the numerics use); the two helpers
``to_float`` and ``to_uint8`` convert between them and round-trip exactly.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageFileError",
    "LoadedImage",
    "has_transparency",
    "alpha_of",
    "composite",
    "WHITE",
    "load_image",
    "png_without_text",
    "resize_image",
    "resize_float_image",
    "aspect_crop",
    "fit_to_size",
    "to_float",
    "to_uint8",
    "working_shape",
    "reduce_for_fit",
    "MIN_SIDE",
]

MIN_SIDE = 8
"""Smallest accepted image side in pixels (the warp needs 2, the maps a few)."""

WHITE = (255, 255, 255)
EXIF_ORIENTATION = 0x0112


class ImageFileError(Exception):
    """An input image that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class LoadedImage:
    """An image file decoded to RGB.

    Attributes:
      pixels: ``[H, W, 3] uint8`` RGB, EXIF orientation applied; a transparent
        image's colours composited on white.
      notes: human-readable remarks on conversions made (mode, frame, rotation).
      alpha: ``[H, W] uint8`` opacity of an image with transparency (RGBA, LA,
        a palette with a transparent colour), 255 opaque; ``None`` for an
        opaque image (one whose alpha is 255 everywhere included).
    """

    pixels: np.ndarray
    notes: tuple[str, ...] = ()
    alpha: np.ndarray | None = None


def _describe_open_error(path: Path, error: Exception) -> str:
    if isinstance(error, Image.DecompressionBombError):
        return f"{path}: image is too large to decode safely ({error})"
    if isinstance(error, UnidentifiedImageError):
        return f"{path}: not an image file Pillow can read"
    if isinstance(error, IsADirectoryError):
        return f"{path}: is a directory, not an image file"
    if isinstance(error, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(error, PermissionError):
        return f"{path}: permission denied"
    return f"{path}: cannot read image ({type(error).__name__}: {error})"


def _to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Convert any Pillow mode to RGB; transparency is composited on white (``alpha_of`` keeps it)."""
    notes: list[str] = []
    mode = image.mode
    if mode == "RGB":
        return image, notes
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit or 32-bit grey: scale the full range to 8 bits.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if values.max() > 65535 or values.min() < 0:
            # 32-bit data beyond 16 bits (or signed): its own range becomes 0–255.
            low, high = float(values.min()), float(values.max())
            values, top = values - low, max(high - low, 1.0)
            notes.append(f"{mode} grey with values {low:g}..{high:g}: that range scaled to 8 bits")
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"{mode} (high bit depth grey) reduced to 8-bit RGB")
        return Image.fromarray(grey, "L").convert("RGB"), notes
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():  # NaN or infinite pixels would decide the scale: they become 0 instead
            notes.append(f"{int((~finite).sum())} NaN or infinite pixels set to 0")
            values = np.where(finite, values, 0.0)
        grey = np.clip(np.round(values * (255.0 if values.max() <= 1.0 else 1.0)), 0, 255)
        notes.append("floating-point grey converted to 8-bit RGB")
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB"), notes
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        notes.append(f"{mode}: its transparency is kept (--background COLOUR composites it instead)")
        return Image.alpha_composite(background, rgba).convert("RGB"), notes
    notes.append(f"{mode} converted to RGB")
    return image.convert("RGB"), notes


def has_transparency(image: Image.Image) -> bool:
    """Whether ``image``'s mode carries transparency."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def alpha_of(image: Image.Image) -> np.ndarray | None:
    """``[H, W] uint8`` opacity of an image with transparency, ``None`` when it has none or is opaque everywhere."""
    if not has_transparency(image):
        return None
    alpha = np.array(image.convert("RGBA"), dtype=np.uint8)[..., 3]
    return None if bool((alpha == 255).all()) else alpha


def composite(pixels: np.ndarray, alpha: np.ndarray | None, colour: tuple[int, int, int]) -> np.ndarray:
    """``[H, W, 3] uint8`` colours shown over ``colour`` where ``alpha`` (``[H, W] uint8``) is below 255, from
    colours composited on white (as ``load_image`` gives them); ``pixels`` itself when ``alpha`` is None."""
    if alpha is None:
        return pixels
    weight = alpha.astype(np.float32)[..., None] / 255.0
    # pixels = weight * colour_in + (1 - weight) * white  =>  colour_in * weight = pixels - (1 - weight) * white
    premultiplied = pixels.astype(np.float32) - (1.0 - weight) * 255.0
    return np.clip(np.round(premultiplied + (1.0 - weight) * np.array(colour, np.float32)), 0, 255).astype(np.uint8)


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read an image file as ``[H, W, 3] uint8`` RGB.

    EXIF orientation is applied; grey, palette, CMYK, 16-bit and transparent
    images become RGB (transparency over white, the opacity kept as ``alpha``); of an animated file the first
    frame is used. Raises ``ImageFileError`` with a one-line message naming the
    file for anything that cannot be decoded or is smaller than ``MIN_SIDE``.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"{path}: is a directory, not an image file")
    if path.is_file() and path.stat().st_size == 0:
        raise ImageFileError(f"{path}: file is empty")
    try:
        try:
            # A pipe (``-s <(curl …)``) or a device cannot seek: its bytes are read first, up to a cap.
            pixels, notes, alpha = _decode(path if path.is_file() or not path.exists() else _streamed(path))
        except ValueError as error:
            if "MAX_TEXT_CHUNK" not in str(error):
                raise
            # A PNG whose text metadata (XMP, ICC as text) is larger than Pillow's
            # guard: the pixels are fine, so decode it without its text chunks.
            pixels, notes, alpha = _decode(io.BytesIO(png_without_text(path.read_bytes())))
            notes = ["large text metadata ignored", *notes]
    except Image.DecompressionBombWarning as error:
        raise ImageFileError(f"{path}: image is too large to decode safely ({error})") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # Truncated files raise OSError; some corrupt headers ValueError/SyntaxError.
        if isinstance(error, OSError) and error.errno == errno.ELOOP:
            raise ImageFileError(f"{path}: is a symbolic link loop, not an image file") from None
        if isinstance(error, OSError) and not isinstance(
            error, (FileNotFoundError, IsADirectoryError, PermissionError, UnidentifiedImageError)
        ):
            raise ImageFileError(f"{path}: damaged or truncated image ({error})") from None
        raise ImageFileError(_describe_open_error(path, error)) from None
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageFileError(
            f"{path}: image is {width}x{height}, smaller than the minimum {MIN_SIDE}x{MIN_SIDE}"
        )
    return LoadedImage(pixels=pixels, notes=tuple(notes), alpha=alpha)


MAX_STREAM_BYTES = 256 << 20
"""The most read from a pipe or device given as an image (a regular file's size is its own)."""


def _streamed(path: Path) -> io.BytesIO:
    """The bytes of a pipe or device, up to ``MAX_STREAM_BYTES``; ``ValueError`` beyond, or for none."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_STREAM_BYTES + 1)
    if len(data) > MAX_STREAM_BYTES:
        raise ValueError(f"more than {MAX_STREAM_BYTES >> 20} MiB from a pipe or device")
    if not data:
        raise ValueError("nothing to read from a pipe or device")
    return io.BytesIO(data)


def _decode(source: Path | io.BytesIO) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Pixels ``[H, W, 3] uint8``, notes and alpha (``[H, W] uint8`` or ``None``) of one image file; Pillow's
    exceptions pass through.

    Pillow's warnings (a corrupt EXIF block, say) become notes, so that ``-q``
    silences them; a decompression-bomb warning is raised.
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"animated image with {frames} frames: using the first")
                image.seek(0)
            image.load()
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            upright = ImageOps.exif_transpose(image)
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                notes.append("rotated upright by its EXIF orientation")
            elif orientation not in (1, None):
                notes.append(f"EXIF orientation {orientation!r} is not a valid one (1 to 8): ignored")
            rgb, mode_notes = _to_rgb(upright)
            pixels = np.array(rgb, dtype=np.uint8)
            alpha = alpha_of(upright)
    decoder_notes = list(dict.fromkeys(f"decoder warning: {warning.message}" for warning in caught))
    return pixels, notes + mode_notes + decoder_notes, alpha


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def png_without_text(data: bytes) -> bytes:
    """A PNG file's bytes without its text chunks (``tEXt``, ``zTXt``, ``iTXt``); other bytes as they were.

    Chunks are ``length (4 bytes, big-endian) · type (4) · data · CRC (4)``
    after the 8-byte signature. Not a PNG, or a chunk running past the end:
    ``ValueError``.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    kept = [PNG_SIGNATURE]
    position = len(PNG_SIGNATURE)
    while position < len(data):
        if position + 8 > len(data):
            raise ValueError("truncated PNG chunk")
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if data[position + 4 : position + 8] not in PNG_TEXT_CHUNKS:
            kept.append(data[position:end])
        position = end
    return b"".join(kept)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """``[..., 3] uint8`` → ``float32 in [-1, 1]`` (0 → -1, 255 → 1)."""
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``float in [-1, 1]`` → ``uint8``, rounded and clipped; inverse of ``to_float``."""
    scaled = (np.asarray(image, dtype=np.float32) + np.float32(1.0)) * np.float32(127.5)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """``[..., C] uint8`` → ``float32 in [0, 1]`` (0 → 0, 255 → 1)."""
    return pixels.astype(np.float32) / 255.0


def unit_to_uint8(image: np.ndarray) -> np.ndarray:
    """``float in [0, 1]`` → ``uint8``, rounded and clipped; inverse of ``to_unit``."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def levels_to_uint8(image: np.ndarray) -> np.ndarray:
    """``float in [0, 255]`` (pixel levels, e.g. resampled ``uint8``) → ``uint8``, rounded and clipped."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def resize_image(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample ``[H, W, 3]`` (or ``[H, W]``: an alpha) ``uint8`` to ``[height, width(, 3)] uint8`` (Lanczos)."""
    if pixels.shape[:2] == (height, width):
        return pixels
    image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


def resize_float_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample ``[H, W, C]`` float to ``[height, width, C] float32`` with ``resize_image``'s Lanczos filter.

    Computed in floats, so nothing is rounded to 8 bits; the filter's overshoot at edges is clipped to
    the input's range, as 8 bits clip it. ``to_float(resize_image(p, h, w))`` and
    ``resize_float_image(to_float(p), h, w)`` differ by at most a step or two of 8 bits.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape[:2] == (height, width):
        return image
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., channel]), "F").resize(
        (width, height), Image.Resampling.LANCZOS)) for channel in range(image.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), image.min(), image.max()).astype(np.float32)


def aspect_crop(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_h, crop_w)``: the centred part of an ``src_h``×``src_w`` image with
    the aspect ratio of ``height``×``width`` (the whole image when the ratios agree within 1 %)."""
    wanted = width / height
    have = src_w / src_h
    if abs(have / wanted - 1.0) <= 0.01:
        return 0, 0, src_h, src_w
    if have > wanted:
        crop_w = max(1, round(src_h * wanted))
        return 0, (src_w - crop_w) // 2, src_h, crop_w
    crop_h = max(1, round(src_w / wanted))
    return (src_h - crop_h) // 2, 0, crop_h, src_w


def fit_to_size(pixels: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str | None]:
    """Bring ``pixels`` (``[H, W, 3]``, or ``[H, W]``: an alpha) to ``[height, width(, 3)]``, cropping to
    that aspect if needed.

    An image of a different aspect ratio is centre-cropped to the wanted aspect
    first (nothing is squashed; ``aspect_crop``), then resized. Returns the
    image and a one-line description of what was done, or ``None`` when it
    already had that size.
    """
    src_h, src_w = pixels.shape[:2]
    if (src_h, src_w) == (height, width):
        return pixels, None
    top, left, crop_h, crop_w = aspect_crop(src_h, src_w, height, width)
    action = "resized"
    if (crop_h, crop_w) != (src_h, src_w):
        pixels = pixels[top : top + crop_h, left : left + crop_w]
        action = "centre-cropped to the source's aspect ratio and resized"
    return resize_image(pixels, height, width), (
        f"{action} from {src_w}x{src_h} to {width}x{height}"
    )


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """``(h, w)`` with the long side ``long_side`` (never enlarged), aspect kept."""
    scale = min(1.0, long_side / max(height, width))
    return max(2, round(height * scale)), max(2, round(width * scale))


def reduce_for_fit(source: np.ndarray, target: np.ndarray, working_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[H, W, 3] uint8`` images → ``[h, w, 3] float32`` in [-1, 1] at the working size.

    Reduced with Lanczos while still uint8, so a 12-megapixel photo is never
    held as floats (~150 MB a copy). Pass ``image_shape=(H, W)`` to ``fit_maps``
    with the results.
    """
    height, width = working_shape(*source.shape[:2], working_size)
    return to_float(resize_image(source, height, width)), to_float(resize_image(target, height, width))


def check_key_images(keys: object, name: str = "keys") -> None:
    """Raise ``TypeError``/``ValueError`` naming ``name`` unless ``keys`` is a sequence of at least two
    ``[H, W, 3] uint8`` arrays of one shape (what ``load_image(...).pixels`` gives)."""
    if isinstance(keys, np.ndarray) or not hasattr(keys, "__len__"):
        raise TypeError(f"{name} must be a sequence of [H, W, 3] uint8 arrays, got {type(keys).__name__}")
    for index, key in enumerate(keys):
        if not isinstance(key, np.ndarray):
            raise TypeError(f"{name}[{index}] must be an [H, W, 3] uint8 array, got {type(key).__name__}")
        if key.ndim != 3 or key.shape[-1] != 3 or key.dtype != np.uint8:
            raise ValueError(f"{name}[{index}] must be [H, W, 3] uint8 (load_image(...).pixels), got "
                             f"{list(key.shape)} {key.dtype}")
        if key.shape != keys[0].shape:
            raise ValueError(f"{name} must all have one shape: {name}[0] is {list(keys[0].shape)}, "
                             f"{name}[{index}] {list(key.shape)}")


def check_float_image(image: object, name: str) -> None:
    """Raise ``TypeError``/``ValueError`` naming ``name`` unless ``image`` is ``[H, W, 3]`` floating point
    with finite values (``to_float`` gives one in [-1, 1])."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be an [H, W, 3] float array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype.kind != "f":
        raise ValueError(f"{name} must be [H, W, 3] floats in [-1, 1] (to_float of uint8 pixels), got "
                         f"{list(image.shape)} {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError(f"{name} holds NaN or infinite values")

"""Writing results: animations, frame folders and other files, atomically.

Writers are chosen by the output's suffix from two registries:
``ANIMATION_WRITERS`` (GIF, MP4, WebP; each ``writer.write(frames, path)``
streams ``[H, W, 3] uint8`` frames) and ``IMAGE_FORMATS`` (stills, through
``write_image``); ``frames_to_folder`` writes every frame as PNG on the way.
A new format is one entry in a registry.

Every file is first written to a hidden temporary file in its destination
folder and renamed over the destination only once complete, so an interrupted
run never leaves a half-written file in place of a user's previous result.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import GifImagePlugin, Image

from morphing.model.settings import EncoderSettings
from morphing.runtime.concurrency import map_ahead

__all__ = [
    "probe_temporary_beside",
    "atomic_folder",
    "frames_folder_problem",
    "atomic_path", "AnimationWriter", "GifWriter", "FfmpegWriter", "ANIMATION_WRITERS", "ANIMATION_SUFFIXES",
    "animation_writer", "gif_delays", "gif_palette", "palette_indices", "write_png", "frames_to_folder", "IMAGE_FORMATS", "IMAGE_SUFFIXES",
    "write_image",
]


def _create_beside(path: Path, kind: str, *, folder: bool = False) -> Path:
    """Create an empty, hidden, uniquely named file (or folder) in ``path``'s folder.

    Named ``.NAME.RANDOM.KIND``; made with mode 0666 (0777 for a folder) so the
    user's umask applies, as for anything new.
    """
    for _ in range(100):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}.{kind}"
        try:
            if folder:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary {'folder' if folder else 'file'} in {path.parent}")


def probe_temporary_beside(path: str | os.PathLike[str]) -> None:
    """Create and remove the kind of temporary file ``atomic_path`` makes; ``OSError`` if it cannot."""
    _create_beside(Path(path), "part").unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``path`` is left as it was.
    """
    temporary = _create_beside(Path(path), "part")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _naming(error, path) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _naming(error: OSError, path: str | os.PathLike[str]) -> OSError:
    """``error`` with ``path`` (what the user asked for, not a temporary name) as its file name."""
    return OSError(error.errno, error.strerror or str(error), str(path))


FRAME_FILE = re.compile(r"\d{4,}\.png")
"""Names of the frame files ``--frames-dir`` writes: ``0000.png``, ``0001.png``, …"""


def frames_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot take a run's frames, or ``None``: it is new, empty or holds only frame files.

    Anything else in it belongs to the user, and ``atomic_folder`` replaces the
    folder whole.
    """
    if folder.is_symlink():
        return "is a symbolic link, which would be replaced by a folder; name the folder it points to"
    try:
        whole = folder.resolve()
    except (RuntimeError, OSError):
        return "is a symbolic link loop"
    if whole == Path.cwd().resolve() or whole in Path.cwd().resolve().parents:
        return "is the current folder or holds it, which the run would replace; give a new or empty folder"
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "exists and is not a folder"
    others = sorted(entry.name for entry in folder.iterdir() if not (entry.is_file() and FRAME_FILE.fullmatch(entry.name)))
    if others:
        shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        return f"holds files other than frames ({shown}); give a new or empty folder"
    return None


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new hidden folder beside ``path``; on success it replaces ``path`` whole.

    So the folder never mixes frames of two runs, and an interrupted run leaves
    ``path`` as it was. An existing ``path`` is renamed aside, then removed,
    once the new folder is in place (check it with ``frames_folder_problem``
    first: everything in it goes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_beside(path, "part", folder=True)
    try:
        yield temporary
        if path.exists():
            old = _create_beside(path, "old", folder=True)
            os.replace(path, old / path.name)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise _naming(error, path) from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


PALETTE_SAMPLE_SIDE = 384
"""Sample frames are reduced to this long side before the palette is chosen:
plenty for 255 colours, and it keeps a 12-megapixel animation's memory low."""

TRANSPARENT = 255
"""Palette index reserved for "unchanged since the previous frame"."""


def gif_palette(samples: Iterable[np.ndarray], colors: int = TRANSPARENT) -> Image.Image:
    """One adaptive palette of ``colors`` (at most 255) for a whole animation.

    The sample frames (each ``[H, W, 3] uint8``) are stacked side by side and
    quantised together, so every frame maps onto the same colours and the GIF
    needs a single global colour table. Index 255 is left for transparency.
    """
    thumbnails = []
    for frame in samples:
        image = Image.fromarray(np.asarray(frame), "RGB")
        image.thumbnail((PALETTE_SAMPLE_SIDE, PALETTE_SAMPLE_SIDE), Image.Resampling.BOX)
        thumbnails.append(np.asarray(image))
    height = min(t.shape[0] for t in thumbnails)
    strip = np.concatenate([t[:height] for t in thumbnails], axis=1)
    return Image.fromarray(strip, "RGB").quantize(min(colors, TRANSPARENT), method=Image.Quantize.MEDIANCUT)


def gif_delays(count: int, fps: float) -> list[int]:
    """Per-frame delays in 1/100 s whose running sum tracks ``i * 100 / fps``.

    GIF delays are whole centiseconds; spreading the rounding keeps e.g. 30 fps
    at 3, 4, 3, 3, 4, 3, ... rather than drifting at 3.
    """
    ticks = [round(i * 100 / fps) for i in range(count + 1)]
    return [max(1, b - a) for a, b in zip(ticks[:-1], ticks[1:])]


class AnimationWriter(Protocol):
    """Streams ``[H, W, 3] uint8`` frames into one animation file."""

    def write(
        self, frames: Iterable[np.ndarray], path: str | os.PathLike[str], *, count: int | None = None,
        samples: Iterable[np.ndarray] | None = None,
    ) -> int:
        """Write ``frames`` (``count`` of them: default ``len(frames)``) to ``path``; returns the number written.

        ``samples``: a few representative frames, for formats that choose
        colours before the first frame (GIF); default: picked from ``frames``,
        which must then be a sequence.
        """
        ...


def _count_and_samples(
    frames: Iterable[np.ndarray], count: int | None, samples: Iterable[np.ndarray] | None
) -> tuple[int, Iterable[np.ndarray]]:
    """``count`` and ``samples``, or, from a sequence of frames, its length and five frames spread over it."""
    if (count is None or samples is None) and not isinstance(frames, Sequence | np.ndarray):
        raise ValueError("frames given one by one need their count and a few sample frames")
    if count is None:
        count = len(frames)  # type: ignore[arg-type]
    if samples is None:
        last = len(frames) - 1  # type: ignore[arg-type]
        samples = [frames[round(last * part)] for part in (0.0, 0.25, 0.5, 0.75, 1.0)]  # type: ignore[index]
    return count, samples


class GifWriter:
    """Stream ``[H, W, 3] uint8`` frames into a looping GIF with one global palette.

    The palette (255 colours) is chosen from the sample frames before the
    first frame is written. Frames are encoded one at a time (memory does not
    grow with the frame count): each frame after the first is cropped to the
    box that changed, and pixels whose colour index did not change are written
    as transparent, which GIF viewers show as the previous frame.

    Args:
      fps: frames per second (GIF stores delays in 1/100 s; the rounding is spread, see ``gif_delays``).
      settings: the palette's size, dithering and how many times it plays (``EncoderSettings``).
    """

    def __init__(self, fps: float, settings: EncoderSettings = EncoderSettings()) -> None:
        self._fps = fps
        self._settings = settings

    def _loop_info(self) -> dict[str, int]:
        """The header's loop field: 0 plays forever; a GIF that loops N times plays N + 1 times; none plays once."""
        plays = self._settings.loop_count
        return {"loop": 0} if plays == 0 else {} if plays == 1 else {"loop": plays - 1}

    def write(
        self, frames: Iterable[np.ndarray], path: str | os.PathLike[str], *, count: int | None = None,
        samples: Iterable[np.ndarray] | None = None,
    ) -> int:
        """Write ``frames`` to ``path``; returns the number written (see ``AnimationWriter``)."""
        frame_count, samples = _count_and_samples(frames, count, samples)
        samples = list(samples)
        with_alpha = bool(samples) and samples[0].shape[-1] == 4
        palette = gif_palette((sample[..., :3] for sample in samples), self._settings.colors)
        dither = self._settings.dither

        def indexed(frame: np.ndarray) -> np.ndarray:
            indices = palette_indices(np.ascontiguousarray(frame[..., :3]), palette, dither)
            if with_alpha:  # GIF transparency is all or nothing: pixels under half opaque become transparent
                indices = np.where(frame[..., 3] < 128, TRANSPARENT, indices).astype(np.uint8)
            return indices

        delays = gif_delays(frame_count, self._fps)
        previous: np.ndarray | None = None
        written = 0
        with open(path, "wb") as handle:
            # Each frame is quantised in a helper thread (Pillow releases the GIL) while the previous
            # one is compressed here: the same bytes, a third less time.
            for indices in map_ahead(indexed, frames, ahead=2, workers=1):
                delay_ms = 10 * delays[min(written, len(delays) - 1)]
                if previous is None:
                    first = _indexed_image(indices, palette)
                    header, _ = GifImagePlugin.getheader(first, info=self._loop_info())
                    handle.write(b"".join(header))
                if with_alpha:  # whole frames, each cleared before the next: transparency cannot mean "unchanged"
                    chunks = GifImagePlugin.getdata(_indexed_image(indices, palette), duration=delay_ms,
                                                    transparency=TRANSPARENT, disposal=2)
                elif previous is None:
                    chunks = GifImagePlugin.getdata(first, duration=delay_ms, disposal=1)
                else:
                    chunks = _difference_chunks(previous, indices, palette, delay_ms)
                handle.write(b"".join(chunks))
                previous = indices
                written += 1
            handle.write(b";")  # GIF trailer
        return written


def palette_indices(frame: np.ndarray, palette: Image.Image, dither: bool = True) -> np.ndarray:
    """``[H, W, 3] uint8`` → ``[H, W] uint8`` indices into ``palette`` (Floyd–Steinberg dithered, or each
    pixel's nearest colour)."""
    method = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    return np.asarray(Image.fromarray(frame, "RGB").quantize(palette=palette, dither=method))


def _indexed_image(indices: np.ndarray, palette: Image.Image) -> Image.Image:
    """``[H, W] uint8`` palette indices as a "P" image with ``palette``'s colours (padded with black to 255
    entries; index 255, the transparent one, black)."""
    image = Image.fromarray(indices, "P")
    colours = palette.getpalette()[: 3 * TRANSPARENT]
    image.putpalette(colours + [0] * (3 * TRANSPARENT - len(colours)) + [0, 0, 0])
    return image


def _difference_chunks(previous: np.ndarray, indices: np.ndarray, palette: Image.Image, delay_ms: int) -> list[bytes]:
    """GIF data of the box of ``indices`` that differs from ``previous``, unchanged pixels transparent."""
    changed = indices != previous
    if not changed.any():
        changed[0, 0] = True  # a frame must still be written to keep its delay
    rows = np.flatnonzero(changed.any(axis=1))
    columns = np.flatnonzero(changed.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    box = np.where(changed[top:bottom, left:right], indices[top:bottom, left:right], TRANSPARENT)
    return GifImagePlugin.getdata(
        _indexed_image(box.astype(np.uint8), palette),
        offset=(int(left), int(top)),
        duration=delay_ms,
        transparency=TRANSPARENT,
        disposal=1,
    )


class FfmpegWriter:
    """Stream ``[H, W, 3] uint8`` frames to ffmpeg (the binary imageio-ffmpeg ships).

    ``.mp4``: H.264, yuv420p (plays everywhere), CRF 18 with x264's
    ``veryfast`` preset, or ``superfast`` for frames over ``FAST_PRESET_PIXELS``
    (there the encoder takes cores from the render: ``superfast`` needs half
    the CPU time, gives the same PSNR and files ~1.4x larger; see the README),
    odd sizes padded by one pixel to even. ``.webp``: animated WebP that
    loops forever.
    """

    FAST_PRESET_PIXELS = 2**20
    MIN_FPS = 1e-3
    """Below this (a frame every 1000 s), ffmpeg writes files that do not play (measured: 1e-5 fps)."""
    FORMATS = {
        ".mp4": ("libx264", "yuv420p", ["-f", "mp4", "-crf", "18", "-preset", "veryfast", "-movflags", "+faststart",
                                         "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]),
        ".webp": ("libwebp_anim", "yuv420p", ["-f", "webp", "-loop", "0", "-quality", "90"]),
    }

    def __init__(self, suffix: str, fps: float, settings: EncoderSettings = EncoderSettings()) -> None:
        self._codec, self._pixel_format, self._parameters = self.FORMATS[suffix]
        self._fps = fps
        self._settings = settings

    def parameters_for(self, pixels: int) -> list[str]:
        """ffmpeg's output options for frames of ``pixels`` pixels (the faster preset over ``FAST_PRESET_PIXELS``
        unless a preset is given), with the settings' CRF, preset, quality and loop count where given."""
        parameters = list(self._parameters)
        if pixels > self.FAST_PRESET_PIXELS:
            parameters = ["superfast" if value == "veryfast" else value for value in parameters]
        chosen = {"-crf": self._settings.crf, "-preset": self._settings.preset, "-quality": self._settings.quality,
                  "-loop": self._settings.loop_count}
        for index, value in enumerate(parameters[:-1]):
            if value in chosen and chosen[value] is not None:
                parameters[index + 1] = str(chosen[value])
        return parameters

    def write(
        self, frames: Iterable[np.ndarray], path: str | os.PathLike[str], *, count: int | None = None,
        samples: Iterable[np.ndarray] | None = None,
    ) -> int:
        """Encode ``frames`` into ``path``; returns the number written (``count`` and ``samples`` are not needed).

        ``[H, W, 4]`` frames (with alpha) make a WebP with transparency, encoded by Pillow's libwebp
        (ffmpeg's animated WebP encoder drops alpha); MP4 refuses them."""
        import imageio_ffmpeg

        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return 0
        frames = itertools.chain([first], frames)
        if first.shape[-1] == 4 and self._codec == "libwebp_anim":
            return self._write_webp_with_alpha(frames, path)
        encoder = None
        count = 0
        try:
            try:
                for frame in frames:
                    if encoder is None:
                        height, width = frame.shape[:2]
                        with_alpha = frame.shape[-1] == 4
                        if with_alpha and self._pixel_format == "yuv420p" and self._codec == "libx264":
                            raise ValueError("MP4 (H.264) has no transparency: composite the frames first")
                        encoder = imageio_ffmpeg.write_frames(
                            str(path), (width, height), fps=self._fps, codec=self._codec,
                            pix_fmt_in="rgba" if with_alpha else "rgb24",
                            pix_fmt_out="yuva420p" if with_alpha else self._pixel_format, quality=None,
                            macro_block_size=1, output_params=self.parameters_for(height * width),
                            ffmpeg_log_level="quiet",
                        )
                        encoder.send(None)
                    encoder.send(np.ascontiguousarray(frame))
                    count += 1
            finally:
                if encoder is not None:
                    encoder.close()
        except (OSError, RuntimeError) as error:
            # ffmpeg died (its own log is silenced: it would print a dozen lines);
            # the usual cause, a full disk, is told apart by the space left.
            if _nearly_full(Path(path).parent):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise OSError(errno.EIO, f"ffmpeg could not encode the frames ({first_line})", str(path)) from None
        if count and Path(path).stat().st_size == 0:  # it ended well but wrote nothing: keep the earlier file
            if _nearly_full(Path(path).parent):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            raise OSError(errno.EIO, "ffmpeg wrote an empty file", str(path))
        if count and not _plays(Path(path)):
            raise OSError(errno.EIO, "ffmpeg wrote a file that does not decode", str(path))
        return count


    def _write_webp_with_alpha(self, frames: Iterable[np.ndarray], path: str | os.PathLike[str]) -> int:
        """An animated WebP of ``[H, W, 4] uint8`` frames, by Pillow (it holds them all until it writes; each
        frame lossy or lossless, whichever is smaller: libwebp's lossy-only animation drops alpha here)."""
        images = [Image.fromarray(np.ascontiguousarray(frame), "RGBA") for frame in frames]
        ticks = [round(index * 1000 / self._fps) for index in range(len(images) + 1)]
        durations = [max(1, later - earlier) for earlier, later in zip(ticks[:-1], ticks[1:])]
        quality = 90 if self._settings.quality is None else self._settings.quality
        images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=durations,
                       loop=self._settings.loop_count, quality=quality, method=4, allow_mixed=True)
        return len(images)


def _plays(path: Path) -> bool:
    """Whether ffmpeg can open ``path`` and decode its first frame (a second or so at most)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-frames:v", "1"])
    try:
        next(reader)  # the stream's description
        next(reader)  # its first frame
        return True
    except (OSError, RuntimeError, StopIteration):
        return False
    finally:
        reader.close()


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has under 1 MiB free."""
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


ANIMATION_WRITERS: dict[str, Callable[[float, EncoderSettings], AnimationWriter]] = {
    ".gif": GifWriter,
    **{suffix: functools.partial(FfmpegWriter, suffix) for suffix in FfmpegWriter.FORMATS},
}
"""Animation formats by the output file's suffix: each makes a writer for a frame rate (frames per second)
and ``EncoderSettings``."""
ANIMATION_SUFFIXES = tuple(ANIMATION_WRITERS)
ENCODER_OPTIONS_BY_SUFFIX = {".gif": ("colors", "dither", "loop_count"), ".mp4": ("crf", "preset"),
                             ".webp": ("quality", "loop_count")}
"""Which ``EncoderSettings`` fields each format takes."""


def animation_writer(suffix: str, fps: float, settings: EncoderSettings = EncoderSettings()) -> AnimationWriter:
    """The writer for an output suffix in ``ANIMATION_SUFFIXES`` (any case)."""
    try:
        return ANIMATION_WRITERS[suffix.lower()](fps, settings)
    except KeyError:
        raise ValueError(f"unknown animation format {suffix!r}; use one of {', '.join(ANIMATION_SUFFIXES)}") from None


def write_png(frame: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write one ``[H, W, 3]`` (or ``[H, W, 4]``, with alpha) ``uint8`` frame as PNG, atomically."""
    with atomic_path(path) as temporary:
        Image.fromarray(frame, "RGBA" if frame.shape[-1] == 4 else "RGB").save(temporary, format="PNG")


def resized_frames(frames: Iterable[np.ndarray], height: int, width: int) -> Iterator[np.ndarray]:
    """``[H, W, 3] uint8`` frames brought to ``[height, width]`` (area averaging: the filter for shrinking,
    no ringing); frames already that size pass unchanged."""
    import cv2

    for frame in frames:
        if frame.shape[:2] == (height, width):
            yield frame
        else:
            yield cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def frames_to_folder(frames: Iterable[np.ndarray], folder: Path | None) -> Iterator[np.ndarray]:
    """Pass ``[H, W, 3] uint8`` frames through, writing each as ``folder/NNNN.png`` on the way (none if ``None``)."""
    for index, frame in enumerate(frames):
        if folder is not None:
            write_png(frame, folder / f"{index:04d}.png")
        yield frame


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                 ".bmp": "BMP"}
IMAGE_SUFFIXES = tuple(IMAGE_FORMATS)
"""Still-image formats, chosen by the output file's suffix."""


def write_image(pixels: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write one ``[H, W, 3] uint8`` image atomically, in the format its suffix names.

    JPEG and WebP are written at quality 95; PNG, TIFF and BMP are lossless.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    options = {"quality": 95} if IMAGE_FORMATS[suffix] in ("JPEG", "WEBP") else {}
    with atomic_path(path) as temporary:
        Image.fromarray(pixels, "RGB").save(temporary, format=IMAGE_FORMATS[suffix], **options)

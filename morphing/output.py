"""Writing results: animations, frame folders and other files, atomically.

Every file is first written to a hidden temporary file in its destination
folder and renamed over the destination only once complete, so an interrupted
run never leaves a half-written file in place of a user's previous result.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["atomic_path", "GifWriter", "write_png"]


def _create_temporary_beside(path: Path) -> Path:
    """Create an empty, hidden, uniquely named file in ``path``'s folder.

    Made with mode 0666 so the user's umask applies, as for any new file.
    """
    folder = path.parent
    for _ in range(100):
        candidate = folder / f".{path.name}.{secrets.token_hex(4)}.part"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary file in {folder}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``path`` is left as it was.
    """
    temporary = _create_temporary_beside(Path(path))
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _palette_image(samples: Iterable[np.ndarray], colours: int = 256) -> Image.Image:
    """One adaptive palette for a whole animation, from a few of its frames.

    The sample frames (each ``[H, W, 3] uint8``) are stacked side by side and
    quantised together, so every frame later maps onto the same colours and
    the GIF needs a single global colour table.
    """
    strip = np.concatenate([np.asarray(frame) for frame in samples], axis=1)
    return Image.fromarray(strip, "RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)


class GifWriter:
    """Encode ``[H, W, 3] uint8`` frames to a looping GIF with one global palette.

    Args:
      palette_samples: a few representative frames (e.g. first, middle, last).
      fps: frames per second (GIF stores delays in 1/100 s, so it is rounded).
    """

    def __init__(self, palette_samples: Iterable[np.ndarray], fps: float) -> None:
        self._palette = _palette_image(palette_samples)
        self._duration_ms = 1000.0 / fps

    def _quantise(self, frame: np.ndarray) -> Image.Image:
        return Image.fromarray(frame, "RGB").quantize(
            palette=self._palette, dither=Image.Dither.FLOYDSTEINBERG
        )

    def write(self, frames: Iterable[np.ndarray], path: str | os.PathLike[str]) -> int:
        """Write all ``frames`` to ``path`` (format GIF); returns the frame count."""
        iterator = iter(frames)
        first = self._quantise(next(iterator))
        count = 1

        def rest() -> Iterator[Image.Image]:
            nonlocal count
            for frame in iterator:
                count += 1
                yield self._quantise(frame)

        first.save(
            path,
            format="GIF",
            save_all=True,
            append_images=rest(),
            duration=self._duration_ms,
            loop=0,
            optimize=False,
        )
        return count


def write_png(frame: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write one ``[H, W, 3] uint8`` frame as PNG, atomically."""
    with atomic_path(path) as temporary:
        Image.fromarray(frame, "RGB").save(temporary, format="PNG")

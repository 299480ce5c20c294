"""One morph as an object: key images in, maps fitted once, frames and files out.

This is the library's front door, what the command line, the batch, the web
page and a notebook use (FILM's ``Interpolator`` is the model: one object,
numpy in and out)::

    from morphing import Morph, load_image
    morph = Morph(load_image("a.jpg").pixels, load_image("b.jpg").pixels)   # [H, W, 3] uint8
    morph.fit(progress=lambda leg, step, loss: None)
    middle = morph.frame(0.5)                       # [H, W, 3] uint8
    morph.save("a_to_b.gif", frames=FrameSettings(frames=50))
    morph.save("exaggerated.mp4", scales=Scales(warp=1.5))   # re-rendered, never refitted

Conventions:
  - Images are ``[H, W, 3] uint8``; a target of another shape is cropped to
    the source's aspect ratio and resized to it (``notes`` says so).
  - ``target`` may be one image or several: ``a → b → c`` is a sequence of
    legs, one set of maps each (``loop=True`` morphs back to the source).
  - Frame ``alpha = 0`` is the source and ``alpha = 1`` the target, pixel for
    pixel (the formula is stated once, in ``morphing.render.transition``).
  - Maps are resolution-free: ``frames(..., long_side=256)`` renders the same
    fit small.

Compiled TensorFlow programs (per image shape) are kept in a ``ProgramCache``:
the process's own (``sequence.shared_program_cache``), shared by every morph
given none, so the next morph of a size skips tracing and compiling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from morphing.io.images import WHITE, aspect_crop, check_key_images, composite, fit_to_size
from morphing.model.maps import MorphMaps, Scales
from morphing.model.points import PointPairs
from morphing.model.settings import EncoderSettings, FitSettings, FrameSettings, OutputSize

__all__ = ["Morph", "ProgressCallback"]

ProgressCallback = Callable[[int, int, float], None]
"""Called after every fitting step with (leg, step index from 0, loss); ``Morph.total_steps`` steps a leg."""


def _as_keys(source: np.ndarray, target: np.ndarray | Sequence[np.ndarray], loop: bool
             ) -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """The key images (targets brought to the source's shape) and what was done to them."""
    check_key_images([source], "source")
    targets = [target] if isinstance(target, np.ndarray) else list(target)
    if not targets:
        raise ValueError("at least one target image is needed")
    for index, image in enumerate(targets):
        check_key_images([image], f"target {index + 1}")
    height, width = source.shape[:2]
    keys, notes = [source], []
    for index, image in enumerate(targets):
        fitted, resized = fit_to_size(image, height, width)
        if resized:
            notes.append(f"target {index + 1}: {resized} to match the source")
        keys.append(fitted)
    if loop:
        keys.append(source)
    return tuple(keys), tuple(notes)


def _flattened(frames: Iterator[np.ndarray], background: tuple[int, int, int] | None) -> Iterator[np.ndarray]:
    """Frames with alpha composited on ``background`` (passed unchanged when it is ``None`` or they have none)."""
    for frame in frames:
        if background is None or frame.shape[-1] != 4:
            yield frame
        else:
            yield composite(np.ascontiguousarray(frame[..., :3]), frame[..., 3], background)


class Morph:
    """A morph of ``source`` into ``target`` (or through several targets in turn).

    Args:
      source: ``[H, W, 3] uint8``.
      target: ``[h, w, 3] uint8``, or a sequence of them (one leg each).
      points: user point pairs per leg (``PointPairs`` in pixels of the key
        images as given, i.e. each target's own pixels before resizing), one
        for a single target; ``None`` for none. They are carried exactly.
      settings: how to fit (``FitSettings``; its defaults are the command line's).
      scales: the multipliers the fit works with (``Scales``); rendering may use others.
      loop: morph back from the last target to the source as one more leg.
      face_points: per leg, automatic point pairs found elsewhere (e.g. by
        ``keypoints.leg_face_points`` with your own detector); default: the
        bundled face detector when ``settings.face_points`` is on.
      alphas: the opacity of each image given (source first), ``[h, w] uint8``
        or ``None`` for an opaque one (``load_image(...).alpha``). With any,
        frames are ``[H, W, 4] uint8``: the opacity is carried by the same warp
        (never by the colour maps) and is each image's own at the ends.
      cache: a ``sequence.ProgramCache`` of compiled programs to use; default: the process's own
        (``sequence.shared_program_cache``), shared with the other morphs given none.

    Raises:
      ValueError, TypeError: images or points that do not fit together.
    """

    def __init__(
        self,
        source: np.ndarray,
        target: np.ndarray | Sequence[np.ndarray],
        *,
        points: PointPairs | Sequence[PointPairs | None] | None = None,
        settings: FitSettings = FitSettings(),
        scales: Scales = Scales(),
        loop: bool = False,
        face_points: Sequence[PointPairs | None] | None = None,
        alphas: Sequence[np.ndarray | None] | None = None,
        cache: object | None = None,
    ) -> None:
        if not isinstance(settings, FitSettings):
            raise TypeError(f"settings must be a FitSettings, got {type(settings).__name__}")
        if not isinstance(scales, Scales):
            raise TypeError(f"scales must be a Scales, got {type(scales).__name__}")
        originals = [source, *([target] if isinstance(target, np.ndarray) else list(target))]
        self.keys, self.notes = _as_keys(source, target, loop)
        self.loop = loop
        self.settings = settings
        self.scales = scales
        self.points = self._leg_points(points, originals)
        self.face_points = face_points
        self.alphas = self._key_alphas(alphas, originals)
        self._cache = cache
        self._maps: tuple[MorphMaps, ...] | None = None
        self.start_choices: list[object] = []
        self.polishes: list[object] = []

    def _leg_points(self, points: PointPairs | Sequence[PointPairs | None] | None,
                    originals: Sequence[np.ndarray]) -> tuple[PointPairs | None, ...] | None:
        """Per leg, the point pairs rescaled to the key images' pixels."""
        if points is None:
            return None
        given = [points] if isinstance(points, PointPairs) else list(points)
        if len(given) != self.legs:
            raise ValueError(f"point pairs are needed per leg: {self.legs}, got {len(given)}")
        height, width = self.keys[0].shape[:2]
        leg_points: list[PointPairs | None] = []
        for leg, pairs in enumerate(given):
            if pairs is None:
                leg_points.append(None)
                continue
            if not isinstance(pairs, PointPairs):
                raise TypeError(f"points of leg {leg + 1} must be PointPairs or None, got {type(pairs).__name__}")
            if all(originals[index % len(originals)].shape[:2] == (height, width) for index in (leg, leg + 1)):
                leg_points.append(pairs)  # already in the key images' pixels
                continue
            crops = [aspect_crop(*originals[index % len(originals)].shape[:2], height, width)
                     for index in (leg, leg + 1)]
            leg_points.append(pairs.cropped(crops[0], crops[1], (height, width)))
        return tuple(leg_points)

    def _key_alphas(self, alphas: Sequence[np.ndarray | None] | None, originals: Sequence[np.ndarray]
                    ) -> tuple[np.ndarray, ...] | None:
        """Each key image's opacity, brought to its size as its colours were; ``None`` when all are opaque."""
        if alphas is None or all(alpha is None for alpha in alphas):
            return None
        alphas = list(alphas)
        if len(alphas) != len(originals):
            raise ValueError(f"alphas are needed per image given: {len(originals)}, got {len(alphas)}")
        height, width = self.keys[0].shape[:2]
        keyed = []
        for index, (alpha, image) in enumerate(zip(alphas, originals)):
            if alpha is None:
                keyed.append(np.full((height, width), 255, np.uint8))
                continue
            if not (isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.shape == image.shape[:2]):
                raise ValueError(f"alphas[{index}] must be [H, W] uint8 of its image's size {list(image.shape[:2])}")
            keyed.append(fit_to_size(alpha, height, width)[0])
        if self.loop:
            keyed.append(keyed[0])
        return tuple(keyed)

    # --- the fit ---------------------------------------------------------------------------------------

    @property
    def face_points(self) -> tuple[PointPairs | None, ...] | None:
        """Per leg, the automatic point pairs the fit uses (``None`` for a leg without); ``None``: found by
        the bundled face detector when the fit starts (if ``settings.face_points`` is on)."""
        return self._face_points

    @face_points.setter
    def face_points(self, face_points: Sequence[PointPairs | None] | None) -> None:
        face_points = None if face_points is None else tuple(face_points)
        if face_points is not None and len(face_points) != self.legs:
            raise ValueError(f"face points are needed per leg: {self.legs}, got {len(face_points)}")
        self._face_points = face_points

    def prepare(self) -> Morph:
        """Start what the fit compiles for the key images' size, and return (a second or so, on 2 CPU cores)
        while it compiles in the background; returns the morph itself.

        For a caller with work of its own before ``fit`` (finding face points
        with another detector, say): called first, the fit finds its programs
        compiled. ``fit`` does this itself before finding face points.
        """
        self.cache.fitter(self.settings, self.scales, self.keys[0].shape[:2]).prepare(self.keys[0].shape[:2])
        return self

    @property
    def legs(self) -> int:
        """How many transitions: one per target (and one more with ``loop``)."""
        return len(self.keys) - 1

    @property
    def total_steps(self) -> int:
        """Fitting steps per leg, as ``progress`` counts them."""
        return self.settings.total_steps

    @property
    def cache(self) -> object:
        """The compiled programs this morph uses (a ``sequence.ProgramCache``): the one it was given, else the
        process's own."""
        if self._cache is None:
            from .sequence import shared_program_cache

            self._cache = shared_program_cache()
        return self._cache

    def fit(
        self,
        progress: ProgressCallback | None = None,
        *,
        check: Callable[[], None] | None = None,
        on_start: Callable[[int, object], None] | None = None,
        start_candidates: Sequence[Sequence[object] | None] | None = None,
        on_polish: Callable[[int, object], None] | None = None,
    ) -> Morph:
        """Find every leg's maps (replacing any held); returns the morph itself.

        ``progress``: called after every step with (leg, step, loss);
        ``check``: called at safe points, may raise to stop; ``on_start``:
        called with (leg, ``starts.StartChoice``) once per leg;
        ``start_candidates``: per leg, starts found ahead
        (``starts.leg_start_candidates``), for a caller that computed them in
        another process; ``on_polish``: called with (leg, ``polish.Polished``) once per leg, what the
        polish of the warp at the keys' size did (also kept in ``polishes``).

        Raises:
          fit.FitDivergedError: a leg's loss stopped being finite.
        """
        from .sequence import fit_sequence

        self.start_choices = [None] * self.legs
        self.polishes = [None] * self.legs

        def heard(leg: int, choice: object) -> None:
            self.start_choices[leg] = choice
            if on_start is not None:
                on_start(leg, choice)

        def polished(leg: int, polish: object) -> None:
            self.polishes[leg] = polish
            if on_polish is not None:
                on_polish(leg, polish)

        self._maps = tuple(fit_sequence(
            self.keys, self.scales, self.settings, points=self.points, cache=self.cache, on_step=progress,
            check=check, face_points=self.face_points, start_candidates=start_candidates, on_start=heard,
            on_polish=polished))
        return self

    @property
    def fitted(self) -> bool:
        """Whether the morph holds maps (fitted or loaded)."""
        return self._maps is not None

    @property
    def maps(self) -> tuple[MorphMaps, ...]:
        """Each leg's maps. Raises ``RuntimeError`` before ``fit`` or ``load_maps``."""
        if self._maps is None:
            raise RuntimeError("the morph has no maps yet: call fit() or load_maps() first")
        return self._maps

    @maps.setter
    def maps(self, all_maps: Sequence[MorphMaps]) -> None:
        all_maps = tuple(all_maps)
        if len(all_maps) != self.legs or not all(isinstance(m, MorphMaps) for m in all_maps):
            raise ValueError(f"{self.legs} MorphMaps are needed (one per leg), got {len(all_maps)}")
        self._maps = all_maps

    def save_maps(self, path: str | os.PathLike[str]) -> None:
        """Write the maps of a one-leg morph to ``path`` (``.npz``, atomically)."""
        from morphing.model.maps import save_maps
        from morphing.io.output import atomic_path

        if self.legs != 1:
            raise ValueError("a maps file holds one transition; this morph has " f"{self.legs}")
        with atomic_path(path) as temporary:
            save_maps(self.maps[0], temporary)

    def load_maps(self, path: str | os.PathLike[str]) -> Morph:
        """Take a one-leg morph's maps from ``path`` instead of fitting; returns the morph itself.

        Raises ``maps.MapsFileError`` for a file that is not a maps file of this image's aspect ratio.
        """
        from morphing.model.maps import load_maps_for

        if self.legs != 1:
            raise ValueError("a maps file holds one transition; this morph has " f"{self.legs}")
        self._maps = (load_maps_for(path, *self.keys[0].shape[:2]),)
        return self

    # --- frames ----------------------------------------------------------------------------------------

    def _keys_at(self, long_side: int | None) -> tuple[np.ndarray, ...]:
        if long_side is None:
            return self.keys
        from .sequence import preview_keys

        return preview_keys(self.keys, long_side)

    def animation(self, frames: FrameSettings = FrameSettings(), *, scales: Scales | None = None,
                  long_side: int | None = None, check: Callable[[], None] | None = None,
                  on_leg_ready: Callable[[int], None] | None = None) -> object:
        """The whole animation (a ``sequence.MorphFrames``: ``len()``, lazy ``iter()``, ``samples()``).

        ``frames``: which frames and how (its ``loop`` is the morph's);
        ``scales``: the multipliers to render with (default: the fit's);
        ``long_side``: render smaller than the key images (never larger).
        """
        from .sequence import MorphFrames, RgbaFrames

        if not isinstance(frames, FrameSettings):
            raise TypeError(f"frames must be a FrameSettings, got {type(frames).__name__}")
        frames = dataclasses.replace(frames, loop=self.loop)
        scales = self.scales if scales is None else scales
        colour = MorphFrames(self._keys_at(long_side), self.maps, scales, frames, cache=self.cache, check=check,
                             on_leg_ready=on_leg_ready)
        if self.alphas is None:
            return colour
        return RgbaFrames(colour, self._alphas_at(long_side), self.maps, scales, check)

    def _alphas_at(self, long_side: int | None) -> tuple[np.ndarray, ...]:
        if long_side is None:
            return self.alphas
        from morphing.io.images import resize_image, working_shape

        small = working_shape(*self.keys[0].shape[:2], long_side)
        return tuple(resize_image(alpha, *small) for alpha in self.alphas)

    def frames(self, alphas: Sequence[float] | np.ndarray | None = None, *, leg: int = 0,
               frames: FrameSettings = FrameSettings(), scales: Scales | None = None,
               long_side: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``[H, W, 3] uint8`` frames, rendered one by one.

        With ``alphas`` (each in [0, 1]): those frames of leg ``leg``, rendered
        as ``frames`` says (interpolation, blend, engine). Without: every frame
        of the animation ``frames`` describes (easing, holds, loop...).
        """
        if alphas is None:
            yield from self.animation(frames, scales=scales, long_side=long_side)
            return
        if not 0 <= leg < self.legs:
            raise ValueError(f"leg must be in [0, {self.legs - 1}], got {leg}")
        from morphing.render.renderer import FrameRenderer

        keys = self._keys_at(long_side)
        cache = self.cache
        engine, program = cache.engine_and_program(frames, keys[0].shape[:2])
        scales = self.scales if scales is None else scales
        renderer = FrameRenderer(keys[leg], keys[leg + 1], self.maps[leg], scales,
                                 interpolation=frames.interpolation, blend=frames.blend, program=program,
                                 engine=engine, detail_settings=frames.detail)
        try:
            colour = renderer.frames(np.asarray(alphas, np.float64))
            if self.alphas is None:
                yield from colour
                return
            from .sequence import alpha_renderer

            key_alphas = self._alphas_at(long_side)
            opacity = alpha_renderer(key_alphas[leg], key_alphas[leg + 1], self.maps[leg], scales, engine)
            for frame, alpha in zip(colour, opacity.frames(np.asarray(alphas, np.float64))):
                yield np.dstack([frame, alpha[..., :1]])
        finally:
            renderer.release_working_arrays()

    def frame(self, alpha: float, *, leg: int = 0, frames: FrameSettings = FrameSettings(),
              scales: Scales | None = None, long_side: int | None = None) -> np.ndarray:
        """The ``[H, W, 3] uint8`` frame (``[H, W, 4]`` with ``alphas``) of leg ``leg`` at ``alpha`` (0: its
        source, 1: its target)."""
        return next(self.frames([alpha], leg=leg, frames=frames, scales=scales, long_side=long_side))

    def save(self, path: str | os.PathLike[str], *, frames: FrameSettings = FrameSettings(),
             scales: Scales | None = None, fps: float = 25.0, long_side: int | None = None,
             encoder: EncoderSettings = EncoderSettings(), size: OutputSize = OutputSize(),
             background: tuple[int, int, int] | None = None,
             frames_dir: str | os.PathLike[str] | None = None,
             check: Callable[[], None] | None = None) -> int:
        """Render the animation and write it to ``path`` (the suffix picks the format: ``.gif``, ``.mp4``,
        ``.webp``), atomically. ``encoder``: quality, palette, loop count (``EncoderSettings``); ``size``:
        write the frames smaller than rendered (``OutputSize``); ``background``: an ``(r, g, b)`` to
        composite transparent frames on (an MP4's are composited on white unless given); with ``frames_dir``,
        every written frame also as ``DIR/0000.png`` ... (the folder is replaced whole). Returns the number
        of frames written."""
        from morphing.io.output import animation_writer, atomic_folder, atomic_path, frames_to_folder, resized_frames

        path = Path(path)
        writer = animation_writer(path.suffix, fps, encoder)
        animation = self.animation(frames, scales=scales, long_side=long_side, check=check)
        shape = size.of(*animation.shape)
        if self.alphas is not None and background is None and path.suffix.lower() == ".mp4":
            background = WHITE
        samples = _flattened(resized_frames(animation.samples(), *shape), background)
        with contextlib.ExitStack() as stack:
            folder = None if frames_dir is None else stack.enter_context(atomic_folder(frames_dir))
            temporary = stack.enter_context(atomic_path(path))
            writer.write(frames_to_folder(_flattened(resized_frames(iter(animation), *shape), background), folder),
                         temporary, count=len(animation), samples=samples)
        return len(animation)

"""The local web page: ``morph ui`` serves it on 127.0.0.1 (Gradio).

Two layers, so that the page's logic is plain Python, tested without a browser:

- *Page functions* (this module's top half): numpy in, numpy or files out, no
  Gradio: read an upload with the command line's checks, edit point pairs by
  clicks (``PagePoints``, immutable), draw them, read and write the points CSV
  that ``--points`` reads, start compiling a fit once both images are in
  (in a thread, while the user places points), fit a ``Morph`` and render it
  again with other settings without a refit.
- ``build_page`` wires them to Gradio components; ``serve`` starts the server.

Conventions: images are ``[H, W, 3] uint8``; a point is ``(x, y)`` in the
image's own pixels (x to the right, y down, the centre of the top-left pixel at
``(0, 0)``), as in a points file.

Nothing is fetched from outside at run time: the page uses system fonts, and
Gradio's analytics are off. One fit runs at a time per server (others wait in
a queue that shows their place); files a session made are removed when its
tab closes.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from morphing.io.images import ImageFileError, LoadedImage, load_image
from morphing.model.maps import Scales
from morphing.model.points import PointPairs, PointsFileError, parse_points
from morphing.model.settings import EASINGS, FitSettings, FrameSettings

__all__ = [
    "PageError",
    "MAX_UPLOAD_BYTES",
    "FORMATS",
    "Pair",
    "PagePoints",
    "read_upload",
    "face_pairs",
    "draw_points",
    "points_csv",
    "points_from_csv",
    "page_fit_settings",
    "prepare_page_fit",
    "start_preparing_page_fit",
    "fit_page_morph",
    "describe_start",
    "describe_fit",
    "write_animation",
    "build_page",
    "serve",
]

MAX_UPLOAD_BYTES = 50 * 2**20
"""Uploads larger than this are refused (a 50 MB photo is far beyond what a morph needs)."""
MAX_UPLOAD_PIXELS = 40_000_000
FORMATS = ("gif", "mp4", "webp")
ENDS = ("none", "boomerang", "loop")
"""How the animation ends: ``loop`` morphs back to the source, a second transition fitted with the first."""
SOURCE, TARGET = "source", "target"


class PageError(Exception):
    """Something the page shows to its user as one line (the command line's message for the same problem)."""


def read_upload(path: str | os.PathLike[str] | None, role: str) -> LoadedImage:
    """An uploaded file decoded (``pixels``: ``[H, W, 3] uint8``, ``alpha``: its opacity or ``None``);
    ``PageError`` for none, too large or not an image."""
    if path is None:
        raise PageError(f"no {role} image: upload one (or pick a sample)")
    size = Path(path).stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise PageError(f"the {role} file is {size / 2**20:.0f} MB; at most {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        loaded = load_image(path)
    except ImageFileError as error:
        raise PageError(f"{role}: {error}") from None
    height, width = loaded.pixels.shape[:2]
    if height * width > MAX_UPLOAD_PIXELS:
        raise PageError(f"the {role} image has {height * width / 1e6:.0f} megapixels; at most "
                        f"{MAX_UPLOAD_PIXELS / 1e6:.0f}")
    return loaded


@dataclass(frozen=True)
class Pair:
    """One point pair: ``source`` and ``target`` are ``(x, y)`` pixels; ``automatic`` for a detected one."""

    source: tuple[float, float]
    target: tuple[float, float]
    automatic: bool = False


@dataclass(frozen=True)
class PagePoints:
    """The point pairs being edited on the page, and the click waiting for its partner.

    Clicks go source, then target: a click on the source holds a *pending*
    point; the next click on the target completes the pair. With ``moving``
    set (a pair's index), the next click on either image moves that pair's
    point there instead. Every method returns a new ``PagePoints``.
    """

    pairs: tuple[Pair, ...] = ()
    pending: tuple[float, float] | None = None
    moving: int | None = None

    def click(self, which: str, x: float, y: float) -> "PagePoints":
        """A click at ``(x, y)`` on the ``"source"`` or ``"target"`` image."""
        if which not in (SOURCE, TARGET):
            raise ValueError(f"which must be {SOURCE!r} or {TARGET!r}, got {which!r}")
        point = (float(x), float(y))
        if self.moving is not None:
            old = self.pairs[self.moving]
            moved = dataclasses.replace(old, automatic=False, **{which: point})
            pairs = (*self.pairs[: self.moving], moved, *self.pairs[self.moving + 1:])
            return PagePoints(pairs, self.pending, None)
        if which == SOURCE:
            return PagePoints(self.pairs, point, None)
        if self.pending is None:
            raise PageError("click the source first, then its partner on the target")
        return PagePoints((*self.pairs, Pair(self.pending, point)), None, None)

    def move(self, index: int) -> "PagePoints":
        """The next click moves pair ``index`` (from 0) on the image clicked."""
        self._check(index)
        return PagePoints(self.pairs, None, index)

    def remove(self, index: int) -> "PagePoints":
        """Without pair ``index`` (from 0)."""
        self._check(index)
        return PagePoints((*self.pairs[:index], *self.pairs[index + 1:]), self.pending, None)

    def with_automatic(self, found: Sequence[Pair]) -> "PagePoints":
        """The user's pairs and ``found`` (replacing earlier automatic ones)."""
        return PagePoints((*(p for p in self.pairs if not p.automatic), *found), self.pending, None)

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.pairs):
            raise PageError(f"no pair {index + 1}: there are {len(self.pairs)}")

    def table(self) -> list[list[object]]:
        """One row per pair for the page's table: number, x/y source, x/y target, kind."""
        return [[index + 1, round(p.source[0], 1), round(p.source[1], 1), round(p.target[0], 1),
                 round(p.target[1], 1), "face" if p.automatic else "clicked"] for index, p in enumerate(self.pairs)]

    def point_pairs(self, source_shape: tuple[int, int], target_shape: tuple[int, int], automatic: bool
                    ) -> PointPairs | None:
        """The user's (``automatic=False``) or the detected pairs as ``PointPairs``, ``None`` for none."""
        chosen = [p for p in self.pairs if p.automatic == automatic]
        if not chosen:
            return None
        return PointPairs(np.array([p.source[::-1] for p in chosen], np.float64),
                          np.array([p.target[::-1] for p in chosen], np.float64),
                          tuple(source_shape), tuple(target_shape))


def face_pairs(source: np.ndarray, target: np.ndarray, detector: object | None = None) -> list[Pair]:
    """The largest face's key points in both images as automatic pairs (none when either has no face).
    ``detector``: a ``keypoints.KeypointDetector`` (default: the bundled one, with its second look at a
    picture whose partner shows a face)."""
    from morphing.fit.keypoints import default_face_detector, default_second_look, leg_face_points

    second_look = default_second_look() if detector is None else None
    detector = default_face_detector() if detector is None else detector
    found = leg_face_points([source, target], detector, second_look)[0]
    if found is None:
        return []
    return [Pair((float(s[1]), float(s[0])), (float(t[1]), float(t[0])), automatic=True)
            for s, t in zip(found.source, found.target)]


def draw_points(image: np.ndarray, points: PagePoints, which: str) -> np.ndarray:
    """``image`` with every pair's point on side ``which`` drawn as a numbered ring (detected: blue,
    clicked: orange; the pending source click and the pair being moved: red)."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    radius = max(5.0, max(image.shape[:2]) / 60)
    marks = [(getattr(pair, which), str(index + 1), (40, 110, 240) if pair.automatic else (255, 140, 0))
             for index, pair in enumerate(points.pairs)]
    if points.moving is not None:
        pair = points.pairs[points.moving]
        marks[points.moving] = (getattr(pair, which), str(points.moving + 1), (230, 30, 30))
    if points.pending is not None and which == SOURCE:
        marks.append((points.pending, str(len(points.pairs) + 1), (230, 30, 30)))
    for (x, y), label, colour in marks:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=max(2, int(radius / 3)))
        draw.text((x + radius + 1, y - radius - 1), label, fill=colour)
    return np.asarray(picture)


def points_csv(points: PagePoints) -> str:
    """The pairs as the points file ``--points`` reads (a header, then x_source,y_source,x_target,y_target)."""
    rows = ["x_source,y_source,x_target,y_target"]
    rows += [f"{p.source[0]:g},{p.source[1]:g},{p.target[0]:g},{p.target[1]:g}" for p in points.pairs]
    return "\n".join(rows) + "\n"


def points_from_csv(text: str, source_shape: tuple[int, int], target_shape: tuple[int, int],
                    keep: PagePoints = PagePoints()) -> PagePoints:
    """``keep``'s detected pairs and the pairs of a points file's ``text`` (as clicked ones); ``PageError``
    with the file's line and problem for a bad one."""
    try:
        read = parse_points(text, source_shape, target_shape, name="points file")
    except PointsFileError as error:
        raise PageError(str(error)) from None
    clicked = [Pair((float(s[1]), float(s[0])), (float(t[1]), float(t[0]))) for s, t in zip(read.source, read.target)]
    return PagePoints((*(p for p in keep.pairs if p.automatic), *clicked))


def page_fit_settings(source_shape: tuple[int, ...], *, epochs: int = 120, seed: int = 0) -> FitSettings:
    """The page's fit settings for a source of ``source_shape``: the command line's, face points left to the
    page (found at upload, shown as pairs), a working size no larger than the source."""
    return FitSettings(epochs=epochs, seed=seed, face_points=False,
                       working_size=min(FitSettings().working_size, max(source_shape[:2])))


def prepare_page_fit(source: np.ndarray, target: np.ndarray) -> None:
    """Start compiling what a fit of these images will run (``Morph.prepare``, at the page's default epochs,
    seed and multipliers), so that it compiles while the user places points and picks settings.

    Returns once the fit's compiled terms are traced (about a second on 2
    CPU cores); a later fit with other epochs or another seed runs the same
    compiled terms (``fit.objective.compiled_level_structure``).
    """
    from .morph import Morph

    Morph(source, target, settings=page_fit_settings(source.shape)).prepare()


def start_preparing_page_fit(source: np.ndarray, target: np.ndarray) -> threading.Thread:
    """``prepare_page_fit`` in a daemon thread, so that an upload returns at once; returns the thread.

    What fails there fails again in the fit, which reports it: nothing is
    raised here. A fit started meanwhile waits for the trace, then runs it.
    """
    def prepare() -> None:
        with contextlib.suppress(Exception):
            prepare_page_fit(source, target)

    thread = threading.Thread(target=prepare, name="prepare page fit", daemon=True)
    thread.start()
    return thread


def fit_page_morph(source: np.ndarray, target: np.ndarray, points: PagePoints, *, epochs: int = 120,
                   seed: int = 0, scales: Scales = Scales(), alphas: Sequence[np.ndarray | None] | None = None,
                   loop: bool = False, progress: Callable[[int, int], None] | None = None) -> object:
    """A fitted ``Morph`` of the page's images: clicked pairs are the user's points (carried exactly),
    detected ones its face points (soft), as on the command line; ``alphas``: each image's opacity (frames
    keep it); ``loop``: fit the way back to the source too (two legs, the points reversed on the second).
    ``progress(step, total)``, over all the legs."""
    from .morph import Morph

    settings = page_fit_settings(source.shape, epochs=epochs, seed=seed)
    faces = points.point_pairs(source.shape[:2], target.shape[:2], automatic=True)
    users = points.point_pairs(source.shape[:2], target.shape[:2], automatic=False)
    legs = 2 if loop else 1
    morph = Morph(source, target, points=[users, _reversed(users)][:legs],
                  settings=settings, scales=scales, face_points=[faces, _reversed(faces)][:legs], alphas=alphas,
                  loop=loop)
    total = legs * morph.total_steps
    morph.fit(None if progress is None else lambda leg, step, loss: progress(leg * morph.total_steps + step + 1,
                                                                           total))
    return morph


def _reversed(pairs: PointPairs | None) -> PointPairs | None:
    """The same pairs for the way back (target → source)."""
    if pairs is None:
        return None
    return PointPairs(pairs.target, pairs.source, pairs.target_shape, pairs.source_shape)


def write_animation(morph: object, folder: Path, *, scales: Scales, frames: int = 50, fps: float = 25.0,
                    easing: str = "linear", ends: str = "none", file_format: str = "gif") -> Path:
    """Render ``morph`` (fitted) with these settings into a new file in ``folder``; never refits."""
    if file_format not in FORMATS:
        raise PageError(f"format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    if ends not in ENDS:
        raise PageError(f"ends must be one of {', '.join(ENDS)}, got {ends!r}")
    if (ends == "loop") != morph.loop:
        raise PageError("'loop' fits the way back too: press fit again after choosing it" if ends == "loop" else
                        "this morph was fitted to loop: press fit again for 'none' or 'boomerang'")
    settings = FrameSettings(frames=int(frames), easing=easing, boomerang=ends == "boomerang")
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="morph-", suffix=f".{file_format}", dir=folder)
    os.close(handle)
    path = Path(name)
    morph.save(path, frames=settings, scales=scales, fps=fps)
    return path


# --- the page ----------------------------------------------------------------------------------------------


class _SessionFolders:
    """A temporary folder per browser session, removed when its tab closes (and all at exit)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="morph-ui-"))
        self._lock = threading.Lock()

    def of(self, session: str) -> Path:
        folder = self.root / "".join(c for c in session if c.isalnum())[:64]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def remove(self, session: str) -> None:
        with self._lock:
            shutil.rmtree(self.of(session), ignore_errors=True)

    def remove_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def describe_start(choice: object) -> str:
    """What the page says of the start a fit took (a ``starts.StartChoice``), with a hint when nothing moved it."""
    if not choice.kept_still:
        return choice.describe()
    return (f"{choice.describe()}. Nothing lined the pictures up: if the middle frame shows two of something, "
            "click two or three point pairs (eyes, nose) and fit again.")


def describe_fit(choice: object, polished: object | None) -> str:
    """What the page says of a fit: its start (``describe_start``), then what the polish did (a
    ``polish.Polished``; ``None``: no polish ran)."""
    said = describe_start(choice)
    return said if polished is None else f"{said}; {polished.describe()}"


def sample_pairs(images: Path) -> list[list[str]]:
    """``[source, target]`` paths of the sample pairs in ``images`` (``NAME_a.png`` with ``NAME_b.png``)."""
    return [[str(a), str(a.with_name(a.name.replace("_a.", "_b.")))] for a in sorted(images.glob("*_a.png"))
            if a.with_name(a.name.replace("_a.", "_b.")).exists()]


def build_page(samples: Path | None = None, detector: object | None = None):  # noqa: C901 - one page's wiring
    """The Gradio page (a ``gradio.Blocks``, not launched). ``samples``: a folder of sample pairs;
    ``detector``: the face detector (default: the bundled one)."""
    try:
        import gradio as gr
    except ImportError:
        raise PageError('the web page needs Gradio: pip install ".[ui]" (or pip install -r requirements-ui.txt)'
                        ) from None

    folders = _SessionFolders()
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])

    def images_of(state: dict) -> tuple[np.ndarray, np.ndarray]:
        if state.get(SOURCE) is None or state.get(TARGET) is None:
            raise gr.Error("upload a source and a target first (or pick a sample)")
        return state[SOURCE], state[TARGET]

    def shown(state: dict, points: PagePoints) -> tuple:
        return (None if state.get(SOURCE) is None else draw_points(state[SOURCE], points, SOURCE),
                None if state.get(TARGET) is None else draw_points(state[TARGET], points, TARGET),
                points.table())

    def loaded_line(state: dict, points: PagePoints) -> str:
        said = [f"{which} {state[which].shape[1]}×{state[which].shape[0]}" for which in (SOURCE, TARGET)
                if state.get(which) is not None]
        faces = sum(pair.automatic for pair in points.pairs)
        if state.get(SOURCE) is not None and state.get(TARGET) is not None:
            said.append(f"face points: {faces} pairs" if faces else "face points: no face in both images")
        return "loaded: " + ", ".join(said) if said else ""

    def paired(state: dict, points: PagePoints) -> PagePoints:
        """``points`` without the last images' face pairs and, once both images are in, with these images'
        (their fit then starts compiling)."""
        points = PagePoints(tuple(p for p in points.pairs if not p.automatic))
        if state.get(SOURCE) is None or state.get(TARGET) is None:
            return points
        try:
            points = points.with_automatic(face_pairs(state[SOURCE], state[TARGET], detector))
        except RuntimeError as error:  # the detector's package is missing: say so, go on without
            gr.Warning(str(error))
        start_preparing_page_fit(state[SOURCE], state[TARGET])
        return points

    def uploaded(which: str) -> Callable:
        def on_upload(path: str | None, state: dict, points: PagePoints) -> tuple:
            try:
                loaded = read_upload(path, which)
            except PageError as error:
                raise gr.Error(str(error)) from None
            state = {**state, which: loaded.pixels, f"{which} alpha": loaded.alpha, "morph": None}
            points = paired(state, points)
            return (state, points, *shown(state, points), loaded_line(state, points))
        return on_upload

    def clicked(which: str) -> Callable:
        def on_select(event: gr.SelectData, state: dict, points: PagePoints) -> tuple:
            if state.get(which) is None:
                raise gr.Error(f"upload a {which} image first")
            x, y = event.index
            try:
                points = points.click(which, x, y)
            except PageError as error:
                raise gr.Error(str(error)) from None
            return (points, *shown(state, points))
        return on_select

    def edit(action: str) -> Callable:
        def on_edit(number: float | None, state: dict, points: PagePoints) -> tuple:
            try:
                if action == "clear":
                    points = PagePoints()
                elif number is None:
                    raise PageError("give the number of a pair")
                else:
                    points = getattr(points, action)(int(number) - 1)
            except PageError as error:
                raise gr.Error(str(error)) from None
            return (points, *shown(state, points))
        return on_edit

    def imported(path: str | None, state: dict, points: PagePoints) -> tuple:
        source, target = images_of(state)
        if path is None:
            return (points, *shown(state, points))
        try:
            text = Path(path).read_text(encoding="utf-8")
            points = points_from_csv(text, source.shape[:2], target.shape[:2], keep=points)
        except (PageError, UnicodeDecodeError) as error:
            raise gr.Error(f"points file: {error}") from None
        return (points, *shown(state, points))

    def exported(points: PagePoints, request: gr.Request) -> str:
        path = folders.of(request.session_hash) / "points.csv"
        path.write_text(points_csv(points), encoding="utf-8")
        return str(path)

    def fitted(state: dict, points: PagePoints, epochs: float, seed: float, alpha_now: float, add: float,
               mult: float, warp: float, frames: float, fps: float, easing: str, ends: str, file_format: str,
               request: gr.Request,
               progress: gr.Progress = gr.Progress()) -> tuple:
        source, target = images_of(state)
        progress((0, int(epochs)), desc="fitting", unit="steps")
        morph = fit_page_morph(source, target, points, epochs=int(epochs), seed=int(seed), loop=ends == "loop",
                               scales=Scales(mult=mult, add=add, warp=warp),
                               alphas=[state.get(f"{SOURCE} alpha"), state.get(f"{TARGET} alpha")],
                               progress=lambda step, total: progress((step, total), desc="fitting", unit="steps"))
        state = {**state, "morph": morph}
        folder = folders.of(request.session_hash)
        maps_path = folder / "maps.npz"
        morph.save_maps(maps_path)
        from morphing.io.visualize import maps_picture

        return (state, *rendered(state, add, mult, warp, frames, fps, easing, ends, file_format, request),
                maps_picture(morph.maps[0]), str(maps_path), describe_fit(morph.start_choices[0], morph.polishes[0]),
                scrubbed(state, alpha_now, add, mult, warp))

    def rendered(state: dict, add: float, mult: float, warp: float, frames: float, fps: float, easing: str,
                 ends: str, file_format: str, request: gr.Request) -> tuple:
        morph = state.get("morph")
        video = file_format == "mp4"
        if morph is None:
            return gr.Image(visible=not video), gr.Video(visible=video), None
        try:
            path = write_animation(morph, folders.of(request.session_hash),
                                   scales=Scales(mult=mult, add=add, warp=warp), frames=int(frames), fps=fps,
                                   easing=easing, ends=ends, file_format=file_format)
        except PageError as error:
            raise gr.Error(str(error)) from None
        # Browsers show a GIF or WebP as an image, an MP4 as a video.
        return (gr.Image(value=None if video else str(path), visible=not video),
                gr.Video(value=str(path) if video else None, visible=video), str(path))

    def scrubbed(state: dict, alpha: float, add: float, mult: float, warp: float) -> np.ndarray | None:
        morph = state.get("morph")
        if morph is None:
            return None
        return morph.frame(float(alpha), scales=Scales(mult=mult, add=add, warp=warp))

    with gr.Blocks(title="morph", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        state = gr.State({})
        points = gr.State(PagePoints())
        gr.Markdown("## morph\nUpload two images (or pick a sample), check the point pairs, fit, then tune "
                    "and download. Click a point on the **source**, then its partner on the **target**, to add a "
                    "pair; detected face points are blue, yours orange.")
        with gr.Row():
            source_view = gr.Image(label="source", type="filepath", sources=["upload"], elem_id="source")
            target_view = gr.Image(label="target", type="filepath", sources=["upload"], elem_id="target")
        loaded = gr.Markdown(elem_id="loaded")
        sample_buttons = []
        if samples is not None and sample_pairs(samples):
            with gr.Row():
                for index, (a, b) in enumerate(sample_pairs(samples)):
                    label = f"sample: {Path(a).stem.removesuffix('_a')}"
                    sample_buttons.append((gr.Button(label, size="sm", elem_id=f"sample-{index}"), a, b))
        with gr.Accordion("point pairs", open=True):
            table = gr.Dataframe(headers=["pair", "x source", "y source", "x target", "y target", "kind"],
                                 interactive=False, elem_id="pairs")
            with gr.Row():
                pair_number = gr.Number(label="pair", precision=0, minimum=1, value=1)
                move_button = gr.Button("move (then click)", size="sm")
                remove_button = gr.Button("remove", size="sm")
                clear_button = gr.Button("clear all", size="sm")
            with gr.Row():
                import_file = gr.File(label="import points CSV", file_types=[".csv", ".txt"], type="filepath")
                export_button = gr.DownloadButton("export points CSV", size="sm")
        with gr.Row():
            with gr.Column():
                epochs = gr.Slider(10, 600, value=FitSettings().epochs, step=10, label="epochs (-e)")
                seed = gr.Number(value=0, precision=0, label="seed")
                add = gr.Slider(0, 2, value=Scales().add, step=0.05, label="add multiplier (-a)")
                mult = gr.Slider(0, 2, value=Scales().mult, step=0.05, label="multiply multiplier (-m)")
                warp = gr.Slider(0, 0.3, value=Scales().warp, step=0.005, label="warp multiplier (-w)")
            with gr.Column():
                frames = gr.Slider(2, 200, value=50, step=1, label="frames")
                fps = gr.Slider(1, 60, value=25, step=1, label="fps")
                easing = gr.Dropdown(list(EASINGS), value="linear", label="easing")
                ends = gr.Radio(list(ENDS), value="none", label="ends")
                file_format = gr.Radio(list(FORMATS), value="gif", label="format")
        fit_button = gr.Button("fit", variant="primary", elem_id="fit")
        start_line = gr.Markdown()
        with gr.Row():
            animation = gr.Image(label="animation", type="filepath", interactive=False, elem_id="animation")
            video = gr.Video(label="animation (MP4)", interactive=False, visible=False)
            frame_view = gr.Image(label="frame at alpha", interactive=False)
        alpha = gr.Slider(0, 1, value=0.5, step=0.01, label="alpha", elem_id="alpha")
        with gr.Row():
            maps_view = gr.Image(label="maps", interactive=False)
            download = gr.File(label="download the animation")
            maps_file = gr.File(label="download the maps (.npz, for --load-maps)")

        point_views = [source_view, target_view, table]
        source_view.upload(uploaded(SOURCE), [source_view, state, points], [state, points, *point_views, loaded])
        target_view.upload(uploaded(TARGET), [target_view, state, points], [state, points, *point_views, loaded])
        source_view.select(clicked(SOURCE), [state, points], [points, *point_views])
        target_view.select(clicked(TARGET), [state, points], [points, *point_views])
        for button, action in ((move_button, "move"), (remove_button, "remove"), (clear_button, "clear")):
            button.click(edit(action), [pair_number, state, points], [points, *point_views])
        import_file.upload(imported, [import_file, state, points], [points, *point_views])
        export_button.click(exported, [points], [export_button])
        for button, a, b in sample_buttons:
            def load_sample(state: dict, points: PagePoints, a: str = a, b: str = b) -> tuple:
                state = {**state, SOURCE: read_upload(a, SOURCE).pixels, TARGET: read_upload(b, TARGET).pixels,
                         f"{SOURCE} alpha": None, f"{TARGET} alpha": None, "morph": None}
                points = paired(state, points)
                return (state, points, *shown(state, points), loaded_line(state, points))

            button.click(load_sample, [state, points], [state, points, *point_views, loaded])
        settings = [add, mult, warp, frames, fps, easing, ends, file_format]
        fit_button.click(fitted, [state, points, epochs, seed, alpha, *settings],
                         [state, animation, video, download, maps_view, maps_file, start_line, frame_view],
                         concurrency_limit=1, concurrency_id="fit")
        for control in settings:
            control.change(rendered, [state, *settings], [animation, video, download], concurrency_limit=1,
                           concurrency_id="render")
        alpha.release(scrubbed, [state, alpha, add, mult, warp], [frame_view], concurrency_id="render")
        for control in (add, mult, warp):
            control.change(scrubbed, [state, alpha, add, mult, warp], [frame_view], concurrency_id="render")
        def closed(request: gr.Request) -> None:
            folders.remove(request.session_hash)

        page.unload(closed)
    page.morph_folders = folders
    page.morph_theme = theme  # Gradio 6 takes the theme at launch
    return page


def serve(host: str = "127.0.0.1", port: int | None = None, samples: Path | None = None,
          detector: object | None = None, block: bool = True):
    """Build the page and serve it (``page.local_url`` says where). With ``block``, until interrupted;
    else it keeps serving in the background and the page is returned (``page.close()`` stops it,
    ``page.morph_folders.remove_all()`` removes its files)."""
    page = build_page(samples, detector)
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
                quiet=True, max_file_size=MAX_UPLOAD_BYTES, theme=page.morph_theme)
    if block:
        try:
            page.block_thread()
        finally:
            page.morph_folders.remove_all()
    return page

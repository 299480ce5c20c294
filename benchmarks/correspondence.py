#!/usr/bin/env python3
"""Correspondence: does the fitted warp bring matching features into register?

    pip install -r requirements-bench.txt
    python benchmarks/correspondence.py --samples ../shared/samples [--out DIR]

Scores the warp itself, for every method in the same run (no warp at all, the
OpenCV DIS optical-flow morph, ours):

1. Exact ground truth: real pictures (the photo pairs in ``--samples``,
   scikit-image's astronaut, coffee and cat, two procedural textures) at
   256x256, each warped by a known random smooth deformation (translation up
   to 15 % of the side, rotation up to 0.2 rad, scale ±15 %, four local bumps)
   and recoloured (per-channel gain and offset, contrast, a brightness ramp),
   so the true correspondence is known at every pixel
   (``morphing.testing.scenes.deformed_pair``). End-point error of the flows at
   alpha = 1, both directions, over the pixels whose match lies inside the
   other image: mean and 95th percentile in pixels. Folds: share of pixels
   where either sampling map folds.
2. Landmarks placed by eye (``benchmarks/landmarks/*.csv``, the points-file
   format of ``--points``) on 512x512 pairs: the two faces, a face and the
   astronaut's (another scale and place), the faces again with the target
   moved by a known similarity, and the car. Target registration error
   (px): each direction's flow carries one image's landmarks into the other,
   both directions averaged. "Ghost at ½": how far apart the two copies of a
   landmark are in the middle frame (one carried by S→T(½), one by T→S(½)):
   a double eye or mouth is a large ghost.
   ``ours + 5 points`` also passes five of the landmarks (pupils, nose base,
   mouth corners) as user points; its TRE is over all landmarks, and over the
   other five alone ("held out").

3. The development set (``--pairs-dir``, default ``../shared/pairs``): real pairs
   in five groups (different people, paintings, same person, animals,
   objects) with landmarks placed by eye. Per pair TRE and ghost at ½; per
   group and for the faces (G1–G3) the mean and the **worst pair**. With
   ``--out``, ``pairs_half.png``: every pair at alpha ½ (no warp, DIS, ours)
   between its source and target, and one contact sheet per pair.

4. The development set moved (``--sections moved``): every pair again with its
   target turned (±0.4 rad), scaled (0.6–1.3) and shifted (up to 20 % of the
   side) by ``--moves`` random similarities, the landmarks carried along; a
   row "ours, face points off" shows the start machinery alone (pictures
   whose faces the detector misses). ``--seeds tune`` is the seed constants
   may be chosen on, ``--seeds report`` the figures', ``--seeds fresh:N`` a
   draw nobody has looked at. With ``--out``,
   ``moved_half.png``.

5. The development set stamped (``--sections stamped``): every pair again with
   one textured 160-px stamp pasted into the same corner of both pictures (a
   logo or caption both share): matching the stamp must not move the rest.
   With ``--out``, ``stamped_half.png``.

6. The development set the other way round (``--sections swapped``): every pair
   with source and target swapped (a user may give either picture first), with
   the "ours, face points off" row as in section 4. With ``--out``,
   ``swapped_half.png``.

7. The development set's pictures paired otherwise (``--sections pairings``):
   every pairing of two of its face pictures (G1–G3, 144 pairings) and of two
   of its animal pictures (G4, 7), but the development pairs themselves,
   scored on the landmarks both pictures carry. No constant was chosen on
   these: they say how the development set's figures carry over to pairs
   the fit was not tuned on. With ``--out``, ``pairings_half.png``.

8. The development set cropped (``--sections cropped``): every pair again as a
   wide strip (each picture cut to 62 % of its height) and as a tall one (62 %
   of its width), each picture at its own random offset that keeps its
   landmarks 16 px inside: pictures framed tightly, a face filling the frame
   or cut at the forehead or chin, as a user's own photos are. ``--seeds``
   draws the offsets as for section 4. With ``--out``, ``cropped_half.png``.

With ``--oracle``, section 3 adds ``ours, landmark start``: the same fit started
from the affine laid through the pair's own landmarks (least squares), not
from the start it would choose. Not a method (it reads the answer): an upper
bound that says how much of a pair's error is the start's. With ``--out`` its
contact sheets are written too (``pair_*_landmark_start.png``).

``--set FIELD=VALUE`` overrides a ``FitSettings`` field for ours (tuning);
``--only`` picks methods by name. With ``--out``, contact sheets (frames at
0, ¼, ½, ¾, 1 per method) of the landmark pairs are written there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morphing.runtime.backend import load_tensorflow  # noqa: E402

load_tensorflow()

from PIL import Image, ImageDraw  # noqa: E402
from skimage import data as skimage_data  # noqa: E402

from baselines import flow_morph, library_versions, overridden  # noqa: E402
from morphing.fit.affine import Affine, affine_from_points, to_normalised  # noqa: E402
from morphing.fit.fitter import FitSettings, MapFitter, reduce_for_fit  # noqa: E402
from morphing.fit.starts import NO_MOTION, POINTS, Candidate  # noqa: E402
from morphing.io.images import load_image, resize_image  # noqa: E402
from morphing.fit.keypoints import default_face_detector, default_second_look, leg_face_points  # noqa: E402
from morphing.model.maps import Scales  # noqa: E402
from morphing.testing.metrics import fold_fraction  # noqa: E402
from morphing.model.points import PointPairs, read_points  # noqa: E402
from morphing.render.renderer import FrameRenderer  # noqa: E402
from morphing.testing.scenes import (  # noqa: E402
    Deformation,
    deformed_pair,
    pixel_grid,
    random_texture,
    sample_bilinear,
)
from morphing.tools.transfer import morph_flows  # noqa: E402

LANDMARKS = Path(__file__).resolve().parent / "landmarks"
GROUND_TRUTH_SIDE = 256
ASTRONAUT_CROP = (110, 10, 350, 250)  # left, top, right, bottom in the 512x512 original
USER_POINTS = (0, 1, 6, 7, 8)  # of the face landmarks: pupils, nose base, mouth corners

ORACLE = "ours, landmark start"
NO_FACES = "ours, face points off"
MOVE_SEEDS = {"tune": 5, "report": 3026}
"""Seeds of the moved section's similarities: constants are chosen on 'tune' only."""
Flows = tuple[np.ndarray, np.ndarray]  # (forward on the target's pixels, backward on the source's)
# A method: (source, target, user points or None) -> (forward, backward) flows and a frame renderer.
Method = Callable[[np.ndarray, np.ndarray, PointPairs | None], tuple[Flows, Callable[[list[float]], list[np.ndarray]]]]


def astronaut_face() -> np.ndarray:
    """scikit-image's astronaut (public domain, NASA), her face cropped and resized to 512x512."""
    picture = Image.fromarray(skimage_data.astronaut()).crop(ASTRONAUT_CROP)
    return np.asarray(picture.resize((512, 512), Image.Resampling.LANCZOS))


def moved_by_similarity(image: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> tuple[np.ndarray, Deformation]:
    """``image`` turned by ``angle`` rad and scaled by ``scale`` about its centre, then moved by
    ``shift`` (dy, dx) pixels; borders repeat. Returns the picture and the deformation
    whose ``invert`` carries the original's points into it."""
    height, width = image.shape[:2]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    # The picture at p shows the original at centre + R⁻¹/s (p - centre - shift).
    deformation = Deformation(
        centre=((height - 1) / 2, (width - 1) / 2),
        matrix=rotation.T,
        offset=-(rotation.T @ np.asarray(shift, np.float64)),
        bump_centres=np.zeros((0, 2)),
        bump_sigmas=np.zeros(0),
        bump_amplitudes=np.zeros((0, 2)),
    )
    moved = sample_bilinear(image, deformation.apply(pixel_grid(height, width)))
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8), deformation


def landmark_pairs(samples: Path) -> dict[str, tuple[np.ndarray, np.ndarray, PointPairs]]:
    """name -> (source, target, landmarks), all 512x512."""
    faces = [load_image(samples / name).pixels for name in ("img_3.jpg", "img_4.jpg")]
    car = [load_image(samples / name).pixels for name in ("img_1.jpg", "img_2.jpg")]
    astronaut = astronaut_face()
    shape = (512, 512)
    face_points = read_points(LANDMARKS / "faces.csv", shape, shape)
    moved, deformation = moved_by_similarity(faces[1], angle=0.14, scale=0.82, shift=(-30.0, 40.0))
    return {
        "faces": (faces[0], faces[1], face_points),
        "face → astronaut": (faces[0], astronaut, read_points(LANDMARKS / "faces_astronaut.csv", shape, shape)),
        "faces, target moved": (faces[0], moved, dataclasses.replace(face_points, target=deformation.invert(face_points.target))),
        "car": (car[0], car[1], read_points(LANDMARKS / "car.csv", shape, shape)),
    }


def ground_truth_pairs(samples: Path, count: int) -> list[tuple[str, object]]:
    """(name, DeformedPair) of textured pictures at 256x256, seeded."""
    side = GROUND_TRUTH_SIDE
    pictures = {
        "car": load_image(samples / "img_1.jpg").pixels,
        "car 2": load_image(samples / "img_2.jpg").pixels,
        "face": load_image(samples / "img_3.jpg").pixels,
        "face 2": load_image(samples / "img_4.jpg").pixels,
        "astronaut": skimage_data.astronaut(),
        "coffee": skimage_data.coffee(),
        "cat": skimage_data.chelsea(),
    }
    images = [(name, resize_image(picture, side, side)) for name, picture in pictures.items()]
    rng = np.random.default_rng(14)
    for index in range(2):
        texture = random_texture(rng, side, side, falloff=1.2 + 0.4 * index)
        images.append((f"texture {index + 1}", np.clip(np.rint((texture + 1) * 127.5), 0, 255).astype(np.uint8)))
    images = images[:count]
    return [(name, deformed_pair(np.random.default_rng(100 + i), image)) for i, (name, image) in enumerate(images)]


def no_warp(source: np.ndarray, target: np.ndarray, points: PointPairs | None):
    zero = np.zeros((*source.shape[:2], 2), np.float32)
    return (zero, zero), None


def optical_flow(source: np.ndarray, target: np.ndarray, points: PointPairs | None):
    render, flows = flow_morph(source, target)
    return (flows[0], flows[1]), render


def ours(settings: FitSettings, scales: Scales = Scales(), log: list[str] | None = None,
         no_face: Method | None = None) -> Method:
    """Our morph as the command line runs it: face key points found (unless ``settings.face_points`` is
    off), then the fit. Each fit's start choice is appended to ``log``. Where no face is found in both
    pictures, ``no_face`` (the same fit with face points off, if given) answers instead: the fit is then
    the same, and a remembered one (``remembered``) need not run twice."""
    fitters: dict[tuple[int, int], MapFitter] = {}

    def method(source: np.ndarray, target: np.ndarray, points: PointPairs | None):
        fitter = fitters.setdefault(source.shape[:2], MapFitter(scales, settings))
        faces = (leg_face_points([source, target], default_face_detector(), default_second_look())[0]
                 if settings.face_points else None)
        if faces is None and no_face is not None:
            return no_face(source, target, points)
        maps = fitter.fit(*reduce_for_fit(source, target, settings.working_size), image_shape=source.shape[:2],
                          frames=(source, target),
                          points=points, face_points=faces,
                          on_start=None if log is None else lambda choice: log.append(choice.chosen.name))
        renderer = FrameRenderer(source, target, maps, scales)
        return morph_flows(maps, scales, *source.shape[:2]), lambda alphas: list(renderer.render(alphas))

    return method


def remembered(method: Method) -> Method:
    """``method``, giving its last answer again when asked about the same pictures and points (the
    face-points-off column repeats ours on pairs without faces)."""
    last: dict[str, object] = {}

    def again(source: np.ndarray, target: np.ndarray, points: PointPairs | None):
        fingerprint = hashlib.sha1(source.tobytes() + target.tobytes())
        if points is not None:
            fingerprint.update(np.asarray(points.source).tobytes() + np.asarray(points.target).tobytes())
        key = (source.shape, target.shape, fingerprint.hexdigest())
        if last.get("key") != key:
            last.update(key=key, answer=method(source, target, points))
        return last["answer"]

    return again


def landmark_affine(points: PointPairs) -> Affine:
    """The affine (normalised coordinates, target position → source position) that carries the target's
    landmarks closest to the source's, by least squares."""
    return affine_from_points(to_normalised(points.target, *points.target_shape),
                              to_normalised(points.source, *points.source_shape))


def ours_from_landmarks(settings: FitSettings, scales: Scales = Scales()) -> Method:
    """Our fit, started from ``landmark_affine`` of the landmarks passed as its third argument (which are
    not used otherwise: no point pulls the dense fit); face key points off, so the start is the oracle's."""
    settings = dataclasses.replace(settings, face_points=False)
    fitters: dict[tuple[int, int], MapFitter] = {}

    def method(source: np.ndarray, target: np.ndarray, landmarks: PointPairs | None):
        fitter = fitters.setdefault(source.shape[:2], MapFitter(scales, settings))
        start = Candidate(POINTS, landmark_affine(landmarks), "the landmarks (oracle)")
        maps = fitter.fit(*reduce_for_fit(source, target, settings.working_size), image_shape=source.shape[:2],
                          frames=(source, target),
                          candidates=[Candidate(NO_MOTION, Affine.identity()), start])
        renderer = FrameRenderer(source, target, maps, scales)
        return morph_flows(maps, scales, *source.shape[:2]), lambda alphas: list(renderer.render(alphas))

    return method


def end_point_errors(flows: Flows, pair) -> np.ndarray:
    """Per-pixel end-point errors of both directions, over the valid pixels (one array)."""
    forward, backward = flows
    errors = [
        np.hypot(*np.moveaxis(forward - pair.forward_flow, -1, 0))[pair.forward_valid],
        np.hypot(*np.moveaxis(backward - pair.backward_flow, -1, 0))[pair.backward_valid],
    ]
    return np.concatenate(errors)


def carried(points: np.ndarray, flow: np.ndarray, amount: float) -> np.ndarray:
    """Where the features at ``points`` ((y, x), in the image a flow samples) appear once it is
    warped by ``amount`` times ``flow``: the ``p`` with ``p - amount·flow(p) = point``."""
    position = points.copy()
    for _ in range(50):
        position = points + amount * sample_bilinear(flow, position)
    return position


def registration_errors(flows: Flows, points: PointPairs) -> tuple[np.ndarray, np.ndarray]:
    """Per landmark: TRE averaged over both directions, and the ghost distance at alpha ½."""
    forward, backward = flows
    # The forward flow lives on the target: target landmark t reads the source at t - f(t).
    forward_error = np.hypot(*(points.target - sample_bilinear(forward, points.target) - points.source).T)
    backward_error = np.hypot(*(points.source - sample_bilinear(backward, points.source) - points.target).T)
    # Middle frame: S→T(½) shows source landmark s at p with p - ½ f(p) = s; T→S(½) shows t likewise.
    ghost = np.hypot(*(carried(points.source, forward, 0.5) - carried(points.target, backward, 0.5)).T)
    return (forward_error + backward_error) / 2, ghost


def subset(points: PointPairs, indices: tuple[int, ...]) -> PointPairs:
    keep = list(indices)
    return dataclasses.replace(points, source=points.source[keep], target=points.target[keep])


def contact_sheet(render, path: Path) -> None:
    frames = render([0.0, 0.25, 0.5, 0.75, 1.0])
    tiles = [np.asarray(Image.fromarray(frame).resize((256, 256), Image.Resampling.LANCZOS)) for frame in frames]
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)


Pair = tuple[str, str, np.ndarray, np.ndarray, PointPairs]
"""(group, name, source, target, landmarks) of one pair."""


def landmark_pair(folder: Path, index: dict, source_name: str, target_name: str, group: str) -> Pair:
    """The pair of pictures ``source_name`` → ``target_name`` of ``folder/images``, with the landmarks whose
    labels both carry (in the source's order: an animal with ear tips against one without pairs eyes and nose)."""
    pictures = [load_image(folder / "images" / f"{name}.png").pixels for name in (source_name, target_name)]
    entries = [index["images"][name] for name in (source_name, target_name)]
    common = [label for label in entries[0]["labels"] if label in entries[1]["labels"]]
    marks = [np.asarray([entry["points"][entry["labels"].index(label)] for label in common], np.float64)[:, ::-1]
             for entry in entries]
    shape = pictures[0].shape[:2]
    return group, f"{source_name[3:]}→{target_name[3:]}", *pictures, PointPairs(marks[0], marks[1], shape, shape)


def development_pairs(folder: Path) -> list[Pair]:
    """(group, name, source, target, landmarks) of every pair in ``folder/pairs.json``."""
    index = json.loads((folder / "pairs.json").read_text())
    return [landmark_pair(folder, index, source, target, group) for source, target, group in index["pairs"]]


PAIRING_FAMILIES = (("faces", ("G1", "G2", "G3")), ("animals", ("G4",)))
"""Section 7's families: any two pictures of one family make a pairing (objects pair with their own kind
only, as the development set does)."""


def other_pairings(folder: Path) -> list[Pair]:
    """Every pairing of two pictures of one family (``PAIRING_FAMILIES``) that is not a development pair (in
    either direction), from the alphabetically first picture to the other; the group is the family's name."""
    index = json.loads((folder / "pairs.json").read_text())
    taken = {frozenset(pair[:2]) for pair in index["pairs"]}
    pairings = []
    for family, groups in PAIRING_FAMILIES:
        names = sorted(name for name in index["images"] if name.split("_")[0].upper() in groups)
        pairings += [landmark_pair(folder, index, source, target, family)
                     for source, target in itertools.combinations(names, 2) if frozenset((source, target)) not in taken]
    return pairings


def labelled(picture: np.ndarray, text: str) -> np.ndarray:
    image = Image.fromarray(picture)
    ImageDraw.Draw(image).text((4, 4), text, fill=(255, 255, 0), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image)


GROUPS = (("G1", ("G1",)), ("G2", ("G2",)), ("G3", ("G3",)), ("faces G1-3", ("G1", "G2", "G3")),
          ("G4", ("G4",)), ("G5", ("G5",)), ("all", ("G1", "G2", "G3", "G4", "G5")))
PAIRING_GROUPS = (("faces", ("faces",)), ("animals", ("animals",)))
"""The summary rows of section 7."""


def group_table(results: dict[str, list[tuple[str, float, float]]], groups: tuple = GROUPS) -> None:
    """Print per group of ``groups`` ((label, member groups) pairs) each method's mean and worst pair, TRE and
    ghost.

    ``results``: method name → (group, TRE, ghost) per pair."""
    names = list(results)
    print(f"\n{'group':<11} " + " ".join(f"{name[:26]:>26}" for name in names))
    for label, members in groups:
        if not any(r[0] in members for r in results[names[0]]):
            continue  # --pair-names left none of the group
        cells = []
        for name in names:
            rows = [r for r in results[name] if r[0] in members]
            tres, ghosts = [r[1] for r in rows], [r[2] for r in rows]
            cells.append(f"{np.mean(tres):5.1f} {max(tres):6.1f} | {np.mean(ghosts):4.1f} {max(ghosts):5.1f}")
        print(f"{label:<11} " + " ".join(f"{cell:>26}" for cell in cells))
    print("   cells: TRE mean, worst pair | ghost mean, worst pair")


def finish_section(results: dict[str, list[tuple[str, float, float]]], tiles: list[np.ndarray],
                   sheet: Path | None, groups: tuple = GROUPS) -> None:
    """A per-pair section's group table (rows ``groups``), and its rows of middle frames stacked into ``sheet``."""
    print("   cells: TRE / ghost at ½, mean over the pair's landmarks")
    group_table(results, groups)
    if sheet is not None and tiles:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(tiles, axis=0)).save(sheet)
        print(f"   wrote {sheet}")


Variant = Callable[[np.ndarray, np.ndarray, PointPairs], list[tuple[str, np.ndarray, np.ndarray, PointPairs]]]


def chosen(pair_name: str, wanted: list[str] | None) -> bool:
    """Whether ``--pair-names`` (``wanted``: parts of names; ``None``: every pair) keeps a pair."""
    return wanted is None or any(part in pair_name for part in wanted)


def variant_section(folder: Path, methods: dict[str, Method], variant: Variant, title: str, column: str,
                    sheet: Path | None, wanted: list[str] | None = None) -> None:
    """Every development pair again as ``variant`` makes it: ``(label, source, target, landmarks)`` runs
    (of the pairs ``wanted`` keeps; ``variant`` still sees every pair, so a random variant draws the same
    for each)."""
    print(f"\n{title}; TRE (px, both directions) / ghost at ½ (px)")
    names = list(methods)
    print(f"{'pair':<24} {column:<21} " + " ".join(f"{name[:17]:>17}" for name in names))
    results: dict[str, list[tuple[str, float, float]]] = {name: [] for name in names}
    tiles: list[np.ndarray] = []
    side = 160
    for group, pair_name, original_source, original_target, original_points in development_pairs(folder):
        runs = variant(original_source, original_target, original_points)
        for label, source, target, landmarks in runs if chosen(pair_name, wanted) else []:
            cells, row = [], [labelled(np.asarray(Image.fromarray(source).resize((side, side))), f"{group} {pair_name}")]
            for name in names:
                flows, render = methods[name](source, target, None)
                tre, ghost = registration_errors(flows, landmarks)
                results[name].append((group, float(tre.mean()), float(ghost.mean())))
                cells.append(f"{tre.mean():7.1f} / {ghost.mean():6.1f}")
                if render is not None:
                    row.append(labelled(np.asarray(Image.fromarray(render([0.5])[0]).resize(
                        (side, side), Image.Resampling.LANCZOS)), f"{name[:12]} {tre.mean():.1f}px"))
            row.append(np.asarray(Image.fromarray(target).resize((side, side))))
            tiles.append(np.concatenate(row, axis=1))
            print(f"{pair_name:<24} {label:<21} " + " ".join(f"{cell:>17}" for cell in cells), flush=True)
    finish_section(results, tiles, sheet)


def move_seed(name: str) -> int:
    """The random seed that ``--seeds NAME`` names: 'tune', 'report' (``MOVE_SEEDS``) or 'fresh:N'."""
    if name in MOVE_SEEDS:
        return MOVE_SEEDS[name]
    kind, _, number = name.partition(":")
    if kind != "fresh" or not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'tune', 'report' or 'fresh:N', not {name!r}")
    return int(number)


def moved_section(folder: Path, methods: dict[str, Method], moves: int, seed: int, out: Path | None,
                  wanted: list[str] | None = None) -> None:
    """Every development pair again with its target turned, scaled and moved by ``moves`` random
    similarities each (turn ±0.4 rad, scale 0.6–1.3, shift up to 20 % of the side; borders repeat), the
    landmarks carried along: starts far from where the pictures stand, as a user's own pairs can be."""
    rng = np.random.default_rng(seed)

    def moved(source: np.ndarray, target: np.ndarray, points: PointPairs):
        runs = []
        for _ in range(moves):
            angle, scale = rng.uniform(-0.4, 0.4), float(np.exp(rng.uniform(np.log(0.6), np.log(1.3))))
            shift = tuple(rng.uniform(-0.2, 0.2, 2) * np.array(target.shape[:2]))
            moved_target, deformation = moved_by_similarity(target, angle, scale, shift)
            landmarks = dataclasses.replace(points, target=deformation.invert(points.target))
            runs.append((f"{angle:+.2f} rad ×{scale:.2f} ({shift[0]:+.0f},{shift[1]:+.0f})", source, moved_target,
                         landmarks))
        return runs

    variant_section(folder, methods, moved,
                    f"4. development set moved ({folder}): each target turned, scaled and moved by {moves} random "
                    f"similarities (seed {seed})", "move", None if out is None else out / "moved_half.png", wanted)


def stamped_section(folder: Path, methods: dict[str, Method], out: Path | None,
                    wanted: list[str] | None = None) -> None:
    """Every development pair again with one textured stamp (a logo or caption both pictures share) pasted
    into the same corner of both: a start must not take the stamp's match for the whole scene's."""
    stamp = ((random_texture(np.random.default_rng(7), 160, 160, falloff=1.0) + 1) * 127.5).clip(0, 255)
    stamp = stamp.astype(np.uint8)

    def stamped(source: np.ndarray, target: np.ndarray, points: PointPairs):
        pictures = []
        for picture in (source, target):
            picture = picture.copy()
            picture[-stamp.shape[0]:, -stamp.shape[1]:] = stamp[:picture.shape[0], :picture.shape[1]]
            pictures.append(picture)
        return [("160-px corner stamp", *pictures, points)]

    variant_section(folder, methods, stamped, f"5. development set with a shared corner stamp ({folder})", "variant",
                    None if out is None else out / "stamped_half.png", wanted)


def swapped_section(folder: Path, methods: dict[str, Method], out: Path | None,
                    wanted: list[str] | None = None) -> None:
    """Every development pair again the other way round (target → source): a user may give either picture
    first, and a start or a constant that only suits one order shows here."""

    def swapped(source: np.ndarray, target: np.ndarray, points: PointPairs):
        return [("target → source", target, source, PointPairs(
            points.target, points.source, points.target_shape, points.source_shape))]

    variant_section(folder, methods, swapped, f"6. development set the other way round ({folder})", "variant",
                    None if out is None else out / "swapped_half.png", wanted)


CROP_SHARE = 0.62
"""Section 8: the share of a picture's height (wide strips) or width (tall ones) that a crop keeps."""


def cropped_section(folder: Path, methods: dict[str, Method], seed: int, out: Path | None,
                    wanted: list[str] | None = None) -> None:
    """Every development pair again cut to a wide and to a tall strip (``CROP_SHARE`` of the side), each
    picture at its own random offset keeping its landmarks 16 px inside where the strip is long enough: a
    detector must still find a face that fills the frame or is cut at the forehead, and a start must not
    lean on what the crop took away."""
    rng = np.random.default_rng(seed)

    def strip(picture: np.ndarray, marks: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        length = int(picture.shape[axis] * CROP_SHARE)
        low = min(max(0, int(marks[:, axis].max()) + 16 - length), picture.shape[axis] - length)
        high = max(low, min(picture.shape[axis] - length, int(marks[:, axis].min()) - 16))
        offset = int(rng.integers(low, high + 1))
        kept = [slice(None), slice(None)]
        kept[axis] = slice(offset, offset + length)
        moved = np.zeros(2)
        moved[axis] = offset
        return np.ascontiguousarray(picture[tuple(kept)]), marks - moved

    def cropped(source: np.ndarray, target: np.ndarray, points: PointPairs):
        runs = []
        for axis, label in ((0, "wide strip"), (1, "tall strip")):
            (cut_source, marks_source), (cut_target, marks_target) = (
                strip(source, points.source, axis), strip(target, points.target, axis))
            runs.append((label, cut_source, cut_target, PointPairs(marks_source, marks_target, cut_source.shape[:2],
                                                                   cut_target.shape[:2])))
        return runs

    variant_section(folder, methods, cropped,
                    f"8. development set cropped ({folder}): each pair cut to a wide and a tall strip "
                    f"({CROP_SHARE:.0%} of the side, random offsets, seed {seed})", "variant",
                    None if out is None else out / "cropped_half.png", wanted)


def pairs_section(folder: Path, methods: dict[str, Method], out: Path | None, starts: list[str],
                  wanted: list[str] | None = None) -> None:
    pairs = [pair for pair in development_pairs(folder) if chosen(pair[1], wanted)]
    print(f"\n3. development set ({folder}): {len(pairs)} real pairs, 512², landmarks by eye; "
          "TRE (px, both directions) / ghost at ½ (px)")
    pair_rows(pairs, methods, out, starts, "pairs_half.png", GROUPS)


def pairings_section(folder: Path, methods: dict[str, Method], out: Path | None, starts: list[str],
                     wanted: list[str] | None = None) -> None:
    """Section 7: every method on every other pairing of the development set's pictures (``other_pairings``)."""
    pairs = [pair for pair in other_pairings(folder) if chosen(pair[1], wanted)]
    print(f"\n7. the development set's pictures paired otherwise ({folder}): {len(pairs)} pairings no constant "
          "was chosen on, 512², the landmarks both pictures carry; TRE (px, both directions) / ghost at ½ (px)")
    pair_rows(pairs, {name: method for name, method in methods.items() if name != ORACLE}, out, starts,
              "pairings_half.png", PAIRING_GROUPS)


def pair_rows(pairs: list[Pair], methods: dict[str, Method], out: Path | None, starts: list[str], sheet_name: str,
              groups: tuple) -> None:
    """Every method on every pair: a line per pair, the group table (``groups``), the sheet ``out/sheet_name``
    and one contact sheet per pair of ours."""
    names = list(methods)
    print(f"{'pair':<24} {'group':<5} " + " ".join(f"{name[:17]:>17}" for name in names))
    results: dict[str, list[tuple[str, float, float]]] = {name: [] for name in names}
    tiles: list[np.ndarray] = []
    side = 160
    for group, pair_name, source, target, points in pairs:
        cells, row = [], [labelled(np.asarray(Image.fromarray(source).resize((side, side))), f"{group} {pair_name}")]
        for name in names:
            start = time.perf_counter()
            flows, render = methods[name](source, target, points if name == ORACLE else None)
            seconds = time.perf_counter() - start
            tre, ghost = registration_errors(flows, points)
            results[name].append((group, float(tre.mean()), float(ghost.mean())))
            cells.append(f"{tre.mean():7.1f} / {ghost.mean():6.1f}")
            if render is None:
                middle = ((source.astype(np.float32) + target) / 2).astype(np.uint8)
            else:
                middle = render([0.5])[0]
                if out is not None and name in ("ours", ORACLE):
                    out.mkdir(parents=True, exist_ok=True)
                    suffix = "" if name == "ours" else "_landmark_start"
                    contact_sheet(render, out / f"pair_{group}_{pair_name.replace('→', '_')}{suffix}.png")
            row.append(labelled(np.asarray(Image.fromarray(middle).resize((side, side), Image.Resampling.LANCZOS)),
                                f"{name[:12]} {tre.mean():.1f}px"))
            del seconds
        row.append(np.asarray(Image.fromarray(target).resize((side, side))))
        tiles.append(np.concatenate(row, axis=1))
        start = f"  start: {starts[-1]}" if starts and "ours" in names else ""
        print(f"{pair_name:<24} {group:<5} " + " ".join(f"{cell:>17}" for cell in cells) + start, flush=True)
    finish_section(results, tiles, None if out is None else out / sheet_name, groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, required=True, help="folder with the photo pairs img_1..img_4.jpg")
    parser.add_argument("--pairs", type=int, default=9, help="ground-truth pairs (at most 9)")
    parser.add_argument("--out", type=Path, default=None, help="folder for contact sheets")
    parser.add_argument("--only", default=None, help="comma-separated method names to run")
    parser.add_argument("--sections", default="truth,landmarks,pairs",
                        help="any of truth, landmarks, pairs, moved (the development set with moved targets), "
                             "stamped (the development set with one stamp both pictures share), "
                             "swapped (the development set with source and target swapped), pairings (every other "
                             "pairing of its face pictures, and of its animal pictures), cropped (the development "
                             "set cut to wide and tall strips)")
    parser.add_argument("--moves", type=int, default=2, help="moved: random similarities per pair")
    parser.add_argument("--seeds", type=move_seed, default="report",
                        help="moved, cropped: 'tune' (constants may be chosen on it), 'report' (the figures) or "
                             "'fresh:N' (seed N, a draw nobody has looked at)")
    parser.add_argument("--pairs-dir", type=Path, default=ROOT.parent / "shared" / "pairs",
                        help="the development set: pairs.json and images/")
    parser.add_argument("--pair-names", default=None,
                        help="development set: only the pairs whose name holds one of these comma-separated parts "
                             "(moved and stamped draw as for all)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a FitSettings field for 'ours' (tuning)")
    parser.add_argument("--oracle", action="store_true",
                        help="development set: also ours started from the landmarks' own affine (an upper bound)")
    args = parser.parse_args()

    settings = overridden(FitSettings(), args.set)
    starts: list[str] = []
    # The start machinery alone, as on pictures whose faces the detector misses (or that hold none); on
    # pairs without faces it is ours, so both columns share one fit.
    face_off = (remembered(ours(dataclasses.replace(settings, face_points=False), log=starts))
                if settings.face_points else None)
    methods: dict[str, Method] = {"no warp": no_warp, "optical flow (DIS)": optical_flow,
                                  "ours": ours(settings, log=starts, no_face=face_off)}
    if args.oracle:
        methods[ORACLE] = ours_from_landmarks(settings)
    if args.only:
        wanted = args.only.split(",")
        methods = {k: v for k, v in methods.items() if any(w in k for w in wanted)}
    print(f"libraries: {library_versions()}")
    print(f"ours: {settings}")
    sections = args.sections.split(",")
    wanted = args.pair_names.split(",") if args.pair_names else None

    if "truth" in sections:
        pairs = ground_truth_pairs(args.samples, args.pairs)
        print(f"\n1. {len(pairs)} pictures deformed and recoloured by known maps, {GROUND_TRUTH_SIDE}², "
              "end-point error (px) at alpha 1, both directions")
        print(f"{'method':<20} {'EPE mean':>9} {'EPE p95':>8} {'folds %':>8} {'s/pair':>7}   per picture (mean)")
        for name, method in ((k, v) for k, v in methods.items() if k != ORACLE):  # the oracle needs landmarks
            errors, folds, seconds, per_pair = [], [], 0.0, []
            for _, pair in pairs:
                start = time.perf_counter()
                flows, _ = method(pair.source, pair.target, None)
                seconds += time.perf_counter() - start
                pixel_errors = end_point_errors(flows, pair)
                errors.append(pixel_errors)
                per_pair.append(float(pixel_errors.mean()))
                folds.append(max(fold_fraction(flow) for flow in flows))
            every = np.concatenate(errors)
            print(f"{name:<20} {np.mean(per_pair):9.2f} {np.percentile(every, 95):8.2f} {100 * np.mean(folds):8.2f} "
                  f"{seconds / len(pairs):7.2f}   " + " ".join(f"{e:.1f}" for e in per_pair), flush=True)
        print("   pictures: " + ", ".join(name for name, _ in pairs))

    if "landmarks" in sections:
        landmarks = landmark_pairs(args.samples)
        runs = {name: method for name, method in methods.items() if name != ORACLE}
        if "ours" in methods:
            runs["ours + 5 points"] = methods["ours"]
        print("\n2. landmarks placed by eye, 512², TRE (px, both directions) and ghost at ½ (px), mean per pair")
        print(f"{'method':<20} " + " ".join(f"{name[:19]:>19}" for name in landmarks) + f" {'mean TRE':>9} {'mean ghost':>10}")
        for name, method in runs.items():
            cells, tres, ghosts, held_out, given = [], [], [], [], []
            for pair_name, (source, target, points) in landmarks.items():
                user = subset(points, USER_POINTS) if name.endswith("points") and pair_name != "car" else None
                if name.endswith("points") and user is None:
                    cells.append(f"{'–':>19}")
                    continue
                flows, render = method(source, target, user)
                tre, ghost = registration_errors(flows, points)
                if user is not None:
                    others = tuple(i for i in range(len(points)) if i not in USER_POINTS)
                    held_out.append(float(registration_errors(flows, subset(points, others))[0].mean()))
                    given.append(float(registration_errors(flows, user)[0].max()))
                tres.append(float(tre.mean()))
                ghosts.append(float(ghost.mean()))
                cells.append(f"{tre.mean():8.1f} / {ghost.mean():8.1f}")
                if args.out is not None and render is not None:
                    args.out.mkdir(parents=True, exist_ok=True)
                    slug = "".join(c if c.isalnum() else "_" for c in f"{name}_{pair_name}")
                    contact_sheet(render, args.out / f"contact_{slug}.png")
            line = f"{name:<20} " + " ".join(cells) + f" {np.mean(tres):9.2f} {np.mean(ghosts):10.2f}"
            if held_out:
                line += (f"   (held-out landmarks: {np.mean(held_out):.2f}; the given points, worst: "
                         f"{max(given):.2f})")
            print(line, flush=True)
        print("   cells: TRE / ghost at ½")

    if "pairs" in sections:
        pairs_section(args.pairs_dir, methods, args.out, starts, wanted)
    if "pairings" in sections:
        pairings_section(args.pairs_dir, methods, args.out, starts, wanted)
    if "stamped" in sections:
        stamped_section(args.pairs_dir, methods, args.out, wanted)
    variant_methods = {name: method for name, method in methods.items() if name != ORACLE}
    if "ours" in variant_methods and face_off is not None:
        variant_methods[NO_FACES] = face_off
    if "moved" in sections:
        moved_section(args.pairs_dir, variant_methods, args.moves, args.seeds, args.out, wanted)
    if "swapped" in sections:
        swapped_section(args.pairs_dir, variant_methods, args.out, wanted)
    if "cropped" in sections:
        cropped_section(args.pairs_dir, variant_methods, args.seeds, args.out, wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())

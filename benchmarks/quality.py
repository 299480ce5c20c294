#!/usr/bin/env python3
"""Morph quality against ground truth, for every method on the same scenes.

    pip install -r requirements-bench.txt
    python benchmarks/quality.py [--scenes 8] [--seeds report|tune|fresh:N] [--samples ../shared/samples]

Synthetic scenes (``morphing.testing.scenes``, seeded, 256x256) have a true in-between
at every alpha. Each method is scored on the frames at alpha 0.25, 0.5, 0.75
(PSNR and SSIM against the truth; "worst Δ DIS": the scene where ours
trails the flow morph most, mid-frame PSNR), on pacing (max/mean of consecutive-frame
change over 21 frames; 1.0 is even), on folding (share of pixels where either
warp folds) and on wall seconds. Methods: cross-dissolve; an optical-flow morph
(OpenCV DIS flow both ways, each image backward-warped by alpha times its flow,
then blended); ours at defaults (bicubic warp, detail-preserving blend); ours
with the formula's plain render (bilinear, linear blend) from the same fit;
ours with three times the epochs; ours with even pacing. On the object and soft
sets, whose scenes know their exact correspondence, also "true flows": the
formula's plain render of the scene's true flows (``SpriteScene.true_flows``),
what exact correspondence alone, without colour maps, gives through the formula;
and "true flows, held": the same flows held along the paths things travel
(``morphing.fit.paths.along_paths``, as the fit's dense starts are).

With ``--pictures FOLDER`` (PNG or JPEG files, e.g. ``../shared/pairs/images``), a fourth set,
"object": a disc cut from one picture moves, scales and turns over another picture that stays
still or pans slowly (``scenes.sprite_scene``: motion in two layers, real textures).

Three more sets of the same kind of scene, added after the first four had been tuned on, so that
constants chosen on those meet scenes they were not chosen for: "wide" (320x154, four shapes),
"crowded" (seven shapes, gentler motion) and "single" (one shape, moving further than in "large").
A kind none of those is, "soft" (``scenes.soft_scene``): textured discs and squares over a soft texture
that may pan, pictures that offer SIFT few key points and hold nothing flat. Two more with ``--pictures``,
added after all of those had been tuned on: "camera" (``scenes.camera_scene``: a picture seen through a
camera that pans, zooms and turns while the exposure changes) and "bend" (``scenes.bend_scene``: a picture
bent smoothly, the formula's own kind of motion).

With ``--noise SIGMA``, every scene's two ends get Gaussian grain of that standard deviation (8-bit
levels, seeded per scene, different in each end) while the truth between stays clean: the same motion
seen by a noisy camera (``NoisyEnds``).

With ``--samples``, the real photo pairs also get a contact sheet PNG (frames
at 0, 1/4, 1/2, 3/4, 1 per method) and a mid-frame sharpness ratio (Laplacian
variance of the middle frame over the endpoints' mean).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morphing.runtime.backend import load_tensorflow  # noqa: E402

tf = load_tensorflow()

from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from baselines import dissolve, flow_morph, formula_morph, library_versions, overridden  # noqa: E402
from morphing.fit.fitter import FitSettings, fit_maps, reduce_for_fit  # noqa: E402
from morphing.fit.paths import along_paths  # noqa: E402
from morphing.io.images import load_image  # noqa: E402
from morphing.model.maps import Scales  # noqa: E402
from morphing.testing.metrics import fold_fraction, pacing, psnr, sharpness  # noqa: E402
from morphing.render.renderer import FrameRenderer, even_pacing_alphas  # noqa: E402
from morphing.render.xla import RenderProgram  # noqa: E402
from morphing.testing.scenes import bend_scene, camera_scene, far_moving_scene  # noqa: E402
from morphing.testing.scenes import random_scene, soft_scene, sprite_scene  # noqa: E402
from morphing.render.transition import upsample_direction  # noqa: E402

SCORED_ALPHAS = (0.25, 0.5, 0.75)
ALL_SETS = ("large", "gentle", "far", "object", "wide", "crowded", "single", "soft", "camera", "bend")
SEED_SETS = {"tune": (2026, 2027, 2028, 2029, 2030, 2031, 2032),
             "report": (3026, 3027, 3028, 3029, 3030, 3031, 3032)}
"""Seeds of the scene generators (the two motion sets, then far motion, then object motion, then the wide,
crowded and single sets, then the soft set, then camera, then bend): constants are chosen on 'tune' only;
'report' scenes are for the figures. ``--seeds fresh:BASE`` draws seeds BASE .. BASE + 6 instead: a set
nobody has looked at, for a one-time check of a change on scenes neither set chose."""


def seed_set(name: str) -> tuple[int, ...]:
    """The seven generator seeds that ``--seeds NAME`` names: 'tune', 'report' or 'fresh:BASE'."""
    if name in SEED_SETS:
        return SEED_SETS[name]
    kind, _, base = name.partition(":")
    if kind != "fresh" or not base.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'tune', 'report' or 'fresh:N', not {name!r}")
    return tuple(int(base) + i for i in range(len(SEED_SETS["tune"])))


PACING_FRAMES = 21

# A method: (source, target) uint8 -> (render(alphas) -> frames, [flows for folding]).
Method = Callable[[np.ndarray, np.ndarray], tuple[Callable[[np.ndarray], list[np.ndarray]], list[np.ndarray]]]
TRUE_FLOWS = ("true flows (formula)", "true flows, held")
"""The methods that read the scene itself (its exact correspondence), not only its two ends."""


def true_flow_morph(held: bool) -> Callable:
    """``scene -> (render, flows)``: the formula's plain render of the scene's true flows (a scene with
    ``true_flows()``), with ``held`` held along the paths things travel (``paths.along_paths``)."""

    def method(scene) -> tuple[Callable[[np.ndarray], list[np.ndarray]], list[np.ndarray]]:
        flows = np.stack(scene.true_flows())
        if held:
            flows = along_paths(flows)
        return formula_morph(scene.render(0.0), scene.render(1.0), flows[0], flows[1])

    return method


def ours(
    settings: FitSettings,
    scales: Scales,
    even_pacing: bool = False,
    *,
    render_mode: tuple[str, str] = ("bicubic", "detail"),
    fits: dict | None = None,
) -> Method:
    """Our morph; with ``even_pacing`` the alphas asked for are progress, re-timed
    as ``--even-pacing`` does (so its PSNR compares re-timed frames to the truth
    at the un-timed alphas: only its pacing is comparable). ``render_mode`` is
    (interpolation, blend). Methods sharing ``fits`` reuse one fit per pair
    (their seconds then exclude fitting)."""
    program = RenderProgram(*render_mode)  # compiled once for all scenes of one size

    def method(source: np.ndarray, target: np.ndarray):
        key = (settings, source.tobytes(), target.tobytes())
        if fits is not None and key in fits:
            maps = fits[key]
        else:
            # The working copies as the command line and the page make them (``sequence.fit_sequence``).
            maps = fit_maps(*reduce_for_fit(source, target, settings.working_size), scales, settings,
                            image_shape=source.shape[:2], frames=(source, target))
            if fits is not None:
                fits[key] = maps
        interpolation, blend = render_mode
        renderer = FrameRenderer(source, target, maps, scales, program=program)
        retime = lambda progress: progress  # noqa: E731
        if even_pacing:
            even = even_pacing_alphas(source, target, maps, scales, 101, interpolation=interpolation, blend=blend)
            retime = lambda progress: np.interp(progress, np.linspace(0, 1, 101), even)  # noqa: E731
        height, width = source.shape[:2]
        # The effective flows at frame size, upsampled exactly as rendering does.
        flows = [
            scales.warp * upsample_direction(tf.constant(packed[np.newaxis]), height, width).warp[0].numpy()
            for packed in (maps.forward, maps.backward)
        ]
        return (lambda alphas: list(renderer.render(retime(np.asarray(alphas))))), flows

    return method


class NoisyEnds:
    """A scene whose two ends (alpha 0 and 1) carry Gaussian grain of ``sigma`` 8-bit levels, drawn
    from ``seed`` (entropy for numpy's generator; a different draw in each end); every other alpha, the truth, is the scene's own.
    Anything else (``true_flows``) is the scene's."""

    def __init__(self, scene: object, sigma: float, seed: tuple[int, ...]) -> None:
        self.scene, self.sigma, self.seed = scene, sigma, seed

    def render(self, alpha: float) -> np.ndarray:
        clean = self.scene.render(alpha)
        if alpha not in (0.0, 1.0):
            return clean
        grain = np.random.default_rng([*self.seed, int(alpha)]).normal(0.0, self.sigma, clean.shape)
        return np.clip(np.rint(clean + grain), 0, 255).astype(np.uint8)

    def __getattr__(self, name: str) -> object:
        return getattr(self.scene, name)


def score(method: Method, scenes: list, reads_scene: bool = False) -> dict[str, float]:
    """Mean scores of ``method`` over ``scenes`` (``reads_scene``: it takes the scene, not its two ends)."""
    rows = []
    for scene in scenes:
        source, target = scene.render(0.0), scene.render(1.0)
        start = time.perf_counter()
        render, flows = method(scene) if reads_scene else method(source, target)
        frames = render(np.array(SCORED_ALPHAS))
        seconds = time.perf_counter() - start
        truths = [scene.render(a) for a in SCORED_ALPHAS]
        paced = render(np.linspace(0, 1, PACING_FRAMES))
        rows.append({
            "psnr_mid": psnr(frames[1], truths[1]),
            "psnr_all": float(np.mean([psnr(f, t) for f, t in zip(frames, truths)])),
            "ssim_all": float(np.mean([structural_similarity(f, t, channel_axis=-1) for f, t in zip(frames, truths)])),
            "pacing": pacing(paced),
            "folds": max((fold_fraction(f) for f in flows), default=float("nan")),
            "seconds": seconds,
        })
    result = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    result["per_scene_mid"] = [row["psnr_mid"] for row in rows]
    return result


def contact_sheets(methods: dict[str, Method], samples: Path, out: Path | None) -> None:
    """Mid-frame sharpness of every method on the photo pairs; their contact sheets into ``out`` (if given)."""
    pairs = [("img_1.jpg", "img_2.jpg"), ("img_3.jpg", "img_4.jpg")]
    for first, second in pairs:
        source = load_image(samples / first).pixels
        target = load_image(samples / second).pixels
        rows = []
        print(f"\n{first} -> {second}: mid-frame sharpness / endpoints' mean")
        for name, method in methods.items():
            render, _ = method(source, target)
            frames = render(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
            ratio = sharpness(frames[2]) / np.mean([sharpness(frames[0]), sharpness(frames[4])])
            print(f"  {name:<18} {ratio:.2f}")
            rows.append(np.concatenate([np.asarray(Image.fromarray(f).resize((192, 192))) for f in frames], axis=1))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"contact_{Path(first).stem}_{Path(second).stem}.png"
            Image.fromarray(np.concatenate(rows, axis=0)).save(path)
            print(f"  contact sheet (rows: {', '.join(methods)}): {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="scene side in pixels")
    parser.add_argument("--samples", type=Path, default=None, help="folder with the photo pairs img_1..img_4.jpg")
    parser.add_argument("--out", type=Path, default=None, help="folder for contact sheets (default: none written)")
    parser.add_argument("--only", default=None, help="comma-separated method names to run")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a FitSettings field for 'ours' (tuning)")
    parser.add_argument("--seeds", type=seed_set, default="report",
                        help="'tune': the scenes constants may be chosen on; 'report': held-out scenes, never "
                             "looked at while tuning (the README's figures); 'fresh:N': seeds N to N+6, a draw "
                             "nobody has looked at")
    parser.add_argument("--sets", default=",".join(ALL_SETS),
                        help="which scene sets to run (comma-separated; 'object', 'camera' and 'bend' need "
                             "--pictures)")
    parser.add_argument("--pictures", type=Path, default=None,
                        help="folder of pictures (PNG, JPEG) for the 'object', 'camera' and 'bend' scenes")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="Gaussian grain (standard deviation, 8-bit levels) added to each scene's two ends; "
                             "the truth between stays clean")
    parser.add_argument("--per-scene", action="store_true",
                        help="also print each scene's mid-frame PSNR per method (tune seeds: where a change helps)")
    args = parser.parse_args()

    default = overridden(FitSettings(), args.set)
    bigger = dataclasses.replace(default, epochs=default.epochs * 3)
    fits: dict = {}
    methods: dict[str, Method] = {
        "cross-dissolve": dissolve,
        "optical flow (DIS)": flow_morph,
        "ours, defaults": ours(default, Scales(), fits=fits),
        "ours, plain render*": ours(default, Scales(), render_mode=("bilinear", "linear"), fits=fits),
        f"ours, {bigger.epochs} epochs": ours(bigger, Scales()),
        "ours, even pacing*": ours(default, Scales(), even_pacing=True, fits=fits),
        TRUE_FLOWS[0]: true_flow_morph(held=False),
        TRUE_FLOWS[1]: true_flow_morph(held=True),
    }
    if args.only:
        wanted = args.only.split(",")
        methods = {k: v for k, v in methods.items() if any(w in k for w in wanted)}

    print(f"libraries: {library_versions()}")
    print(f"ours: {default}")
    print(f"seeds: {args.seeds}")
    scene_sets = []
    for label, motion in (("large motion", 1.0), ("gentle motion", 0.35)):
        rng = np.random.default_rng(args.seeds[0])
        scenes = [random_scene(rng, args.size, args.size, shapes=3, gradient=i % 2 == 0, motion=motion)
                  for i in range(args.scenes)]
        scene_sets.append((scenes, f"{label} (shapes move up to {12 * motion:.0f}% of the side, "
                                   f"scale ±{30 * motion:.0f}%, turn ±{0.6 * motion:.2f} rad)"))
    rng = np.random.default_rng(args.seeds[1])
    scene_sets.append(([far_moving_scene(rng, args.size, args.size, shapes=1 + i % 2, gradient=i % 2 == 0)
                        for i in range(args.scenes)],
                       "far motion (1 or 2 shapes each move 1-1.5 times their own size while their colour "
                       "changes strongly)"))
    rng = np.random.default_rng(args.seeds[3])
    wide = (round(args.size * 0.6), round(args.size * 1.25))
    scene_sets.append(([random_scene(rng, *wide, shapes=4, gradient=i % 2 == 0, motion=0.7)
                        for i in range(args.scenes)],
                       f"wide {wide[1]}x{wide[0]} scenes (4 shapes move up to 8% of the long side, scale ±21%, "
                       "turn ±0.42 rad)"))
    scene_sets.append(([random_scene(rng, args.size, args.size, shapes=7, gradient=i % 2 == 1, motion=0.5)
                        for i in range(args.scenes)],
                       "crowded scenes (7 shapes move up to 6% of the side, scale ±15%, turn ±0.30 rad)"))
    scene_sets.append(([random_scene(rng, args.size, args.size, shapes=1, gradient=True, motion=1.5)
                        for i in range(args.scenes)],
                       "single shape (moves up to 18% of the side, scale ±45%, turn ±0.90 rad)"))
    rng = np.random.default_rng(args.seeds[4])
    scene_sets.append(([soft_scene(rng, args.size) for _ in range(args.scenes)],
                       "soft textures (1-3 textured discs or squares move 4-12% of the side, scale ±15%, turn "
                       "±0.3 rad, over a soft texture that stays or pans up to 4%)"))
    if args.pictures is not None:
        files = sorted(p for p in args.pictures.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        opened = [Image.open(p).convert("RGB") for p in files]  # each file read once, resized to two sides
        pictures = [np.asarray(image.resize((args.size, args.size), Image.LANCZOS)) for image in opened]
        rng = np.random.default_rng(args.seeds[2])
        scene_sets.append(([sprite_scene(rng, pictures, args.size) for _ in range(args.scenes)],
                           f"object motion (a disc of one of {len(pictures)} pictures moves 5-15% of the side, "
                           "scale ±15%, turn ±0.3 rad, over another that stays or pans up to 3%)"))
        # The camera and bend views read a picture twice the scene's side, at its own resolution.
        large = [np.asarray(image.resize((2 * args.size, 2 * args.size), Image.LANCZOS)) for image in opened]
        rng = np.random.default_rng(args.seeds[5])
        scene_sets.append(([camera_scene(rng, large, args.size) for _ in range(args.scenes)],
                           (f"camera motion (one of {len(large)} pictures seen through a camera that pans up to 8% "
                            "of the side, zooms ±15% and turns ±0.15 rad while the exposure changes ±20%)")))
        rng = np.random.default_rng(args.seeds[6])
        scene_sets.append(([bend_scene(rng, large, args.size) for _ in range(args.scenes)],
                           (f"bend (one of {len(large)} pictures bent smoothly by five bumps of 8-18% of the side, "
                            "each moving its part about 4%)")))
    wanted_sets = args.sets.split(",")
    for needs_pictures in ("object", "camera", "bend"):
        if needs_pictures in wanted_sets and args.pictures is None:
            print(f"(no --pictures folder: the {needs_pictures} scenes are left out)")
    scene_sets = [scene_set for scene_set in scene_sets if scene_set[1].split()[0] in wanted_sets]
    if args.noise > 0:
        print(f"noise: Gaussian grain of {args.noise:g} levels on each scene's two ends")
        scene_sets = [([NoisyEnds(scene, args.noise, (args.seeds[0], ALL_SETS.index(label.split()[0]), index))
                        for index, scene in enumerate(scenes)], label) for scenes, label in scene_sets]
    for scenes, label in scene_sets if args.scenes > 0 else []:  # --scenes 0: the photos only
        height, width = scenes[0].render(0.0).shape[:2]
        print(f"\n{args.scenes} synthetic scenes, {width}x{height}, {label}")
        print(f"{'method':<20} {'PSNR@.5':>8} {'PSNR@¼½¾':>9} {'SSIM@¼½¾':>9} {'pacing':>7} {'folds %':>8} {'s/pair':>7}"
              f" {'worst Δ DIS':>11}")
        flow_scores = None
        for name, method in methods.items():
            if name in TRUE_FLOWS and not hasattr(scenes[0], "true_flows"):
                continue  # flat shapes that change colour: their correspondence alone is not the answer
            result = score(method, scenes, reads_scene=name in TRUE_FLOWS)
            if name.startswith("optical flow"):
                flow_scores = result["per_scene_mid"]
            worst = "" if flow_scores is None else f"{min(np.subtract(result['per_scene_mid'], flow_scores)):+11.2f}"
            print(f"{name:<20} {result['psnr_mid']:8.2f} {result['psnr_all']:9.2f} {result['ssim_all']:9.4f} "
                  f"{result['pacing']:7.2f} {100 * result['folds']:8.2f} {result['seconds']:7.2f} {worst}", flush=True)
            if args.per_scene:
                print("    per scene: " + " ".join(f"{value:.2f}" for value in result["per_scene_mid"]))
        if any(name.endswith("*") for name in methods):
            print("* reuses the defaults' fit: its seconds exclude fitting; 'plain render' is the formula's "
                  "bilinear warp and linear blend")
    if args.samples is not None:
        contact_sheets({k: v for k, v in methods.items() if k not in TRUE_FLOWS}, args.samples, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

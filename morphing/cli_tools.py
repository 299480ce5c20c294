"""Command line of the sibling tools: ``morph hybrid|shift|align|warp ...``.

Each tool is a subcommand on the same differentiable core; ``morph -s A -t B``
(no subcommand) is the morph itself and is handled by ``morphing.cli``. Flags
and files only, as there: inputs are checked with Pillow before TensorFlow is
imported, and errors are one line (``UsageError`` → exit 2, ``RunError`` → 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from .cli_common import (DEFAULT_EPOCHS, DEFAULT_SCALES, DEFAULT_SIZE, MIN_SIZE, PROGRAM, HelpFormatter, Parser,
                         RunError, UsageError, check_writable_file, float_in, int_in, new_default_output,
                         read_leg_points, same_file)
from .images import (
    ImageFileError,
    LoadedImage,
    aspect_crop,
    fit_to_size,
    load_image,
    resize_image,
    working_shape,
)
from .maps import MapsFileError, MorphMaps, Scales, load_maps_for
from .output import IMAGE_SUFFIXES
from .settings import (
    HYBRID_NEAR_TERMS,
    HYBRID_STARTS,
    SHIFT_INTERPOLATIONS,
    AlignSettings,
    HybridSettings,
    default_kernel_size,
)

__all__ = ["TOOL_NAMES", "build_tool_parser", "run_tool"]

TOOL_NAMES = ("hybrid", "shift", "align", "warp")
DEFAULT_HYBRID_SIZE = 1024
MAX_SHIFT = 100_000.0

# Defaults from morphing.settings, which imports no TensorFlow (--help and the
# input checks must not wait for it).
#: Each tool's output without -o (align writes nothing then); an existing one is never replaced.
DEFAULT_OUTPUTS = {"hybrid": "hybrid.png", "shift": "shifted.png", "warp": "warped.png"}
HYBRID_DEFAULTS = HybridSettings()
ALIGN_DEFAULTS = AlignSettings()

Say = Callable[[str], None]
Check = Callable[[], None]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (and results)")


def _add_hybrid(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hybrid", formatter_class=HelpFormatter,
        help="one image that reads as NEAR up close and as FAR from afar",
        description="Gradient descent on the pixels of one image: close to NEAR in fine detail, "
        "and, blurred, close to FAR blurred (a Gaussian in linear light).",
    )
    parser.add_argument("--near", type=Path, required=True, help="image seen up close (its fine detail)")
    parser.add_argument("--far", type=Path, required=True, help="image seen from afar (its blurred version)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="image to write [default hybrid.png, never replaced: name an existing file to replace it]")
    parser.add_argument("--sigma", type=float_in(0.0, 200.0, low_open=True), default=HYBRID_DEFAULTS.sigma,
                        help="Gaussian blur sigma in pixels of the working size")
    parser.add_argument("--kernel-size", type=int_in(1, 1201), default=None,
                        help="odd blur kernel length [default: 2*ceil(3*sigma)+1]")
    parser.add_argument("--near-weight", type=float_in(0.0, 1e6), default=HYBRID_DEFAULTS.near_weight,
                        help="weight of the near term")
    parser.add_argument("--far-weight", type=float_in(0.0, 1e6), default=HYBRID_DEFAULTS.far_weight,
                        help="weight of the far term")
    parser.add_argument("--near-term", choices=HYBRID_NEAR_TERMS, default=HYBRID_DEFAULTS.near_term,
                        help="compare with NEAR in all pixels, or in fine detail only (image minus its blur)")
    parser.add_argument("--start", choices=HYBRID_STARTS, default=HYBRID_DEFAULTS.start, help="start from NEAR or from mid-grey")
    parser.add_argument("--steps", type=int_in(1, 100_000), default=HYBRID_DEFAULTS.steps, help="gradient descent steps")
    parser.add_argument("--size", type=int_in(MIN_SIZE, 8192), default=None,
                        help=f"long side to work and write at [default: NEAR's, at most {DEFAULT_HYBRID_SIZE}]")
    _common(parser)


def _add_shift(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "shift", formatter_class=HelpFormatter,
        help="move an image by a sub-pixel (dx, dy), optionally rolling around the borders",
        description="Move an image right by DX and down by DY pixels (fractions allowed).",
    )
    parser.add_argument("-i", "--input", type=Path, required=True, help="image to move")
    parser.add_argument("--dx", type=float_in(-MAX_SHIFT, MAX_SHIFT), default=0.0, help="pixels to the right")
    parser.add_argument("--dy", type=float_in(-MAX_SHIFT, MAX_SHIFT), default=0.0, help="pixels down")
    parser.add_argument("--interpolation", choices=SHIFT_INTERPOLATIONS, default="bilinear",
                        help="sub-pixel interpolation (fourier: exact for periodic images, needs --wrap)")
    parser.add_argument("--wrap", action="store_true",
                        help="roll: what leaves one side enters the other [default: repeat the border pixels]")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="image to write [default shifted.png, never replaced: name an existing file to replace it]")
    _common(parser)


def _add_align(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "align", formatter_class=HelpFormatter,
        help="find the sub-pixel shift that maps SOURCE onto TARGET",
        description="Gradient descent, coarse to fine, on the shift (dx, dy) that makes the shifted SOURCE "
        "match TARGET. Prints 'dx=... dy=...' on standard output.",
    )
    parser.add_argument("-s", "--source", type=Path, required=True, help="image to move")
    parser.add_argument("-t", "--target", type=Path, required=True, help="image to match (same size)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write SOURCE moved onto TARGET")
    parser.add_argument("--interpolation", choices=SHIFT_INTERPOLATIONS, default=ALIGN_DEFAULTS.interpolation,
                        help="sub-pixel interpolation (fourier: exact for periodic images, needs --wrap)")
    parser.add_argument("--wrap", action="store_true", help="the images roll around their borders (periodic)")
    parser.add_argument("--steps", type=int_in(1, 100_000), default=ALIGN_DEFAULTS.steps_per_level,
                        help="gradient descent steps per pyramid level")
    parser.add_argument("--blur-sigma", type=float_in(0.0, 50.0), default=ALIGN_DEFAULTS.blur_sigma,
                        help="pre-blur in pixels (0: none); removes detail that interpolation would bias")
    _common(parser)


def _add_warp(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "warp", formatter_class=HelpFormatter,
        help="SOURCE moved into TARGET's geometry, colours untouched",
        description="Fit the maps as for a morph, then write only SOURCE warped at alpha = 1 "
        "(no add or multiply map): TARGET's geometry with SOURCE's colours.",
    )
    parser.add_argument("-s", "--source", type=Path, required=True, help="image whose pixels are moved")
    parser.add_argument("-t", "--target", type=Path, required=True, help="image whose geometry is taken")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="image to write [default warped.png, never replaced: name an existing file to replace it]")
    parser.add_argument("--flow-png", type=Path, default=None, metavar="F.png",
                        help="also write the warp field as a colour wheel picture (hue: direction, saturation: length)")
    parser.add_argument("-e", "--epochs", type=int_in(1, 100_000), default=DEFAULT_EPOCHS, help="gradient descent steps")
    parser.add_argument("-a", "--add-scale", type=float_in(0.0, 10.0), default=DEFAULT_SCALES.add,
                        help="add map multiplier during the fit")
    parser.add_argument("-m", "--mult-scale", type=float_in(0.0, 10.0), default=DEFAULT_SCALES.mult,
                        help="multiply map multiplier during the fit")
    parser.add_argument("-w", "--warp-scale", type=float_in(0.0, 10.0), default=DEFAULT_SCALES.warp,
                        help="warp map multiplier")
    parser.add_argument("--size", type=int_in(MIN_SIZE, 8192), default=None,
                        help=f"long side of the fit's working image [default: {DEFAULT_SIZE} or the image's]")
    parser.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="random seed of the fit")
    parser.add_argument("--load-maps", type=Path, default=None, metavar="F.npz",
                        help="use maps saved by 'morph --save-maps' instead of fitting")
    parser.add_argument("--points", type=Path, default=None, metavar="F.csv",
                        help="matching points to pull the warp through: CSV rows x_source,y_source,x_target,y_target "
                             "in each image's own pixels ('#' comments)")
    _common(parser)


def build_tool_parser() -> argparse.ArgumentParser:
    """The parser for ``morph TOOL ...``."""
    parser = Parser(prog=PROGRAM, description="Sibling tools of the morph, on the same differentiable core.")
    subparsers = parser.add_subparsers(dest="tool", required=True, metavar="TOOL", parser_class=Parser)
    for add in (_add_hybrid, _add_shift, _add_align, _add_warp):
        add(subparsers)
    return parser


# ---------------------------------------------------------------- validation


def _load(path: Path, role: str, say: Say) -> np.ndarray:
    try:
        loaded: LoadedImage = load_image(path)
    except ImageFileError as error:
        raise RunError(str(error)) from None
    for note in loaded.notes:
        say(f"{PROGRAM}: {role} {path}: {note}")
    return loaded.pixels


def _check_outputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None], suffixes: Sequence[str]) -> None:
    """Each output: a writable file of a known type that is none of the inputs."""
    for flag, path in outputs.items():
        if path is None:
            continue
        for name, source in inputs.items():
            if source is not None and (same_file(path, source) or path.resolve() == source.resolve()):
                raise UsageError(f"{flag} {path} is the same file as {name}; refusing to overwrite an input")
        check_writable_file(path, flag, suffixes)
    named = [path.resolve() for path in outputs.values() if path is not None]
    if len(set(named)) < len(named):
        raise UsageError("two outputs name the same file; give each its own")


def _matched(pixels: np.ndarray, like: np.ndarray, role: str, path: Path, say: Say) -> np.ndarray:
    """``pixels`` brought to ``like``'s size (centre-cropped to its aspect), with a notice."""
    matched, action = fit_to_size(pixels, *like.shape[:2])
    if action:
        say(f"{PROGRAM}: {role} {path}: {action} to match")
    return matched


# ---------------------------------------------------------------- the tools


def _start_tensorflow(args: argparse.Namespace, say: Say):
    from .backend import BackendError, device_description, load_tensorflow

    try:
        tf = load_tensorflow(force_cpu=args.cpu)
    except BackendError as error:
        raise RunError(str(error)) from None
    say(f"{PROGRAM} {args.tool}: running on {device_description(tf)}")
    return tf


def _progress(total: int, label: str, args: argparse.Namespace, err: TextIO, check: Check):
    """A tqdm bar and an ``on_step(done, loss)`` that moves it to ``done`` steps and checks for a stop."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="step", file=err, disable=args.quiet, dynamic_ncols=True, leave=False)

    def on_step(done: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
        bar.update(done - bar.n)
        check()

    return bar, on_step


def _run_hybrid(args: argparse.Namespace, say: Say, err: TextIO, check: Check) -> None:
    _check_outputs({"--output": args.output}, {"--near": args.near, "--far": args.far}, IMAGE_SUFFIXES)
    if args.kernel_size is not None and args.kernel_size % 2 == 0:
        raise UsageError(f"--kernel-size must be odd, got {args.kernel_size}")
    if args.near_weight == 0 and args.far_weight == 0:
        raise UsageError("--near-weight and --far-weight are both 0; nothing to fit")
    near = _load(args.near, "near", say)
    far = _matched(_load(args.far, "far", say), near, "far", args.far, say)
    long_side = max(near.shape[:2])
    size = args.size if args.size is not None else min(DEFAULT_HYBRID_SIZE, long_side)
    if size > long_side:
        raise UsageError(f"--size {size} is larger than the near image ({near.shape[1]}x{near.shape[0]})")
    height, width = working_shape(*near.shape[:2], size)
    kernel_size = args.kernel_size if args.kernel_size is not None else default_kernel_size(args.sigma)
    if kernel_size // 2 >= min(height, width):
        raise UsageError(
            f"a blur kernel of {kernel_size} pixels is too wide for a {width}x{height} image; "
            "lower --sigma or --kernel-size"
        )
    _start_tensorflow(args, say)
    from .hybrid import HybridSettings, fit_hybrid
    from .output import write_image

    if (height, width) != near.shape[:2]:
        say(f"{PROGRAM}: working at {width}x{height} (--size {size})")
        near, far = resize_image(near, height, width), resize_image(far, height, width)
    settings = HybridSettings(
        sigma=args.sigma, kernel_size=args.kernel_size, near_weight=args.near_weight, far_weight=args.far_weight,
        steps=args.steps, start=args.start, near_term=args.near_term,
    )
    bar, on_step = _progress(settings.steps, "hybrid", args, err, check)
    with bar:
        hybrid = fit_hybrid(near.astype(np.float32) / 255.0, far.astype(np.float32) / 255.0, settings, on_step)
    write_image(np.clip(np.rint(hybrid * 255.0), 0, 255).astype(np.uint8), args.output)
    say(f"{PROGRAM}: wrote {args.output} ({width}x{height})")


def _check_fourier(args: argparse.Namespace) -> None:
    if args.interpolation == "fourier" and not args.wrap:
        raise UsageError("--interpolation fourier treats the image as periodic; add --wrap")


def _run_shift(args: argparse.Namespace, say: Say, err: TextIO, check: Check) -> None:
    _check_fourier(args)
    _check_outputs({"--output": args.output}, {"--input": args.input}, IMAGE_SUFFIXES)
    pixels = _load(args.input, "input", say)
    tf = _start_tensorflow(args, say)
    from .output import write_image
    from .shift import shift_image

    moved = shift_image(
        tf.constant(pixels[np.newaxis], tf.float32), (args.dy, args.dx), interpolation=args.interpolation,
        wrap=args.wrap,
    )[0].numpy()
    check()
    write_image(np.clip(np.rint(moved), 0, 255).astype(np.uint8), args.output)
    say(f"{PROGRAM}: wrote {args.output} (moved dx={args.dx:g}, dy={args.dy:g})")


def _run_align(args: argparse.Namespace, say: Say, err: TextIO, check: Check, out: TextIO) -> None:
    _check_fourier(args)
    _check_outputs({"--output": args.output}, {"--source": args.source, "--target": args.target}, IMAGE_SUFFIXES)
    source = _load(args.source, "source", say)
    target = _load(args.target, "target", say)
    if source.shape != target.shape:
        raise RunError(
            f"{args.source} is {source.shape[1]}x{source.shape[0]} but {args.target} is "
            f"{target.shape[1]}x{target.shape[0]}; align needs two images of one size"
        )
    tf = _start_tensorflow(args, say)
    from .images import to_float
    from .output import write_image
    from .shift import AlignSettings, align_shift, shift_image

    settings = AlignSettings(
        interpolation=args.interpolation, wrap=args.wrap, steps_per_level=args.steps, blur_sigma=args.blur_sigma
    )
    levels = _pyramid_levels(source.shape[:2], settings.coarsest_side)
    bar, on_step = _progress(levels * settings.steps_per_level, "aligning", args, err, check)
    with bar:
        found = align_shift(to_float(source), to_float(target), settings, on_step)
    print(f"dx={found.dx:.4f} dy={found.dy:.4f}", file=out, flush=True)
    if args.output is not None:
        moved = shift_image(
            tf.constant(source[np.newaxis], tf.float32), (found.dy, found.dx), interpolation=args.interpolation,
            wrap=args.wrap,
        )[0].numpy()
        write_image(np.clip(np.rint(moved), 0, 255).astype(np.uint8), args.output)
        say(f"{PROGRAM}: wrote {args.output}")


def _pyramid_levels(shape: tuple[int, ...], coarsest_side: int) -> int:
    levels, side = 1, min(shape)
    while side // 2 >= coarsest_side:
        side //= 2
        levels += 1
    return levels


def _run_warp(args: argparse.Namespace, say: Say, err: TextIO, check: Check) -> None:
    inputs = {"--source": args.source, "--target": args.target, "--load-maps": args.load_maps}
    _check_outputs({"--output": args.output}, inputs, IMAGE_SUFFIXES)
    _check_outputs({"--flow-png": args.flow_png}, inputs, (".png",))
    if args.flow_png is not None and args.flow_png.resolve() == args.output.resolve():
        raise UsageError("--flow-png and --output name the same file; give each its own")
    if args.points is not None and args.load_maps is not None:
        raise UsageError("--points guides a fit; with --load-maps nothing is fitted (drop one of them)")
    source = _load(args.source, "source", say)
    target_pixels = _load(args.target, "target", say)
    target = _matched(target_pixels, source, "target", args.target, say)
    height, width = source.shape[:2]
    (points,) = read_leg_points(
        None if args.points is None else [args.points],
        [(args.source, (height, width), (0, 0, height, width)),
         (args.target, target_pixels.shape[:2], aspect_crop(*target_pixels.shape[:2], height, width))],
        (height, width),
    )
    long_side = max(source.shape[:2])
    if args.size is not None and args.size > long_side:
        raise UsageError(f"--size {args.size} is larger than the source ({source.shape[1]}x{source.shape[0]})")
    working_size = args.size if args.size is not None else min(DEFAULT_SIZE, long_side)
    scales = Scales(mult=args.mult_scale, add=args.add_scale, warp=args.warp_scale)
    maps: MorphMaps | None = None
    if args.load_maps is not None:
        try:
            maps = load_maps_for(args.load_maps, height, width)
        except MapsFileError as error:
            raise RunError(str(error)) from None
        scales = Scales(mult=maps.scales.mult, add=maps.scales.add, warp=args.warp_scale)
    _start_tensorflow(args, say)
    from .fit import FitDivergedError, FitSettings, fit_maps, reduce_for_fit
    from .images import to_float, to_uint8
    from .output import write_image
    from .transfer import transfer_flow, warp_to_target
    from .visualize import flow_to_colour

    if maps is None:
        settings = FitSettings(epochs=args.epochs, working_size=working_size, seed=args.seed)
        bar, on_step = _progress(settings.total_steps, "fitting", args, err, check)
        try:
            with bar:
                maps = fit_maps(*reduce_for_fit(source, target, working_size), scales, settings,
                                lambda step, loss: on_step(step + 1, loss),
                                image_shape=source.shape[:2], points=points)
        except FitDivergedError as error:
            raise RunError(str(error)) from None
    warped = warp_to_target(to_float(source), maps, scales)
    write_image(to_uint8(warped), args.output)
    say(f"{PROGRAM}: wrote {args.output} ({source.shape[1]}x{source.shape[0]})")
    if args.flow_png is not None:
        write_image(flow_to_colour(transfer_flow(maps, scales, *source.shape[:2])), args.flow_png)
        say(f"{PROGRAM}: wrote flow picture to {args.flow_png}")


def run_tool(args: argparse.Namespace, say: Say, err: TextIO, out: TextIO, check: Check) -> None:
    """Run the tool ``args.tool``; raises ``UsageError`` or ``RunError`` with one line."""
    if args.tool in DEFAULT_OUTPUTS:
        args.output = new_default_output(args.output, DEFAULT_OUTPUTS[args.tool])
    if args.tool == "hybrid":
        _run_hybrid(args, say, err, check)
    elif args.tool == "shift":
        _run_shift(args, say, err, check)
    elif args.tool == "align":
        _run_align(args, say, err, check, out)
    elif args.tool == "warp":
        _run_warp(args, say, err, check)
    else:  # the parser allows only TOOL_NAMES
        raise UsageError(f"unknown tool {args.tool!r}; use one of {', '.join(TOOL_NAMES)}")

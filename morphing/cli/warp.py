"""``morph warp``: SOURCE moved into TARGET's geometry, colours untouched (``morphing.transfer``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..images import aspect_crop
from ..maps import MapsFileError, MorphMaps, Scales, load_maps_for
from ..output import IMAGE_SUFFIXES
from .common import (DEFAULT_EPOCHS, DEFAULT_SCALES, DEFAULT_SIZE, FACE_POINTS_HELP, MIN_SIZE, PROGRAM, Console,
    RunError, UsageError, found_face_points, resolved,
    check_outputs, float_in, int_in, load_pixels, matched, read_leg_points, start_tool, step_bar)

NAME = "warp"
SUMMARY = "SOURCE moved into TARGET's geometry, colours untouched"
DESCRIPTION = (
    "Fit the maps as for a morph, then write only SOURCE warped at alpha = 1 "
    "(no add or multiply map): TARGET's geometry with SOURCE's colours."
)
DEFAULT_OUTPUT = "warped.png"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this tool (the registry adds --cpu and -q)."""
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
    parser.add_argument("--face-points", choices=("on", "off"), default="on", help=FACE_POINTS_HELP)


def run(args: argparse.Namespace, console: Console) -> None:
    """Check the flags and files, fit (or load) the maps, write SOURCE warped."""
    inputs = [("--source", args.source), ("--target", args.target), ("--load-maps", args.load_maps)]
    check_outputs({"--output": args.output}, inputs, IMAGE_SUFFIXES)
    check_outputs({"--flow-png": args.flow_png}, inputs, (".png",))
    if args.flow_png is not None and resolved(args.flow_png) == resolved(args.output):
        raise UsageError("--flow-png and --output name the same file; give each its own")
    if args.points is not None and args.load_maps is not None:
        raise UsageError("--points guides a fit; with --load-maps nothing is fitted (drop one of them)")
    source = load_pixels(args.source, "source", console)
    target_pixels = load_pixels(args.target, "target", console)
    target = matched(target_pixels, source, "target", args.target, console)
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
    start_tool(args, console)
    from ..fit import FitDivergedError, FitSettings, fit_maps, reduce_for_fit
    from ..images import to_float, to_uint8
    from ..output import write_image
    from ..transfer import transfer_flow, warp_to_target
    from ..visualize import flow_to_colour

    if maps is None:
        settings = FitSettings(epochs=args.epochs, working_size=working_size, seed=args.seed,
                               face_points=args.face_points == "on")
        faces = found_face_points([source, target], [points], console)[0] if (
            settings.face_points and scales.warp > 0) else None
        bar, on_step = step_bar(console, settings.total_steps, "fitting")
        try:
            with bar:
                maps = fit_maps(*reduce_for_fit(source, target, working_size), scales, settings,
                                lambda step, loss: on_step(step + 1, loss),
                                image_shape=source.shape[:2], points=points, face_points=faces,
                                on_start=lambda choice: console.say(f"{PROGRAM}: {choice.describe()}"))
        except FitDivergedError as error:
            raise RunError(str(error)) from None
    warped = warp_to_target(to_float(source), maps, scales)
    write_image(to_uint8(warped), args.output)
    console.say(f"{PROGRAM}: wrote {args.output} ({source.shape[1]}x{source.shape[0]})")
    if args.flow_png is not None:
        write_image(flow_to_colour(transfer_flow(maps, scales, *source.shape[:2])), args.flow_png)
        console.say(f"{PROGRAM}: wrote flow picture to {args.flow_png}")

"""``morph warp``: SOURCE moved into TARGET's geometry, colours untouched (``morphing.tools.transfer``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from morphing.io.images import aspect_crop
from morphing.model.maps import MapsFileError, MorphMaps, load_maps_for
from morphing.io.output import IMAGE_SUFFIXES
from .common import (PROGRAM, Console, RunError, UsageError, add_fit_flags, check_outputs, flag_fit_settings,
                     flag_scales, flag_working_size, found_face_points, load_pixels, matched, read_leg_points,
                     resolved, start_tool)

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
    add_fit_flags(parser, legs="one")
    parser.add_argument("--load-maps", type=Path, default=None, metavar="F.npz",
                        help="use maps saved by 'morph --save-maps' instead of fitting")


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
    working_size = flag_working_size(args, height, width)
    maps: MorphMaps | None = None
    if args.load_maps is not None:
        try:
            maps = load_maps_for(args.load_maps, height, width)
        except MapsFileError as error:
            raise RunError(str(error)) from None
    scales = flag_scales(args, None if maps is None else maps.scales)
    start_tool(args, console)
    from morphing.io.images import to_float, to_uint8
    from ..morph import Morph
    from .morph import fit_with_progress
    from morphing.io.output import write_image
    from morphing.tools.transfer import transfer_flow, warp_to_target
    from morphing.io.visualize import flow_to_colour

    if maps is None:
        settings = flag_fit_settings(args, working_size)
        morph = Morph(source, target, points=points, settings=settings, scales=scales, face_points=[None])
        if settings.face_points and scales.warp > 0:
            morph.prepare()  # the fit's programs compile while the faces are looked for
            morph.face_points = found_face_points([source, target], [points], console)
        fit_with_progress(morph, console)
        (maps,) = morph.maps
    warped = warp_to_target(to_float(source), maps, scales)
    write_image(to_uint8(warped), args.output)
    console.say(f"{PROGRAM}: wrote {args.output} ({source.shape[1]}x{source.shape[0]})")
    if args.flow_png is not None:
        write_image(flow_to_colour(transfer_flow(maps, scales, *source.shape[:2])), args.flow_png)
        console.say(f"{PROGRAM}: wrote flow picture to {args.flow_png}")

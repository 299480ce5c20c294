"""``morph align``: the sub-pixel shift that maps SOURCE onto TARGET (``morphing.tools.shift.align_shift``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from morphing.io.output import IMAGE_SUFFIXES
from morphing.model.settings import SHIFT_INTERPOLATIONS, AlignSettings, default_kernel_size
from .common import (PROGRAM, Console, RunError, UsageError, check_outputs, float_in, int_in, load_pixels, start_tool,
                     step_bar)
from .shift import MIN_SIGMA, check_fourier, large_image_notice

NAME = "align"
DEFAULT_OUTPUT = None  # writes nothing without -o
SUMMARY = "find the sub-pixel shift that maps SOURCE onto TARGET"
DESCRIPTION = (
    "Gradient descent, coarse to fine, on the shift (dx, dy) that makes the shifted SOURCE "
    "match TARGET. Prints 'dx=... dy=...' on standard output."
)
DEFAULTS = AlignSettings()


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this tool (the registry adds --cpu and -q)."""
    parser.add_argument("-s", "--source", type=Path, required=True, help="image to move")
    parser.add_argument("-t", "--target", type=Path, required=True, help="image to match (same size)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write SOURCE moved onto TARGET")
    parser.add_argument("--interpolation", choices=SHIFT_INTERPOLATIONS, default=DEFAULTS.interpolation,
                        help="sub-pixel interpolation (fourier: exact for periodic images, needs --wrap)")
    parser.add_argument("--wrap", action="store_true", help="the images roll around their borders (periodic)")
    parser.add_argument("--steps", type=int_in(1, 100_000), default=DEFAULTS.steps_per_level,
                        help="gradient descent steps per pyramid level")
    parser.add_argument("--blur-sigma", type=float_in(0.0, 50.0), default=DEFAULTS.blur_sigma,
                        help="pre-blur in pixels (0: none); removes detail that interpolation would bias")


def run(args: argparse.Namespace, console: Console) -> None:
    """Check the flags and files, find the shift, print it (and write the moved source with -o)."""
    check_fourier(args)
    check_outputs({"--output": args.output}, [("--source", args.source), ("--target", args.target)], IMAGE_SUFFIXES)
    source = load_pixels(args.source, "source", console)
    target = load_pixels(args.target, "target", console)
    if source.shape != target.shape:
        raise RunError(
            f"{args.source} is {source.shape[1]}x{source.shape[0]} but {args.target} is "
            f"{target.shape[1]}x{target.shape[0]}; align needs two images of one size"
        )
    if 0.0 < args.blur_sigma < MIN_SIGMA:
        raise UsageError(f"--blur-sigma {args.blur_sigma:g} is below {MIN_SIGMA:g} pixels (0 turns the blur off)")
    kernel_size = default_kernel_size(args.blur_sigma)
    if args.blur_sigma > 0 and kernel_size // 2 >= min(source.shape[:2]):
        raise UsageError(f"a blur of --blur-sigma {args.blur_sigma:g} ({kernel_size} pixels) is too wide for a "
                         f"{source.shape[1]}x{source.shape[0]} image; lower it")
    if args.output is not None:
        large_image_notice(source.shape, args.interpolation, console)
    start_tool(args, console)
    from morphing.io.images import to_float
    from morphing.io.output import write_image
    from morphing.tools.shift import align_shift, shift_pixels

    settings = AlignSettings(
        interpolation=args.interpolation, wrap=args.wrap, steps_per_level=args.steps, blur_sigma=args.blur_sigma
    )
    levels = _pyramid_levels(source.shape[:2], settings.coarsest_side)
    bar, on_step = step_bar(console, levels * settings.steps_per_level, "aligning")
    with bar:
        found = align_shift(to_float(source), to_float(target), settings, on_step)
    print(f"dx={found.dx:.4f} dy={found.dy:.4f}", file=console.out, flush=True)
    if args.output is not None:
        moved = shift_pixels(source, (found.dy, found.dx), interpolation=args.interpolation, wrap=args.wrap)
        write_image(moved, args.output)
        console.say(f"{PROGRAM}: wrote {args.output}")


def _pyramid_levels(shape: tuple[int, ...], coarsest_side: int) -> int:
    levels, side = 1, min(shape)
    while side // 2 >= coarsest_side:
        side //= 2
        levels += 1
    return levels

"""``morph shift``: move an image by a sub-pixel (dx, dy) (``morphing.tools.shift``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from morphing.io.output import IMAGE_SUFFIXES
from morphing.model.settings import SHIFT_INTERPOLATIONS
from .common import (PROGRAM, Console, UsageError, check_outputs, float_in, load_pixels, start_tool)

NAME = "shift"
SUMMARY = "move an image by a sub-pixel (dx, dy), optionally rolling around the borders"
DESCRIPTION = (
    "Move an image right by DX and down by DY pixels (fractions allowed)."
)
DEFAULT_OUTPUT = "shifted.png"
MAX_SHIFT = 100_000.0
MIN_SIGMA = 0.1
"""A Gaussian narrower than this (pixels) is a single tap, and its kernel's arithmetic overflows."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this tool (the registry adds --cpu and -q)."""
    parser.add_argument("-i", "--input", type=Path, required=True, help="image to move")
    parser.add_argument("--dx", type=float_in(-MAX_SHIFT, MAX_SHIFT), default=0.0, help="pixels to the right")
    parser.add_argument("--dy", type=float_in(-MAX_SHIFT, MAX_SHIFT), default=0.0, help="pixels down")
    parser.add_argument("--interpolation", choices=SHIFT_INTERPOLATIONS, default="bilinear",
                        help="sub-pixel interpolation (fourier: exact for periodic images, needs --wrap)")
    parser.add_argument("--wrap", action="store_true",
                        help="roll: what leaves one side enters the other [default: repeat the border pixels]")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="image to write [default shifted.png, never replaced: name an existing file to replace it]")


def check_fourier(args: argparse.Namespace) -> None:
    if args.interpolation == "fourier" and not args.wrap:
        raise UsageError("--interpolation fourier treats the image as periodic; add --wrap")


LARGE_IMAGE_MEGAPIXELS = 16
"""Above this, the tools say what the work will roughly cost (as the morph does)."""
SECONDS_PER_MEGAPIXEL = {"fourier": 0.8, "bicubic": 0.05, "bilinear": 0.03}
BYTES_PER_PIXEL = {"fourier": 104, "bicubic": 40, "bilinear": 40}
"""Rough costs of one shift on 2 CPU cores (fourier: a 9000x9000 image took 64 s and 8.4 GB)."""


def large_image_notice(shape: tuple[int, ...], interpolation: str, console: Console, passes: int = 1) -> None:
    """Say what shifting an image of ``shape`` ``passes`` times will roughly cost, when it is large."""
    megapixels = shape[0] * shape[1] / 1e6
    if megapixels <= LARGE_IMAGE_MEGAPIXELS:
        return
    seconds = SECONDS_PER_MEGAPIXEL[interpolation] * megapixels * passes
    memory = BYTES_PER_PIXEL[interpolation] * megapixels * 1e6 / 2**30
    console.say(f"{PROGRAM}: large image: {shape[1]}x{shape[0]} ({megapixels:.0f} MP); {interpolation} takes "
                f"roughly {seconds:.0f} s{' a pass' if passes > 1 else ''} and {memory:.1f} GB of memory "
                "(Ctrl-C stops it)")


def run(args: argparse.Namespace, console: Console) -> None:
    """Check the flags and the file, move the image, write it."""
    check_fourier(args)
    check_outputs({"--output": args.output}, [("--input", args.input)], IMAGE_SUFFIXES)
    pixels = load_pixels(args.input, "input", console)
    large_image_notice(pixels.shape, args.interpolation, console)
    start_tool(args, console)
    from morphing.io.output import write_image
    from morphing.tools.shift import shift_pixels

    moved = shift_pixels(pixels, (args.dy, args.dx), interpolation=args.interpolation, wrap=args.wrap)
    console.check()
    write_image(moved, args.output)
    console.say(f"{PROGRAM}: wrote {args.output} (moved dx={args.dx:g}, dy={args.dy:g})")

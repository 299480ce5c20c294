"""``morph hybrid``: one image that reads as NEAR up close and as FAR from afar (``morphing.tools.hybrid``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from morphing.io.images import resize_image, to_unit, unit_to_uint8, working_shape
from morphing.io.output import IMAGE_SUFFIXES
from morphing.model.settings import (HYBRID_NEAR_TERMS, HYBRID_STARTS, HybridSettings, default_kernel_size)
from .common import (MIN_SIZE, PROGRAM, Console, UsageError, check_outputs, float_in, int_in, load_pixels, matched,
    start_tool, step_bar)
from .shift import MIN_SIGMA

NAME = "hybrid"
SUMMARY = "one image that reads as NEAR up close and as FAR from afar"
DESCRIPTION = (
    "Gradient descent on the pixels of one image: close to NEAR in fine detail, "
    "and, blurred, close to FAR blurred (a Gaussian in linear light)."
)
DEFAULT_OUTPUT = "hybrid.png"
DEFAULT_SIZE = 1024
DEFAULTS = HybridSettings()


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this tool (the registry adds --cpu and -q)."""
    parser.add_argument("--near", type=Path, required=True, help="image seen up close (its fine detail)")
    parser.add_argument("--far", type=Path, required=True, help="image seen from afar (its blurred version)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="image to write [default hybrid.png, never replaced: name an existing file to replace it]")
    parser.add_argument("--sigma", type=float_in(MIN_SIGMA, 200.0), default=DEFAULTS.sigma,
                        help="Gaussian blur sigma in pixels of the working size")
    parser.add_argument("--kernel-size", type=int_in(1, 1201), default=None,
                        help="odd blur kernel length [default: 2*ceil(3*sigma)+1]")
    parser.add_argument("--near-weight", type=float_in(0.0, 1e6), default=DEFAULTS.near_weight,
                        help="weight of the near term")
    parser.add_argument("--far-weight", type=float_in(0.0, 1e6), default=DEFAULTS.far_weight,
                        help="weight of the far term")
    parser.add_argument("--near-term", choices=HYBRID_NEAR_TERMS, default=DEFAULTS.near_term,
                        help="compare with NEAR in all pixels, or in fine detail only (image minus its blur)")
    parser.add_argument("--start", choices=HYBRID_STARTS, default=DEFAULTS.start, help="start from NEAR or from mid-grey")
    parser.add_argument("--steps", type=int_in(1, 100_000), default=DEFAULTS.steps, help="gradient descent steps")
    parser.add_argument("--size", type=int_in(MIN_SIZE, 8192), default=None,
                        help=f"long side to work and write at [default: NEAR's, at most {DEFAULT_SIZE}]")


def run(args: argparse.Namespace, console: Console) -> None:
    """Check the flags and files, fit the hybrid, write it."""
    check_outputs({"--output": args.output}, [("--near", args.near), ("--far", args.far)], IMAGE_SUFFIXES)
    if args.kernel_size is not None and args.kernel_size % 2 == 0:
        raise UsageError(f"--kernel-size must be odd, got {args.kernel_size}")
    if args.near_weight == 0 and args.far_weight == 0:
        raise UsageError("--near-weight and --far-weight are both 0; nothing to fit")
    near = load_pixels(args.near, "near", console)
    far = matched(load_pixels(args.far, "far", console), near, "far", args.far, console)
    long_side = max(near.shape[:2])
    size = args.size if args.size is not None else min(DEFAULT_SIZE, long_side)
    if size > long_side:
        raise UsageError(f"--size {size} is larger than the near image ({near.shape[1]}x{near.shape[0]})")
    height, width = working_shape(*near.shape[:2], size)
    kernel_size = args.kernel_size if args.kernel_size is not None else default_kernel_size(args.sigma)
    if kernel_size // 2 >= min(height, width):
        raise UsageError(
            f"a blur kernel of {kernel_size} pixels is too wide for a {width}x{height} image; "
            "lower --sigma or --kernel-size"
        )
    start_tool(args, console)
    from morphing.tools.hybrid import fit_hybrid
    from morphing.io.output import write_image

    if (height, width) != near.shape[:2]:
        console.say(f"{PROGRAM}: working at {width}x{height} (--size {size})")
        near, far = resize_image(near, height, width), resize_image(far, height, width)
    settings = HybridSettings(
        sigma=args.sigma, kernel_size=args.kernel_size, near_weight=args.near_weight, far_weight=args.far_weight,
        steps=args.steps, start=args.start, near_term=args.near_term,
    )
    bar, on_step = step_bar(console, settings.steps, "hybrid")
    with bar:
        hybrid = fit_hybrid(to_unit(near), to_unit(far), settings, on_step)
    write_image(unit_to_uint8(hybrid), args.output)
    console.say(f"{PROGRAM}: wrote {args.output} ({width}x{height})")

"""The sibling tools of the morph, registered in one place: ``morph hybrid|shift|align|warp ...``.

Each tool is a module of this package with a ``NAME``, a ``SUMMARY`` and a
``DESCRIPTION`` (its help), a ``DEFAULT_OUTPUT`` (or ``None``), an
``add_flags(parser)`` and a ``run(args, console)``; a new tool is one module
and one entry in ``TOOLS``.
"""

from __future__ import annotations

import argparse
import functools
from types import ModuleType

from . import align, hybrid, shift, ui, warp
from .common import (PROGRAM, Console, HelpFormatter, Parser, add_tool_flags, new_default_output)

__all__ = ["TOOLS", "TOOL_NAMES", "build_tool_parser", "run_tool"]

TOOLS: tuple[ModuleType, ...] = (hybrid, shift, align, warp, ui)
TOOL_NAMES = tuple(tool.NAME for tool in TOOLS)


def build_tool_parser() -> argparse.ArgumentParser:
    """The parser for ``morph TOOL ...``; the parsed arguments' ``run(args, console)`` runs the tool."""
    parser = Parser(prog=PROGRAM, description="Sibling tools of the morph, on the same differentiable core.")
    subparsers = parser.add_subparsers(dest="tool", required=True, metavar="TOOL", parser_class=Parser)
    for tool in TOOLS:
        tool_parser = subparsers.add_parser(tool.NAME, formatter_class=HelpFormatter, help=tool.SUMMARY,
                                            description=tool.DESCRIPTION)
        tool.add_flags(tool_parser)
        add_tool_flags(tool_parser)
        tool_parser.set_defaults(run=functools.partial(run_tool, tool))
    return parser


def run_tool(tool: ModuleType, args: argparse.Namespace, console: Console) -> None:
    """Run ``tool``, its output defaulting to ``tool.DEFAULT_OUTPUT`` (never replaced); raises
    ``UsageError`` or ``RunError`` with one line."""
    if tool.DEFAULT_OUTPUT is not None:
        args.output = new_default_output(args.output, tool.DEFAULT_OUTPUT)
    tool.run(args, console)

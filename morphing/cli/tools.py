"""The sibling tools of the morph, registered in one place: ``morph hybrid|shift|align|warp ...``.

Each tool is a module of this package with a ``NAME``, an
``add_parser(subparsers)`` that declares its flags and sets ``run`` (its
``run(args, console)``) as the parser's default, so a new tool is one module
and one entry in ``TOOLS``.
"""

from __future__ import annotations

import argparse

from . import align, hybrid, shift, warp
from .common import PROGRAM, Parser

__all__ = ["TOOLS", "TOOL_NAMES", "build_tool_parser"]

TOOLS = (hybrid, shift, align, warp)
TOOL_NAMES = tuple(tool.NAME for tool in TOOLS)


def build_tool_parser() -> argparse.ArgumentParser:
    """The parser for ``morph TOOL ...``; the parsed arguments' ``run`` is the tool's."""
    parser = Parser(prog=PROGRAM, description="Sibling tools of the morph, on the same differentiable core.")
    subparsers = parser.add_subparsers(dest="tool", required=True, metavar="TOOL", parser_class=Parser)
    for tool in TOOLS:
        tool.add_parser(subparsers)
    return parser

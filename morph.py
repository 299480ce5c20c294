#!/usr/bin/env python3
"""Morph one image into another: ``python morph.py -s a.jpg -t b.jpg``."""

import sys

from morphing.cli import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Morph one image into another: ``python morph.py -s a.jpg -t b.jpg``."""

from morphing.cli import console_main

if __name__ == "__main__":
    console_main()

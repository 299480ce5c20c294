"""Files: images in (with their transparency), animations and pictures out, written atomically."""

"""The morph's data, without TensorFlow: maps and their files, settings, the timeline, point pairs."""

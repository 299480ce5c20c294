"""Synthetic scenes with a known answer and the metrics that score against them (tests and benchmarks)."""

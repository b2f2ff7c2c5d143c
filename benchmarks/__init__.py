"""Reproducible measurements: `python -m benchmarks.run` (or `make bench`)."""

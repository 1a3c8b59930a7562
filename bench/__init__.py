"""Benchmarks of issue 5: `python -m bench [--quick]` (see bench/README.md)."""

"""Benchmarks: run each as `python -m bench.<name>`; figures go in docs/PERFORMANCE.md."""

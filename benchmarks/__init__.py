"""Benchmark scripts (``python -m benchmarks.<name>``); not tests."""

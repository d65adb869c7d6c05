"""Benchmarks (``medseg bench ...``): figures with a baseline measured in the same run, never tests."""

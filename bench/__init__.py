"""Benchmarks: `make bench` (full) and `bench/run.py --smoke` (part of `make test`)."""

"""Benchmarks: `make bench` (the gateway) and `make bench-standin` (the stand-in)."""

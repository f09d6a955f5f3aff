"""Benchmarks: `make bench` (not collected by pytest). See tests/bench/__main__.py."""

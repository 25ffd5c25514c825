"""Warden benchmarks (DESIGN §8): ``python -m bench [--quick] [--profile] [NAME ...]``."""

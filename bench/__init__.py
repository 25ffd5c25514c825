"""Warden benchmarks (DESIGN §8). ``python -m bench [--quick] [p1 p2 p3 p4 p8]``."""

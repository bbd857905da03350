"""Steady arrival processes: one rate for the whole run (``constant``, ``poisson``)."""

from __future__ import annotations

import random
from collections.abc import Iterator


def constant(rate_per_s: float) -> Iterator[float]:
    """Evenly spaced arrivals: offset ``i`` is ``i / rate_per_s`` seconds (the first at 0); never ends."""
    interval = 1.0 / rate_per_s
    i = 0
    while True:
        yield i * interval
        i += 1


def poisson(rate_per_s: float, rng: random.Random) -> Iterator[float]:
    """A homogeneous Poisson process: independent exponential gaps with mean ``1 / rate_per_s`` seconds; never ends."""
    offset = 0.0
    while True:
        offset += rng.expovariate(rate_per_s)
        yield offset

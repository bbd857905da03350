"""Arrival processes: when each request of an open-loop run is meant to be sent.

An arrival process yields intended send offsets in seconds from the start of
the run, in increasing order, forever; the driver stops taking them at the end
of the run. The offsets depend only on the process, its rate and the RNG, never
on how fast the system under test answers: that is what makes the load
open-loop.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def constant(rate_per_s: float) -> Iterator[float]:
    """Evenly spaced arrivals: offset i is i / rate_per_s."""
    interval = 1.0 / rate_per_s
    i = 0
    while True:
        yield i * interval
        i += 1


def poisson(rate_per_s: float, rng: random.Random) -> Iterator[float]:
    """A Poisson process: independent exponential gaps with mean 1 / rate_per_s."""
    offset = 0.0
    while True:
        offset += rng.expovariate(rate_per_s)
        yield offset


def arrivals(process: str, rate_per_s: float, rng: random.Random) -> Iterator[float]:
    """The offsets of ``process`` (``constant`` or ``poisson``) at ``rate_per_s`` arrivals per second."""
    if process == "constant":
        return constant(rate_per_s)
    if process == "poisson":
        return poisson(rate_per_s, rng)
    raise ValueError(f"unknown arrival process {process!r}")

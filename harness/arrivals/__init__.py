"""Arrival processes: when each request of an open-loop run is meant to be sent.

An arrival process gives the driver a :class:`Schedule`: intended send
offsets in seconds from the start of the run (warm-up included), in
increasing order, and for traces optionally a size per arrival. The offsets
depend only on the process, its parameters and the RNG, never on how fast
the system under test answers: that is what makes the load open-loop.

One module per family (profile syntax: docs/profiles.md, "Arrival processes"):

- :mod:`.steady`: ``constant`` and ``poisson`` (homogeneous) at one rate;
- :mod:`.shaped`: rates that vary over the run (``ramp``, ``steps``,
  ``spike``, ``diurnal``) spaced as a non-homogeneous Poisson process or
  deterministically, by time rescaling;
- :mod:`.rate_curve`: a rate curve read from a ``time_s,rate_per_s`` CSV;
- :mod:`.trace`: recorded arrival timestamps replayed from a CSV;
- :mod:`.sizes`: how a journey reads its arrival's size (:func:`arrival_size`).

The profile models in ``harness/profile.py`` validate the parameters and
build schedules from these generators.
"""

from __future__ import annotations

from .csvfile import FieldError
from .rate_curve import RateCurve, read_rate_curve
from .schedule import Schedule
from .shaped import PiecewiseLinearRate, RateShape, SinusoidRate, Spacing, rate_shaped
from .sizes import arrival_size, set_arrival_size
from .steady import constant, poisson
from .trace import TimestampFormat, Trace, read_trace

__all__ = [
    "FieldError", "PiecewiseLinearRate", "RateCurve", "RateShape", "Schedule", "SinusoidRate", "Spacing",
    "TimestampFormat", "Trace", "arrival_size", "constant", "poisson", "rate_shaped", "read_rate_curve",
    "read_trace", "set_arrival_size",
]

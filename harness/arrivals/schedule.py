"""What an arrival process hands the driver: the intended send offsets, optional sizes, and where they end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """The arrivals of one run.

    ``offsets``: intended send times in seconds from the start of the run
    (warm-up included), non-decreasing; the driver takes them until the run's
    end. ``sizes``: ``None``, or one size per offset in the same order (the
    trace's ``size_column``), which the driver hands to the journey of that
    arrival (:func:`~casemesh.harness.arrivals.sizes.arrival_size`).
    ``length_s``: ``None`` when the process can go on for ever (rate shapes
    whose rate drops to 0 just stop yielding, and the run still lasts its
    full length); for a trace, where its window ends in run seconds: when
    that is before the run's end, sending stops there and the run ends early
    (reported in the result's ``timeline``).
    """

    offsets: Iterator[float]
    sizes: Iterator[float] | None = None
    length_s: float | None = None

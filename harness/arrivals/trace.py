"""Trace replay: arrivals at the recorded timestamps of a CSV file, windowed and sped up.

The trace is a CSV with a header line; one column holds each arrival's
timestamp, optionally another a per-arrival size (e.g. the request's input
tokens). Timestamps are either ISO-8601-like date-times (``2023-11-16
18:15:46.6805900``: ``T`` or a space between date and time, fractional
seconds of any length, kept to 1 µs; no zone suffix means UTC, ``Z`` or
``+HH:MM`` are applied) or plain numbers in seconds, milliseconds or
microseconds. Rows need not be sorted: arrivals are replayed in timestamp
order (a stable sort keeps rows with equal timestamps, and their sizes, in
file order).

Windowing: with ``t0`` the earliest timestamp of the file, the window keeps
the arrivals with ``t0 + start_s <= t < t0 + end_s`` (``end_s`` defaults to
the end of the file). Offsets are taken from the first timestamp inside the
window, divided by ``speed``: arrival ``i`` is sent ``(t_i - t_first) /
speed`` seconds after the run starts (warm-up included), so gaps between
arrivals are preserved exactly up to the speed factor.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import repeat
from operator import truediv
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from .csvfile import FieldError, read_csv
from .schedule import Schedule

#: How the timestamp column is written.
TimestampFormat = Literal["datetime", "seconds", "milliseconds", "microseconds"]
_SECONDS_PER_UNIT = {"seconds": 1.0, "milliseconds": 1e-3, "microseconds": 1e-6}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Trace:
    """The arrivals of a trace window at speed 1.

    ``offsets_s``: seconds from the window's first arrival, non-decreasing
    (``array('d')``); ``sizes``: one per offset, or ``None`` without
    ``size_column``; ``span_s``: from the first arrival to the window's end
    (``end_s`` when it falls inside the file, otherwise the last arrival),
    seconds at speed 1.
    """

    offsets_s: array
    sizes: array | None
    span_s: float

    def __len__(self) -> int:
        return len(self.offsets_s)

    def schedule(self, speed: float) -> Schedule:
        """The window replayed ``speed`` times as fast: offsets ``offsets_s / speed``, ending at ``span_s / speed``."""
        offsets = map(truediv, self.offsets_s, repeat(float(speed)))
        return Schedule(offsets, None if self.sizes is None else iter(self.sizes), self.span_s / speed)

    def count_between(self, speed: float, start_s: float, end_s: float) -> int:
        """Arrivals whose replayed offset (at ``speed``) lies in ``[start_s, end_s)``."""
        return bisect_left(self.offsets_s, end_s * speed) - bisect_left(self.offsets_s, start_s * speed)

    def peak_per_s(self, speed: float) -> tuple[int, int]:
        """The busiest second of the replay at ``speed``: ``(arrivals, second)``, seconds counted from the run's start."""
        counts: dict[int, int] = {}
        for offset in self.offsets_s:
            second = int(offset / speed)
            counts[second] = counts.get(second, 0) + 1
        second = max(counts, key=lambda s: (counts[s], -s))
        return counts[second], second


def _datetime_us(text: str) -> int:
    """Microseconds since the Unix epoch of an ISO-8601-like date-time; ``ValueError`` when it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MICROSECOND


def read_trace(path: Path, shown: str, *, fmt: TimestampFormat, column: str | None = None, size_column: str | None = None,
               start_s: float = 0.0, end_s: float | None = None) -> Trace:
    """The window ``[start_s, end_s)`` (seconds after the file's earliest timestamp) of the trace at ``path``.

    ``column`` names the timestamp column (default: the first), written as
    ``fmt``; ``size_column`` a column of sizes (finite numbers ≥ 0).
    ``shown`` names the file in errors. Raises ``ConfigError`` naming the CSV
    and line for unreadable files and malformed values, ``FieldError`` for an
    unknown column or an empty window, ``FileNotFoundError`` when the file
    does not exist.
    """
    csv_file = read_csv(path, shown)
    t_index = csv_file.column(column, "column")
    s_index = csv_file.column(size_column, "size_column") if size_column is not None else None
    t_name = csv_file.header[t_index]
    times: list[float] = []
    sizes: list[float] = []
    if fmt == "datetime":
        for line, record in csv_file.records:
            text = csv_file.cell(line, record, t_index)
            try:
                times.append(_datetime_us(text))
            except ValueError:
                raise ConfigError(f"invalid datetime {text!r}: expected ISO 8601 like 2023-11-16 18:15:46.6805900",
                                  file=shown, line=line, field=t_name) from None
            if s_index is not None:
                sizes.append(csv_file.number(line, record, s_index, minimum=0))
        unit_s = 1e-6
    else:
        for line, record in csv_file.records:
            times.append(csv_file.number(line, record, t_index))
            if s_index is not None:
                sizes.append(csv_file.number(line, record, s_index, minimum=0))
        unit_s = _SECONDS_PER_UNIT[fmt]
    if not times:
        raise ConfigError("the trace has no arrivals: no records after the header", file=shown, line=csv_file.header_line)
    order = range(len(times))
    if any(b < a for a, b in zip(times, times[1:])):
        order = sorted(order, key=times.__getitem__)  # stable: equal timestamps stay in file order
    t0 = times[order[0]]
    low = start_s / unit_s
    high = math.inf if end_s is None else end_s / unit_s
    chosen = [i for i in order if low <= times[i] - t0 < high]
    if not chosen:
        last = (times[order[-1]] - t0) * unit_s
        where = "end_s" if end_s is not None and start_s < last else "start_s"
        raise FieldError(where, f"no arrival of {shown} falls in the window [{start_s:g} s, "
                                f"{'end of file' if end_s is None else f'{end_s:g} s'}) after its first timestamp; "
                                f"the file spans {last:g} s")
    t_first = times[chosen[0]]
    t_last = times[chosen[-1]]
    window_end = t_last if end_s is None or t0 + high > times[order[-1]] else t0 + high
    return Trace(
        offsets_s=array("d", ((times[i] - t_first) * unit_s for i in chosen)),
        sizes=None if s_index is None else array("d", (sizes[i] for i in chosen)),
        span_s=(window_end - t_first) * unit_s,
    )

"""Rate curves: the arrival rate over the run read from a CSV of ``time_s,rate_per_s`` points.

The CSV has a header naming the columns ``time_s`` (seconds from the start
of the run, warm-up included) and ``rate_per_s`` (arrivals per second); other
columns are ignored. The first point is at ``time_s`` 0, times increase
strictly, rates are finite and ≥ 0 with at least one above 0. Between points
the rate is interpolated linearly (``linear``, the default) or held at the
earlier point's rate (``step``); after the last point its rate holds until
the run ends. Arrivals are then spaced along the curve as in
:mod:`~casemesh.harness.arrivals.shaped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .csvfile import read_csv

TIME_COLUMN = "time_s"
RATE_COLUMN = "rate_per_s"


@dataclass(frozen=True)
class RateCurve:
    """Points ``(time_s, rate_per_s)`` of a curve file, as written (before any ``scale``).

    ``peak_rate_per_s`` is the highest rate and ``peak_line`` its CSV line.
    """

    points: tuple[tuple[float, float], ...]
    peak_rate_per_s: float
    peak_line: int


def read_rate_curve(path: Path, shown: str) -> RateCurve:
    """The curve at ``path`` (``shown`` names it in errors).

    Raises ``ConfigError`` naming the CSV and line for unreadable files, a
    header without ``time_s`` or ``rate_per_s``, bad numbers, a first time
    other than 0, times that do not increase, or no positive rate;
    ``FileNotFoundError`` when the file does not exist.
    """
    csv_file = read_csv(path, shown)
    missing = [c for c in (TIME_COLUMN, RATE_COLUMN) if c not in csv_file.header]
    if missing:
        raise ConfigError(f"the header must name columns {TIME_COLUMN} and {RATE_COLUMN}; missing {', '.join(missing)} "
                          f"(found: {', '.join(csv_file.header)})", file=shown, line=csv_file.header_line)
    t_index, r_index = csv_file.header.index(TIME_COLUMN), csv_file.header.index(RATE_COLUMN)
    points: list[tuple[float, float]] = []
    peak, peak_line = 0.0, 0
    for line, record in csv_file.records:
        t = csv_file.number(line, record, t_index)
        rate = csv_file.number(line, record, r_index, minimum=0)
        if not points and t != 0:
            raise ConfigError(f"the first point must be at time_s 0 (the start of the run), found {t:g}",
                              file=shown, line=line, field=TIME_COLUMN)
        if points and t <= points[-1][0]:
            raise ConfigError(f"times must increase: {t:g} is not after {points[-1][0]:g} on the line before",
                              file=shown, line=line, field=TIME_COLUMN)
        points.append((t, rate))
        if rate > peak:
            peak, peak_line = rate, line
    if not points:
        raise ConfigError("the curve has no points: no records after the header", file=shown, line=csv_file.header_line)
    if peak <= 0:
        raise ConfigError("every rate is 0: at least one point needs a rate above 0", file=shown, line=csv_file.header_line,
                          field=RATE_COLUMN)
    return RateCurve(tuple(points), peak, peak_line)

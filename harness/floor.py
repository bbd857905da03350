"""Judging SLO verdicts against the machine: the control stream's noise floor and its stalls.

A latency SLO says "99 % of Resolve within 10 ms". On a machine whose own p99
for a call that does nothing is 9 ms, that objective cannot be judged: a miss
says more about the machine than about the system. And a run that misses its
SLO because the VM froze for two seconds has measured the VM. The control
stream (harness/control.py) measures both at the same moments as the load;
:func:`qualify` reads it and adds to each client-side SLO verdict:

- ``floor_ms``: the control's latency at the SLO's own quantile over the
  measured window (the p99 floor for a 99 % latency SLO; ``None`` for SLOs
  without a latency threshold);
- ``machine_note``: the verdict's caveat in plain words, when there is one;
- ``inconclusive``: ``True`` for a *missed* SLO that the machine, not the
  system, explains. A verdict is inconclusive when

  1. the misses coincide with **stalls**: seconds in which the control's p99
     was at least :func:`stall_threshold_ms` (10 x its median, and at least
     :data:`STALL_MIN_MS`), and the SLO passes once those seconds (and the one
     after each, whose calls were sent during the stall) are left out; or
  2. the threshold is within :data:`FLOOR_FACTOR` x of the floor outside the
     stalls ("this machine's own p99 during the run was 9.4 ms: a 10 ms p99
     cannot be judged here").

A met SLO stays met whatever the floor (the system was fast enough even on
this machine). An inconclusive SLO does not fail the run (exit 0) unless
``casemesh run --strict``; the summary names every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .slo import Selector, Slo, SloVerdict, quantile_label, recovery_verdict
from .stats import LatencySeries, RunStats, series_bucket, series_percentiles

#: A latency threshold within this factor of the machine's floor at the same quantile cannot be judged (the issue's 3x).
FLOOR_FACTOR = 3.0
#: A control second is a stall when its p99 is at least this many times the control's median over the run...
STALL_MEDIAN_FACTOR = 10.0
#: ... and at least this many ms (sub-ms jitter on a quiet machine is no stall).
STALL_MIN_MS = 10.0


@dataclass(frozen=True)
class Stall:
    """Consecutive seconds ``first``..``last`` (from the start of the run) in which the control's p99 peaked at ``worst_p99_ms``."""

    first: int
    last: int
    worst_p99_ms: float

    def describe(self) -> str:
        seconds = f"second {self.first}" if self.first == self.last else f"seconds {self.first}-{self.last}"
        return f"{seconds} (the control's p99 was {self.worst_p99_ms:,.0f} ms)"

    def to_dict(self) -> dict[str, Any]:
        return {"first_second": self.first, "last_second": self.last, "worst_p99_ms": round(self.worst_p99_ms, 3)}


def stall_threshold_ms(control: RunStats) -> float:
    """The per-second control p99 (ms) from which a second counts as a stall: max(10 x the control's p50, 10 ms)."""
    journey = control.journeys.get("echo")
    median_ms = journey.merged().get_value_at_percentile(50) / 1000 if journey is not None and journey.count() else 0.0
    return max(STALL_MEDIAN_FACTOR * median_ms, STALL_MIN_MS)


def find_stalls(control: RunStats, first_second: int, end_second: int) -> list[Stall]:
    """Stalls of the control in seconds ``[first_second, end_second)`` (the measured window), merged into ranges."""
    threshold_ms = stall_threshold_ms(control)
    series = control.series.journeys.get("echo")
    if series is None:
        return []
    stalls: list[Stall] = []
    for second in range(first_second, min(end_second, series.seconds)):
        (p99_us,) = series_percentiles(series.histogram(second), [99])
        if p99_us is None or p99_us / 1000 < threshold_ms:
            continue
        p99_ms = p99_us / 1000
        if stalls and stalls[-1].last == second - 1:
            stalls[-1] = replace(stalls[-1], last=second, worst_p99_ms=max(stalls[-1].worst_p99_ms, p99_ms))
        else:
            stalls.append(Stall(second, second, p99_ms))
    return stalls


def _series_of(selector: Selector, stats: RunStats) -> list[LatencySeries]:
    if selector.rpc is not None:
        found = stats.series.rpcs.get(selector.rpc)
    elif selector.journey is not None:
        found = stats.series.journeys.get(selector.journey)
    else:
        return list(stats.series.rpcs.values())
    return [found] if found is not None else []


def _without_seconds(slo: Slo, stats: RunStats, seconds: range, left_out: set[int]) -> float | None:
    """The SLO's good/total over ``seconds`` except ``left_out``, from the per-second series (``None`` when nothing is left).

    Per-second series keep latencies to ±1.1 % and errors by code, not latency
    by code: good calls are those within the threshold (when there is one)
    and without an excluded status code; close enough to say whether the
    stalls explain a miss.
    """
    assert isinstance(slo.good, Selector) and isinstance(slo.total, Selector)
    threshold_bucket = None if slo.good.latency_le_ms is None else series_bucket(slo.good.latency_le_ms * 1000)
    good_codes, total_codes = slo.good.codes, slo.total.codes
    good = total = 0
    for series in _series_of(slo.total, stats):
        errors = series.errors()
        for second in seconds:
            if second in left_out:
                continue
            buckets = series.histogram(second)
            calls = sum(buckets.values())
            by_code = {code: counts[second] for code, counts in errors.items() if second < len(counts) and counts[second]}
            ok = calls - sum(by_code.values())
            count_of = (lambda codes: sum(by_code.get(c, 0) for c in codes) + (ok if "OK" in codes else 0))
            in_total = calls if total_codes is None else count_of(total_codes)
            total += in_total
            if threshold_bucket is not None:
                within = sum(n for b, n in buckets.items() if b <= threshold_bucket)
                bad_codes = 0 if good_codes is None else in_total - count_of(good_codes)
                good += max(min(within, in_total) - bad_codes, 0)
            else:
                good += in_total if good_codes is None else count_of(good_codes)
    return good / total if total else None


def _steady_floor_ms(control: RunStats, target: float, seconds: range, left_out: set[int]) -> float | None:
    """The control's latency (ms) at quantile ``target`` over ``seconds`` except ``left_out``, from its per-second series."""
    series = control.series.journeys.get("echo")
    if series is None:
        return None
    merged: dict[int, int] = {}
    for second in seconds:
        if second not in left_out:
            for bucket, count in series.histogram(second).items():
                merged[bucket] = merged.get(bucket, 0) + count
    (value_us,) = series_percentiles(merged, [target * 100])
    return None if value_us is None else value_us / 1000


def qualify(verdicts: Sequence[SloVerdict], slos: Sequence[Slo], stats: RunStats, control: RunStats,
            warmup_s: float, end_s: float) -> tuple[list[SloVerdict], list[Stall]]:
    """The verdicts with ``floor_ms``, ``machine_note`` and ``inconclusive`` set (see the module docstring), and the stalls found.

    ``stats`` is the load's, ``control`` the control stream's (both counted
    from the same start); ``warmup_s`` and ``end_s`` bound the measured window
    in seconds from that start. Prometheus-sourced verdicts are returned as
    they are.
    """
    by_name = {slo.name: slo for slo in slos}
    journey = control.journeys.get("echo")
    floor_histogram = journey.merged() if journey is not None and journey.count() else None
    first, end = int(warmup_s), int(end_s) + 1
    stalls = find_stalls(control, first, end)
    left_out = {s for stall in stalls for s in range(stall.first, stall.last + 2)}
    qualified: list[SloVerdict] = []
    for verdict in verdicts:
        slo = by_name.get(verdict.name)
        if slo is None or slo.source != "casemesh" or floor_histogram is None or not verdict.total:
            qualified.append(verdict)
            continue
        assert isinstance(slo.good, Selector)
        notes: list[str] = []
        inconclusive = False
        floor_ms = None
        label = quantile_label(slo.target)
        threshold = slo.good.latency_le_ms
        if threshold is not None:
            floor_ms = floor_histogram.get_value_at_percentile(slo.target * 100) / 1000
        if not verdict.passed and stalls and slo.recovery is not None:  # its windows judged again, the stalls left out
            where = ", ".join(stall.describe() for stall in stalls)
            again = recovery_verdict(slo, stats, left_out)
            if again.passed:
                inconclusive = True
                notes.append(f"the machine stalled in {where}; without those seconds: {again.note}")
            else:
                notes.append(f"the machine stalled in {where}, but without those seconds too: {again.note}")
        elif not verdict.passed and stalls:
            where = ", ".join(stall.describe() for stall in stalls)
            without = _without_seconds(slo, stats, range(first, end), left_out)
            if without is not None and without >= slo.target:
                inconclusive = True
                notes.append(f"the machine stalled in {where}; without those seconds this SLO is met ({without:.2%})")
            else:
                shown = "" if without is None else f" ({without:.2%})"
                notes.append(f"the machine stalled in {where}, but this SLO is missed without those seconds too{shown}")
        if threshold is not None and not inconclusive:
            # Outside the stalls (already judged above), what does this machine add to every call?
            steady_ms = _steady_floor_ms(control, slo.target, range(first, end), left_out) if stalls else floor_ms
            if steady_ms is not None and steady_ms * FLOOR_FACTOR >= threshold:
                outside = " outside its stalls" if stalls else ""
                if verdict.passed:
                    notes.append(f"met although this machine's own {label}{outside} during the run was {steady_ms:,.1f} ms")
                else:
                    inconclusive = True
                    notes.append(f"this machine's own {label}{outside} during the run was {steady_ms:,.1f} ms: "
                                 f"a {threshold:g} ms {label} cannot be judged here")
        qualified.append(replace(verdict, floor_ms=None if floor_ms is None else round(floor_ms, 3),
                                 machine_note="; ".join(notes) or None, inconclusive=inconclusive))
    return qualified, stalls

"""Recovery SLOs: after an event ends (a load spike, a fault, a time in the run), the objective holds again within ``within_s`` seconds.

A recovery SLO is a ``casemesh`` latency SLO (docs/slos.md) with a
``spec.recovery`` section, a casemesh extension of OpenSLO (snake_case keys,
as in the ``casemesh`` metric source)::

    spec:
      indicator: ...            # good: {rpc: X, latency_le_ms: 300, codes: [OK]}, total: {rpc: X}
      objectives: [{target: 0.99}]  # p99 within 300 ms ...
      recovery:
        after: spike            # ... once the profile's spike has ended; or fault:NAME; or seconds into the measured window
        within_s: 5             # ... at most 5 s after it
        window_s: 3             # judged over sliding 3 s windows

It is judged on the run's per-second series (``RunStats.series``:
:class:`~casemesh.harness.stats.LatencySeries`, every call by the second it
ended in). ``E`` is when the event ends, in seconds from the start of the run:
for ``after: spike``, the end of the profile's ``spike`` arrival (``at_s +
duration_s``, resolved by the profile loader); for ``after: fault:NAME``, the
end of that fault of the profile's ``faults:`` (``warmup_s + at_s + for_s``);
for ``after: N``, ``warmup_s + N``. A window ``[t, t + window_s)`` (whole seconds, ``t ≥ ceil(E)``, inside
the measured window) *holds* when at least ``target`` of its calls are good.
The system **recovered at** the earliest ``t`` from which every later window
holds, up to the end of the measured window; the SLO passes when
``recovered_at - E ≤ within_s``. A window without calls does not hold.

Good and bad per second: a call slower than ``latency_le_ms`` is bad (read
from the series' log buckets, ±1.1 %); when ``good`` names ``codes``, a call
that ended with another code is bad too, whatever its latency. The series
does not split latency by status code, so a call both slow and failed may be
counted twice (capped at the second's calls): the verdict errs towards "not
recovered". ``measured`` is the good share over ``[E + within_s, end)``, the
seconds the objective must hold in.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from .stats import LatencySeries, RunStats, series_bucket_us, series_percentiles

#: ``after`` value naming the end of the profile's ``spike`` arrival.
SPIKE = "spike"
#: Prefix of an ``after`` value naming a fault of the profile: ``fault:NAME``.
FAULT_PREFIX = "fault:"


def _check_after(value: Any) -> str | float:
    """``spike``, ``fault:NAME`` or a number of seconds ≥ 0; ``ValueError`` saying which forms there are."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    elif isinstance(value, str) and (value == SPIKE or (value.startswith(FAULT_PREFIX) and len(value) > len(FAULT_PREFIX))):
        return value
    raise ValueError(f"{value!r} is not an event: give spike (the end of the profile's spike arrival), fault:NAME "
                     "(the end of that fault of the profile) or seconds ≥ 0 into the measured window")


class RecoverySpec(BaseModel):
    """``spec.recovery``: the event (``after``), the allowance (``within_s``) and the judging window (``window_s``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    after: Annotated[str | float, PlainValidator(_check_after)]
    within_s: Annotated[float, Field(ge=0, le=3600)]
    window_s: Annotated[int, Field(ge=1, le=600)] = 3


@dataclass(frozen=True)
class Recovery:
    """A loaded recovery spec, with the event's end the profile loader resolved.

    ``event_end_run_s``: the spike's end, in seconds from the start of the
    run; ``event_end_measured_s``: a fault's end, from the start of the
    measured window. ``None`` until resolved.
    """

    after: str | float
    within_s: float
    window_s: int
    event_end_run_s: float | None = None
    event_end_measured_s: float | None = None

    def event_end(self, warmup_s: float) -> float | None:
        """``E`` in seconds from the start of the run; ``None`` for a spike or fault the profile did not resolve."""
        if self.after == SPIKE:
            return self.event_end_run_s
        if isinstance(self.after, str):
            return None if self.event_end_measured_s is None else warmup_s + self.event_end_measured_s
        return warmup_s + float(self.after)

    def describe_event(self) -> str:
        """``the spike``, ``fault NAME`` or ``23 s into the measured window``."""
        if self.after == SPIKE:
            return "the spike"
        if isinstance(self.after, str):
            return f"fault {self.after.removeprefix(FAULT_PREFIX)}"
        return f"{float(self.after):g} s into the measured window"

    def needed_s(self) -> float:
        """Seconds the measured window must last after ``E`` for a verdict: ``within_s + window_s``."""
        return self.within_s + self.window_s


@dataclass(frozen=True)
class RecoveryOutcome:
    """What :func:`judge` found; ``details`` goes into the verdict's ``recovery`` (result.json)."""

    passed: bool
    good: int
    total: int
    note: str
    details: dict[str, Any]


def _per_second(series: LatencySeries, first: int, end: int, threshold_us: float,
                bad_codes: Sequence[str] | None) -> tuple[list[int], list[int], list[dict[int, int]]]:
    """Per second in ``[first, end)``: calls, bad calls, and the latency buckets."""
    errors = series.errors() if bad_codes else {}
    totals, bads, histograms = [], [], []
    for second in range(first, end):
        buckets = series.histogram(second)
        total = sum(buckets.values())
        slow = sum(count for bucket, count in buckets.items() if series_bucket_us(bucket) > threshold_us)
        failed = sum(counts[second] for code, counts in errors.items() if code in (bad_codes or ()) and second < len(counts))
        totals.append(total)
        bads.append(min(total, slow + failed))
        histograms.append(buckets)
    return totals, bads, histograms


def judge(recovery: Recovery, series: LatencySeries | None, *, threshold_ms: float, target: float,
          good_codes: Sequence[str] | None, stats: RunStats, left_out: Collection[int] = ()) -> RecoveryOutcome:
    """The recovery verdict of one RPC's or journey's ``series`` (see the module docstring).

    ``threshold_ms`` and ``target`` are the SLO's ``latency_le_ms`` and
    objective; ``good_codes`` the ``codes`` of its good side (``None``: any
    status is good when fast enough); ``stats`` gives the measured window
    (``stats.timeline``). ``left_out``: seconds (from the start of the run)
    not to judge, the machine's stalls (harness/floor.py): a window holding
    one is neither held nor missed (``holds: null``), and they are not
    counted in ``good``/``total``.
    """
    timeline = stats.timeline
    warmup_s, end_s = timeline.warmup_s, timeline.end_s
    label = f"p{target * 100:.6g}"
    event = recovery.event_end(warmup_s)
    details: dict[str, Any] = {"after": recovery.after, "event_end_s": event, "within_s": recovery.within_s,
                               "window_s": recovery.window_s, "recovered_at_s": None, "recovery_s": None, "windows": []}
    if event is None:
        return RecoveryOutcome(False, 0, 0, f"{recovery.describe_event()} has no end in this profile", details)
    if series is None or end_s <= 0:
        return RecoveryOutcome(False, 0, 0, "no calls recorded", details)
    first, end = math.ceil(event), int(end_s)  # whole seconds after the event, up to the last whole measured second
    if end_s <= event:
        return RecoveryOutcome(False, 0, 0, f"sending stopped at {end_s:.1f} s, before {recovery.describe_event()} ended "
                                            f"(at {event:g} s): nothing to judge", details)
    if end - first < recovery.window_s or end_s < event + recovery.needed_s():
        return RecoveryOutcome(False, 0, 0, f"the measured window ends {end_s - event:.1f} s after {recovery.describe_event()}: "
                                            f"a verdict needs {recovery.needed_s():g} s (within_s + window_s)", details)
    bad_codes = None if good_codes is None else [code for code in series.errors() if code not in good_codes]
    totals, bads, histograms = _per_second(series, first, end, threshold_ms * 1000, bad_codes)
    windows: list[dict[str, Any]] = []
    for offset in range(0, end - first - recovery.window_s + 1):
        total = sum(totals[offset:offset + recovery.window_s])
        bad = sum(bads[offset:offset + recovery.window_s])
        merged: dict[int, int] = {}
        for buckets in histograms[offset:offset + recovery.window_s]:
            for bucket, count in buckets.items():
                merged[bucket] = merged.get(bucket, 0) + count
        value = series_percentiles(merged, [target * 100])[0]
        holds: bool | None = total > 0 and (total - bad) / total >= target
        if any(first + offset + i in left_out for i in range(recovery.window_s)):
            holds = None
        windows.append({"start_s": first + offset, "calls": total, "bad": bad, "good_ratio": round((total - bad) / total, 5) if total else None,
                        f"{label}_ms": None if value is None else round(value / 1000, 3), "holds": holds})
    missed = [i for i, window in enumerate(windows) if window["holds"] is False]
    after_last_miss = (missed[-1] + 1) if missed else 0
    held_since = any(window["holds"] for window in windows[after_last_miss:])
    allowance_end = event + recovery.within_s
    judged = [s for s in range(first, end) if s >= allowance_end and s not in left_out]
    good = sum(totals[s - first] - bads[s - first] for s in judged)
    total = sum(totals[s - first] for s in judged)
    details["windows"] = windows
    after = recovery.describe_event()
    if not held_since:
        if not missed:
            return RecoveryOutcome(False, good, total, "no window after the event could be judged", details)
        last = windows[missed[-1]]
        note = (f"not recovered: {last['good_ratio'] or 0:.1%} good (< {target * 100:.6g}%) in the {recovery.window_s} s window at "
                f"{last['start_s']} s, {last['start_s'] - event:.0f} s after {after} ended ({last['bad']:,} of "
                f"{last['calls']:,} calls failed or slower than {threshold_ms:g} ms; {label} {last[f'{label}_ms'] or 0:,.0f} ms)")
        return RecoveryOutcome(False, good, total, note, details)
    recovered_at = windows[after_last_miss]["start_s"]
    recovery_s = max(recovered_at - event, 0.0)
    details.update(recovered_at_s=recovered_at, recovery_s=round(recovery_s, 3))
    passed = recovery_s <= recovery.within_s
    note = (f"recovered {recovery_s:.0f} s after {after} ended ({'within' if passed else 'beyond'} {recovery.within_s:g} s): "
            f"{label} ≤ {threshold_ms:g} ms in every {recovery.window_s} s window from {recovered_at} s on")
    return RecoveryOutcome(passed, good, total, note, details)


def resolve(recovery: Recovery, arrival: Any, warmup_s: float, duration_s: float,
            faults: Sequence[Any] = ()) -> tuple[Recovery, str | None]:
    """``recovery`` with the end of its event filled in, and a problem when the run cannot judge it.

    ``arrival`` is the profile's arrival model (``process``, and ``at_s`` /
    ``duration_s`` for a spike, in seconds from the start of the run);
    ``faults`` the profile's faults (``name``, ``at_s``, ``for_s``: seconds
    from the start of the measured window; harness/faults/model.py).
    Problems: ``after: spike`` without a spike arrival; ``after: fault:NAME``
    naming no fault of the profile, or one that lasts to the window's end; a
    measured window that ends less than ``within_s + window_s`` after the event.
    """
    if isinstance(recovery.after, str) and recovery.after.startswith(FAULT_PREFIX):
        name = recovery.after.removeprefix(FAULT_PREFIX)
        fault = next((f for f in faults if f.name == name), None)
        if fault is None:
            known = ", ".join(f.name for f in faults) or "none"
            return recovery, f"spec.recovery.after: no fault named {name!r} in the profile's faults (its faults: {known})"
        if fault.for_s is None:
            return recovery, f"spec.recovery.after: fault {name} lasts until the measured window ends: there is no after to judge"
        recovery = Recovery(recovery.after, recovery.within_s, recovery.window_s, event_end_measured_s=fault.at_s + fault.for_s)
    elif recovery.after == SPIKE:
        process = getattr(arrival, "process", None)
        if process != "spike":
            return recovery, (f"spec.recovery.after: 'spike' needs the profile's arrival process to be spike (it is {process}); "
                              "give fault:NAME or seconds into the measured window instead")
        recovery = Recovery(recovery.after, recovery.within_s, recovery.window_s, arrival.at_s + arrival.duration_s)
    event = recovery.event_end(warmup_s)
    assert event is not None
    run_s = warmup_s + duration_s
    if event + recovery.needed_s() > run_s:
        return recovery, (f"spec.recovery: {recovery.describe_event()} ends {event:g} s into the run, which ends at {run_s:g} s: "
                          f"a verdict needs {recovery.needed_s():g} s after it (within_s + window_s)")
    return recovery, None

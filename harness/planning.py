"""Planning a run for the machine it runs on: how many load processes (``--workers auto``) and which rate (``rate_scale: auto``).

Both keep the *run* valid, never the SLO: the SLO thresholds are the case
study's own, and the rate is chosen only so that the load generator and the
machine keep up with the schedule, with headroom.

**Workers.** One harness process stays on schedule up to the calibrated
one-process ceiling (calibration/measure.py). ``--workers auto`` plans each
process to at most :data:`HEADROOM` of it: ``ceil(rate / (HEADROOM x
ceiling))`` processes, at most one per CPU, and one whenever the rate is
below :data:`ONE_PROCESS_ALWAYS_PER_S` (no calibration is needed for that).

**Rate.** A profile with ``rate_scale: auto`` lists the scales it documents
(``rate_scales``, highest first; default :data:`DEFAULT_RATE_SCALES`). Each
candidate's rate is first checked against the calibrated ceiling (a scale
that would need more than one load process is skipped when ``--workers`` is
1), then **piloted** against the running, seeded system: :data:`PILOT_S` s of
the profile's own journeys at that rate (after :data:`PILOT_WARMUP_S` s of
warm-up, neither measured in the run). The first candidate whose pilot
keeps the send lag's p99 within :func:`pilot_lag_bound_ms` (5 ms, half the
10 ms bound that makes a run invalid, or twice the machine's own calibrated
send lag if that is larger), whose control stream (harness/control.py, driven
beside the pilot) keeps its p99 within :data:`PILOT_CONTROL_FLOOR_FACTOR` x
the calibrated floor (past that the load saturates the machine, and every
latency verdict of the run would be inconclusive), and whose journeys end with an overload
status (DEADLINE_EXCEEDED, UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED) at most
:data:`PILOT_MAX_OVERLOAD_SHARE` of the time is chosen; when none does, the
lowest. The summary and result.json (``plan``) say which rate was chosen and
why, with every pilot's figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .result import latency_summary

#: A load process is planned to at most this share of its calibrated ceiling.
HEADROOM = 0.7
#: Below this offered rate (arrivals/s), one load process is always enough (the slowest VM seen held 875/s).
ONE_PROCESS_ALWAYS_PER_S = 300.0
#: Scales tried by ``rate_scale: auto`` when the profile lists none, highest first.
DEFAULT_RATE_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
#: Measured seconds of each pilot, after its warm-up.
PILOT_S = 3.0
PILOT_WARMUP_S = 1.0
#: A pilot keeps the run valid with headroom when its send-lag p99 is within this (ms), half the bound that makes a run
#: invalid (cli.MAX_SEND_LAG_P99_MS), or within :data:`PILOT_LAG_FLOOR_FACTOR` x the calibrated send lag at the lowest
#: rate when the machine's own jitter is larger than that.
PILOT_LAG_P99_MS = 5.0
PILOT_LAG_FLOOR_FACTOR = 2.0
#: ... and the control stream beside the pilot (harness/control.py) stays within this many times the calibrated
#: floor p99 at the lowest rate: past it, the load itself is what calls wait for (a saturated harness loop or CPU),
#: and every latency SLO of the run would be inconclusive.
PILOT_CONTROL_FLOOR_FACTOR = 3.0
#: ... and at most this share of its journeys ended with an overload status.
PILOT_MAX_OVERLOAD_SHARE = 0.01
OVERLOAD_CODES = frozenset({"DEADLINE_EXCEEDED", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED"})


def offered_rate(profile: Any) -> float:
    """The profile's mean offered rate over its whole run, arrivals/s."""
    run_s = profile.warmup_s + profile.duration_s
    return profile.arrival.offered_rate_per_s(run_s, 0.0, run_s)


def auto_workers(rate_per_s: float, calibration: Mapping[str, Any] | None, cpus: int) -> tuple[int, str]:
    """``(load processes, why)`` for ``rate_per_s`` arrivals/s on a machine with ``cpus`` CPUs (see the module docstring)."""
    if rate_per_s <= ONE_PROCESS_ALWAYS_PER_S:
        return 1, f"{rate_per_s:,.0f}/s is within what one load process holds on any machine seen"
    ceiling = (calibration or {}).get("ceiling_per_s")
    if not ceiling:
        return 1, "no calibrated ceiling (casemesh calibrate): one load process"
    per_process = HEADROOM * ceiling
    needed = max(1, math.ceil(rate_per_s / per_process))
    chosen = min(needed, max(cpus, 1))
    why = (f"{rate_per_s:,.0f}/s against {per_process:,.0f}/s per process "
           f"({HEADROOM:.0%} of the calibrated one-process ceiling of {ceiling:,.0f}/s)")
    if chosen < needed:
        why += f": {needed} needed, capped at {chosen} (one per CPU)"
    return chosen, why


@dataclass
class RateChoice:
    """What ``rate_scale: auto`` chose: ``scale``, its mean ``rate_per_s``, ``reason`` in words, and each candidate's ``pilots`` entry."""

    scale: float
    rate_per_s: float
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rate_scale": self.scale, "rate_per_s": round(self.rate_per_s, 3), "reason": self.reason, "candidates": self.candidates}


def _overload_share(stats: Any) -> tuple[float, int]:
    total = sum(j.count() for j in stats.journeys.values())
    bad = sum(n for j in stats.journeys.values() for code, n in j.errors().items() if code in OVERLOAD_CODES)
    return (bad / total if total else 0.0), total


async def choose_rate_scale(profile: Any, channels: Mapping[str, Any], state: Any, scales: Sequence[float], *,
                            calibration: Mapping[str, Any] | None, one_process: bool, seed: int,
                            say: Callable[[str], Any]) -> RateChoice:
    """Pilot ``scales`` (highest first) against the seeded system behind ``channels`` and choose one (module docstring).

    ``profile`` is unscaled; ``state`` is what its workload's seeder returned.
    ``one_process``: the run will drive from this process alone, so a scale
    beyond the calibrated ceiling's headroom is skipped without a pilot.
    """
    from .control import ControlStream, run_beside
    from .driver import Driver
    from .profile import with_overrides

    ordered = sorted(set(scales), reverse=True)
    floor_p99 = ((calibration or {}).get("floor") or {}).get("p99_ms")
    control_bound_ms = None if not floor_p99 else PILOT_CONTROL_FLOOR_FACTOR * floor_p99
    base = offered_rate(profile)
    # A calibration from a noisy machine underestimates the ceiling: then every scale is piloted instead.
    ceiling = None if (calibration or {}).get("noisy") else (calibration or {}).get("ceiling_per_s")
    lag_bound_ms = pilot_lag_bound_ms(calibration)
    candidates: list[dict[str, Any]] = []
    for scale in ordered:
        rate = base * scale
        entry: dict[str, Any] = {"rate_scale": scale, "rate_per_s": round(rate, 3)}
        candidates.append(entry)
        if one_process and ceiling and rate > HEADROOM * ceiling and scale != ordered[-1]:
            entry["outcome"] = "skipped"
            entry["why"] = f"beyond {HEADROOM:.0%} of one load process's calibrated ceiling ({ceiling:,.0f}/s)"
            say(f"rate {rate:,.0f}/s (x{scale:g}): skipped, {entry['why']}")
            continue
        pilot = with_overrides(profile, rate_scale=scale, warmup_s=PILOT_WARMUP_S, duration_s=PILOT_S)
        driver = Driver(pilot, channels, rng_seed=seed)
        driver.state = state
        control = ControlStream(pilot.warmup_s, pilot.duration_s) if control_bound_ms else None
        if control is not None:
            await control.start()
        try:
            stats = await run_beside(driver, control)
        finally:
            if control is not None:
                await control.stop()
        lag = latency_summary(stats.send_lag)
        share, journeys = _overload_share(stats)
        entry.update({"send_lag_p99_ms": lag["p99_ms"], "journeys": journeys, "overload_share": round(share, 4)})
        problems = []
        if control is not None:
            echo = control.stats.journeys.get("echo")
            control_p99 = echo.merged().get_value_at_percentile(99) / 1000 if echo is not None and echo.count() else None
            entry["control_p99_ms"] = None if control_p99 is None else round(control_p99, 3)
            if control_p99 is not None and control_p99 > control_bound_ms:
                problems.append(f"the control's p99 {control_p99:.1f} ms > {control_bound_ms:.1f} ms "
                                f"({PILOT_CONTROL_FLOOR_FACTOR:g}x the calibrated floor): the load saturates this machine")
        if (lag["p99_ms"] or 0.0) > lag_bound_ms:
            problems.append(f"send lag p99 {lag['p99_ms']:.1f} ms > {lag_bound_ms:.1f} ms")
        if share > PILOT_MAX_OVERLOAD_SHARE:
            problems.append(f"{share:.1%} of journeys overloaded (DEADLINE_EXCEEDED, UNAVAILABLE, ...)")
        entry["outcome"] = "kept up" if not problems else "fell behind"
        if problems:
            entry["why"] = "; ".join(problems)
        control_text = f", control p99 {entry['control_p99_ms']:.2f} ms" if entry.get("control_p99_ms") is not None else ""
        say(f"pilot at {rate:,.0f}/s (x{scale:g}) for {PILOT_S:g} s: send lag p99 {lag['p99_ms'] or 0:.2f} ms{control_text}, "
            f"{share:.1%} overloaded: {entry['outcome']}" + (f" ({entry['why']})" if problems else ""))
        if not problems:
            reason = (f"the highest documented scale whose {PILOT_S:g} s pilot kept the run valid with headroom "
                      f"(send lag p99 {lag['p99_ms'] or 0:.2f} ms ≤ {lag_bound_ms:.1f} ms{control_text}, {share:.1%} overloaded)")
            if scale != ordered[0]:
                reason += "; higher scales: " + "; ".join(f"x{c['rate_scale']:g} {c['outcome']}" + (f" ({c['why']})" if c.get("why") else "")
                                                          for c in candidates[:-1])
            return RateChoice(scale, rate, reason, candidates)
    lowest = ordered[-1]
    return RateChoice(lowest, base * lowest, "no documented scale kept the run valid in its pilot: the lowest, "
                      "so the verdicts below are likely to be the machine's", candidates)


def pilot_lag_bound_ms(calibration: Mapping[str, Any] | None) -> float:
    """The send-lag p99 (ms) a pilot may reach: :data:`PILOT_LAG_P99_MS`, or twice the calibrated lag at the lowest rate if larger."""
    steps = (calibration or {}).get("steps") or []
    lowest = min(steps, key=lambda step: step["rate_per_s"], default=None)
    jitter_ms = (lowest or {}).get("send_lag_p99_ms") or 0.0
    return max(PILOT_LAG_P99_MS, PILOT_LAG_FLOOR_FACTOR * jitter_ms)


def scaled_for(profile: Any, choice: RateChoice) -> Any:
    """``profile`` at the chosen scale (its own warm-up and duration kept)."""
    from .profile import with_overrides

    return with_overrides(profile, rate_scale=choice.scale) if choice.scale != 1.0 else profile


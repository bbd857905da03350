"""``casemesh capacity``: the highest offered rate at which a profile meets every SLO, and the curve on the way there.

The search drives the profile at one constant offered rate per *step*
(``--step-warmup`` seconds not measured, then ``--step-duration`` seconds
measured), judges each step exactly as ``casemesh run`` judges a run (the
profile's ``casemesh`` SLOs over the step's histograms, the send-lag validity
bound), and moves the rate:

1. **Step up** from ``--start``, by ``--step`` (an added rate, ``500``, or a
   factor, ``x2``), capped at ``--max-rate``, until a step fails.
2. **Bisect** between the highest passing rate and the lowest failing one
   until they are at most ``--resolution`` apart.

The answer is the highest rate that passed (``None`` when even the first step
failed). Every step's latency per RPC and per journey (p50, p99) is kept:
that is the latency-vs-throughput curve whose knee the answer sits under.

A step passes when the run is valid (send-lag p99 within the harness's bound),
every evaluated SLO passed, and no journey failed unless some SLO judges
status codes (an availability SLO: then that SLO decides how many errors are
allowed). A failing step is one of:

``marginal``
    every failing criterion missed its bound by at most
    :data:`MARGINAL_FACTOR` (a latency SLO's quantile at most 2x its
    threshold, a status SLO's bad share at most 2x its error budget, send lag
    p99 at most 2x its bound, failed journeys at most
    :data:`MARGINAL_ERROR_SHARE` when no SLO judges errors). Such a step sits
    near the boundary, where a one-off stall of a shared VM can decide the
    verdict, so it is **re-run once** and the re-run's verdict stands.
``collapse``
    the system is far past its capacity: journeys failing dominate
    (at least :data:`COLLAPSE_ERROR_SHARE` of them), or the latency at every
    latency SLO's quantile is at least :data:`COLLAPSE_FACTOR` times its
    threshold, or the load generator fell clearly behind (send lag p99 above
    2x its bound). Not re-run; stepping up stops at once.
``stalled``
    the step missed, but every SLO it missed is *inconclusive* by the step's
    control stream (harness/floor.py): the machine stalled during the step
    and the misses sit in those seconds, or the thresholds are within 3x of
    the machine's floor. It says nothing about the system, so it is **re-run
    once** like a marginal step; a re-run that stalls again counts as a fail.
``fail``
    anything else: a clear but not extreme miss. Not re-run.

When a step is invalid (the generator fell behind) while every SLO was met,
the *harness*, not the service, is the limit at that rate; the step's reason
and the search's stopped reason say so.

The search is bounded: ``--max-steps`` runs (re-runs included) and
``--time-limit`` seconds (a step is not started when it is expected to end
after the limit; expected = the longest step so far).

This module has no network code: :func:`search` calls a ``run_step(rate)``
coroutine (the CLI's drives the real services; tests pass fakes), and
:func:`judge_step` turns what a step measured into a :class:`StepOutcome`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text

from .errors import ConfigError
from .slo import Selector, Slo, SloVerdict, quantile_label
from .stats import OK, CallStats, RunStats

SCHEMA_VERSION = 1

#: A failing criterion within this factor of its bound makes a marginal failure (re-run once).
MARGINAL_FACTOR = 2.0
#: Latency at every latency SLO's quantile at least this many times its threshold is a collapse.
COLLAPSE_FACTOR = 10.0
#: At least this share of the profile's journeys failing (non-OK) is a collapse.
COLLAPSE_ERROR_SHARE = 0.5
#: Failed journeys up to this share count as marginal when no SLO judges status codes.
MARGINAL_ERROR_SHARE = 0.01
#: Arrival processes the search can scale to one offered rate.
STEADY_PROCESSES = ("constant", "poisson")


# -- the plan ---------------------------------------------------------------------------------------


_FACTOR = re.compile(r"^\s*(?:[x×*]\s*([0-9.eE+]+)|([0-9.eE+]+)\s*[x×])\s*$")


@dataclass(frozen=True)
class StepSize:
    """How the step-up phase raises the rate: add ``rate_per_s`` (requests/s), or multiply by ``factor`` (> 1)."""

    rate_per_s: float | None = None
    factor: float | None = None

    @classmethod
    def parse(cls, text: str) -> StepSize:
        """``"500"`` (add 500 requests/s) or ``"x2"``/``"2x"`` (double); ``ConfigError`` (field ``--step``) otherwise."""
        match = _FACTOR.match(text)
        try:
            if match:
                factor = float(match.group(1) or match.group(2))
                if not (math.isfinite(factor) and factor > 1):
                    raise ConfigError(f"a factor must be > 1, not {factor:g}", field="--step")
                return cls(factor=factor)
            rate = float(text)
        except ValueError:
            raise ConfigError(f"{text!r} is neither a rate (500) nor a factor (x2)", field="--step") from None
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError(f"a rate must be > 0, not {text}", field="--step")
        return cls(rate_per_s=rate)

    def after(self, rate_per_s: float) -> float:
        """The rate after ``rate_per_s`` (requests/s)."""
        return rate_per_s * self.factor if self.factor is not None else rate_per_s + (self.rate_per_s or 0.0)

    def describe(self) -> str:
        return f"x{self.factor:g}" if self.factor is not None else f"+{self.rate_per_s:,g}/s"


@dataclass(frozen=True)
class Plan:
    """The search's bounds. Rates in requests/s (offered, i.e. arrivals per second), times in seconds.

    ``start_per_s`` first step's rate; ``step`` the step-up; ``resolution_per_s``
    bisection stops once highest pass and lowest fail are at most this far
    apart; ``max_rate_per_s`` no step above it; ``max_steps`` runs at most
    (re-runs included); ``time_limit_s`` of the whole search; each step is
    ``step_warmup_s`` + ``step_duration_s`` of load (plus draining).
    """

    start_per_s: float
    step: StepSize
    resolution_per_s: float
    max_rate_per_s: float
    max_steps: int
    time_limit_s: float
    step_duration_s: float
    step_warmup_s: float

    def check(self, max_rate_limit: float) -> None:
        """``ConfigError`` naming the option when a value is out of range (``max_rate_limit``: the profile format's highest rate)."""
        def positive(value: float, flag: str) -> None:
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"must be > 0, not {value:g}", field=flag)

        positive(self.start_per_s, "--start")
        positive(self.resolution_per_s, "--resolution")
        positive(self.max_rate_per_s, "--max-rate")
        positive(self.step_duration_s, "--step-duration")
        positive(self.time_limit_s, "--time-limit")
        if not (math.isfinite(self.step_warmup_s) and self.step_warmup_s >= 0):
            raise ConfigError(f"must be >= 0, not {self.step_warmup_s:g}", field="--step-warmup")
        if self.max_rate_per_s > max_rate_limit:
            raise ConfigError(f"must be at most {max_rate_limit:,g}/s, not {self.max_rate_per_s:,g}", field="--max-rate")
        if self.start_per_s > self.max_rate_per_s:
            raise ConfigError(f"--start {self.start_per_s:,g}/s is above --max-rate {self.max_rate_per_s:,g}/s", field="--start")
        if self.max_steps < 1:
            raise ConfigError(f"must be at least 1, not {self.max_steps}", field="--max-steps")
        if self.time_limit_s < self.step_warmup_s + self.step_duration_s:
            raise ConfigError(f"{self.time_limit_s:g} s does not fit one step ({self.step_warmup_s:g} s warm-up + "
                              f"{self.step_duration_s:g} s measured)", field="--time-limit")

    def describe(self) -> str:
        return (f"from {self.start_per_s:,g}/s in steps of {self.step.describe()} up to {self.max_rate_per_s:,g}/s, then bisection "
                f"to {self.resolution_per_s:,g}/s; {self.step_warmup_s:g} s warm-up + {self.step_duration_s:g} s measured per step; "
                f"at most {self.max_steps} steps and {self.time_limit_s:,g} s")


# -- one step ---------------------------------------------------------------------------------------


@dataclass
class StepOutcome:
    """What one step at ``rate_per_s`` (offered requests/s) measured, and its verdict.

    ``kind`` is ``"pass"``, ``"marginal"``, ``"stalled"``, ``"fail"`` or ``"collapse"`` (module
    docstring); ``passed`` is ``kind == "pass"``; ``valid`` false when the load
    generator fell behind (send-lag p99 above the bound); ``harness_limited``
    when it fell behind while every SLO was met. ``reason`` says why in words
    (empty for a pass; the search appends re-run notes). ``slos``:
    ``[{"name", "passed", "measured", "target"}]`` of the evaluated SLOs
    (measured and target as fractions); ``rpcs`` / ``journeys``: ``{name:
    {"p50_ms", "p99_ms", "count", "errors": {CODE: n}}}``; ``send_lag_p99_ms``
    in ms; ``achieved_rps`` the profile's journeys completed per second of the
    measured window. ``rerun`` marks the re-run of the step before it;
    ``wall_s`` is how long the step took (s), draining included. ``collapse``
    names a collapse's cause in a few words (``""`` otherwise).
    """

    rate_per_s: float
    kind: str
    valid: bool
    reason: str = ""
    harness_limited: bool = False
    collapse: str = ""
    slos: list[dict[str, Any]] = field(default_factory=list)
    rpcs: dict[str, dict[str, Any]] = field(default_factory=dict)
    journeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    send_lag_p99_ms: float | None = None
    achieved_rps: float | None = None
    rerun: bool = False
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.kind == "pass"

    def to_dict(self) -> dict[str, Any]:
        """The step as in ``capacity.json``'s ``steps`` (docs/cli.md)."""
        return {
            "rate_per_s": self.rate_per_s,
            "passed": self.passed,
            "kind": self.kind,
            "rerun": self.rerun,
            "valid": self.valid,
            "reason": self.reason,
            "slos": self.slos,
            "rpcs": self.rpcs,
            "journeys": self.journeys,
            "send_lag_p99_ms": self.send_lag_p99_ms,
            "achieved_rps": self.achieved_rps,
        }


def _short(name: str) -> str:
    """``pkg.v1.Service/Method`` → ``Method``; journeys stay as they are."""
    return name.rsplit("/", 1)[-1]


def _subject(selector: Selector) -> str:
    if selector.rpc is not None:
        return _short(selector.rpc)
    return selector.journey if selector.journey is not None else "all RPCs"


def slo_quantile_ms(slo: Slo, stats: RunStats) -> float | None:
    """Latency (ms) of ``slo``'s total selection at its target quantile (p99 for a 0.99 SLO); ``None`` without calls.

    The quantile as the ratio SLO counts it: the smallest recorded latency
    within which at least ``ceil(target x calls)`` calls completed (to the
    histograms' 0.1 %), so it is above the threshold exactly when the SLO
    fails. (HdrHistogram's ``get_value_at_percentile`` rounds the rank to
    the nearest call instead: with 170 calls its p99 is the 168th, and the
    SLO needs 169 within the threshold.)
    """
    assert isinstance(slo.total, Selector)
    combined = CallStats()
    for calls in slo.total.calls(stats):
        combined.add(calls)
    histogram = combined.merged(slo.total.codes)
    total = histogram.get_total_count()
    if total == 0:
        return None
    needed = max(math.ceil(slo.target * total - 1e-9), 1)
    seen = 0
    for item in histogram.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= needed:
            return histogram.get_highest_equivalent_value(item.value_iterated_to) / 1000
    return histogram.get_max_value() / 1000


def _calls_brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {"p50_ms": summary.get("p50_ms"), "p99_ms": summary.get("p99_ms"), "count": summary.get("count", 0),
            "errors": dict(summary.get("errors", {}))}


def judges_errors(slos: Sequence[Slo]) -> bool:
    """Whether some ``casemesh`` SLO counts only certain status codes as good (an availability SLO)."""
    return any(isinstance(s.good, Selector) and isinstance(s.total, Selector) and s.good.codes is not None
               and s.good.codes != s.total.codes for s in slos)


def judge_step(*, rate_per_s: float, profile: Any, stats: RunStats, verdicts: Sequence[SloVerdict],
               invalid_reasons: Sequence[str], send_lag_bound_ms: float, result: dict[str, Any],
               stalls: Sequence[str] = ()) -> StepOutcome:
    """The verdict of one step at ``rate_per_s`` requests/s.

    ``profile`` is the step's profile (its ``slos`` and ``journeys``);
    ``stats`` what the driver recorded; ``verdicts`` :func:`~casemesh.harness.slo.evaluate`'s
    (not evaluated ones are left out); ``invalid_reasons`` the run's
    validity problems (empty when valid); ``send_lag_bound_ms`` the send-lag
    p99 bound behind them (ms); ``result`` the step's result document
    (:func:`~casemesh.harness.result.build_result`), for the per-RPC and
    per-journey percentiles and the achieved rate; ``stalls`` the step's
    control-stream stalls in words (harness/floor.py), when it had a control.
    Kinds and rules: module docstring.
    """
    slos_by_name = {s.name: s for s in profile.slos}
    evaluated = [v for v in verdicts if v.evaluated and v.passed is not None]
    lag_p99_ms = (stats.send_lag.get_value_at_percentile(99) / 1000) if stats.send_lag.get_total_count() else None
    names = [j.name for j in profile.journeys]
    total = sum(stats.journeys[n].count() for n in names if n in stats.journeys)
    ok = sum(stats.journeys[n].count([OK]) for n in names if n in stats.journeys)
    failed = total - ok
    codes: dict[str, int] = {}
    for n in names:
        if n in stats.journeys:
            for code, count in stats.journeys[n].errors().items():
                codes[code] = codes.get(code, 0) + count
    codes_text = ", ".join(f"{code} {n:,}" for code, n in sorted(codes.items(), key=lambda item: -item[1]))

    problems: list[str] = []
    marginal = True
    latency_factors: list[tuple[float, str]] = []  # (quantile / threshold, text) of every latency SLO with calls
    failed_slos = [v for v in evaluated if not v.passed]
    for verdict in evaluated:
        slo = slos_by_name.get(verdict.name)
        if slo is None or not isinstance(slo.good, Selector) or slo.good.latency_le_ms is None:
            continue
        value = slo_quantile_ms(slo, stats)
        if value is not None:
            latency_factors.append((value / slo.good.latency_le_ms, f"{_subject(slo.total)} {quantile_label(slo.target)} "
                                                                     f"{value:,.1f} ms = {value / slo.good.latency_le_ms:.0f}x "
                                                                     f"{slo.good.latency_le_ms:g} ms"))
    for verdict in failed_slos:
        slo = slos_by_name.get(verdict.name)
        measured = "no calls" if verdict.measured is None else f"{verdict.measured:.2%}"
        if verdict.measured is None:
            problems.append(f"{verdict.name}: no calls recorded")
            marginal = False
            continue
        if slo is None or not isinstance(slo.good, Selector):
            problems.append(f"{verdict.name} {measured} < {verdict.target * 100:.6g}%")
            marginal = False
            continue
        if slo.good.latency_le_ms is not None:
            value = slo_quantile_ms(slo, stats)
            factor = value / slo.good.latency_le_ms if value is not None else math.inf
            problems.append(f"{_subject(slo.total)} {quantile_label(slo.target)} {value:,.2f} ms > {slo.good.latency_le_ms:g} ms "
                            f"({verdict.name} {measured} < {verdict.target * 100:.6g}%)")
            marginal = marginal and factor <= MARGINAL_FACTOR
        else:
            bad, budget = 1 - verdict.measured, 1 - verdict.target
            problems.append(f"{verdict.name} {measured} < {verdict.target * 100:.6g}%")
            marginal = marginal and bad <= MARGINAL_FACTOR * budget
    error_fail = failed > 0 and not judges_errors(profile.slos)
    if error_fail:
        problems.append(f"{failed:,} of {total:,} journeys failed ({codes_text}) and no SLO judges status codes")
        marginal = marginal and failed <= MARGINAL_ERROR_SHARE * total
    valid = not invalid_reasons
    harness_limited = False
    if not valid:
        if not failed_slos and not error_fail:
            harness_limited = True
            problems.append(f"invalid: {'; '.join(invalid_reasons)}, while every SLO was met: the harness, not the service, "
                            f"is the limit at this rate")
        else:
            problems.append(f"invalid: {'; '.join(invalid_reasons)}; the harness and the services share the machine, "
                            f"so the rate is past what this machine can drive and serve")
        marginal = marginal and lag_p99_ms is not None and lag_p99_ms <= MARGINAL_FACTOR * send_lag_bound_ms

    collapse = detail = ""
    if total == 0:
        collapse = "no journey of the profile completed"
    elif failed >= COLLAPSE_ERROR_SHARE * total:
        collapse = f"errors dominate ({failed / total:.0%} of journeys failed)"
        detail = codes_text
    elif latency_factors and failed_slos and all(f >= COLLAPSE_FACTOR for f, _ in latency_factors):
        collapse = "latency far beyond every SLO threshold"
        detail = "; ".join(text for _, text in latency_factors)
    elif not valid and lag_p99_ms is not None and lag_p99_ms > MARGINAL_FACTOR * send_lag_bound_ms:
        collapse = (f"the load generator fell behind (send lag p99 {lag_p99_ms:,.1f} ms > {send_lag_bound_ms:g} ms)"
                    + (": the harness, not the service, is the limit" if harness_limited else ""))

    if not problems and not collapse:
        kind = "pass"
    elif collapse:
        kind = "collapse"
    elif failed_slos and valid and all(v.inconclusive for v in failed_slos):
        kind = "stalled"
        notes = [v.machine_note for v in failed_slos if v.machine_note]
        problems.append("the machine, not the system: " + ("; ".join(dict.fromkeys(notes)) or ", ".join(stalls) or "inconclusive"))
    else:
        kind = "marginal" if marginal else "fail"
    reason = "; ".join(([f"collapse: {collapse}" + (f": {detail}" if detail else "")] if collapse else []) + problems)
    if codes and not error_fail and kind != "pass" and "errors dominate" not in collapse:
        reason += f" (journey errors: {codes_text})"
    return StepOutcome(
        rate_per_s=rate_per_s,
        kind=kind,
        valid=valid,
        reason=reason,
        harness_limited=harness_limited,
        collapse=collapse,
        slos=[{"name": v.name, "passed": bool(v.passed), "measured": v.measured, "target": v.target} for v in evaluated],
        rpcs={name: _calls_brief(s) for name, s in result.get("rpcs", {}).items()},
        journeys={name: _calls_brief(s) for name, s in result.get("journeys", {}).items()},
        send_lag_p99_ms=None if lag_p99_ms is None else round(lag_p99_ms, 3),
        achieved_rps=result.get("throughput", {}).get("completed_rps"),
    )


# -- the search -------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """The steps run (in order, re-runs included), the capacity found and why the search stopped.

    ``capacity_per_s``: the highest rate (requests/s) whose step (or re-run)
    passed, ``None`` when none did; ``lowest_failing_per_s``: the lowest rate
    whose step failed for good (``None`` when none did).
    """

    steps: list[StepOutcome]
    capacity_per_s: float | None
    lowest_failing_per_s: float | None
    stopped_reason: str


StepRunner = Callable[[float], Awaitable[StepOutcome]]


def _rate(value: float) -> str:
    return f"{value:,.6g}/s"


async def search(plan: Plan, run_step: StepRunner, *, on_step: Callable[[StepOutcome, list[StepOutcome]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, started_at: float | None = None,
                 overhead_s: float = 2.0) -> SearchResult:
    """Step up, then bisect, calling ``run_step(rate)`` for each step; see the module docstring for the rules.

    ``on_step(outcome, steps_so_far)`` is called after every step (the
    outcome's ``reason`` may still gain a re-run note afterwards). ``clock``
    (seconds) measures steps against ``plan.time_limit_s``, counted from
    ``started_at`` (default: now); before the first step a step is expected
    to take warm-up + duration + ``overhead_s``. Exceptions of ``run_step``
    propagate.
    """
    started = clock() if started_at is None else started_at
    steps: list[StepOutcome] = []
    low: float | None = None
    high: float | None = None
    notes: list[str] = []
    warned = False
    longest = plan.step_warmup_s + plan.step_duration_s + overhead_s

    def bound() -> str | None:
        if len(steps) >= plan.max_steps:
            return f"step limit: {len(steps)} steps run (--max-steps {plan.max_steps})"
        elapsed = clock() - started
        if elapsed + longest > plan.time_limit_s:
            return (f"time limit: {elapsed:,.0f} s elapsed, a step takes up to {longest:,.0f} s, "
                    f"--time-limit {plan.time_limit_s:,g} s")
        return None

    async def run(rate: float, rerun: bool = False) -> StepOutcome:
        nonlocal longest
        begun = clock()
        outcome = await run_step(rate)
        outcome.rerun = rerun
        outcome.wall_s = clock() - begun
        longest = max(longest, outcome.wall_s)
        steps.append(outcome)
        if on_step:
            on_step(outcome, steps)
        return outcome

    def known() -> str:
        if low is None and high is None:
            return "no step finished"
        if low is None:
            return f"no rate passed; {_rate(high)} failed"
        if high is None:
            return f"capacity at least {_rate(low)}, no rate failed"
        return f"capacity between {_rate(low)} (passed) and {_rate(high)} (failed)"

    rate = plan.start_per_s
    stepping_up = True
    stopped = ""
    while True:
        limit = bound()
        if limit:
            stopped = f"{limit}; {known()}"
            break
        outcome = await run(rate)
        final = outcome
        if outcome.kind in ("marginal", "stalled"):
            why = "near the boundary" if outcome.kind == "marginal" else "the machine stalled"
            limit = bound()
            if limit:
                outcome.reason += f" [{why}, not re-run: {limit}]"
            else:
                outcome.reason += f" [{why}: re-run once]"
                final = await run(rate, rerun=True)
                if final.kind in ("marginal", "stalled"):
                    final.kind = "fail"  # a re-run is not re-run again
                final.reason = f"re-run of {_rate(rate)}" + (f": {final.reason}" if final.reason else ": passed")
        if final.kind == "collapse":
            notes.append(f"collapse at {_rate(rate)}: {final.collapse}")
        elif final.harness_limited:
            notes.append(f"the harness, not the service, limited the search at {_rate(rate)}")
        if not warned and final.kind == "collapse":
            # A collapse at or below a rate that an earlier step met or nearly met: the verdicts contradict each other.
            earlier = next((i for i, s in enumerate(steps[:-1], 1) if s.rate_per_s >= rate and s.kind in ("pass", "marginal")), None)
            if earlier is not None:
                warned = True
                notes.append(f"warning: step {len(steps)} collapsed at {_rate(rate)} although step {earlier} "
                             f"{'met' if steps[earlier - 1].passed else 'nearly met'} every SLO at "
                             f"{_rate(steps[earlier - 1].rate_per_s)}: the machine or the system changed during the search "
                             f"(another load on the machine? state left by an earlier step?); run it again")
        if final.passed:
            low = rate if low is None else max(low, rate)
        else:
            high = rate if high is None else min(high, rate)
        if low is None:  # the first rate failed: nothing below it is searched
            stopped = (f"the first step at {_rate(rate)} failed{' (collapse)' if final.kind == 'collapse' else ''}: "
                       f"no capacity found; lower --start")
            break
        if stepping_up and final.passed:
            if rate >= plan.max_rate_per_s:
                stopped = f"max rate reached: every step up to --max-rate {_rate(plan.max_rate_per_s)} passed; {known()}"
                break
            rate = min(plan.step.after(rate), plan.max_rate_per_s)
            continue
        stepping_up = False
        assert high is not None
        if high - low <= plan.resolution_per_s:
            stopped = f"resolution reached: {_rate(low)} passed, {_rate(high)} failed (gap <= {_rate(plan.resolution_per_s)})"
            break
        rate = round((low + high) / 2, 6)
    if notes:
        stopped += "; " + "; ".join(dict.fromkeys(notes))
    return SearchResult(steps=steps, capacity_per_s=low, lowest_failing_per_s=high, stopped_reason=stopped)


# -- output -----------------------------------------------------------------------------------------


def capacity_document(profile: Any, steps: Sequence[StepOutcome], capacity_per_s: float | None, stopped_reason: str) -> dict[str, Any]:
    """``capacity.json`` (schema_version 1; shape in docs/cli.md)::

        {"schema_version": 1, "profile": {"name", "path"},
         "steps": [{"rate_per_s", "passed", "valid", "reason",
                    "slos": [{"name", "passed", "measured", "target"}],
                    "rpcs": {NAME: {"p50_ms", "p99_ms", "count", "errors": {CODE: n}}},
                    "journeys": {NAME: {...same}},
                    "send_lag_p99_ms", "achieved_rps"}],
         "capacity_rate_per_s": float | null, "stopped_reason": str,
         "repeats": [{"rate_per_s", "runs", "journeys": {NAME: {"p99_ms": [...], "spread": max / min}}}]}

    ``repeats`` lists the rates measured more than once (re-runs of marginal
    or stalled steps, bisection landing on a rate again): the spread of their
    p99s is how much one step's verdict can be trusted on this machine.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": {"name": profile.name, "path": str(profile.path)},
        "steps": [s.to_dict() for s in steps],
        "capacity_rate_per_s": capacity_per_s,
        "stopped_reason": stopped_reason,
        "repeats": repeats(steps),
    }


def repeats(steps: Sequence[StepOutcome]) -> list[dict[str, Any]]:
    """Rates run more than once, with each journey's p99 per run and its spread (highest / lowest)."""
    by_rate: dict[float, list[StepOutcome]] = {}
    for step in steps:
        by_rate.setdefault(step.rate_per_s, []).append(step)
    found = []
    for rate, runs in sorted(by_rate.items()):
        if len(runs) < 2:
            continue
        journeys = {}
        for name in runs[0].journeys:
            values = [r.journeys.get(name, {}).get("p99_ms") for r in runs]
            if all(v for v in values):
                journeys[name] = {"p99_ms": values, "spread": round(max(values) / min(values), 2)}
        found.append({"rate_per_s": rate, "runs": len(runs), "kinds": [r.kind for r in runs], "journeys": journeys})
    return found


def slo_subjects(slos: Sequence[Slo]) -> list[tuple[str, str]]:
    """``(kind, name)`` of every RPC (``"rpc"``) and journey (``"journey"``) a ``casemesh`` SLO selects, in SLO order, once each."""
    subjects: dict[tuple[str, str], None] = {}
    for slo in slos:
        if isinstance(slo.total, Selector):
            if slo.total.rpc is not None:
                subjects[("rpc", slo.total.rpc)] = None
            elif slo.total.journey is not None:
                subjects[("journey", slo.total.journey)] = None
    return list(subjects)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _verdict_text(outcome: StepOutcome) -> Text:
    if outcome.passed:
        return Text("PASS", style="bold green")
    label = {"collapse": "COLLAPSE", "marginal": "FAIL (near)", "stalled": "STALLED"}.get(outcome.kind, "FAIL")
    return Text(label, style="bold yellow" if outcome.kind == "stalled" else "bold red")


def _step_cells(outcome: StepOutcome, subjects: Sequence[tuple[str, str]]) -> list[str]:
    cells = [_rate(outcome.rate_per_s) + (" (re-run)" if outcome.rerun else ""),
             "-" if outcome.achieved_rps is None else f"{outcome.achieved_rps:,.1f}/s"]
    for kind, name in subjects:
        calls = (outcome.rpcs if kind == "rpc" else outcome.journeys).get(name)
        cells.append("-" if calls is None else f"{_ms(calls['p50_ms'])} / {_ms(calls['p99_ms'])}")
    met = sum(1 for s in outcome.slos if s["passed"])
    failing = [s["name"] for s in outcome.slos if not s["passed"]]
    cells.append(f"{met}/{len(outcome.slos)} met" + (f"; failed: {', '.join(failing)}" if failing else ""))
    cells.append(_ms(outcome.send_lag_p99_ms))
    cells.append("yes" if outcome.valid else "NO")
    return cells


def steps_table(steps: Sequence[StepOutcome], subjects: Sequence[tuple[str, str]], title: str = "Capacity steps") -> Table:
    """One row per step: offered and achieved rate, p50 / p99 (ms) of each SLO'd RPC and journey, SLOs met, send lag, valid, verdict, reason.

    A collapse's reason is shortened to its cause; :func:`step_line` and ``capacity.json`` keep the whole reason.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    for column in ("offered", "achieved"):
        table.add_column(column, justify="right")
    for kind, name in subjects:
        table.add_column(f"{_short(name) if kind == 'rpc' else name} p50 / p99 ms", justify="right")
    longest_slo = max((len(slo["name"]) for step in steps for slo in step.slos), default=0)
    table.add_column("SLOs", min_width=min(longest_slo + 1, 30), overflow="fold")
    table.add_column("lag p99 ms", justify="right")
    table.add_column("valid", justify="center")
    table.add_column("verdict", justify="center")
    table.add_column("reason", overflow="fold")
    for i, outcome in enumerate(steps, 1):
        # A collapse's cause is enough here (its details are in the step's line and in capacity.json).
        reason = f"collapse: {outcome.collapse}" if outcome.collapse else outcome.reason
        if outcome.rerun and outcome.collapse:
            reason = f"re-run of {_rate(outcome.rate_per_s)}: {reason}"
        # Text, not markup: reasons hold brackets ("[near the boundary: re-run once]").
        table.add_row(str(i), *(Text(cell) for cell in _step_cells(outcome, subjects)), _verdict_text(outcome), Text(reason))
    return table


def step_line(index: int, outcome: StepOutcome, subjects: Sequence[tuple[str, str]]) -> str:
    """The plain one-line form of a table row, for logs and non-interactive terminals."""
    cells = _step_cells(outcome, subjects)
    parts = [f"step {index}: {cells[0]}", f"achieved {cells[1]}"]
    for (kind, name), cell in zip(subjects, cells[2:2 + len(subjects)]):
        parts.append(f"{_short(name) if kind == 'rpc' else name} p50/p99 {cell} ms")
    rest = cells[2 + len(subjects):]
    parts += [f"SLOs {rest[0]}", f"send lag p99 {rest[1]} ms", f"valid {rest[2]}", _verdict_text(outcome).plain]
    line = " | ".join(parts)
    return line + (f" | {outcome.reason}" if outcome.reason else "")


def final_line(capacity_per_s: float | None) -> str:
    """``highest rate meeting every SLO: X/s`` (or that none did)."""
    if capacity_per_s is None:
        return "highest rate meeting every SLO: none (even the first step failed)"
    return f"highest rate meeting every SLO: {capacity_per_s:,.6g}/s"

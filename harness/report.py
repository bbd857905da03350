"""The terminal report: a live view while the load runs, and the summary tables at the end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.markup import escape
from rich.text import Text

from .driver import Progress
from .faults.summary import fault_lines
from .result import latency_summary
from .stats import RunStats
from .tail_breakdown import summary_lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _short(method: str) -> str:
    """``pkg.v1.Service/Method`` → ``Service/Method`` for narrow terminals."""
    return method.rsplit(".", 1)[-1]


def calls_table(title: str, rows: dict[str, dict[str, Any]], short_names: bool = False) -> Table:
    """A table of CALLS summaries (see harness/result.py): count, errors, rate and percentiles in ms."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("name")
    for column in ("count", "errors", "rps", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        blamed = row.get("harness_side") or {}
        errors = ", ".join(f"{code} {n:,}" + (f" ({blamed[code]:,} harness-side)" if blamed.get(code) else "")
                           for code, n in row["errors"].items()) or "0"
        rps = row.get("throughput_rps")
        table.add_row(
            escape(_short(name) if short_names else name), f"{row['count']:,}", errors, "-" if rps is None else f"{rps:,.1f}",
            _ms(row["p50_ms"]), _ms(row["p90_ms"]), _ms(row["p99_ms"]), _ms(row["p999_ms"]), _ms(row["max_ms"]),
        )
    return table


def twins_together(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verdicts in order, except that each twin (``twin_of`` set) follows the SLO it mirrors."""
    names = {v["name"] for v in verdicts}
    twins: dict[str, list[dict[str, Any]]] = {}
    for v in verdicts:
        if v.get("twin_of") in names:
            twins.setdefault(v["twin_of"], []).append(v)
    ordered: list[dict[str, Any]] = []
    for v in verdicts:
        if v.get("twin_of") not in names:
            ordered.append(v)
            ordered.extend(twins.get(v["name"], ()))
    return ordered


def slo_table(verdicts: list[dict[str, Any]], live: bool = False) -> Table:
    """SLO verdicts: source, target, measured ratio, error budget burnt, a note and PASS/FAIL/n/a (``so far`` when live).

    A twin (``twin_of``) is listed right below the SLO it mirrors, its name
    prefixed with ``↳``, so client-side and server-side values of one
    objective sit side by side.
    """
    table = Table(title="SLOs" + (" (so far)" if live else ""), title_justify="left")
    with_floor = any(v.get("floor_ms") is not None for v in verdicts)
    columns = [("SLO", "left"), ("source", "left"), ("target", "right"), ("measured", "right"),
               ("budget burnt", "right"), ("note", "left"), *([("machine floor", "right")] if with_floor else []), ("verdict", "center")]
    for column, justify in columns:
        table.add_column(column, justify=justify)
    names = {v["name"] for v in verdicts}
    for v in twins_together(verdicts):
        measured = "-" if v["measured"] is None else f"{v['measured']:.2%}"
        burnt = "-" if v["budget_burnt"] is None else f"{v['budget_burnt']:.0%}"
        if v["passed"] is None:
            verdict = Text("n/a", style="dim")
        elif v.get("inconclusive"):
            verdict = Text("INCONCLUSIVE", style="bold yellow")
        else:
            verdict = Text("PASS", style="bold green") if v["passed"] else Text("FAIL", style="bold red")
        name = v["display_name"] or v["name"]
        if v.get("twin_of") in names:
            name = f"↳ {name}"
        floor = []
        if with_floor:
            floor = [f"p{v['target'] * 100:g} = {v['floor_ms']:,.2f} ms" if v.get("floor_ms") is not None else ""]
        table.add_row(escape(name), v.get("source", "casemesh"), f"{v['target'] * 100:g}%",
                      measured, burnt, escape(v.get("note") or ""), *floor, verdict)
    return table


def hide_unevaluated_twins(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdicts without twins that were not evaluated (no Prometheus): they say nothing about this run."""
    return [v for v in verdicts if not (v.get("twin_of") and not v.get("evaluated", True))]


def machine_lines(result: dict[str, Any]) -> list[Text]:
    """What the run knew of its machine: the plan (rate, workers), the control's floor and stalls, CPU noise, SLO caveats."""
    lines: list[Text] = []
    plan = result.get("plan") or {}
    if plan.get("rate"):
        rate = plan["rate"]
        lines.append(Text(f"rate: {rate['rate_per_s']:,.0f}/s (rate_scale auto chose x{rate['rate_scale']:g}): {rate['reason']}"))
    workers = plan.get("workers")
    if workers and workers.get("mode") == "auto":
        lines.append(Text(f"load processes: {workers['count']} (--workers auto: {workers['reason']})"))
    environment = result.get("environment") or {}
    control = environment.get("control")
    if control:
        latency = control["latency"]
        lines.append(Text(f"machine floor (control stream, {control['rate_per_s']:g} zero-work calls/s beside the load): "
                          f"p50 {_ms(latency['p50_ms'])} ms, p99 {_ms(latency['p99_ms'])} ms, max {_ms(latency['max_ms'])} ms"))
    for stall in environment.get("stalls") or []:
        seconds = (f"second {stall['first_second']}" if stall["first_second"] == stall["last_second"]
                   else f"seconds {stall['first_second']}-{stall['last_second']}")
        lines.append(Text(f"the machine stalled in {seconds}: the control's p99 was {stall['worst_p99_ms']:,.0f} ms", style="yellow"))
    cpu = environment.get("cpu")
    if cpu:
        lines.append(Text(f"CPU during the run: {cpu['busy_pct']:.0f}% of {cpu['cpus']} CPUs busy, this run {cpu['own_pct']:.0f}%, "
                          f"other processes {cpu['other_pct']:.0f}%, steal {cpu['steal_pct']:.1f}%"
                          + (" (noisy)" if cpu.get("noisy") else ""), style="yellow" if cpu.get("noisy") else ""))
        for warning in cpu.get("warnings") or []:
            lines.append(Text(f"warning: {warning}", style="bold yellow"))
    for v in result["slos"]:
        if v.get("machine_note"):
            lines.append(Text(f"{v['display_name'] or v['name']}: {v['machine_note']}", style="yellow"))
    return lines


def live_view(progress: Progress, stats: RunStats, verdicts: list[dict[str, Any]], warmup_s: float, total_s: float) -> Group:
    """What the terminal shows while the run goes on (rates over the measured window so far)."""
    elapsed = time.perf_counter() - progress.started_at if progress.started_at else 0.0
    measured_s = min(elapsed, total_s) - warmup_s
    header = Text.assemble(
        (f"{progress.phase:>9}", "bold cyan"),
        f"  {min(elapsed, total_s):5.1f}/{total_s:.0f} s   sent {progress.sent:,}   done {progress.completed:,}"
        f"   failed {progress.failed:,}",
    )
    rows = {}
    for name, calls in sorted(stats.rpcs.items()):
        summary = latency_summary(calls.merged(), mean=False)
        rows[name] = {**summary, "errors": calls.errors(),
                      "throughput_rps": summary["count"] / measured_s if measured_s > 0.5 else None}
    return Group(header, calls_table("RPCs (measured window so far)", rows, short_names=True), slo_table(verdicts, live=True))


def progress_line(progress: Progress, total_s: float) -> str:
    """One plain line of progress for logs and non-interactive terminals."""
    elapsed = time.perf_counter() - progress.started_at if progress.started_at else 0.0
    return (f"[{progress.phase}] {min(elapsed, total_s):.0f}/{total_s:.0f} s: sent {progress.sent}, "
            f"completed {progress.completed}, failed {progress.failed}")


def _first_message_table(rpcs: dict[str, dict[str, Any]]) -> list[Table]:
    """Time to first message of the server-streaming RPCs (none when the run had none)."""
    rows = {name: {**row["first_message"], "errors": {}, "throughput_rps": None}
            for name, row in rpcs.items() if "first_message" in row}
    return [calls_table("Server streams: time to first message", rows, short_names=True)] if rows else []


def _slowest_traces(journeys: dict[str, dict[str, Any]]) -> list[Text]:
    """One line per journey with sampled traces: the slowest ones' trace ids (open them in Jaeger)."""
    lines = [
        f"  {name}: " + ", ".join(f"{t['trace_id']} ({t['latency_ms']:,.1f} ms{'' if t['code'] == 'OK' else ', ' + t['code']})"
                                  for t in row.get("slowest_traces", [])[:3])
        for name, row in journeys.items() if row.get("slowest_traces")
    ]
    return [Text("slowest sampled journeys (trace ids):\n" + "\n".join(lines))] if lines else []


def _tail_breakdown(tail_breakdown: dict[str, Any]) -> list[Text]:
    """Where the sampled tail and median journeys' time went, by hop (result.json ``tail_breakdown``)."""
    lines = summary_lines(tail_breakdown)
    return [Text("tail breakdown by hop (sampled traces; shares of the mean latency):\n" + "\n".join(lines))] if lines else []


def schedule_line(timeline: dict[str, Any]) -> Text:
    """How faithfully the driver kept its schedule: arrivals intended vs sent, the worst second, an early end.

    ``timeline`` is result.json's ``timeline`` object. Yellow when a second
    fell more than 1 % (and more than 1 arrival) short, or the schedule ended
    before the run.
    """
    worst = timeline["max_shortfall"]
    text = f"schedule: {timeline['intended_total']:,} arrivals intended, {timeline['sent_total']:,} sent; "
    if worst["shortfall"]:
        text += (f"worst second {worst['second']}: {worst['sent']:,} of {worst['intended']:,} sent "
                 f"({worst['shortfall']:,} short, {worst['shortfall'] / worst['intended']:.1%})")
    else:
        text += "every second sent all it intended"
    if timeline.get("abandoned_at_s") is not None:
        text += (f"; ABANDONED at {timeline['abandoned_at_s']:,.1f} s: the load generator was {timeline['abandoned_behind_s']:,.1f} s "
                 "behind its schedule, so it stopped sending")
    if timeline["ended_early"]:
        text += (f"; the arrival schedule ended at {timeline['end_s']:,.1f} s, before the planned {timeline['planned_end_s']:g} s: "
                 f"sending stopped there (measured window {max(timeline['end_s'] - timeline['warmup_s'], 0):,.1f} s)")
    lagging = worst["shortfall"] > max(1, 0.01 * worst["intended"])
    return Text(text, style="yellow" if lagging or timeline["ended_early"] or timeline.get("abandoned_at_s") is not None else "")


def workers_lines(result: dict[str, Any]) -> list[Text]:
    """Each load worker's share and send lag (``result["workers"]``), for runs with more than one (``--workers N``).

    A worker named in ``invalid_reasons`` (it fell behind its schedule) is
    shown in bold yellow. Nothing for a single-process run: its send lag is
    the line above.
    """
    workers = result.get("workers") or []
    if len(workers) < 2:
        return []
    reasons = result.get("invalid_reasons") or []
    lines = [Text(f"load workers: {len(workers)} processes, send lag of each (the merged line above is all of them):")]
    for w in workers:
        lag = w["send_lag"]
        behind = any(r.startswith(f"worker {w['index']} (") for r in reasons)
        cpu = "" if w.get("cpu_s") is None else f"; CPU {w['cpu_s']:,.1f} s"
        skew = "" if w.get("start_skew_ms") is None else f"; start {w['start_skew_ms']:+.3f} ms"
        lines.append(Text(f"  worker {w['index']} (pid {w['pid']}): sent {w['sent']:,}; send lag p50 {_ms(lag['p50_ms'])} ms, "
                          f"p99 {_ms(lag['p99_ms'])} ms, max {_ms(lag['max_ms'])} ms{skew}{cpu}" + (": FELL BEHIND" if behind else ""),
                          style="bold yellow" if behind else ""))
    return lines


def summary_view(result: dict[str, Any], *, show_unevaluated: bool = False) -> Group:
    """The final tables of a result document, and its verdict line.

    Twins that were not evaluated (no Prometheus in the run) are left out of
    the SLO table unless ``show_unevaluated``; the verdict line counts them.
    """
    lag = result["send_lag"]
    parts: list[Any] = [
        calls_table("RPCs", result["rpcs"], short_names=True),
        *_first_message_table(result["rpcs"]),
        calls_table("Journeys", result["journeys"]),
        *_slowest_traces(result["journeys"]),
        *_tail_breakdown(result.get("tail_breakdown") or {}),
        Text(f"send lag: p50 {_ms(lag['p50_ms'])} ms, p99 {_ms(lag['p99_ms'])} ms, max {_ms(lag['max_ms'])} ms; "
             f"offered {result['throughput']['offered_rps']:,.0f}/s, completed {result['throughput']['completed_rps'] or 0:,.1f}/s"),
        *([schedule_line(result["timeline"])] if "timeline" in result else []),
        *workers_lines(result),
        *machine_lines(result),
        *fault_lines(result),
        slo_table(result["slos"] if show_unevaluated else hide_unevaluated_twins(result["slos"])),
    ]
    evaluated = [s for s in result["slos"] if s.get("evaluated", True)]
    skipped = len(result["slos"]) - len(evaluated)
    aside = f" ({skipped} not evaluated: no Prometheus)" if skipped else ""
    inconclusive = [s["name"] for s in evaluated if not s["passed"] and s.get("inconclusive")]
    if not result["valid"]:
        parts.append(Text("RUN INVALID: " + "; ".join(result["invalid_reasons"]), style="bold yellow"))
    elif result["passed"] and inconclusive:
        met = len(evaluated) - len(inconclusive)
        parts.append(Text(f"PASSED: {met} SLOs met, {len(inconclusive)} inconclusive on this machine ({', '.join(inconclusive)}: "
                          f"see the notes above; --strict counts them as failed){aside}", style="bold green"))
    elif result["passed"]:
        parts.append(Text(f"PASSED: all {len(evaluated)} {'evaluated ' if skipped else ''}SLOs met{aside}", style="bold green"))
    else:
        strict = bool(result.get("strict"))
        failed = [s["name"] for s in evaluated if not s["passed"] and (strict or not s.get("inconclusive"))]
        why = " (inconclusive ones counted as failed: --strict)" if strict and inconclusive else ""
        besides = f"; inconclusive on this machine: {', '.join(inconclusive)}" if inconclusive and not strict else ""
        parts.append(Text(f"FAILED: {', '.join(failed)}{why}{besides}{aside}", style="bold red"))
    return Group(*parts)

"""Tail breakdown by hop: where the time of the slowest journeys went, from the run's sampled traces.

After a run, the harness reads the spans that every process of the run wrote
(``OUT/traces/*.otlp.jsonl``, :mod:`casemesh.services.runtime.tracing`) and,
for each journey, takes two groups of its sampled traces: those at or above
the run's p99 of that journey (the tail) and those between its p40 and p60
(the median, for comparison). Each journey's latency is split into:

- ``send lag``: how late the harness sent the journey after its intended
  time (client-side queueing; the journey span's ``casemesh.send_lag_ms``);
- ``harness between calls``: journey time outside any RPC;
- ``A→B transport``: a call's time at its caller (CLIENT span of ``A``)
  outside the callee's handler (SERVER span of ``B``): serialization, the
  network, both sides' gRPC stacks and event-loop waits;
- ``B self``: the callee's handler time outside its own downstream calls;
- ``A→METHOD (no server span)``: a call whose callee wrote no spans (a
  foreign ``--target`` that exports its traces elsewhere, or none).

Each instant of a span is given to its own work when no child call is in
progress, else split evenly among the child calls in progress (a fan-out
of two parallel calls gives each half of the overlap), so the parts add up to
the journey's latency. The groups report each part's mean in ms and its share
of the mean latency.

Only sampled journeys have traces (``--trace-ratio``, 1 % by default): at
800/s for 60 s that is about 5 journeys above the p99. The breakdown says how
many it saw; with none above the p99 it uses the slowest sampled ones and
says which percentile they start at.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stats import count_within

log = logging.getLogger("casemesh.harness.tail_breakdown")

#: The harness's ``service.name`` in its spans (harness/cli.py configures tracing under it).
HARNESS_SERVICE = "casemesh-harness"
#: Attribute of a journey span: how late (ms) the journey was sent after its intended time.
SEND_LAG_ATTRIBUTE = "casemesh.send_lag_ms"
#: The tail: sampled journeys at or above this percentile of their journey's latency in the run.
TAIL_PERCENTILE = 99.0
#: The median group: sampled journeys between these percentiles.
MEDIAN_BAND = (40.0, 60.0)
#: With no sampled journey at or above the p99, the slowest sampled ones stand in for the tail: this many at most,
#: and only from this percentile up (below it they are no tail: the breakdown then has none).
FALLBACK_TAIL = 5
FALLBACK_FROM_PERCENTILE = 90.0
#: Trace files larger than this are not read (bytes): a breakdown must not exhaust memory after a long traced run.
MAX_TRACE_BYTES = 512 * 1024 * 1024

SEND_LAG = "send lag"
BETWEEN_CALLS = "harness between calls"


@dataclass(slots=True)
class Span:
    """One span of a trace file: times in ns since the Unix epoch, ``kind`` ``client``/``server``/``internal``."""

    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)


def read_traces(directory: Path, *, not_before_ns: int = 0) -> dict[str, list[Span]]:
    """Spans of every ``*.otlp.jsonl`` file in ``directory`` that started at or after ``not_before_ns``, by trace id (hex).

    Unreadable files and damaged lines (a process killed mid-write) are
    skipped with a warning; a missing directory gives ``{}``.
    """
    traces: dict[str, list[Span]] = defaultdict(list)
    if not directory.is_dir():
        return {}
    budget = MAX_TRACE_BYTES
    for path in sorted(directory.glob("*.otlp.jsonl")):
        try:
            size = path.stat().st_size
            if size > budget:
                log.warning("%s: %d bytes of traces left out of the tail breakdown (over its %d-byte budget)", path, size, MAX_TRACE_BYTES)
                continue
            budget -= size
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            log.warning("%s: cannot read traces: %s", path, error)
            continue
        for number, line in enumerate(lines, 1):
            try:
                document = json.loads(line)
                for trace_id, span in _spans(document):
                    if span.start_ns >= not_before_ns:
                        traces[trace_id].append(span)
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("%s:%d: not an OTLP JSON trace line; skipped", path, number)
    return dict(traces)


def _spans(document: Mapping[str, Any]) -> Iterable[tuple[str, Span]]:
    for resource_spans in document.get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        service = str(resource.get("service.name", "?"))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                kind = str(raw.get("kind", "")).removeprefix("SPAN_KIND_").lower() or "internal"
                yield raw["traceId"], Span(
                    span_id=raw["spanId"], parent_id=raw.get("parentSpanId", ""), name=raw.get("name", ""), kind=kind,
                    service=service, start_ns=int(raw["startTimeUnixNano"]), end_ns=int(raw["endTimeUnixNano"]),
                    attributes=_attributes(raw.get("attributes", [])))


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        value = item.get("value", {})
        for key in ("stringValue", "doubleValue", "boolValue"):
            if key in value:
                out[item["key"]] = value[key]
                break
        else:
            if "intValue" in value:
                out[item["key"]] = int(value["intValue"])
    return out


def link(spans: list[Span]) -> list[Span]:
    """Connect each span to its children (by parent span id); returns the spans whose parent is not in the trace."""
    by_id = {span.span_id: span for span in spans}
    roots = []
    for span in spans:
        span.children = []
    for span in spans:
        parent = by_id.get(span.parent_id) if span.parent_id else None
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)
    return roots


def _shares(span: Span, calls: list[Span]) -> tuple[int, list[tuple[Span, float]]]:
    """``(own_ns, [(call, allotted_ns)])``: ``span``'s time with no call in progress, and each call's even share of the rest."""
    events: list[tuple[int, int, int]] = []  # (time, +1 start / -1 end, index)
    for index, call in enumerate(calls):
        start, end = max(call.start_ns, span.start_ns), min(call.end_ns, span.end_ns)
        if end > start:
            events.append((start, 1, index))
            events.append((end, -1, index))
    events.sort(key=lambda e: (e[0], e[1]))
    allotted = [0.0] * len(calls)
    active: set[int] = set()
    own = 0
    at = span.start_ns
    for time, step, index in events:
        if time > at:
            if active:
                share = (time - at) / len(active)
                for i in active:
                    allotted[i] += share
            else:
                own += time - at
            at = time
        if step > 0:
            active.add(index)
        else:
            active.discard(index)
    if span.end_ns > at:
        own += span.end_ns - at
    return own, list(zip(calls, allotted))


def _name(service: str) -> str:
    """A process's name in a part: its ``service.name``, ``harness`` for the harness."""
    return "harness" if service == HARNESS_SERVICE else service


def _callee(client: Span) -> Span | None:
    servers = [child for child in client.children if child.kind == "server"]
    return max(servers, key=lambda s: s.duration_ns) if servers else None


def _attribute_call(client: Span, weight: float, parts: dict[str, float]) -> None:
    """Add ``weight`` × the parts of the CLIENT span ``client`` (transport, callee self time, its own calls) to ``parts`` (ns)."""
    server = _callee(client)
    if server is None:
        parts[f"{_name(client.service)}→{client.name} (no server span)"] += weight * client.duration_ns
        return
    parts[f"{_name(client.service)}→{_name(server.service)} transport"] += weight * max(client.duration_ns - server.duration_ns, 0)
    _attribute_server(server, weight * (min(server.duration_ns, client.duration_ns) / server.duration_ns if server.duration_ns else 0.0), parts)


def _attribute_server(server: Span, weight: float, parts: dict[str, float]) -> None:
    calls = [child for child in server.children if child.kind == "client"]
    own, allotted = _shares(server, calls)
    parts[f"{server.service} self"] += weight * own
    for call, ns in allotted:
        if call.duration_ns:
            _attribute_call(call, weight * ns / call.duration_ns, parts)


def journey_parts(journey: Span) -> tuple[float, dict[str, float]]:
    """``(latency_ns, {part: ns})`` of one journey span (linked: :func:`link`); the parts add up to the latency."""
    parts: dict[str, float] = defaultdict(float)
    send_lag_ns = float(journey.attributes.get(SEND_LAG_ATTRIBUTE, 0.0)) * 1e6
    parts[SEND_LAG] += send_lag_ns
    calls = [child for child in journey.children if child.kind == "client"]
    own, allotted = _shares(journey, calls)
    parts[BETWEEN_CALLS] += own
    for call, ns in allotted:
        if call.duration_ns:
            _attribute_call(call, ns / call.duration_ns, parts)
    return send_lag_ns + journey.duration_ns, dict(parts)


def _group(samples: list[tuple[float, dict[str, float]]]) -> dict[str, Any]:
    total: dict[str, float] = defaultdict(float)
    for _, parts in samples:
        for name, ns in parts.items():
            total[name] += ns
    n = len(samples)
    mean_latency_ns = sum(latency for latency, _ in samples) / n
    mean_ms = {name: round(ns / n / 1e6, 3) for name, ns in sorted(total.items(), key=lambda kv: -kv[1]) if ns > 0}
    return {
        "n": n,
        "mean_ms": round(mean_latency_ns / 1e6, 3),
        "min_ms": round(min(latency for latency, _ in samples) / 1e6, 3),
        "parts_ms": mean_ms,
        "shares": {name: round(ms / (mean_latency_ns / 1e6), 4) if mean_latency_ns else 0.0 for name, ms in mean_ms.items()},
    }


def breakdown(traces: Mapping[str, list[Span]], journeys: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tail_breakdown`` object of result.json, per journey with sampled traces.

    ``journeys`` maps a journey name to its run's stats (a
    :class:`~casemesh.harness.stats.CallStats`: the percentiles the groups
    are cut at come from every journey of the run, not only the sampled).
    Shape::

        {JOURNEY: {"sampled": n, "tail": GROUP | null, "median": GROUP | null,   # null: no sampled journey in it
                   "tail_from_percentile": 99.0, "threshold_ms": p99, "note": "..."}}

    A sampled journey that made no RPC (frames sent on a long-lived stream,
    :mod:`~casemesh.harness.streams`) has no hop to break down: when every
    sampled one of a journey is like that, its entry has no groups
    (``threshold_ms`` null) and a note that says so.
        GROUP = {"n", "mean_ms", "min_ms", "parts_ms": {PART: ms}, "shares": {PART: fraction of mean_ms}}

    Parts are sorted by their time, largest first.
    """
    samples: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
    without_calls: dict[str, int] = defaultdict(int)
    for spans in traces.values():
        for root in link(spans):
            if root.service == HARNESS_SERVICE and root.name in journeys and root.kind in ("client", "internal"):
                if any(child.kind == "client" for child in root.children):
                    samples[root.name].append(journey_parts(root))
                else:
                    without_calls[root.name] += 1
    out: dict[str, Any] = {}
    for name, count in without_calls.items():
        if name not in samples:  # a journey of frames on a long-lived stream (chat's send_message): no hop of its own
            out[name] = {"sampled": count, "tail_from_percentile": TAIL_PERCENTILE, "threshold_ms": None, "tail": None,
                         "median": None, "note": "no RPC of its own (its time is spent on a long-lived stream, whose "
                                                 "frames carry no trace context): nothing to break down by hop"}
    for name, found in samples.items():
        histogram = journeys[name].merged()
        if not histogram.get_total_count():
            continue
        found.sort(key=lambda s: s[0])
        # A histogram's percentile is the highest value of its bucket: the bucket's lowest one starts the group.
        p99_ns = histogram.get_lowest_equivalent_value(histogram.get_value_at_percentile(TAIL_PERCENTILE)) * 1e3
        low_ns = histogram.get_lowest_equivalent_value(histogram.get_value_at_percentile(MEDIAN_BAND[0])) * 1e3
        high_ns = histogram.get_value_at_percentile(MEDIAN_BAND[1]) * 1e3
        tail = [s for s in found if s[0] >= p99_ns]
        note = ""
        from_percentile = TAIL_PERCENTILE
        if not tail:
            tail = found[-min(FALLBACK_TAIL, max(len(found) // 10, 1)):]
            from_percentile = _percentile_of(histogram, tail[0][0])
            if from_percentile >= FALLBACK_FROM_PERCENTILE:
                note = (f"no sampled journey at or above the p99 ({p99_ns / 1e6:,.2f} ms): the {len(tail)} slowest sampled, from the "
                        f"p{from_percentile:g} up, stand in; raise --trace-ratio for more")
            else:
                note = (f"no sampled journey at or above the p{FALLBACK_FROM_PERCENTILE:g}, so no tail to break down; "
                        "raise --trace-ratio for more")
                tail = []
        median = [s for s in found if low_ns <= s[0] <= high_ns]
        out[name] = {"sampled": len(found), "tail_from_percentile": from_percentile, "threshold_ms": round(p99_ns / 1e6, 3),
                     "tail": _group(tail) if tail else None, "median": _group(median) if median else None, "note": note}
    return out


def _percentile_of(histogram: Any, value_ns: float) -> float:
    """The percentile (one decimal) of the run's journeys at or below ``value_ns`` (to the histogram's 0.1 %).

    :func:`~.stats.count_within` sums the counts array in C; hdrh's recorded
    iterator, used before, took about 0.1 s of Python per journey on a 1 h range.
    """
    below = count_within(histogram, int(value_ns / 1e3))
    return round(100.0 * below / histogram.get_total_count(), 1)


def summary_lines(tail_breakdown: Mapping[str, Any], parts: int = 4) -> list[str]:
    """One line per journey and group: ``resolve p99+ (5 sampled, mean 41.2 ms): 71% urlshortener self, ...``."""
    lines = []
    for name, entry in tail_breakdown.items():
        for label, group in ((f"p{entry['tail_from_percentile']:g}+", entry["tail"]), ("median", entry["median"])):
            if not group:
                continue
            shown = list(group["shares"].items())[:parts]
            rest = 1.0 - sum(share for _, share in shown)
            text = ", ".join(f"{share:.0%} {part}" for part, share in shown) + (f", {rest:.0%} other" if rest >= 0.005 else "")
            lines.append(f"  {name} {label} ({group['n']} sampled, mean {group['mean_ms']:,.2f} ms): {text}")
        if entry["note"]:
            lines.append(f"    ({entry['note']})")
    return lines


def run_breakdown(directory: Path, journeys: Mapping[str, Any], started_at_unix_s: float) -> dict[str, Any]:
    """:func:`breakdown` of the traces in ``directory`` written since ``started_at_unix_s`` (s since the epoch).

    Never raises on account of the files: a breakdown that cannot be made is
    ``{}`` with a warning in the log, and the run's result stands without it.
    """
    try:
        return breakdown(read_traces(directory, not_before_ns=int(started_at_unix_s * 1e9)), journeys)
    except Exception:  # the breakdown is an aid: a bug in it must not lose the run's result
        log.exception("tail breakdown failed; the result has none")
        return {}

"""``faults`` in result.json (docs/results.md) and their lines in the terminal summary.

Each fault's entry gives its planned and actual active interval (seconds from
the measured window's start, as ``at_s``) and the calls that ended during it,
by RPC and by journey, read from the result's per-second ``series``: for an
abort, those that ended with its status code; for a delay, kill or pause,
every non-OK code. The counted seconds are the whole seconds of the run that
the actual interval (else the planned one) overlaps, so the count is exact to
the second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.text import Text

from .runner import FaultRunner


def fault_results(runner: FaultRunner, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``faults`` entries of a run whose result document (with ``series``, ``profile``) is ``result``."""
    warmup_s = float(result["profile"]["warmup_s"])
    duration_s = float(result["profile"]["duration_s"])
    origin = runner.origin_unix_s
    entries = []
    for record in runner.records.values():
        fault = record.fault

        def rel(unix: float | None) -> float | None:
            return None if unix is None or origin is None else round(unix - origin, 3)

        planned = {"start_s": fault.at_s, "end_s": fault.end_s(duration_s)}
        actual = None
        if record.start_unix_s is not None and origin is not None:
            end = rel(record.end_unix_s) if record.end_unix_s is not None else duration_s
            actual = {"start_s": rel(record.start_unix_s), "end_s": end}
        window = actual or planned
        first = max(int(math.floor(warmup_s + window["start_s"])), 0)
        last = max(int(math.ceil(warmup_s + window["end_s"])), first + 1)
        codes = [fault.code] if fault.kind == "abort" else None
        errors = {kind: _errors_between(result.get("series", {}).get(kind, {}), first, last, codes) for kind in ("rpcs", "journeys")}
        entries.append({
            "name": fault.name,
            "kind": fault.kind,
            "target": fault.target,
            "service": fault.service,
            "method": fault.method,
            "grpc_methods": list(fault.grpc_methods),
            "source": f"{fault.file}:{fault.line}: {fault.field}" if fault.file else f"--fault {fault.spec}",
            "spec": fault.spec_dict(),
            "describe": fault.describe(),
            "planned": planned,
            "actual": actual,
            "counted": {"from_s": first, "to_s": last, "codes": codes or "every non-OK code"},
            "errors": errors,
            "errors_total": sum(sum(by_code.values()) for by_code in errors["rpcs"].values()),
            "events": [{**{k: v for k, v in e.items() if k != "at_unix_s"}, "at_s": rel(e["at_unix_s"])} for e in record.events],
            "notes": list(record.notes),
        })
    return entries


def _errors_between(group: Mapping[str, Any], first: int, last: int, codes: list[str] | None) -> dict[str, dict[str, int]]:
    """Per name: calls that ended in seconds ``[first, last)`` with one of ``codes`` (``None``: any non-OK), by code."""
    out: dict[str, dict[str, int]] = {}
    for name, points in group.items():
        counts = {}
        for code, per_second in (points.get("errors") or {}).items():
            if codes is not None and code not in codes:
                continue
            total = sum(per_second[first:last])
            if total:
                counts[code] = total
        out[name] = counts
    return out


def fault_lines(result: Mapping[str, Any]) -> list[Text]:
    """The terminal summary's lines for ``faults`` (none when the run had none)."""
    faults = result.get("faults") or []
    if not faults:
        return []
    lines = [Text("faults (seconds from the measured window's start; errors: calls that ended in the fault's seconds)")]
    for fault in faults:
        planned, actual = fault["planned"], fault.get("actual")
        when = f"planned {planned['start_s']:g}-{planned['end_s']:g} s"
        when += f", active {actual['start_s']:.2f}-{actual['end_s']:.2f} s" if actual else ", never active"
        counted = fault["counted"]["codes"]
        which = f"ended {'/'.join(counted)}" if isinstance(counted, list) else "failed"
        top = sorted(((sum(c.values()), name) for name, c in fault["errors"]["rpcs"].items() if c), reverse=True)[:3]
        by_rpc = ", ".join(f"{name.rsplit('/', 1)[-1]} {count:,}" for count, name in top)
        target = "" if fault["target"] in fault["name"] else f" on {fault['target']}"
        line = f"  {fault['name']}: {fault['describe']}{target}, {when}: {fault['errors_total']:,} calls {which}"
        lines.append(Text(line + (f" ({by_rpc})" if by_rpc else "") + "".join(f"; {n}" for n in fault.get("notes", []))))
    return lines

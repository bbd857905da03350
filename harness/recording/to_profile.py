"""``casemesh recording to-profile``: a traffic profile whose arrivals are a recording's call times.

Writes two files: ``NAME.csv`` with one ``offset_s`` per arrival (seconds
from the first call, header line ``offset_s``) and ``NAME.yaml``, a profile
of the given workload with a ``trace`` arrival process reading that CSV. The
driver then sends one journey per recorded call time, so the profile keeps
the recording's timing (bursts, gaps, its rate over time) while the journeys
make fresh requests against seeded data.

Journeys are weighted by the recorded method mix where a method maps
obviously onto a journey:

- a journey whose name is the method's name in snake_case takes that
  method's calls (``Resolve`` → ``resolve``, ``GetStats`` → ``get_stats``);
- a journey named ``<that name>_miss`` takes the method's ``NOT_FOUND``
  calls (``resolve_miss``), the base journey the rest.

Only mapped calls are arrivals in the CSV; calls of other methods (health
checks, methods no journey makes alone) are left out and listed in a comment
of the profile. When no call maps, every call is an arrival and every journey
gets weight 1, with a comment saying so. Multi-RPC journeys
(``shorten_then_resolve``) are never inferred.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

from . import format as fmt

#: The arrival column of the CSV.
OFFSET_COLUMN = "offset_s"
_NOT_FOUND = 5


def snake_case(name: str) -> str:
    """``GetStats`` → ``get_stats``, ``Resolve`` → ``resolve``, ``HTTPGet`` → ``http_get``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@dataclass
class ProfileDraft:
    """A generated profile: its YAML text, its CSV text and how the recorded calls were mapped.

    ``weights`` maps journey name → weight (mapped calls, or 1 each when
    nothing mapped); ``mapped`` counts calls per (method, journey);
    ``unmapped`` counts left-out calls per method; ``equal_weights`` is true
    when nothing mapped.
    """

    yaml: str
    csv: str
    weights: dict[str, float]
    arrivals: int
    mapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)
    equal_weights: bool = False


def profile_name(text: str) -> str:
    """``text`` as a profile name (``[a-z0-9-]+``): lower case, other characters as ``-``."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name or "recording"


def _journey_for(call: fmt.RecordedCall, services: set[str], journeys: set[str]) -> str | None:
    service, _, method = call.method[1:].rpartition("/")
    if service not in services:
        return None
    base = snake_case(method)
    if call.status_code == _NOT_FOUND and f"{base}_miss" in journeys:
        return f"{base}_miss"
    return base if base in journeys else None


def _services_to_start(workload: Any) -> list[str]:
    """The workload's services and, transitively, the services they depend on (catalog order); ``[]`` when one is not in the catalog."""
    from casemesh.services.catalog import SERVICES

    needed: set[str] = set()
    pending = list(workload.services)
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in SERVICES:
            return []
        needed.add(name)
        pending.extend(SERVICES[name].dependencies)
    return [name for name in SERVICES if name in needed]


def draft_profile(recording: fmt.Recording, workload: Any, *, csv_name: str, name: str) -> ProfileDraft:
    """The profile and trace CSV of ``recording`` for ``workload`` (a :class:`~casemesh.harness.workloads.base.Workload`).

    ``csv_name`` is the CSV's file name as the profile refers to it (relative
    to the profile), ``name`` the profile's ``metadata.name``. Raises
    ``ValueError`` when the recording holds no calls.
    """
    if not recording.calls:
        raise ValueError(f"{recording.path}: the recording holds no calls")
    services = set(workload.service_names.values())
    journey_names = set(workload.journeys)
    mapped: Counter[tuple[str, str]] = Counter()
    unmapped: Counter[str] = Counter()
    offsets_us: list[int] = []
    for call in recording.calls:
        journey = _journey_for(call, services, journey_names)
        if journey is None:
            unmapped[call.method[1:]] += 1
        else:
            mapped[(call.method[1:], journey)] += 1
            offsets_us.append(call.start_offset_us)
    equal = not mapped
    if equal:
        offsets_us = [c.start_offset_us for c in recording.calls]
        weights = {journey: 1.0 for journey in workload.journeys}
    else:
        per_journey: Counter[str] = Counter()
        for (_, journey), count in mapped.items():
            per_journey[journey] += count
        weights = {journey: float(per_journey[journey]) for journey in workload.journeys if per_journey[journey]}
    first = offsets_us[0]
    csv = OFFSET_COLUMN + "\n" + "".join(f"{(us - first) / 1e6:.6f}\n" for us in offsets_us)
    last_s = (offsets_us[-1] - first) / 1e6
    timeouts = [c.timeout_us for c in recording.calls if c.timeout_us]
    timeout_ms = max(1.0, round(max(timeouts) / 1000)) if timeouts else 1000.0
    draft = ProfileDraft(yaml="", csv=csv, weights=weights, arrivals=len(offsets_us), mapped=mapped, unmapped=unmapped, equal_weights=equal)
    draft.yaml = _yaml(recording, workload, draft, csv_name=csv_name, name=name, duration_s=math.floor(last_s) + 1, timeout_ms=timeout_ms)
    return draft


def _calls(count: int, method: str) -> str:
    """``1 Resolve call``, ``5 Resolve calls``."""
    return f"{count:,} {method} call{'' if count == 1 else 's'}"


def _quoted(text: str) -> str:
    """A double-quoted YAML string (JSON string syntax is valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _yaml(recording: fmt.Recording, workload: Any, draft: ProfileDraft, *, csv_name: str, name: str, duration_s: int, timeout_ms: float) -> str:
    header = recording.header
    created = recording.created_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    span_s = recording.span_us / 1e6
    services = _services_to_start(workload)
    lines = [
        f"# Generated by `casemesh recording to-profile` from {recording.path.name}: {len(recording.calls):,} calls over {span_s:,.1f} s,",
        f"# recorded {created} in front of {header.upstream_address}. Arrivals: {csv_name} ({draft.arrivals:,} call times).",
        "# Format: docs/profiles.md; how the journeys were chosen and the limits: docs/recording.md.",
        "apiVersion: casemesh.dev/v1",
        "kind: Profile",
        "metadata:",
        f"  name: {name}",
        f"  description: {_quoted(f'Arrival times of the recording {recording.path.name} driving the {workload.name} workload')}",
        f"  source: {_quoted(f'casemesh recording {recording.path.name} ({created}, upstream {header.upstream_address})')}",
        f"workload: {workload.name}",
    ]
    if services:
        lines.append(f"services: [{', '.join(services)}]")
    else:
        lines.append("services: []          # not startable by casemesh: run with --target")
    lines += [
        "arrival:",
        "  process: trace",
        f"  file: {csv_name}     # relative to the profile file",
        f"  column: {OFFSET_COLUMN}",
        "  format: seconds",
        "  speed: 1",
        "warmup_s: 0",
        f"duration_s: {duration_s}          # the trace's length, rounded up",
        f"request_timeout_ms: {timeout_ms:g}" + ("   # the longest recorded deadline" if any(c.timeout_us for c in recording.calls) else ""),
        "journeys:",
    ]
    if draft.equal_weights:
        lines.append("  # No recorded method maps onto a journey of this workload (a journey named after the method in")
        lines.append("  # snake_case): every call is an arrival and the journeys share them equally. Adjust the weights.")
        for journey in draft.weights:
            lines.append(f"  - name: {journey}")
            lines.append("    weight: 1")
    else:
        lines.append("  # Weights: recorded calls per journey (a journey named after the method in snake_case;")
        lines.append("  # <journey>_miss takes the method's NOT_FOUND calls).")
        for journey, weight in draft.weights.items():
            sources = ", ".join(_calls(count, method.rsplit('/', 1)[-1]) for (method, j), count in sorted(draft.mapped.items()) if j == journey)
            note = sources + (" that answered NOT_FOUND" if journey.endswith("_miss") else "")
            lines.append(f"  - name: {journey}".ljust(30) + f"# {note}")
            lines.append(f"    weight: {weight:g}")
    for method, count in sorted(draft.unmapped.items()):
        if not draft.equal_weights:
            lines.append(f"  # not a journey, left out of the arrivals: {_calls(count, method)}")
    lines.append("slos: []                # add OpenSLO files to judge the run (docs/slos.md)")
    return "\n".join(lines) + "\n"


def write_profile(recording: fmt.Recording, workload: Any, profile_path: Path, *, name: str | None = None) -> tuple[Path, ProfileDraft]:
    """Write ``profile_path`` and the CSV next to it (same stem, ``.csv``); returns the CSV path and the draft.

    ``name`` defaults to the profile file's stem. ``ValueError`` when the
    recording holds no calls, ``OSError`` when a file cannot be written.
    """
    csv_path = profile_path.with_suffix(".csv")
    draft = draft_profile(recording, workload, csv_name=csv_path.name, name=profile_name(name or profile_path.stem))
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(draft.csv)
    profile_path.write_text(draft.yaml)
    return csv_path, draft

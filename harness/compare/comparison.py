"""The comparison of two runs (``compare.json``): per RPC and journey, percentile differences with intervals; SLO changes; caveats.

Shape (``compare_version`` 1; ms, fractions for ``%`` fields)::

    {
      "compare_version": 1,
      "a": RUN, "b": RUN,
      "method": {"name": "...", "confidence": 0.95, "resamples": 2000, "seed": 1, "min_effect": 0.05,
                 "percentiles": [50.0, 90.0, 99.0, 99.9]},
      "comparisons": [{"kind": "rpcs" | "journeys", "name": "pkg.Service/Method" | "resolve", "label": "Service/Method",
                       "a_count": 46300, "b_count": 45980, "rows": [ROW, ...]}],
      "only_in_a": {"rpcs": [...], "journeys": [...]}, "only_in_b": {...},
      "slos": [{"name", "display_name", "a": VERDICT | null, "b": VERDICT | null, "changed": bool}],
      "warnings": ["..."], "notes": ["..."],
      "gate": {"rules": ["p99:+10%"], "regressions": [{"rule", "kind", "name", "percentile", "diff_ms", "diff_pct"}], "failed": false},
      "exit_code": 0                      # added by the command: 0, or 1 when the gate failed
    }
    RUN = {"path", "profile", "workload", "started_at", "casemesh_version", "valid", "passed", "noisy",
           "offered_rps", "measured_s", "faults": ["delay:urlshortener/Resolve", ...]}
    ROW = {"percentile": 99.0, "label": "p99", "a_ms", "b_ms", "diff_ms", "diff_pct",   # diff_pct = b / a - 1
           "ci_ms": [low, high] | null, "ci_pct": [low, high] | null,              # interval of B - A (and of b / a - 1)
           "a_ci_ms", "b_ci_ms",                                                   # each run's own interval
           "a_design_effect", "b_design_effect", "a_effective_calls", "b_effective_calls",  # design effect >= 1 (stats.py)
           "a_design_effect_note", "b_design_effect_note",                          # why it is 1 by default, or null
           "judged": bool, "excludes_zero": bool, "significant": bool,
           "change": "slower" | "faster" | "no change" | "too few calls", "note": str | null}
    VERDICT = "PASS" | "FAIL" | "INCONCLUSIVE" | "NOT EVALUATED"

A row is ``significant`` when it is judged, its interval ``ci_ms`` excludes 0
and ``|diff_pct|`` is at least ``min_effect``; ``change`` is then ``slower``
or ``faster``. Method: harness/compare/stats.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from .document import KINDS, RunDocument
from .gate import FailRule, percentile_label
from .stats import compare_quantile, design_effect, generator

COMPARE_VERSION = 1
METHOD = ("bootstrap of each run's HDR histogram (order-statistic draws, exact for the multinomial bootstrap), "
          "with effective sample sizes from the per-second series' design effect; percentile interval of B - A")
#: Offered rates further apart than this (relative) make the comparison doubtful.
RATE_TOLERANCE = 0.05
#: Control-stream p99s further apart than this factor: the machine was not in the same state.
FLOOR_TOLERANCE = 1.5


def short_name(kind: str, name: str) -> str:
    """``pkg.v1.Service/Method`` → ``Service/Method``; journeys as they are."""
    return name.rsplit(".", 1)[-1] if kind == "rpcs" else name


def compare_runs(a: RunDocument, b: RunDocument, *, percentiles: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 1, min_effect: float = 0.05, rules: Sequence[FailRule] = ()) -> dict[str, Any]:
    """The comparison document of runs ``a`` (the baseline) and ``b`` (shape in the module docstring).

    Every percentile a rule names is compared too. ``ConfigError`` (field
    ``--fail-on``) when a rule names an RPC or journey that is not in both runs.
    """
    wanted = sorted(set(percentiles) | {rule.percentile for rule in rules})
    comparisons = []
    for kind in KINDS:
        for name in sorted(set(a.distributions[kind]) & set(b.distributions[kind])):
            comparisons.append(_compare_one(a, b, kind, name, wanted, confidence=confidence, resamples=resamples, seed=seed,
                                            min_effect=min_effect))
    for rule in rules:
        if rule.name is not None and not any(rule.matches(c["kind"], c["name"]) for c in comparisons):
            raise ConfigError(f"{rule.text!r}: no RPC or journey named {rule.name!r} has calls in both runs", field="--fail-on")
    regressions = [{"rule": rule.text, "kind": c["kind"], "name": c["name"], "percentile": row["percentile"],
                    "diff_ms": row["diff_ms"], "diff_pct": row["diff_pct"]}
                   for rule in rules for c in comparisons if rule.matches(c["kind"], c["name"])
                   for row in c["rows"] if row["percentile"] == rule.percentile and rule.exceeded_by(row)]
    warnings, notes = environment_differences(a.data, b.data)
    for side, key in (("A", "a_design_effect_note"), ("B", "b_design_effect_note")):
        found: dict[str, list[str]] = {}
        for c in comparisons:
            for note in {row[key] for row in c["rows"] if row["judged"] and row[key]}:
                found.setdefault(note, []).append(c["label"])
        for note, labels in sorted(found.items()):
            warnings.append(f"{side}: {note} for {', '.join(labels)}: those intervals may be too narrow")
    return {
        "compare_version": COMPARE_VERSION,
        "a": _run_facts(a),
        "b": _run_facts(b),
        "method": {"name": METHOD, "confidence": confidence, "resamples": resamples, "seed": seed, "min_effect": min_effect,
                   "percentiles": wanted},
        "comparisons": comparisons,
        "only_in_a": {kind: sorted(set(a.distributions[kind]) - set(b.distributions[kind])) for kind in KINDS},
        "only_in_b": {kind: sorted(set(b.distributions[kind]) - set(a.distributions[kind])) for kind in KINDS},
        "slos": slo_changes(a.data.get("slos", []), b.data.get("slos", [])),
        "warnings": warnings,
        "notes": notes,
        "gate": {"rules": [rule.text for rule in rules], "regressions": regressions, "failed": bool(regressions)},
    }


def _compare_one(a: RunDocument, b: RunDocument, kind: str, name: str, percentiles: Sequence[float], *, confidence: float,
                 resamples: int, seed: int, min_effect: float) -> dict[str, Any]:
    da, db = a.distributions[kind][name], b.distributions[kind][name]
    rows = []
    for p in percentiles:
        effect_a = design_effect(a.series_points(kind, name), a.warmup, p, da)
        effect_b = design_effect(b.series_points(kind, name), b.warmup, p, db)
        # one generator per (seed, RPC, percentile): a row's figures do not depend on which others were compared
        rng = generator(seed, kind, name, p)
        q = compare_quantile(da, db, p, a_effect=effect_a.value, b_effect=effect_b.value, confidence=confidence,
                             resamples=resamples, rng=rng)
        ratio = q.ratio
        excludes_zero = q.judged and q.diff_interval_us is not None and (q.diff_interval_us[0] > 0 or q.diff_interval_us[1] < 0)
        significant = excludes_zero and ratio is not None and abs(ratio) >= min_effect
        change = ("too few calls" if not q.judged else ("slower" if q.diff_us > 0 else "faster") if significant else "no change")
        note = q.why_not
        if excludes_zero and not significant:
            note = f"the interval excludes 0 but the change is below --min-effect {min_effect:.0%}"
        rows.append({
            "percentile": p, "label": percentile_label(p),
            "a_ms": q.a_us / 1000, "b_ms": q.b_us / 1000, "diff_ms": q.diff_us / 1000,
            "diff_pct": None if ratio is None else round(ratio, 6),
            "ci_ms": _ms_pair(q.diff_interval_us), "ci_pct": None if q.ratio_interval is None else [round(v, 6) for v in q.ratio_interval],
            "a_ci_ms": _ms_pair(q.a_interval_us), "b_ci_ms": _ms_pair(q.b_interval_us),
            "a_design_effect": round(effect_a.value, 3), "b_design_effect": round(effect_b.value, 3),
            "a_design_effect_note": effect_a.note, "b_design_effect_note": effect_b.note,
            "a_effective_calls": round(q.a_n_eff), "b_effective_calls": round(q.b_n_eff),
            "judged": q.judged, "excludes_zero": excludes_zero, "significant": significant, "change": change, "note": note,
        })
    return {"kind": kind, "name": name, "label": short_name(kind, name), "a_count": da.count, "b_count": db.count, "rows": rows}


def _ms_pair(pair: tuple[float, float] | None) -> list[float] | None:
    return None if pair is None else [pair[0] / 1000, pair[1] / 1000]


def _run_facts(run: RunDocument) -> dict[str, Any]:
    data = run.data
    profile = data.get("profile") or {}
    return {
        "path": str(run.path),
        "profile": profile.get("name"),
        "workload": profile.get("workload"),
        "started_at": data.get("started_at"),
        "casemesh_version": data.get("casemesh_version"),
        "valid": data.get("valid", True),
        "passed": data.get("passed"),
        "noisy": (data.get("environment") or {}).get("noisy"),
        "offered_rps": (data.get("throughput") or {}).get("offered_rps"),
        "measured_s": (data.get("throughput") or {}).get("measured_s"),
        "faults": [f.get("name") for f in data.get("faults") or []],
    }


def slo_verdict(slo: Mapping[str, Any]) -> str:
    """``PASS``, ``FAIL``, ``INCONCLUSIVE`` (missed where the machine explains it) or ``NOT EVALUATED``."""
    if not slo.get("evaluated", True):
        return "NOT EVALUATED"
    if slo.get("passed"):
        return "PASS"
    return "INCONCLUSIVE" if slo.get("inconclusive") else "FAIL"


def slo_changes(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each SLO of either run (A's order, then B's new ones) with both verdicts (``None``: not in that run) and whether it changed."""
    by_a, by_b = {s["name"]: s for s in a}, {s["name"]: s for s in b}
    names = list(by_a) + [n for n in by_b if n not in by_a]
    changes = []
    for name in names:
        va, vb = by_a.get(name), by_b.get(name)
        verdict_a, verdict_b = (None if va is None else slo_verdict(va)), (None if vb is None else slo_verdict(vb))
        display = (va or vb or {}).get("display_name") or name
        changes.append({"name": name, "display_name": display, "a": verdict_a, "b": verdict_b,
                        "a_measured": None if va is None else va.get("measured"), "b_measured": None if vb is None else vb.get("measured"),
                        "changed": verdict_a != verdict_b})
    return changes


_MACHINE_FIELDS = ("cpu_model", "cpus", "platform", "python", "grpcio", "governor")


def environment_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(warnings, notes)``: what makes the two runs doubtful to compare, and what differs but is expected.

    Warnings: different machines (fingerprint fields), a noisy or stalled
    machine, an invalid run, a different profile, workload, arrival process
    or offered rate (beyond :data:`RATE_TOLERANCE`), target mode or TLS, a
    control-stream floor that moved by more than :data:`FLOOR_TOLERANCE`x, a
    replay compared with a run. Notes: casemesh versions, durations, load
    processes, injected faults.
    """
    warnings: list[str] = []
    notes: list[str] = []
    env_a, env_b = a.get("environment") or {}, b.get("environment") or {}
    machine_a, machine_b = env_a.get("machine") or env_a, env_b.get("machine") or env_b
    differing = [f"{key} {machine_a.get(key)!s} vs {machine_b.get(key)!s}" for key in _MACHINE_FIELDS
                 if (key in machine_a or key in machine_b) and machine_a.get(key) != machine_b.get(key)]
    if differing:
        warnings.append("different machines or software: " + "; ".join(differing) + ": a difference may be the machine's, not the code's")
    for side, data, env in (("A", a, env_a), ("B", b, env_b)):
        if env.get("noisy"):
            detail = "; ".join((env.get("cpu") or {}).get("warnings") or []) or "other processes or CPU steal during the run"
            warnings.append(f"{side} ran on a noisy machine ({detail})")
        stalls = env.get("stalls") or []
        if stalls:
            worst = max(s.get("worst_p99_ms") or 0 for s in stalls)
            warnings.append(f"{side}: the machine stalled in {len(stalls)} stretch(es) of the measured window (control p99 up to {worst:,.0f} ms)")
        if not data.get("valid", True):
            warnings.append(f"{side} is an invalid run: " + "; ".join(data.get("invalid_reasons") or ["the driver fell behind"]))
    profile_a, profile_b = a.get("profile") or {}, b.get("profile") or {}
    for key in ("name", "workload"):
        if profile_a.get(key) != profile_b.get(key):
            warnings.append(f"different {'profiles' if key == 'name' else 'workloads'}: {profile_a.get(key)} vs {profile_b.get(key)}")
    arrival_a, arrival_b = (profile_a.get("arrival") or {}).get("process"), (profile_b.get("arrival") or {}).get("process")
    if arrival_a != arrival_b:
        warnings.append(f"different arrival processes: {arrival_a} vs {arrival_b}"
                        + (" (a replay against a run)" if "replay" in (arrival_a, arrival_b) else ""))
    rate_a, rate_b = (a.get("throughput") or {}).get("offered_rps"), (b.get("throughput") or {}).get("offered_rps")
    if rate_a and rate_b and abs(rate_b / rate_a - 1) > RATE_TOLERANCE:
        warnings.append(f"different offered rates: {rate_a:,.1f}/s vs {rate_b:,.1f}/s: latency depends on load, compare at the same rate")
    target_a, target_b = a.get("target") or {}, b.get("target") or {}
    if target_a.get("mode") != target_b.get("mode"):
        warnings.append(f"different targets: {target_a.get('mode')} vs {target_b.get('mode')}")
    if bool(target_a.get("tls")) != bool(target_b.get("tls")):
        warnings.append(f"TLS {'on' if target_a.get('tls') else 'off'} in A, {'on' if target_b.get('tls') else 'off'} in B")
    floor_a = ((env_a.get("control") or {}).get("latency") or {}).get("p99_ms")
    floor_b = ((env_b.get("control") or {}).get("latency") or {}).get("p99_ms")
    if floor_a and floor_b and max(floor_a, floor_b) / min(floor_a, floor_b) > FLOOR_TOLERANCE:
        warnings.append(f"the machine's own floor moved: control p99 {floor_a:,.2f} ms in A, {floor_b:,.2f} ms in B "
                        "(the machine was not in the same state)")
    if a.get("casemesh_version") != b.get("casemesh_version"):
        notes.append(f"casemesh {a.get('casemesh_version')} vs {b.get('casemesh_version')}")
    if profile_a.get("duration_s") != profile_b.get("duration_s"):
        notes.append(f"measured windows of {profile_a.get('duration_s')} s and {profile_b.get('duration_s')} s: intervals reflect each run's calls")
    workers_a, workers_b = len(a.get("workers") or []), len(b.get("workers") or [])
    if workers_a != workers_b:
        notes.append(f"{workers_a} vs {workers_b} load processes")
    for side, data in (("A", a), ("B", b)):
        faults = data.get("faults") or []
        if faults:
            notes.append(f"{side} had faults injected: " + ", ".join(f"{f.get('name')} ({f.get('describe', f.get('kind'))})" for f in faults))
    return warnings, notes


def exit_code(document: Mapping[str, Any]) -> int:
    """0 when no ``--fail-on`` rule was broken, 1 when one was."""
    return 1 if document["gate"]["failed"] else 0

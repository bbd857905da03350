"""Profiles and SLO files written for a test, on the URL-shortener workload; reading a run's exit code on a loaded machine."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
#: ``casemesh run``'s exit code when the run is invalid (docs/cli.md).
RUN_INVALID = 4


def verdict_exit(done: subprocess.CompletedProcess, result: dict[str, Any]) -> int:
    """The exit code of a run, read as its SLO verdicts give it when a stalled machine alone made the run invalid.

    Tests of verdicts, reports and plans assert what the verdicts give. On a
    shared VM whose hypervisor steals the CPU (20% was seen in a `make test`
    run), the load generator can fall behind its schedule even at 100/s, and
    the run then exits 4 for that alone. Only that case is read through, as
    0 or 1 from the run's own verdicts; every other exit code stays as it is.
    """
    reasons = result.get("invalid_reasons") or []
    if done.returncode != RUN_INVALID or not reasons or not all("send lag" in reason for reason in reasons):
        return done.returncode
    strict = result["strict"]
    met = all(s["passed"] or (s.get("inconclusive") and not strict) for s in result["slos"] if s.get("evaluated", True))
    return 0 if met else 1


def latency_slo(name: str, rpc: str, within_ms: float, target: float = 0.99) -> str:
    return f"""apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
spec:
  service: url-shortener
  budgetingMethod: Occurrences
  indicator:
    metadata: {{name: {name}-sli}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: casemesh, spec: {{rpc: {rpc}, latency_le_ms: {within_ms}}}}}}}
        total: {{metricSource: {{type: casemesh, spec: {{rpc: {rpc}}}}}}}
  objectives:
    - target: {target}
"""


def write_profile(directory: Path, *, services: str = "[urlshortener, idgen, analytics]", rate: float = 100,
                  process: str = "poisson", duration_s: float = 3, warmup_s: float = 0.5, seed_urls: int = 50,
                  journeys: str = "  - {name: resolve, weight: 100}\n  - {name: shorten, weight: 10}\n",
                  slos: dict[str, str] | None = None) -> Path:
    """A profile file (and its SLO files) in ``directory``; returns the profile's path."""
    slo_names = []
    for file_name, text in (slos or {}).items():
        (directory / file_name).write_text(text)
        slo_names.append(file_name)
    path = directory / "profile.yaml"
    path.write_text(f"""apiVersion: casemesh.dev/v1
kind: Profile
metadata:
  name: test-profile
workload: url-shortener
services: {services}
seed:
  urls: {seed_urls}
arrival:
  process: {process}
  rate_per_s: {rate}
warmup_s: {warmup_s}
duration_s: {duration_s}
request_timeout_ms: 2000
journeys:
{journeys}slos: [{", ".join(slo_names)}]
""")
    return path

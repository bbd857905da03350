"""Profiles and SLO files written for a test, on the URL-shortener workload."""

from __future__ import annotations

from pathlib import Path

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"


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

"""Outbound call policy in the topology (calls:, per-target edges, retry budgets) and in profiles (topology:, harness_retry:)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from casemesh.harness.call_policy import HarnessRetry
from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile
from casemesh.services.runtime.channels import service_config
from casemesh.services.runtime.topology import CallPolicy, Topology, TopologyError, load_topology

SERVICES = {"urlshortener": {"address": "127.0.0.1:1"}, "idgen": {"address": "127.0.0.1:2"}}


def topology_file(tmp_path: Path, calls: dict) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump({"services": SERVICES, "calls": calls}))
    return path


def test_defaults_retry_unavailable_with_a_budget():
    config = json.loads(service_config(CallPolicy()))
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert config["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 3
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    assert "retryThrottling" not in json.loads(service_config(CallPolicy(retry_budget=None)))
    assert json.loads(service_config(CallPolicy(max_attempts=1))) == {"methodConfig": [{"name": [{}]}]}


def test_an_edge_overrides_only_what_it_names_and_survives_a_dump(tmp_path: Path):
    topology = load_topology(topology_file(tmp_path, {"timeout_ms": 300, "edges": {"idgen": {
        "max_attempts": 5, "retryable_codes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"], "retry_budget": None}}}))
    idgen, other = topology.calls.for_target("idgen"), topology.calls.for_target("urlshortener")
    assert (idgen.max_attempts, idgen.retryable_codes, idgen.retry_budget, idgen.timeout_ms) == (
        5, ("UNAVAILABLE", "RESOURCE_EXHAUSTED"), None, 300)
    assert (other.max_attempts, other.retry_budget is not None) == (3, True)
    again = Topology.model_validate(yaml.safe_load(topology.dump()))
    assert again.calls.for_target("idgen") == idgen and again.calls.for_target("urlshortener") == other


@pytest.mark.parametrize(("calls", "message"), [
    ({"edges": {"idgne": {"max_attempts": 2}}}, "calls.edges.idgne: 'idgne' is not a service of the topology"),
    ({"edges": {"idgen": {"retryable_codes": ["UNAVAILBLE"]}}}, "calls.edges.idgen.retryable_codes: Value error, 'UNAVAILBLE' is not a gRPC status code other than OK (did you mean 'UNAVAILABLE'?)"),
    ({"retryable_codes": ["OK"]}, "calls.retryable_codes"),
    ({"retry_budget": {"max_tokens": 0}}, "calls.retry_budget.max_tokens"),
    ({"retry_budget": {"max_tokens": 10, "token_ratio": 0.1, "ratio": 1}}, "calls.retry_budget.ratio: unknown field 'ratio' (did you mean 'token_ratio'?)"),
    ({"max_attempts": 6}, "calls.max_attempts"),
    ({"edges": {"idgen": {"circuit_breaker": {"open_s": 1}}}}, "calls.edges.idgen.circuit_breaker.open_s: unknown field 'open_s' (did you mean 'open_ms'?)"),
    ({"edges": {"idgen": {"initial_backoff_ms": 500}}}, "calls.edges.idgen: max_backoff_ms (100) is below initial_backoff_ms (500)"),
])
def test_bad_call_policies_name_the_field(tmp_path: Path, calls: dict, message: str):
    with pytest.raises(TopologyError) as caught:
        load_topology(topology_file(tmp_path, calls))
    assert message in str(caught.value)


def test_harness_retry_options():
    retry = HarnessRetry(max_attempts=4, retryable_codes=("UNAVAILABLE", "DEADLINE_EXCEEDED"))
    options = dict(retry.channel_options())
    config = json.loads(options["grpc.service_config"])
    assert config["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 4 and "retryThrottling" not in config
    assert options["grpc.enable_retries"] == 1


def test_a_profile_edge_must_name_a_service_it_starts(tmp_path: Path):
    text = (Path(__file__).parents[2] / "harness/profiles/url-shortener-retry-storm.yaml").read_text()
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("      analytics:        # hop 2", "      analytic:        # hop 2").replace("slos:\n  - url-shortener-retry-storm.slo.yaml\n", ""))
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    assert "topology.calls.edges.analytic" in str(caught.value) and "not a service this profile starts" in str(caught.value)

"""The moderation workload as the harness sees it: what it declares, the shipped profiles' documented rates and
settings (moderation, moderation-thresholds), their SLO file (names, targets, twins and their metric names, the seed's
line), the scaling notes, and that the workload imports only the contracts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.moderation import MEASURES, WORKLOAD
from casemesh.harness.workloads.moderation.journeys import AuditCheckParams, PostParams, ReviewParams
from casemesh.harness.workloads.moderation.seeding import SeedParams
from casemesh.services.catalog import SERVICES

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "moderation"
MESH = ("moderation-classifier", "moderation-review", "moderation-pipeline")
MODELS = {"post": PostParams, "review": ReviewParams, "audit_check": AuditCheckParams}
PROFILES = ("moderation", "moderation-thresholds")
SEED_LINE = "shared/seeds/001_58dfc580020147d2.txt line 50"
SLO_FILE = PROFILES_DIR / "moderation.slo.yaml"
#: The seed's 100M items a day, per second.
SEED_ITEMS_PER_S = 100_000_000 / 86_400


def _document(name: str) -> dict:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


def _names(path: Path) -> set[str]:
    return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}


def _slos() -> dict:
    journeys = [*WORKLOAD.journeys, *WORKLOAD.measures]
    return {slo.name: slo for slo in load_slos(SLO_FILE, rpcs=WORKLOAD.rpcs, journeys=journeys)}


def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "moderation" and WORKLOAD.services == ("moderation-pipeline", "moderation-review")
    assert list(WORKLOAD.journeys) == ["post", "review", "audit_check"]
    assert set(MEASURES) == {"time_to_decision", "auto_decision_correct", "review_claim", "review_wait",
                             "appeal_wait", "item_accounted"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.moderation.v1.ModerationService/SubmitItem", "casemesh.moderation.v1.ModerationService/AwaitDecision",
            "casemesh.moderation.v1.ReviewService/ClaimTask", "casemesh.moderation.v1.ReviewService/CompleteTask"} <= set(
        WORKLOAD.rpcs)
    assert "moderation" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("moderation") is WORKLOAD


@pytest.mark.parametrize("name", PROFILES)
def test_the_profiles_rates_and_settings_are_the_documented_ones(name: str):
    document = _document(name)
    ProfileDocument.model_validate(document)
    assert document["workload"] == "moderation" and sorted(document["services"]) == sorted(MESH)
    SeedParams.model_validate(document["seed"])
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    params = {j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    assert document["arrival"]["rate_per_s"] == pytest.approx(sum(weights.values()))  # weights are rates per second
    # AwaitDecision's wait fits in the RPC deadline.
    assert document["request_timeout_ms"] > params["post"].await_ms
    # The review SLA is the one the SLO judges (15 s), the appeals' twice it; the A/B's default band.
    review, pipeline = document["settings"]["moderation-review"], document["settings"]["moderation-pipeline"]
    assert (review["first_review_sla_s"], review["appeal_sla_s"]) == (15, 30)
    assert (pipeline["approve_below"], pipeline["remove_above"]) == (0.2, 0.8)
    # The review capacity is a fifth of the posts: about 14% of posts need a person at the default band (reviews and
    # appeals), about 30% at (0.05, 0.95).
    assert weights["review"] / weights["post"] == pytest.approx(0.2)
    metadata = document["metadata"]
    assert SEED_LINE in metadata["source"] and "100M items/day" in metadata["source"]
    assert document["slos"] == ["moderation.slo.yaml"]


@pytest.mark.parametrize("name", PROFILES)
def test_the_scaling_note_derives_the_rate_from_the_seed(name: str):
    document = _document(name)
    scaling = document["metadata"]["scaling"]
    posts = next(j["weight"] for j in document["journeys"] if j["name"] == "post")
    assert "100M items a day" in scaling and f"{SEED_ITEMS_PER_S:,.0f} a second" in scaling
    assert f"{posts} posts a second" in scaling
    fewer = re.search(r"about ([\d.,]+) times fewer", scaling)
    assert fewer is not None and float(fewer.group(1)) == pytest.approx(SEED_ITEMS_PER_S / posts, abs=0.5)
    assert "2-core machine" in _document("moderation")["metadata"]["scaling"]


def test_the_default_profile_scales_to_the_machine_and_the_a_b_does_not():
    default, ab = _document("moderation"), _document("moderation-thresholds")
    assert default["rate_scale"] == "auto" and default["rate_scales"] == [1, 0.5, 0.25]
    assert "rate_scale" not in ab  # both arms of the A/B at one rate
    assert ab["duration_s"] >= 90 and ab["duration_s"] > default["duration_s"]
    # The same traffic otherwise.
    for key in ("journeys", "seed", "settings", "services", "arrival", "request_timeout_ms"):
        assert ab[key] == default[key], key


def test_the_slo_file_loads_against_the_workload():
    slos = _slos()
    assert set(slos) == {"moderation-time-to-decision", "moderation-review-wait", "moderation-auto-decision-accuracy",
                         "moderation-item-accounted", "moderation-submit-availability",
                         "moderation-time-to-decision-server", "moderation-review-wait-server",
                         "moderation-submit-availability-server"}
    decision = slos["moderation-time-to-decision"]
    assert decision.good.journey == "time_to_decision" and decision.good.latency_le_ms == 500
    assert decision.good.codes == ("OK",) and decision.total.codes == ("OK", "DEADLINE_EXCEEDED")
    assert decision.target == 0.99
    wait = slos["moderation-review-wait"]
    assert wait.good.journey == "review_wait" and wait.good.latency_le_ms is None and wait.target == 0.95
    assert wait.total.codes is None  # every first-review task counts
    accuracy = slos["moderation-auto-decision-accuracy"]
    assert accuracy.good.journey == "auto_decision_correct" and accuracy.good.codes == ("OK",)
    assert accuracy.target == 0.95
    accounted = slos["moderation-item-accounted"]
    assert accounted.good.journey == "item_accounted" and accounted.target == 0.99999
    submit = slos["moderation-submit-availability"]
    assert submit.good.rpc == "casemesh.moderation.v1.ModerationService/SubmitItem" and submit.target == 0.999


def test_every_latency_slo_has_a_server_side_twin_on_the_services_metrics():
    slos = _slos()
    twins = {slo.twin_of: slo for slo in slos.values() if slo.twin_of}
    assert all(twin in slos and slos[twin].twin_of is None for twin in twins)  # twins mirror SLOs of this file
    latency = {name for name, slo in slos.items() if slo.twin_of is None and getattr(slo.good, "latency_le_ms", None)}
    # The review wait is judged by each task's own due time (code OK), not one latency bound: its twin is by kind.
    assert latency == {"moderation-time-to-decision"} and latency | {"moderation-review-wait"} <= set(twins)
    for name, twin in twins.items():
        assert twin.name == f"{name}-server" and twin.target == slos[name].target
    decision = twins["moderation-time-to-decision"]
    assert decision.good.query.startswith(
        'sum(increase(casemesh_moderation_time_to_decision_seconds_bucket{route=~"auto_approved|auto_removed",'
        'le="0.5"}[$window]))')
    assert "casemesh_moderation_time_to_decision_seconds_count{route=~\"auto_approved|auto_removed\"}" in \
        decision.total.query
    # prometheus_client writes the 15 s bound as le="15.0": le="15" would match no series. Each kind within its SLA
    # (the profiles' first_review_sla_s 15 and appeal_sla_s 30), over every task.
    wait = twins["moderation-review-wait"]
    assert 'casemesh_moderation_review_queue_wait_seconds_bucket{kind="first",le="15.0"}' in wait.good.query
    assert 'casemesh_moderation_review_queue_wait_seconds_bucket{kind="appeal",le="30.0"}' in wait.good.query
    assert 'casemesh_moderation_review_queue_wait_seconds_count[$window]' in wait.total.query


def test_the_twins_bounds_are_bucket_bounds_of_the_services_histograms():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from casemesh.services.moderation.pipeline import metrics as pipeline_metrics
    from casemesh.services.moderation.review import metrics as review_metrics

    assert 0.5 in pipeline_metrics.DECISION_BUCKETS and 15 in review_metrics.QUEUE_WAIT_BUCKETS
    registry = CollectorRegistry()
    Histogram("x_seconds", "x", ["kind"], buckets=review_metrics.QUEUE_WAIT_BUCKETS, registry=registry).labels(
        "first").observe(1)
    assert 'le="15.0"' in generate_latest(registry).decode()
    text = SLO_FILE.read_text()
    for metric in ("casemesh_moderation_time_to_decision_seconds", "casemesh_moderation_review_queue_wait_seconds"):
        assert metric in text
    assert pipeline_metrics.TIME_TO_DECISION._name == "casemesh_moderation_time_to_decision_seconds"
    assert review_metrics.QUEUE_WAIT_SECONDS._name == "casemesh_moderation_review_queue_wait_seconds"


def test_every_slo_cites_the_seed_and_the_names_are_the_moderation_s_own():
    text = SLO_FILE.read_text()
    assert SEED_LINE in text
    for document in yaml.safe_load_all(text):
        assert "seed 001 line 50" in document["metadata"]["annotations"]["casemesh.dev/reason"]
    ours = _names(SLO_FILE)
    others = set().union(*(_names(p) for p in PROFILES_DIR.glob("*.slo.yaml") if p != SLO_FILE))
    assert all(name.startswith("moderation-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_the_profiles_load_with_their_slos(monkeypatch: pytest.MonkeyPatch):
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in MESH}}
    monkeypatch.setattr(profile_module, "SERVICES", known)
    for name in PROFILES:
        profile = load_profile(name, known_services=MESH)
        assert profile.workload is WORKLOAD and [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
        assert {slo.name for slo in profile.slos} == _names(SLO_FILE)


@pytest.mark.skipif(not all(name in SERVICES for name in MESH), reason="the moderation services are not registered")
def test_the_shipped_profiles_load_with_the_services_settings():
    for name in PROFILES:
        assert load_profile(name).workload is WORKLOAD


def test_the_workload_imports_only_the_contracts():
    allowed = {"casemesh.services.moderation.contract", "casemesh.services.moderation.corpus"}
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name in allowed, f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert node.module in {"base", "population"}, f"{source.name} imports {node.module}"
    code = ("import sys; from casemesh.harness.workloads.moderation import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    # The contract and the corpus, and what they import: the runtime's ID rule (and its package's errors).
    assert allowed <= loaded <= {"casemesh.services", "casemesh.services.moderation", *allowed,
                                 "casemesh.services.runtime", "casemesh.services.runtime.errors",
                                 "casemesh.services.runtime.identifiers"}, loaded

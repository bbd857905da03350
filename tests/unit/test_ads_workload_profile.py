"""The ads workload as the harness sees it: what it declares, the shipped profiles' documented rates, settings and
budgets (ads, ads-pacing), their SLO files (names, targets, twins, the seed's line), and that the workload imports only
the contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile, with_overrides
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.ads import MEASURES, WORKLOAD
from casemesh.harness.workloads.ads.journeys import (
    BUDGET_EXHAUSTION,
    BUDGET_RESPECTED,
    FREQUENCY_RESPECTED,
    AdvertiserCheckParams,
    PageViewParams,
)
from casemesh.harness.workloads.ads.seeding import SeedParams
from casemesh.harness.workloads.base import scale_rate_fields
from casemesh.services.catalog import SERVICES

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "ads"
MESH = ("ads-campaigns", "ads-budget", "ads-frequency", "ads-server")
MODELS = {"page_view": PageViewParams, "advertiser_check": AdvertiserCheckParams}
SEED_LINE = "shared/seeds/001_58dfc580020147d2.txt line 40"


def _document(name: str) -> dict:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


def _names(path: Path) -> set[str]:
    return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}


def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "ads" and WORKLOAD.services == ("ads-server", "ads-budget", "ads-campaigns")
    assert list(WORKLOAD.journeys) == ["page_view", "advertiser_check"]
    assert set(MEASURES) == {"fill", "frequency_respected", "budget_respected", "budget_exhaustion"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.ads.v1.AdService/Decide", "casemesh.ads.v1.AdService/RecordClick",
            "casemesh.ads.v1.BudgetService/GetSpend", "casemesh.ads.v1.CampaignService/CreateCampaign"} <= set(
        WORKLOAD.rpcs)
    assert "ads" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("ads") is WORKLOAD


@pytest.mark.parametrize("name", ["ads", "ads-pacing"])
def test_the_profiles_rates_and_budgets_are_the_documented_ones(name: str):
    document = _document(name)
    ProfileDocument.model_validate(document)
    assert document["workload"] == "ads" and sorted(document["services"]) == sorted(MESH)
    seed = SeedParams.model_validate(document["seed"])
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    for j in document["journeys"]:
        MODELS[j["name"]].model_validate(j.get("params", {}))
    assert document["arrival"]["rate_per_s"] == pytest.approx(sum(weights.values()))  # weights are rates per second
    # The budgets are sized for the profile's page views and ads-budget's day.
    assert seed.budget_page_views_per_s == weights["page_view"]
    assert seed.budget_day_length_s == document["settings"]["ads-budget"]["day_length_s"]
    metadata = document["metadata"]
    assert SEED_LINE in metadata["source"] and "1M RPS" in metadata["source"]
    fewer = 1_000_000 / weights["page_view"]
    assert f"{round(fewer, -3):,.0f} times fewer" in metadata["scaling"]


def test_the_ads_profile_s_rate_and_day():
    document = _document("ads")
    assert document["arrival"]["rate_per_s"] == 42 and document["rate_scale"] == "auto"
    assert document["settings"]["ads-budget"]["day_length_s"] == 120 and document["settings"]["ads-budget"]["pacing"]
    assert "25,000 times fewer" in document["metadata"]["scaling"] and document["slos"] == ["ads.slo.yaml"]


def test_the_pacing_profile_s_budgets_run_out_late_when_paced_and_early_when_not():
    document = _document("ads-pacing")
    seed = SeedParams.model_validate(document["seed"])
    budget = document["settings"]["ads-budget"]
    assert budget["pacing"] is True and "rate_scale" not in document  # budgets sized for this very rate
    # Each budget buys about 20 impressions a day: paced, the last one fits under the even spread no earlier than
    # 1 - 1/N - slack of the day, well after 80% even for a budget 2 sigma below the median.
    per_day = seed.budget_share * seed.budget_page_views_per_s * seed.budget_day_length_s / seed.campaigns
    assert per_day == pytest.approx(18)
    smallest = per_day * 2.718 ** (-2 * seed.budget_sigma)
    assert 1 - 1 / smallest - budget["pacing_slack"] > 0.85
    # Unpaced, the budgets together buy 30% of the day's page views: gone in about its first third.
    assert seed.budget_share == 0.3
    # At least two whole days in the measured window, and each campaign looked at every 5 s.
    assert document["duration_s"] >= 2 * budget["day_length_s"]
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    assert seed.campaigns / weights["advertiser_check"] == 5
    assert document["slos"] == ["ads.slo.yaml", "ads-pacing.slo.yaml"]


def test_the_slo_files_load_against_the_workload():
    journeys = [*WORKLOAD.journeys, *WORKLOAD.measures]
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "ads.slo.yaml", rpcs=WORKLOAD.rpcs, journeys=journeys)}
    assert set(slos) == {"ads-decide-latency", "ads-decide-availability", "ads-frequency-respected",
                         "ads-budget-respected", "ads-decide-latency-server", "ads-decide-availability-server"}
    latency = slos["ads-decide-latency"]
    assert latency.good.rpc == "casemesh.ads.v1.AdService/Decide" and latency.good.latency_le_ms == 100
    assert latency.target == 0.99 and slos["ads-decide-latency-server"].twin_of == "ads-decide-latency"
    assert slos["ads-decide-availability-server"].twin_of == "ads-decide-availability"
    for name, measure in (("ads-frequency-respected", FREQUENCY_RESPECTED), ("ads-budget-respected", BUDGET_RESPECTED)):
        assert slos[name].good.journey == measure and slos[name].good.codes == ("OK",)
        assert slos[name].target == 0.99999  # any breach in up to 100,000 samples fails
    [pacing] = load_slos(PROFILES_DIR / "ads-pacing.slo.yaml", rpcs=WORKLOAD.rpcs, journeys=journeys)
    assert pacing.name == "ads-budgets-last-the-day" and pacing.good.journey == BUDGET_EXHAUSTION
    assert pacing.good.latency_le_ms == 200 and pacing.good.codes == ("OK",) and pacing.target == 0.9
    text = (PROFILES_DIR / "ads.slo.yaml").read_text()
    assert 'grpc_service="casemesh.ads.v1.AdService",grpc_method="Decide",le="0.1"' in text
    for path in (PROFILES_DIR / "ads.slo.yaml", PROFILES_DIR / "ads-pacing.slo.yaml"):
        assert SEED_LINE in path.read_text()
        for document in yaml.safe_load_all(path.read_text()):
            assert "seed 001 line 40" in document["metadata"]["annotations"]["casemesh.dev/reason"]


def test_the_slo_names_are_the_ads_own():
    ours = _names(PROFILES_DIR / "ads.slo.yaml") | _names(PROFILES_DIR / "ads-pacing.slo.yaml")
    others = set().union(*(_names(p) for p in PROFILES_DIR.glob("*.slo.yaml")
                           if p.name not in ("ads.slo.yaml", "ads-pacing.slo.yaml")))
    assert all(name.startswith("ads-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_the_profiles_load_with_their_slos(monkeypatch: pytest.MonkeyPatch):
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in MESH}}
    monkeypatch.setattr(profile_module, "SERVICES", known)
    for name in ("ads", "ads-pacing"):
        profile = load_profile(name, known_services=MESH)
        assert profile.workload is WORKLOAD and [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
    assert "ads-budgets-last-the-day" in {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in MESH), reason="the ad services are not registered")
def test_the_shipped_profiles_load_with_the_services_settings():
    for name in ("ads", "ads-pacing"):
        assert load_profile(name).workload is WORKLOAD


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.ads.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert node.module in {"base", "population"}, f"{source.name} imports {node.module}"
    code = ("import sys; from casemesh.harness.workloads.ads import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    # The contract, and what it imports: the payment gateway's currency rule and the runtime's ID rule.
    assert "casemesh.services.ads.contract" in loaded and loaded <= {
        "casemesh.services", "casemesh.services.ads", "casemesh.services.ads.contract", "casemesh.services.payments",
        "casemesh.services.payments.contract", "casemesh.services.runtime", "casemesh.services.runtime.errors",
        "casemesh.services.runtime.identifiers"}, loaded


def test_the_budgets_follow_the_rate_scale():
    # Budgets sized for the profile's 40 page views a second would run out early at twice the rate (cheap no-fills
    # passing for capacity) and never at a quarter: --rate-scale and rate_scale: auto size them for the rate run.
    ads = load_profile("ads")
    for scale in (0.25, 0.5, 2.0):
        scaled = with_overrides(ads, rate_scale=scale)
        assert scaled.seed.budget_page_views_per_s == pytest.approx(ads.seed.budget_page_views_per_s * scale)
        assert scaled.seed.model_dump(exclude={"budget_page_views_per_s"}) == ads.seed.model_dump(
            exclude={"budget_page_views_per_s"})
    # casemesh capacity seeds for its highest rate: the profile's own, scaled (harness/cli.py).
    assert scale_rate_fields(ads.seed, 10).budget_page_views_per_s == pytest.approx(400)
    # A seed model without rate-sized fields is left as it is.
    moderation = load_profile("moderation")
    assert with_overrides(moderation, rate_scale=0.5).seed == moderation.seed

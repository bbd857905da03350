"""The search workload's declaration, its profiles (search, search-stragglers) and their SLOs, that it imports only
the contracts, seeding's wait for the shards, and the harness's driver running every journey over real gRPC against a
fake engine (tests/unit/test_search_workload.py)."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from casemesh.harness import workloads as workloads_module
from casemesh.harness.errors import HarnessError
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.search import MEASURES, WORKLOAD
from casemesh.harness.workloads.search.end_checks import INDEX_CONSISTENT
from casemesh.harness.workloads.search.journeys import (
    INDEX_FRESHNESS,
    SEARCH_COMPLETE,
    SEARCH_CORRECT,
    SUGGEST_FOUND,
    AutocompleteParams,
    FreshnessParams,
    SearchParams,
)
from casemesh.harness.workloads.search.seeding import SeedParams, State, wait_ready
from casemesh.search.v1 import shard_pb2
from casemesh.services.catalog import SERVICES

from .test_search_workload import FakeEngine, rpc_error

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "search"
MESH = ("search-shards", "search-indexer", "search-query", "search-autocomplete")
MODELS = {"search": SearchParams, "autocomplete": AutocompleteParams, "breaking_news": FreshnessParams}


def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "search" and set(WORKLOAD.services) == set(MESH)
    assert list(WORKLOAD.journeys) == ["search", "autocomplete", "breaking_news"]
    assert set(MEASURES) == {INDEX_FRESHNESS, SEARCH_COMPLETE, SEARCH_CORRECT, SUGGEST_FOUND, INDEX_CONSISTENT}
    assert not set(MEASURES) & set(WORKLOAD.journeys)  # a measure named like a journey would mix their samples
    assert {"casemesh.search.v1.SearchService/Search", "casemesh.search.v1.AutocompleteService/Suggest",
            "casemesh.search.v1.IndexerService/IndexPage", "casemesh.search.v1.IndexShardService/GetShardInfo"} \
        <= set(WORKLOAD.rpcs)
    assert "search" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("search") is WORKLOAD


def _document(name: str) -> dict:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


def _journeys(document: dict) -> tuple[dict[str, Any], dict[str, float]]:
    return ({j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]},
            {j["name"]: j["weight"] for j in document["journeys"]})


def test_the_search_profile_s_rate_and_mix_are_the_documented_ones():
    document = _document("search")
    ProfileDocument.model_validate(document)
    assert document["workload"] == "search" and document["services"] == list(MESH)
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params == SeedParams()  # the profile writes the defaults out
    assert (seed_params.pages, seed_params.distinct_queries, seed_params.phrase_share) == (5_000, 2_000, 0.1)
    journeys, weights = _journeys(document)
    rate, total = document["arrival"]["rate_per_s"], sum(weights.values())
    assert rate == total == 100  # the weights are the rates per second
    assert weights["autocomplete"] / weights["search"] == 0.75  # 3 in 4 searches typed first
    assert 1_000_000 / weights["search"] == pytest.approx(18_000, rel=0.01)  # "18,000 times fewer"
    assert journeys["search"] == SearchParams() and journeys["autocomplete"] == AutocompleteParams()
    assert journeys["breaking_news"] == FreshnessParams()
    assert journeys["autocomplete"].max_prefix_chars - journeys["autocomplete"].min_prefix_chars + 1 == 7
    timeout_s = document["request_timeout_ms"] / 1000
    assert journeys["breaking_news"].retry_within_s + journeys["breaking_news"].freshness_timeout_s + timeout_s \
        < timeout_s * 10 + 5  # the drain outlasts the longest journey
    metadata = document["metadata"]
    assert "000_69ff90d97cf45f9b.txt lines 592-664" in metadata["source"] and "line 608" in metadata["source"]
    assert "18,000 times fewer" in metadata["scaling"] and "2 to 1" in metadata["scaling"]
    assert document["settings"] == {"search-query": {"shard_deadline_ms": 250}}
    assert document["slos"] == ["search.slo.yaml"]


def test_the_stragglers_profile_is_the_search_profile_with_slow_shards():
    search, stragglers = _document("search"), _document("search-stragglers")
    ProfileDocument.model_validate(stragglers)
    for key in ("workload", "services", "settings", "arrival", "request_timeout_ms", "slos"):
        assert stragglers[key] == search[key], key
    assert _journeys(stragglers) == _journeys(search)
    assert SeedParams.model_validate(stragglers["seed"]) == SeedParams.model_validate(search["seed"])
    [fault] = stragglers["faults"]
    assert fault["kind"] == "delay" and fault["target"] == "search-shards/SearchShard" and fault["percent"] == 2
    shards = 4
    assert 0.07 < 1 - (1 - fault["percent"] / 100) ** shards < 0.09  # about 8% of queries meet a straggler
    delay_ms = float(fault["delay"].removesuffix("ms"))
    deadline_ms = stragglers["settings"]["search-query"]["shard_deadline_ms"]
    assert delay_ms > 500 > deadline_ms  # longer than the seed's budget, cut short by the per-shard deadline
    assert "at_s" not in fault and "for_s" not in fault  # the whole measured window
    assert "--set search-query.shard_deadline_ms=0" in (PROFILES_DIR / "search-stragglers.yaml").read_text()


@pytest.mark.parametrize(("service", "module", "model"), [
    ("search-query", "casemesh.services.search.query.settings", "QuerySettings"),
])
def test_the_profiles_settings_fit_the_services_settings_models(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    for name in ("search", "search-stragglers"):
        getattr(settings_module, model).model_validate(_document(name)["settings"][service])


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "search.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {
        "search-query-latency", "search-suggest-latency", "search-typing-time", "search-index-freshness",
        "search-query-availability", "search-suggest-availability", "search-results-complete",
        "search-results-correct", "search-index-consistent", "search-query-latency-server",
        "search-suggest-latency-server", "search-typing-time-server", "search-index-freshness-server",
        "search-query-availability-server", "search-results-complete-server"}
    assert slos["search-query-latency"].good.latency_le_ms == 500 and slos["search-query-latency"].target == 0.99
    assert slos["search-suggest-latency"].good.latency_le_ms == 100
    assert slos["search-typing-time"].good.latency_le_ms == 7 * 100
    assert slos["search-index-freshness"].good.latency_le_ms == 1_000
    assert slos["search-query-availability"].target == 0.999 and slos["search-results-complete"].target == 0.99
    for name in ("search-query-latency", "search-suggest-latency", "search-typing-time", "search-index-freshness",
                 "search-query-availability", "search-results-complete"):
        assert slos[f"{name}-server"].twin_of == name
    text = (PROFILES_DIR / "search.slo.yaml").read_text()
    assert 'grpc_service="casemesh.search.v1.SearchService",grpc_method="Search",le="0.5"' in text
    assert 'grpc_service="casemesh.search.v1.AutocompleteService",grpc_method="Suggest",le="0.1"' in text
    assert 'grpc_service="casemesh.search.v1.IndexerService",grpc_method="IndexPage",le="1.0"' in text
    assert "000_69ff90d97cf45f9b.txt lines 592-664" in text and 'line 608 "Query' in text


def test_the_slo_names_are_the_search_engine_s_own():
    def names(path: Path) -> set[str]:
        return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}

    ours = names(PROFILES_DIR / "search.slo.yaml")
    others = set().union(*(names(p) for p in PROFILES_DIR.glob("*.slo.yaml") if p.name != "search.slo.yaml"))
    assert all(name.startswith("search-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mesh's services as the profile loader's catalogue sees them, whether or not their modules import (the
    fault's target is looked up in the protos)."""
    import casemesh.harness.faults.model as faults_module
    import casemesh.harness.profile as profile_module

    grpc_services = {"search-shards": ("casemesh.search.v1.IndexShardService",)}
    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings,
                                                                grpc_services=grpc_services.get(n, ()))
                                           for n in MESH}}
    monkeypatch.setattr(profile_module, "SERVICES", known)
    monkeypatch.setattr(faults_module, "SERVICES", known)


@pytest.mark.parametrize("name", ["search", "search-stragglers"])
def test_the_profiles_load_with_their_slos(monkeypatch: pytest.MonkeyPatch, name: str):
    _registered(monkeypatch)
    profile = load_profile(name, known_services=MESH)
    assert profile.workload is WORKLOAD and profile.request_timeout_ms == 2000
    assert [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
    assert {"search-query-latency", "search-results-complete", "search-index-consistent"} <= \
        {slo.name for slo in profile.slos}
    assert [f.grpc_methods for f in profile.faults] == \
        ([("casemesh.search.v1.IndexShardService/SearchShard",)] if name == "search-stragglers" else [])


@pytest.mark.skipif(not all(name in SERVICES for name in MESH), reason="the search services are not registered yet")
def test_the_shipped_profiles_load():
    assert load_profile("search").seed.pages == 5_000
    assert load_profile("search-stragglers").faults[0].percent == 2


#: What the workload may import of casemesh.services: the contract (and what it imports).
ALLOWED_SERVICE_MODULES = {"casemesh.services", "casemesh.services.search", "casemesh.services.search.contract"}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.search.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry"}, f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.search import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "casemesh.services.search.contract" in loaded and loaded <= ALLOWED_SERVICE_MODULES, loaded


# seeding's wait for the shards ---------------------------------------------------------------------------------------

async def test_seeding_waits_for_the_shards_to_finish_rebuilding():
    answers = [rpc_error(grpc.StatusCode.UNAVAILABLE),
               shard_pb2.GetShardInfoResponse(shard_count=2, shards=[shard_pb2.ShardInfo(shard=0, rebuilding=True),
                                                                     shard_pb2.ShardInfo(shard=1)]),
               shard_pb2.GetShardInfoResponse(shard_count=2, shards=[shard_pb2.ShardInfo(shard=0),
                                                                     shard_pb2.ShardInfo(shard=1)])]
    calls = []

    async def call(service: str, method: str, request: Any) -> Any:
        calls.append((service, method))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    await wait_ready(call, 10, sleep=lambda s: asyncio.sleep(0))
    assert calls == [("search-shards", "GetShardInfo")] * 3 and not answers

    async def rebuilding(service: str, method: str, request: Any) -> Any:
        return shard_pb2.GetShardInfoResponse(shard_count=1, shards=[shard_pb2.ShardInfo(shard=0, rebuilding=True)])

    with pytest.raises(HarnessError, match=r"shards \[0\] still rebuilding"):
        await wait_ready(rebuilding, 0.05, sleep=lambda s: asyncio.sleep(0.01))

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(grpc.aio.AioRpcError):
        await wait_ready(refused, 10)


# the harness's driver over real gRPC, against the fake engine ---------------------------------------------------------

def _servicers(engine: FakeEngine) -> list[Any]:
    from casemesh.search.v1 import indexer_pb2_grpc, query_pb2_grpc, shard_pb2_grpc

    def forward(name: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await engine.handle(name, request)
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
        return method

    def servicer(base: type, methods: tuple[str, ...]) -> Any:
        return type(base.__name__.removesuffix("Servicer"), (base,), {m: forward(m) for m in methods})()

    return [
        (query_pb2_grpc.add_SearchServiceServicer_to_server,
         servicer(query_pb2_grpc.SearchServiceServicer, ("Search",))),
        (query_pb2_grpc.add_AutocompleteServiceServicer_to_server,
         servicer(query_pb2_grpc.AutocompleteServiceServicer, ("Suggest",))),
        (indexer_pb2_grpc.add_IndexerServiceServicer_to_server, servicer(
            indexer_pb2_grpc.IndexerServiceServicer, ("IndexPage", "GetPage", "ComputePageRank", "GetIndexStats"))),
        (shard_pb2_grpc.add_IndexShardServiceServicer_to_server,
         servicer(shard_pb2_grpc.IndexShardServiceServicer, ("GetShardInfo",))),
    ]


async def test_the_driver_runs_every_journey_over_grpc_and_checks_at_the_end(monkeypatch: pytest.MonkeyPatch):
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    _registered(monkeypatch)
    profile = with_overrides(load_profile("search", known_services=MESH), duration_s=1.5, warmup_s=0.3,
                             rate_scale=0.5)
    # Every journey often enough to show in 1.5 s (breaking news is 2% of the profile's arrivals).
    journeys = tuple(dataclasses.replace(j, weight=10.0) for j in profile.journeys)
    profile = dataclasses.replace(profile, journeys=journeys, seed=SeedParams(pages=200, distinct_queries=100,
                                                                              check_pages=10, body_words=60))
    engine = FakeEngine()
    server = grpc.aio.server()
    for add, servicer in _servicers(engine):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {name: channel for name in MESH}, rng_seed=3)
        await driver.seed()
        assert isinstance(driver.state, State) and len(driver.state.queries) == 100 and len(engine.pages) == 200
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    for journey in ("search", "autocomplete", "breaking_news", INDEX_FRESHNESS, SEARCH_CORRECT, SEARCH_COMPLETE):
        assert stats.journey(journey).count() > 0, journey
        assert stats.journey(journey).count(["OK"]) == stats.journey(journey).count(), journey
    assert stats.journey(SUGGEST_FOUND).count() == stats.journey("autocomplete").count()
    assert stats.rpc("casemesh.search.v1.SearchService/Search").count() >= stats.journey("search").count()
    assert stats.journey(INDEX_CONSISTENT).count(["OK"]) == 1 == stats.journey(INDEX_CONSISTENT).count()

"""The crawler workload as the harness sees it: what it declares, the shipped profile's documented rate and settings,
its SLO file (names, targets, twins), that the workload imports only the contracts, and the driver running both
journeys over real gRPC against the fake crawler and web of test_crawler_workload."""

from __future__ import annotations

import ast
import dataclasses
import math
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
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.crawler import MEASURES, WORKLOAD
from casemesh.harness.workloads.crawler.journeys import (
    CRAWL_CONSISTENT,
    CRAWL_TIME,
    CRAWL_TIME_PER_PAGE,
    DUPLICATES_KEPT_OUT,
    POLITENESS_RESPECTED,
    ROBOTS_RESPECTED,
    CrawlParams,
    StatusParams,
)
from casemesh.harness.workloads.crawler.seeding import SeedParams, State
from casemesh.services.catalog import SERVICES

from .test_crawler_workload import FakeCrawlerWeb

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "crawler"
MESH = ("search-shards", "search-indexer", "crawler-web", "crawler")
MODELS = {"crawl": CrawlParams, "status": StatusParams}


def _document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "crawler.yaml").read_text())


def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "crawler" and WORKLOAD.services == ("crawler", "crawler-web")
    assert list(WORKLOAD.journeys) == ["crawl", "status"]
    assert set(MEASURES) == {"crawl_time", "crawl_time_per_page", "robots_respected", "politeness_respected",
                             "crawl_consistent", "duplicates_kept_out"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.crawler.v1.CrawlerService/StartCrawl", "casemesh.crawler.v1.CrawlerService/GetCrawl",
            "casemesh.crawler.v1.SyntheticWebService/Audit"} <= set(WORKLOAD.rpcs)
    assert "crawler" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("crawler") is WORKLOAD


def test_the_profile_s_rate_is_the_documented_one():
    document = _document()
    ProfileDocument.model_validate(document)
    assert document["workload"] == "crawler" and sorted(document["services"]) == sorted(MESH)
    SeedParams.model_validate(document.get("seed", {}))
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    params = {j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    rate = document["arrival"]["rate_per_s"]
    assert rate == pytest.approx(sum(weights.values()))  # the weights are the rates per second
    crawl = params["crawl"]
    assert weights["crawl"] == 0.3 and crawl.max_pages == 60 and crawl.seeds == 3 and crawl.index_pages
    pages_per_s = weights["crawl"] * crawl.max_pages
    googlebot = 10_000_000_000 / (30 * 86_400)  # 10B pages re-crawled monthly
    assert round(googlebot, -1) == 3_860 and round(googlebot / pages_per_s) == 214
    # About 2 crawls running (0.3/s x 6.5 s); an arrival finds max_crawls (8) running well under 1% of the time.
    running = weights["crawl"] * 6.5
    beyond = 1 - sum(math.exp(-running) * running ** k / math.factorial(k) for k in range(8))
    assert beyond < 0.005 and weights["crawl"] < 0.9 / 2  # at most half of the 0.9 crawls/s this machine sustains
    # The drain (10 request timeouts + 5 s) outlasts the longest crawl journey: the crawl timeout counts from
    # StartCrawl's first send (its resends included), then a last poll, CancelCrawl, and Audit's resends.
    timeout_s = document["request_timeout_ms"] / 1000
    assert crawl.crawl_timeout_s + 2 * timeout_s + crawl.retry_within_s + timeout_s < timeout_s * 10 + 5
    assert crawl.crawl_timeout_s >= 2 * 13  # twice the slowest crawl seen with max_crawls running
    metadata = document["metadata"]
    assert "seeds/001_58dfc580020147d2.txt line 34" in metadata["source"] and "10B pages" in metadata["source"]
    assert "214 times fewer" in metadata["scaling"] and "3,860 pages a second" in metadata["scaling"]
    assert document["settings"]["crawler"]["politeness_interval_ms"] == 1_000
    assert document["settings"]["crawler-web"]["min_interval_ms"] == 1_000


@pytest.mark.parametrize(("service", "module", "model"), [
    ("crawler", "casemesh.services.crawler.frontier.settings", "CrawlerSettings"),
    ("crawler-web", "casemesh.services.crawler.web.settings", "WebSettings"),
])
def test_the_profile_s_settings_are_the_services_defaults(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    settings = getattr(settings_module, model)
    # The profile writes its knobs out for the reader; it measures the defaults.
    assert settings.model_validate(_document()["settings"][service]) == settings()


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "crawler.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {"crawler-crawl-throughput", "crawler-robots-respected", "crawler-politeness-respected",
                         "crawler-crawl-consistent", "crawler-start-availability", "crawler-progress-availability",
                         "crawler-status-latency", "crawler-status-latency-server",
                         "crawler-start-availability-server", "crawler-robots-respected-server",
                         "crawler-politeness-respected-server"}
    throughput = slos["crawler-crawl-throughput"]
    assert throughput.good.journey == CRAWL_TIME_PER_PAGE and throughput.good.latency_le_ms == 200  # 5 pages/s
    assert throughput.good.codes == ("OK",) and throughput.target == 0.95
    for name, measure in (("crawler-robots-respected", ROBOTS_RESPECTED),
                          ("crawler-politeness-respected", POLITENESS_RESPECTED),
                          ("crawler-crawl-consistent", CRAWL_CONSISTENT)):
        assert slos[name].good.journey == measure and slos[name].good.codes == ("OK",)
    assert slos["crawler-status-latency"].good.latency_le_ms == 100
    for name in ("crawler-status-latency", "crawler-start-availability", "crawler-robots-respected",
                 "crawler-politeness-respected"):
        assert slos[f"{name}-server"].twin_of == name
    text = (PROFILES_DIR / "crawler.slo.yaml").read_text()
    assert 'grpc_service="casemesh.crawler.v1.CrawlerService",grpc_method="GetCrawl",le="0.1"' in text
    assert "seeds/001_58dfc580020147d2.txt line 34" in text


def test_the_slo_names_are_the_crawler_s_own():
    def names(path: Path) -> set[str]:
        return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}

    ours = names(PROFILES_DIR / "crawler.slo.yaml") | names(PROFILES_DIR / "crawler-dedup.slo.yaml")
    others = set().union(*(names(p) for p in PROFILES_DIR.glob("*.slo.yaml")
                           if p.name not in ("crawler.slo.yaml", "crawler-dedup.slo.yaml")))
    assert all(name.startswith("crawler-") for name in ours) and not ours & others


def test_the_dedup_profile_meets_copies_and_judges_only_what_it_is_for():
    """crawler-dedup: crawls that cover most of a small web (so copies meet their originals), evenly spaced so that
    every run has some, judged by duplicates_kept_out alone."""
    document = yaml.safe_load((PROFILES_DIR / "crawler-dedup.yaml").read_text())
    ProfileDocument.model_validate(document)
    assert document["workload"] == "crawler" and sorted(document["services"]) == sorted(MESH)
    assert document["slos"] == ["crawler-dedup.slo.yaml"] and document["arrival"]["process"] == "constant"
    [journey] = document["journeys"]
    crawl = CrawlParams.model_validate(journey["params"])
    web = document["settings"]["crawler-web"]
    assert crawl.max_pages >= 0.7 * web["hosts"] * web["pages_per_host"]  # most of the web: copies meet originals
    assert document["arrival"]["rate_per_s"] * document["duration_s"] >= 3
    timeout_s = document["request_timeout_ms"] / 1000
    assert crawl.crawl_timeout_s + 2 * timeout_s + crawl.retry_within_s + timeout_s < timeout_s * 10 + 5
    [slo] = load_slos(PROFILES_DIR / "crawler-dedup.slo.yaml", rpcs=WORKLOAD.rpcs,
                      journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])
    assert slo.name == "crawler-duplicates-kept-out" and slo.good.journey == DUPLICATES_KEPT_OUT
    assert slo.good.codes == ("OK",) and slo.target == 0.9


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's services as the profile loader's catalogue sees them, whether or not their modules import."""
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in MESH}}
    monkeypatch.setattr(profile_module, "SERVICES", known)


def test_the_profile_loads_with_its_slos(monkeypatch: pytest.MonkeyPatch):
    _registered(monkeypatch)
    profile = load_profile("crawler", known_services=MESH)
    assert profile.workload is WORKLOAD and profile.request_timeout_ms == 5000
    assert [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
    assert {"crawler-crawl-throughput", "crawler-politeness-respected"} <= {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in MESH), reason="the pipeline's services are not registered")
def test_the_shipped_profile_loads():
    assert load_profile("crawler").workload is WORKLOAD


#: What the workload may import of casemesh.services: the contract (and what it imports).
ALLOWED_SERVICE_MODULES = {"casemesh.services", "casemesh.services.crawler", "casemesh.services.crawler.contract",
                           "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
                           "casemesh.services.runtime.errors"}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.crawler.contract", f"{source.name} imports {name}"
                assert "Fetch" not in name
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert node.module in {"base", "idempotent_retry", "errors"}, f"{source.name} imports {node.module}"
        assert '"Fetch"' not in source.read_text()  # a fetch of its own would use a host's politeness interval
    code = ("import sys; from casemesh.harness.workloads.crawler import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "casemesh.services.crawler.contract" in loaded and loaded <= ALLOWED_SERVICE_MODULES, loaded


# the harness's driver over real gRPC, against the fake crawler and web ------------------------------------------------

def _servicers(fake: FakeCrawlerWeb) -> list[Any]:
    from casemesh.crawler.v1 import crawler_pb2_grpc, web_pb2_grpc

    def forward(name: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await fake.handle(name, request)
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
        return method

    crawler = type("Crawler", (crawler_pb2_grpc.CrawlerServiceServicer,),
                   {m: forward(m) for m in ("StartCrawl", "GetCrawl", "CancelCrawl")})
    web = type("Web", (web_pb2_grpc.SyntheticWebServiceServicer,), {m: forward(m) for m in ("GetWeb", "Audit")})
    return [(crawler_pb2_grpc.add_CrawlerServiceServicer_to_server, crawler()),
            (web_pb2_grpc.add_SyntheticWebServiceServicer_to_server, web())]


async def test_the_driver_runs_both_journeys_over_grpc_and_judges_each_crawl(monkeypatch: pytest.MonkeyPatch):
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import ProfileJourney, with_overrides

    _registered(monkeypatch)
    profile = with_overrides(load_profile("crawler", known_services=MESH), duration_s=1.5, warmup_s=0.2,
                             rate_scale=4)
    fast = CrawlParams(max_pages=60, poll_interval_ms=50)  # crawls of a few polls, so they end inside the run
    profile = dataclasses.replace(profile, journeys=tuple(
        ProfileJourney(j.name, j.weight, fast, j.journey) if j.name == "crawl" else j for j in profile.journeys))
    fake = FakeCrawlerWeb(hosts=40, pages_per_poll=20)
    server = grpc.aio.server()
    for add, servicer in _servicers(fake):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {name: channel for name in WORKLOAD.services}, rng_seed=3)
        await driver.seed()
        assert isinstance(driver.state, State) and len(driver.state.home_pages) == 40
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    starts = stats.rpc("casemesh.crawler.v1.CrawlerService/StartCrawl")
    assert starts.count() > 0 and starts.count(["OK"]) == starts.count()
    assert stats.journey("crawl").count() > 0
    for measure in (CRAWL_TIME, CRAWL_TIME_PER_PAGE, ROBOTS_RESPECTED, POLITENESS_RESPECTED, CRAWL_CONSISTENT):
        calls = stats.journey(measure)
        assert calls.count() > 0 and calls.count(["OK"]) == calls.count(), measure
    assert stats.journey("status").count() > 0
    assert len({r.crawl_id for m, r in fake.calls if m == "StartCrawl"}) == len(fake.crawls)

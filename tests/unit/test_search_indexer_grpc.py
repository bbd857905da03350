"""The search indexer through real gRPC (services/search/indexer/service.py), served by the runtime with its
DEFINITION, settings and data folder, next to a small fake of ``search-shards`` (IndexShardService: holds what it is
put, records the ranks pushed, refuses another shard count as the real one does, and fails on demand): every status
code of protos/casemesh/search/v1/indexer.proto (INVALID_ARGUMENT naming each field path, NOT_FOUND,
FAILED_PRECONDITION ``no_pages``, UNAVAILABLE with the page stored when its shard does not take it, UNAVAILABLE when a
shard does not take the ranks, PERMISSION_DENIED for ScanShard from another caller than ``search-shards``); ScanShard
streams exactly a shard's pages with their ranks; the ranks pushed are networkx's PageRank; a changed shard count is
learned again; passes run by themselves every ``pagerank_interval_s``, push again what a shard refused, and at start;
pages, ranks' version and the shard count survive a restart; a store that is gone answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Self

import grpc
import networkx as nx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, search_pb2, shard_pb2, shard_pb2_grpc
from casemesh.services.runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from casemesh.services.runtime.errors import InvalidArgument, Unavailable
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.search.contract import shard_of
from casemesh.services.search.indexer.indexer import Indexer
from casemesh.services.search.indexer.routing import ShardRouter
from casemesh.services.search.indexer.service import DEFINITION, NAME, IndexerServicer
from casemesh.services.search.indexer.settings import IndexerSettings
from casemesh.services.search.indexer.store import FILE_NAME, PageStore

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
SHARDS = "search-shards"


class FakeShards(shard_pb2_grpc.IndexShardServiceServicer):
    """IndexShardService enough for the indexer: pages per URL, ranks pushed, refusals as the proto states them."""

    def __init__(self, shard_count: int = 4) -> None:
        self.shard_count = shard_count
        self.pages: dict[str, shard_pb2.PutPageRequest] = {}
        self.ranks: dict[str, float] = {}
        self.rank_versions: dict[int, int] = {}
        self.fail_puts = False
        self.fail_ranks = False

    def _check(self, shard: int, shard_count: int) -> None:
        if shard_count != self.shard_count:
            raise InvalidArgument("shard_count", f"{shard_count} is not this process's {self.shard_count}")
        if not 0 <= shard < shard_count:
            raise InvalidArgument("shard", f"{shard} is not 0 to {shard_count - 1}")

    async def PutPage(self, request, context):
        if self.fail_puts:
            raise Unavailable("the shard is rebuilding")
        self._check(request.shard, request.shard_count)
        assert request.shard == shard_of(request.page.url, request.shard_count)
        created = request.page.url not in self.pages
        self.pages[request.page.url] = request
        return shard_pb2.PutPageResponse(created=created, doc_count=len(self.pages))

    async def SetPageRanks(self, request, context):
        if self.fail_ranks:
            raise Unavailable("the shard is rebuilding")
        self._check(request.shard, request.shard_count)
        assert 0 < len(request.ranks) <= 100_000 or not request.ranks
        for entry in request.ranks:
            assert shard_of(entry.url, request.shard_count) == request.shard and 0 < entry.pagerank <= 1
            self.ranks[entry.url] = entry.pagerank
        self.rank_versions[request.shard] = request.rank_version
        return shard_pb2.SetPageRanksResponse(updated=sum(e.url in self.pages for e in request.ranks))

    async def GetShardInfo(self, request, context):
        return shard_pb2.GetShardInfoResponse(shard_count=self.shard_count, shards=[
            shard_pb2.ShardInfo(shard=shard, rank_version=self.rank_versions.get(shard, 0))
            for shard in range(self.shard_count)])


def _fake_definition(fake: FakeShards) -> ServiceDefinition:
    async def build(context: RuntimeContext) -> StatelessComponent:
        return StatelessComponent(fake, shard_pb2_grpc.add_IndexShardServiceServicer_to_server)

    return ServiceDefinition(name=SHARDS, grpc_services=("casemesh.search.v1.IndexShardService",), dependencies=(),
                             build=build)


def _url(n: int) -> str:
    return f"http://host{n % 5:03d}.web.test/page/{n}"


def _page(n: int, links: tuple[int, ...] = (), title: str = "") -> search_pb2.WebPage:
    return search_pb2.WebPage(url=_url(n), title=title or f"Page {n}", body=f"the body of page {n}",
                              outlinks=[_url(m) for m in links])


def _index(n: int, links: tuple[int, ...] = (), title: str = "") -> indexer_pb2.IndexPageRequest:
    return indexer_pb2.IndexPageRequest(page=_page(n, links, title))


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _eventually(check: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class _Running:
    """The indexer and the fake shards served in this process; stubs as anyone and as search-shards."""

    def __init__(self, tmp_path, fake: FakeShards, settings: dict) -> None:
        self.tmp_path, self.fake, self.settings = tmp_path, fake, settings

    async def __aenter__(self) -> Self:
        topology = loopback_topology([SHARDS, NAME], data_dir=self.tmp_path, settings={NAME: self.settings})
        self.mesh, self.stop, self.task = await start_mesh([_fake_definition(self.fake), DEFINITION], topology)
        self.shards_context = RuntimeContext(topology, secret=TEST_SECRET).for_service(SHARDS)
        self.public = indexer_pb2_grpc.IndexerServiceStub(self.mesh.anonymous_channel(NAME))
        self.as_shards = indexer_pb2_grpc.IndexerServiceStub(self.shards_context.channel(NAME))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shards_context.close()
        await self.mesh.close()
        self.stop.set()
        await asyncio.wait_for(self.task, 30)

    async def stats(self) -> indexer_pb2.GetIndexStatsResponse:
        return await self.public.GetIndexStats(indexer_pb2.GetIndexStatsRequest(), timeout=WAIT_S)

    async def scan(self, shard: int, shard_count: int) -> list[indexer_pb2.ScanShardResponse]:
        return [r async for r in self.as_shards.ScanShard(indexer_pb2.ScanShardRequest(
            shard=shard, shard_count=shard_count), timeout=WAIT_S)]


def test_the_definition():
    assert DEFINITION.name == NAME == "search-indexer" and DEFINITION.dependencies == (SHARDS,)
    assert DEFINITION.grpc_services == ("casemesh.search.v1.IndexerService",)
    assert DEFINITION.access.public == {"IndexPage", "GetPage", "ComputePageRank", "GetIndexStats"}
    assert dict(DEFINITION.access.internal) == {"ScanShard": (SHARDS,)}


async def test_the_indexer_through_the_runtime(tmp_path):
    fake = FakeShards(shard_count=4)
    async with _Running(tmp_path, fake, {"pagerank_interval_s": 0}) as running:
        public = running.public
        stats = await running.stats()
        assert (stats.page_count, stats.link_count, stats.last_pass.rank_version) == (0, 0, 0)
        code, details = await _code(public.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("no_pages"), details

        links = {1: (2, 3, 1, 2), 2: (1,), 3: (1, 4), 4: (), 5: (1, 6)}  # 6 is linked, never stored
        for n, outlinks in links.items():
            answer = await public.IndexPage(_index(n, outlinks), timeout=WAIT_S)
            assert (answer.shard, answer.created, answer.page_count) == (shard_of(_url(n), 4), True, n)
        again = await public.IndexPage(_index(1, (2, 3), title="Page one, again"), timeout=WAIT_S)
        assert (again.created, again.page_count) == (False, 5)
        assert fake.pages[_url(1)].page.title == "Page one, again" and set(fake.pages) == {_url(n) for n in links}
        page = await public.GetPage(indexer_pb2.GetPageRequest(url=_url(1)), timeout=WAIT_S)
        assert (page.page.outlinks, page.pagerank, page.shard) == ([_url(2), _url(3)], 0.0, shard_of(_url(1), 4))
        code, _ = await _code(public.GetPage(indexer_pb2.GetPageRequest(url=_url(6)), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        for request, field in ((indexer_pb2.GetPageRequest(), "url"), (indexer_pb2.GetPageRequest(url="x"), "url")):
            code, details = await _code(public.GetPage(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        bad = [(indexer_pb2.IndexPageRequest(), "page.url"),
               (indexer_pb2.IndexPageRequest(page=search_pb2.WebPage(url=_url(7), title="t" * 513)), "page.title"),
               (indexer_pb2.IndexPageRequest(page=search_pb2.WebPage(url=_url(7), body="b" * 200_001)), "page.body"),
               (indexer_pb2.IndexPageRequest(page=search_pb2.WebPage(url=_url(7), outlinks=[_url(1), "x"])),
                "page.outlinks[1]"),
               (indexer_pb2.IndexPageRequest(page=search_pb2.WebPage(url=_url(7), outlinks=[_url(1)] * 501)),
                "page.outlinks[500]")]
        for request, field in bad:
            code, details = await _code(public.IndexPage(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        stats = await running.stats()
        assert (stats.page_count, stats.link_count, stats.shard_count) == (5, 7, 4)  # nothing of the bad requests

        computed = (await public.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S)).rank_pass
        assert (computed.rank_version, computed.nodes, computed.edges) == (1, 6, 7)
        assert computed.iterations > 1 and computed.compute_ms > 0 and computed.finished_at_unix_ms > 0
        graph = nx.DiGraph([(_url(1), _url(2)), (_url(1), _url(3)), (_url(2), _url(1)), (_url(3), _url(1)),
                            (_url(3), _url(4)), (_url(5), _url(1)), (_url(5), _url(6))])
        expected = nx.pagerank(graph, alpha=0.85, tol=1e-6)
        assert fake.ranks == pytest.approx({_url(n): expected[_url(n)] for n in links}, abs=1e-12)
        assert fake.rank_versions == {0: 1, 1: 1, 2: 1, 3: 1}
        page = await public.GetPage(indexer_pb2.GetPageRequest(url=_url(1)), timeout=WAIT_S)
        assert page.pagerank == pytest.approx(expected[_url(1)], abs=1e-12)
        assert (await running.stats()).last_pass == computed
        assert REGISTRY.get_sample_value("casemesh_search_indexer_rank_version") == 1

        scanned = {}
        for shard in range(4):
            for response in await running.scan(shard, 4):
                assert shard_of(response.page.url, 4) == shard and response.page.url not in scanned
                scanned[response.page.url] = response
        assert set(scanned) == {_url(n) for n in links}
        assert scanned[_url(1)].page.title == "Page one, again" and list(scanned[_url(1)].page.outlinks) == [
            _url(2), _url(3)]
        assert all(r.rank_version == 1 and r.pagerank == pytest.approx(expected[u]) for u, r in scanned.items())
        assert {r.page.url for r in await running.scan(0, 1)} == set(scanned)
        for shard, count, field in ((4, 4, "shard"), (0, 0, "shard_count"), (0, 65, "shard_count")):
            code, details = await _code(running.scan(shard, count))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        code, _ = await _code(public.ScanShard(indexer_pb2.ScanShardRequest(shard=0, shard_count=4),
                                               timeout=WAIT_S).read())
        assert code == grpc.StatusCode.PERMISSION_DENIED

        # The shard does not take a page: UNAVAILABLE, and the page is stored all the same.
        failures = REGISTRY.get_sample_value("casemesh_search_indexer_shard_put_failures_total") or 0
        fake.fail_puts = True
        code, details = await _code(public.IndexPage(_index(6, (1,)), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE and "stored" in details, details
        assert REGISTRY.get_sample_value("casemesh_search_indexer_shard_put_failures_total") == failures + 1
        assert (await public.GetPage(indexer_pb2.GetPageRequest(url=_url(6)), timeout=WAIT_S)).page == _page(6, (1,))
        assert _url(6) not in fake.pages
        fake.fail_puts = False
        assert not (await public.IndexPage(_index(6, (1,)), timeout=WAIT_S)).created  # the retry
        assert _url(6) in fake.pages

        # The shards do not take the ranks: UNAVAILABLE, the pass is kept; the next pass pushes again.
        fake.fail_ranks = True
        code, details = await _code(public.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE and "pass 2" in details, details
        assert (await running.stats()).last_pass.rank_version == 2 and fake.rank_versions == {0: 1, 1: 1, 2: 1, 3: 1}
        fake.fail_ranks = False
        computed = (await public.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S)).rank_pass
        assert computed.rank_version == 3 and fake.rank_versions == {0: 3, 1: 3, 2: 3, 3: 3}

        # The shards restarted with 3 shards: the indexer learns it from the refusal and routes by 3.
        fake.shard_count = 3
        answer = await public.IndexPage(_index(8, (1,)), timeout=WAIT_S)
        assert (answer.shard, answer.created) == (shard_of(_url(8), 3), True)
        assert fake.pages[_url(8)].shard_count == 3 and (await running.stats()).shard_count == 3
        assert (await public.GetPage(indexer_pb2.GetPageRequest(url=_url(8)), timeout=WAIT_S)).shard == answer.shard


async def test_passes_run_by_themselves_push_again_and_survive_a_restart(tmp_path):
    fake = FakeShards(shard_count=2)
    fake.fail_ranks = True
    async with _Running(tmp_path, fake, {"pagerank_interval_s": 0.1}) as running:
        answers = await asyncio.gather(*(running.public.IndexPage(_index(n, (n + 1, n + 2)), timeout=WAIT_S)
                                         for n in range(64)))
        assert max(a.page_count for a in answers) == 64 and all(a.created for a in answers)
        await _eventually(lambda: _version_at_least(running, 1), "a pass by the ticker")
        assert not fake.rank_versions
        fake.fail_ranks = False

        async def pushed(pages: int) -> bool:  # the last pass's ranks of every page are on both shards
            version = (await running.stats()).last_pass.rank_version
            return fake.rank_versions == {0: version, 1: version} and len(fake.ranks) == pages

        await _eventually(lambda: pushed(64), "the ranks pushed again")
        version = (await running.stats()).last_pass.rank_version
        await running.public.IndexPage(_index(100, (1,)), timeout=WAIT_S)
        await _eventually(lambda: _version_at_least(running, version + 1), "a pass after a change")
        await _eventually(lambda: pushed(65), "its ranks pushed")
        before = await running.stats()

    fake = FakeShards(shard_count=2)
    fake.fail_puts = True  # (not called: nothing is indexed)
    async with _Running(tmp_path, fake, {"pagerank_interval_s": 0}) as running:
        stats = await running.stats()
        assert (stats.page_count, stats.link_count, stats.shard_count) == (before.page_count, before.link_count, 2)
        await _eventually(lambda: _version_at_least(running, before.last_pass.rank_version + 1), "the start pass")
        page = await running.public.GetPage(indexer_pb2.GetPageRequest(url=_url(100)), timeout=WAIT_S)
        assert page.page == _page(100, (1,)) and page.pagerank > 0
        assert sum([len(await running.scan(shard, 2)) for shard in range(2)]) == 65


async def _version_at_least(running: _Running, version: int) -> bool:
    return (await running.stats()).last_pass.rank_version >= version


class _NoShards:
    """A stub whose calls never get an answer (what a ShardRouter sees of shards that are down)."""

    def __getattr__(self, name: str):
        async def call(*args, **kwargs):
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "connection refused")
        return call


async def test_an_indexer_whose_store_is_gone_answers_unavailable(tmp_path):
    store = PageStore(tmp_path / FILE_NAME)
    indexer = Indexer(store, ShardRouter(_NoShards(), 1.0, 1.0), IndexerSettings(pagerank_interval_s=0))
    await indexer.start()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(IndexerServicer(indexer), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = indexer_pb2_grpc.IndexerServiceStub(channel)
    try:
        code, details = await _code(stub.IndexPage(_index(1), timeout=WAIT_S))  # stored; the shards are down
        assert code == grpc.StatusCode.UNAVAILABLE and "stored" in details
        code, _ = await _code(stub.GetPage(indexer_pb2.GetPageRequest(url=_url(1)), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE  # no shard count was ever learned
        await store.close()  # the disk is gone
        for call in (stub.IndexPage(_index(2), timeout=WAIT_S),
                     stub.GetPage(indexer_pb2.GetPageRequest(url=_url(1)), timeout=WAIT_S),
                     stub.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S),
                     stub.ScanShard(indexer_pb2.ScanShardRequest(shard=0, shard_count=1), timeout=WAIT_S).read()):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE
        stats = await stub.GetIndexStats(indexer_pb2.GetIndexStatsRequest(), timeout=WAIT_S)
        assert (stats.page_count, stats.shard_count, stats.last_pass.rank_version) == (1, 0, 0)
    finally:
        await channel.close()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await indexer.close()

"""search-shards through real gRPC, served by the runtime (DEFINITION, settings, authorization by caller): every
INVALID_ARGUMENT of protos/casemesh/search/v1/shard.proto, who may call what, the two-phase query as search-query
makes it (statistics summed over the shards, then SearchShard on each, merged: the same hits and float scores as one
index holding every page), and the rebuild at start from a fake IndexerService: UNAVAILABLE while rebuilding, retried
with backoff until an indexer that starts late answers, ScanShard called as ``search-shards``, a PutPage during the
rebuild winning over the scan's older copy, a stop during a hung rebuild; and with the real search-indexer, pages
indexed through it reach the shards, and after a restart of both the shards rebuild the same index.
"""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, search_pb2, shard_pb2, shard_pb2_grpc
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.identity import CALLER_METADATA_KEY, TokenVerifier, service_identity
from casemesh.services.runtime.secrets import SERVICE_TOKEN
from casemesh.services.runtime.topology import TopologyError
from casemesh.services.search.contract import shard_of
from casemesh.services.search.indexer.service import DEFINITION as INDEXER_DEFINITION
from casemesh.services.search.shards.index import Query, ShardIndex, Statistics
from casemesh.services.search.shards.service import DEFINITION, INDEXER, NAME, QUERY
from casemesh.services.search.shards.settings import ShardsSettings
from prometheus_client import REGISTRY

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
FAST_RETRY = {"rebuild_retry_s": 0.05, "rebuild_retry_max_s": 0.2}
WORDS = ["search", "engine", "index", "shard", "query", "page", "rank", "crawler", "robots", "politeness", "frontier",
         "document", "store", "term", "posting", "phrase", "snippet", "score", "link", "graph"]


def web_page(n: int, body: str | None = None, title: str | None = None) -> search_pb2.WebPage:
    words = [WORDS[(n * 7 + i * i) % len(WORDS)] for i in range(12 + n % 9)]
    return search_pb2.WebPage(url=f"http://host{n % 5:03d}.web.test/page/{n}",
                              title=title if title is not None else f"Page {n} about {words[0]}",
                              body=body if body is not None else " ".join(words))


async def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def eventually(predicate, what: str) -> None:
    """Wait until ``predicate()`` (sync or async) is true, polling; fail after WAIT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(0.02)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Mesh:
    """search-shards served by the runtime; stubs calling it as search-indexer, as search-query and anonymously."""

    def __init__(self, topology, running, stop, task):
        self.topology, self.running, self._stop, self._task = topology, running, stop, task
        self._callers = [RuntimeContext(topology, secret=TEST_SECRET).for_service(name) for name in (INDEXER, QUERY)]
        self.indexer = shard_pb2_grpc.IndexShardServiceStub(self._callers[0].channel(NAME))
        self.query = shard_pb2_grpc.IndexShardServiceStub(self._callers[1].channel(NAME))
        self.anonymous = shard_pb2_grpc.IndexShardServiceStub(running.anonymous_channel(NAME))

    @classmethod
    async def start(cls, settings: dict, with_indexer: bool) -> Mesh:
        topology = loopback_topology([NAME, INDEXER] if with_indexer else [NAME], settings={NAME: settings})
        running, stop, task = await start_mesh([DEFINITION], topology)
        return cls(topology, running, stop, task)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, WAIT_S)
        for caller in self._callers:
            await caller.close()
        await self.running.close()

    async def shard_info(self) -> shard_pb2.GetShardInfoResponse:
        return await self.anonymous.GetShardInfo(shard_pb2.GetShardInfoRequest(), timeout=WAIT_S)

    async def put(self, page: search_pb2.WebPage, pagerank: float = 0.0, shards: int = 4) -> shard_pb2.PutPageResponse:
        return await self.indexer.PutPage(shard_pb2.PutPageRequest(
            shard=shard_of(page.url, shards), shard_count=shards, page=page, pagerank=pagerank), timeout=WAIT_S)

    async def search(self, terms: list[str], phrases: list[list[str]] = (), top_k: int = 10, weight: float = 1.0,
                     shards: int = 4) -> tuple[list[search_pb2.SearchHit], int, search_pb2.CollectionStatistics]:
        """The two phases of search-query: statistics from every shard, summed; SearchShard on every shard; merged."""
        parts = [(await self.query.GetTermStatistics(shard_pb2.GetTermStatisticsRequest(
            shard=shard, shard_count=shards, terms=terms), timeout=WAIT_S)).statistics for shard in range(shards)]
        summed = search_pb2.CollectionStatistics(
            doc_count=sum(p.doc_count for p in parts), total_terms=sum(p.total_terms for p in parts),
            terms=[search_pb2.TermStatistics(term=t, doc_freq=sum(p.terms[i].doc_freq for p in parts))
                   for i, t in enumerate(terms)])
        query = search_pb2.ParsedQuery(terms=terms, phrases=[search_pb2.Phrase(terms=p) for p in phrases])
        answers = [await self.query.SearchShard(shard_pb2.SearchShardRequest(
            shard=shard, shard_count=shards, query=query, statistics=summed, top_k=top_k, pagerank_weight=weight),
            timeout=WAIT_S) for shard in range(shards)]
        hits = sorted((hit for answer in answers for hit in answer.hits), key=lambda h: (-h.score, h.url))[:top_k]
        return hits, sum(answer.matched for answer in answers), summed


@pytest.fixture
async def mesh():
    """search-shards with 4 shards and no indexer in the topology: the shards start empty and serve at once."""
    served = await Mesh.start({"shards": 4}, with_indexer=False)
    try:
        yield served
    finally:
        await served.stop()


class FakeIndexer(indexer_pb2_grpc.IndexerServiceServicer):
    """IndexerService's ScanShard over ``pages`` (URL -> (page, pagerank, rank_version)): each stream sends a
    snapshot of the shard's pages taken when it starts, by URL; with ``gate`` set, it waits for the gate after
    ``hold_after`` pages. Records each request and the caller's verified identity."""

    def __init__(self, pages: dict[str, tuple[search_pb2.WebPage, float, int]]) -> None:
        self.pages = pages
        self.requests: list[tuple[int, int]] = []
        self.callers: list[str | None] = []
        self.gate: asyncio.Event | None = None
        self.hold_after = 0
        self._verifier = TokenVerifier(TEST_SECRET.keyring(SERVICE_TOKEN))

    async def ScanShard(self, request, context):
        self.requests.append((request.shard, request.shard_count))
        token = dict(context.invocation_metadata()).get(CALLER_METADATA_KEY)
        self.callers.append(self._verifier.identity(token) if token else None)
        snapshot = [self.pages[url] for url in sorted(self.pages) if shard_of(url, request.shard_count) == request.shard]
        for sent, (page, pagerank, rank_version) in enumerate(snapshot):
            if self.gate is not None and sent == self.hold_after:
                await self.gate.wait()
            yield indexer_pb2.ScanShardResponse(page=page, pagerank=pagerank, rank_version=rank_version)


async def serve_fake(fake: FakeIndexer, address: str) -> grpc.aio.Server:
    server = grpc.aio.server()
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(fake, server)
    assert server.add_insecure_port(address)
    await server.start()
    return server


def test_the_definition_and_settings():
    assert (DEFINITION.name, DEFINITION.dependencies, DEFINITION.optional_dependencies) == (
        "search-shards", ("search-indexer",), ("search-indexer",))
    assert DEFINITION.grpc_services == ("casemesh.search.v1.IndexShardService",)
    assert DEFINITION.access.public == {"GetShardInfo"}
    assert dict(DEFINITION.access.internal) == {"PutPage": ("search-indexer",), "SetPageRanks": ("search-indexer",),
                                                "GetTermStatistics": ("search-query",),
                                                "SearchShard": ("search-query",)}
    assert DEFINITION.settings_model is ShardsSettings and ShardsSettings().shards == 4
    for bad in ({"shards": 0}, {"shards": 65}, {"rebuild_retry_s": 2, "rebuild_retry_max_s": 1}, {"shard": 2}):
        with pytest.raises(TopologyError):
            RuntimeContext(loopback_topology([NAME], settings={NAME: bad})).settings(NAME, ShardsSettings)


async def test_invalid_arguments(mesh):
    put, ranks, stats, search = (mesh.indexer.PutPage, mesh.indexer.SetPageRanks, mesh.query.GetTermStatistics,
                                 mesh.query.SearchShard)
    page = web_page(1)
    home = shard_of(page.url, 4)
    query = search_pb2.ParsedQuery(terms=["page", "rank"], phrases=[search_pb2.Phrase(terms=["page", "rank"])])

    def collection(terms=("page", "rank"), doc_count=10, freqs=(3, 4), total_terms=100):
        return search_pb2.CollectionStatistics(doc_count=doc_count, total_terms=total_terms, terms=[
            search_pb2.TermStatistics(term=t, doc_freq=n) for t, n in zip(terms, freqs)])

    def searching(**fields):
        request = {"shard": 0, "shard_count": 4, "query": query, "statistics": collection(), "top_k": 10,
                   "pagerank_weight": 1.0}
        return shard_pb2.SearchShardRequest(**{**request, **fields})

    cases = [
        (put, shard_pb2.PutPageRequest(shard=-1, shard_count=4, page=page), "shard"),
        (put, shard_pb2.PutPageRequest(shard=4, shard_count=4, page=page), "shard"),
        (put, shard_pb2.PutPageRequest(shard=0, shard_count=5, page=page), "shard_count"),
        (put, shard_pb2.PutPageRequest(shard=0, shard_count=4, page=search_pb2.WebPage(body="x")), "page.url"),
        (put, shard_pb2.PutPageRequest(shard=0, shard_count=4, page=search_pb2.WebPage(url="ftp://a.b/")), "page.url"),
        (put, shard_pb2.PutPageRequest(shard=(home + 1) % 4, shard_count=4, page=page), "shard"),  # not its shard
        (put, shard_pb2.PutPageRequest(shard=home, shard_count=4, page=page, pagerank=math.nan), "pagerank"),
        (put, shard_pb2.PutPageRequest(shard=home, shard_count=4, page=page, pagerank=-0.1), "pagerank"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=9, shard_count=4, rank_version=1), "shard"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=0, shard_count=1, rank_version=1), "shard_count"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=0, shard_count=4, rank_version=1, ranks=[
            shard_pb2.PageRankEntry(url=page.url, pagerank=0.1), shard_pb2.PageRankEntry(url="nope")]), "ranks[1].url"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=0, shard_count=4, rank_version=1, ranks=[
            shard_pb2.PageRankEntry(url=page.url, pagerank=math.inf)]), "ranks[0].pagerank"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=0, shard_count=4, rank_version=0), "rank_version"),
        (ranks, shard_pb2.SetPageRanksRequest(shard=0, shard_count=4, rank_version=1, ranks=[
            shard_pb2.PageRankEntry(url="http://a.b/", pagerank=0.1)] * 100_001), "ranks"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=4, shard_count=4, terms=["a"]), "shard"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=0, terms=["a"]), "shard_count"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=4), "terms"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=4, terms=["a"] * 17), "terms"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=4, terms=["a", ""]), "terms"),
        (stats, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=4, terms=["é" * 21]), "terms"),  # 42 bytes
        (search, searching(shard=-3), "shard"),
        (search, searching(shard_count=8), "shard_count"),
        (search, searching(query=search_pb2.ParsedQuery()), "query.terms"),
        (search, searching(query=search_pb2.ParsedQuery(terms=["a", "a"])), "query.terms"),
        (search, searching(query=search_pb2.ParsedQuery(terms=[str(i) for i in range(17)])), "query.terms"),
        (search, searching(query=search_pb2.ParsedQuery(terms=["x" * 41])), "query.terms"),
        (search, searching(query=search_pb2.ParsedQuery(terms=["page", "rank"], phrases=[
            search_pb2.Phrase(terms=["page", "rank"])] * 5)), "query.phrases"),
        (search, searching(query=search_pb2.ParsedQuery(terms=["page", "rank"], phrases=[
            search_pb2.Phrase(terms=["page"])])), "query.phrases"),
        (search, searching(query=search_pb2.ParsedQuery(terms=["page", "rank"], phrases=[
            search_pb2.Phrase(terms=["page", "other"])])), "query.phrases"),
        (search, searching(statistics=collection(terms=("page",), freqs=(3,))), "statistics"),
        (search, searching(statistics=collection(terms=("rank", "page"))), "statistics"),
        (search, searching(statistics=collection(freqs=(3, 11))), "statistics"),
        (search, searching(statistics=collection(freqs=(3, -1))), "statistics"),
        (search, searching(statistics=collection(doc_count=-1, freqs=(0, 0))), "statistics"),
        (search, searching(statistics=collection(total_terms=-5)), "statistics"),
        (search, searching(top_k=0), "top_k"),
        (search, searching(top_k=1001), "top_k"),
        (search, searching(pagerank_weight=-0.5), "pagerank_weight"),
        (search, searching(pagerank_weight=math.nan), "pagerank_weight"),
        (search, searching(pagerank_weight=math.inf), "pagerank_weight"),
    ]
    for call, request, field in cases:
        code, details = await code_of(call(request, timeout=WAIT_S))
        assert code == INVALID and details.startswith(f"{field}: "), (field, details)
    assert sum(s.doc_count for s in (await mesh.shard_info()).shards) == 0  # the bad requests stored nothing
    # The boundaries are accepted.
    assert (await search(searching(top_k=1000, pagerank_weight=0.0), timeout=WAIT_S)).matched == 0
    answer = await stats(shard_pb2.GetTermStatisticsRequest(shard=3, shard_count=4, terms=["x" * 40] * 16),
                         timeout=WAIT_S)
    assert len(answer.statistics.terms) == 16


async def test_who_may_call_what(mesh):
    put = shard_pb2.PutPageRequest(shard=shard_of(web_page(1).url, 4), shard_count=4, page=web_page(1))
    stats = shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=4, terms=["page"])
    for call, request in ((mesh.anonymous.PutPage, put), (mesh.query.PutPage, put),
                          (mesh.anonymous.GetTermStatistics, stats), (mesh.indexer.GetTermStatistics, stats),
                          (mesh.query.SetPageRanks, shard_pb2.SetPageRanksRequest()),
                          (mesh.indexer.SearchShard, shard_pb2.SearchShardRequest())):
        code, _ = await code_of(call(request, timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    assert (await mesh.put(web_page(1))).created
    info = await mesh.shard_info()
    assert info.shard_count == 4 and [s.shard for s in info.shards] == [0, 1, 2, 3]
    assert not any(s.rebuilding for s in info.shards) and sum(s.doc_count for s in info.shards) == 1


async def test_the_two_phase_query_scores_as_one_index(mesh):
    """Pages put on their shards through gRPC, ranked, then searched as search-query does: the merged hits equal one
    in-process index's holding every page, float for float (protobuf doubles carry them exactly)."""
    whole = ShardIndex()
    pages = [web_page(n) for n in range(60)]
    for n, page in enumerate(pages):
        answer = await mesh.put(page, pagerank=0.0)
        assert answer.created and answer.doc_count >= 1
        whole.put(page, 0.0)
    replaced = web_page(3, body="search engine with a phrase snippet, replaced")
    answer = await mesh.put(replaced)
    assert not answer.created
    whole.put(replaced, 0.0)
    ranks = {page.url: (n + 1) / 2_000 for n, page in enumerate(pages)}
    for shard in range(4):
        mine = [shard_pb2.PageRankEntry(url=url, pagerank=rank) for url, rank in ranks.items()
                if shard_of(url, 4) == shard] + [shard_pb2.PageRankEntry(url="http://elsewhere.web.test/", pagerank=.5)]
        answer = await mesh.indexer.SetPageRanks(shard_pb2.SetPageRanksRequest(
            shard=shard, shard_count=4, ranks=mine, rank_version=1), timeout=WAIT_S)
        assert answer.updated == len(mine) - 1
    whole.set_ranks(ranks.items(), 1)
    info = await mesh.shard_info()
    assert sum(s.doc_count for s in info.shards) == 60 and {s.rank_version for s in info.shards} == {1}
    assert sample("casemesh_search_shard_pages", shard="0") == info.shards[0].doc_count
    for terms, phrases in ((["search"], []), (["page", "rank"], []), (["search", "engine"], [["search", "engine"]]),
                           (["snippet", "phrase", "store"], []), (["absent"], [])):
        for weight in (0.0, 1.0):
            hits, matched, summed = await mesh.search(terms, phrases, top_k=7, weight=weight)
            expected = whole.search(Query(tuple(terms), tuple(map(tuple, phrases))),
                                    Statistics(summed.doc_count, summed.total_terms,
                                               tuple(t.doc_freq for t in summed.terms)), 7, weight)
            assert matched == expected.matched
            assert [(h.url, h.title, h.snippet, h.bm25, h.pagerank, h.score) for h in hits] == [
                (h.url, h.title, h.snippet, h.bm25, h.pagerank, h.score) for h in expected.hits], terms
    hits, matched, _ = await mesh.search(["replaced"])
    assert [h.url for h in hits] == [replaced.url] and matched == 1


async def test_the_rebuild_waits_for_a_late_indexer():
    """The indexer is not listening when the shards start: every shard answers UNAVAILABLE (GetShardInfo answers,
    rebuilding), the scan is retried with backoff, and once the indexer serves, each shard streams its pages (called
    as search-shards) and serves them with their ranks."""
    pages = {page.url: (page, 0.01 * (n + 1), 7) for n, page in enumerate(web_page(n) for n in range(30))}
    failed_before = sample("casemesh_search_shard_rebuilds_total", outcome="failed")
    mesh = await Mesh.start({"shards": 3, **FAST_RETRY}, with_indexer=True)
    fake, server = FakeIndexer(pages), None
    try:
        info = await mesh.shard_info()
        assert [s.rebuilding for s in info.shards] == [True] * 3
        assert sample("casemesh_search_shard_rebuilding") == 3
        page = web_page(99)
        for call, request in (
                (mesh.query.GetTermStatistics, shard_pb2.GetTermStatisticsRequest(shard=0, shard_count=3, terms=["a"])),
                (mesh.query.SearchShard, shard_pb2.SearchShardRequest(
                    shard=1, shard_count=3, query=search_pb2.ParsedQuery(terms=["a"]), top_k=1,
                    statistics=search_pb2.CollectionStatistics(terms=[search_pb2.TermStatistics(term="a")]))),
                (mesh.indexer.SetPageRanks, shard_pb2.SetPageRanksRequest(shard=2, shard_count=3, rank_version=1)),
                (mesh.indexer.PutPage, shard_pb2.PutPageRequest(shard=shard_of(page.url, 3), shard_count=3,
                                                                page=page))):
            code, details = await code_of(call(request, timeout=WAIT_S))
            assert code == UNAVAILABLE and "rebuilding" in details
        code, _ = await code_of(mesh.query.GetTermStatistics(shard_pb2.GetTermStatisticsRequest(
            shard=0, shard_count=3), timeout=WAIT_S))
        assert code == INVALID  # a bad request is refused as such, rebuilding or not
        await eventually(lambda: sample("casemesh_search_shard_rebuilds_total", outcome="failed") >= failed_before + 2,
                         "two failed scans")
        server = await serve_fake(fake, mesh.topology.endpoint(INDEXER).address)

        async def rebuilt() -> bool:
            return not any(s.rebuilding for s in (await mesh.shard_info()).shards)

        await eventually(rebuilt, "every shard rebuilt")
        assert sample("casemesh_search_shard_rebuilding") == 0
        assert sorted(set(fake.requests)) == [(0, 3), (1, 3), (2, 3)]
        assert set(fake.callers) == {service_identity(NAME)}
        info = await mesh.shard_info()
        assert sum(s.doc_count for s in info.shards) == 31  # the 30 scanned and the one put during the rebuild
        assert {s.rank_version for s in info.shards} == {7}
        hits, matched, _ = await mesh.search(["page"], top_k=50, weight=1.0, shards=3)
        assert matched == 31
        assert {h.url: h.pagerank for h in hits} == {**{url: rank for url, (_, rank, _) in pages.items()},
                                                     page.url: 0.0}
        assert sample("casemesh_search_shard_rebuild_seconds", shard="2") > 0
    finally:
        await mesh.stop()
        if server is not None:
            await server.stop(None)


async def test_a_put_during_the_rebuild_wins_over_the_scan():
    """The scan's snapshot holds an old copy of a page; a PutPage of a newer copy arrives while the stream is held
    (UNAVAILABLE: the shard rebuilds, but it took the page); the old copy the stream then delivers is skipped."""
    old = web_page(1, body="the old text of the page")
    others = [web_page(n) for n in range(2, 12)]
    pages = {page.url: (page, 0.1, 3) for page in (old, *others)}
    fake = FakeIndexer(pages)
    fake.gate, fake.hold_after = asyncio.Event(), sorted(pages).index(old.url)  # held just before the old copy
    mesh = await Mesh.start({"shards": 1, **FAST_RETRY}, with_indexer=True)
    superseded = sample("casemesh_search_shard_rebuild_pages_total", outcome="superseded")
    server = await serve_fake(fake, mesh.topology.endpoint(INDEXER).address)
    try:
        await eventually(lambda: fake.requests, "the scan started")
        new = web_page(1, body="the new text of the page")
        code, details = await code_of(mesh.put(new, pagerank=0.2, shards=1))
        assert code == UNAVAILABLE and "taken" in details
        fake.gate.set()

        async def rebuilt() -> bool:
            return not (await mesh.shard_info()).shards[0].rebuilding

        await eventually(rebuilt, "the shard rebuilt")
        assert sample("casemesh_search_shard_rebuild_pages_total", outcome="superseded") == superseded + 1
        hits, matched, _ = await mesh.search(["text"], shards=1)
        assert matched == 1 and hits[0].snippet == "the new text of the page" and hits[0].pagerank == 0.2
        assert (await mesh.search(["old"], shards=1))[1] == 0
        assert (await mesh.put(new, shards=1)).created is False  # the indexer's retry: harmless
        assert (await mesh.shard_info()).shards[0].doc_count == len(pages)
    finally:
        await mesh.stop()
        await server.stop(None)


async def test_a_stop_during_a_hung_rebuild_is_clean():
    fake = FakeIndexer({web_page(1).url: (web_page(1), 0.0, 0)})
    fake.gate = asyncio.Event()  # never set: the stream hangs
    mesh = await Mesh.start({"shards": 2, **FAST_RETRY}, with_indexer=True)
    server = await serve_fake(fake, mesh.topology.endpoint(INDEXER).address)
    try:
        await eventually(lambda: fake.requests, "the scan started")
        assert (await mesh.shard_info()).shards[shard_of(web_page(1).url, 2)].rebuilding
    finally:
        await mesh.stop()  # returns: the rebuild task was cancelled with its stream
        fake.gate.set()
        await server.stop(None)


async def test_with_the_real_indexer_a_restart_rebuilds_the_same_index(tmp_path):
    """search-indexer and search-shards served side by side: pages indexed through the indexer reach their shards,
    a PageRank pass reaches them too; after both restart (the shards in memory, the indexer's store durable), the
    shards rebuild from ScanShard and answer the same hits with the same scores."""
    topology = loopback_topology([NAME, INDEXER], data_dir=tmp_path, settings={
        NAME: {"shards": 3, **FAST_RETRY}, INDEXER: {"pagerank_interval_s": 0}})
    pages = [web_page(n) for n in range(40)]
    links = {page.url: [pages[(n * 3 + k) % 40].url for k in (1, 2)] for n, page in enumerate(pages)}

    async def serve_both() -> Mesh:
        running, stop, task = await start_mesh([DEFINITION, INDEXER_DEFINITION], topology)
        mesh = Mesh(topology, running, stop, task)

        async def rebuilt() -> bool:
            return not any(s.rebuilding for s in (await mesh.shard_info()).shards)

        await eventually(rebuilt, "every shard rebuilt")
        return mesh

    async def results(mesh: Mesh):
        return [await mesh.search(terms, top_k=20, shards=3) for terms in (["page"], ["search", "engine"], ["rank"])]

    mesh = await serve_both()
    try:
        indexer = indexer_pb2_grpc.IndexerServiceStub(mesh.running.channel(INDEXER))
        for page in pages:
            page.outlinks.extend(links[page.url])
            await indexer.IndexPage(indexer_pb2.IndexPageRequest(page=page), timeout=WAIT_S)
        await indexer.ComputePageRank(indexer_pb2.ComputePageRankRequest(), timeout=WAIT_S)
        info = await mesh.shard_info()
        assert sum(s.doc_count for s in info.shards) == 40 and {s.rank_version for s in info.shards} == {1}
        before = await results(mesh)
        assert before[0][1] == 40 and all(hit.pagerank > 0 for hit in before[0][0])
    finally:
        await mesh.stop()
    mesh = await serve_both()
    try:
        info = await mesh.shard_info()
        assert sum(s.doc_count for s in info.shards) == 40
        after = await results(mesh)
        assert [([(h.url, h.score) for h in hits], matched) for hits, matched, _ in after] == [
            ([(h.url, h.score) for h in hits], matched) for hits, matched, _ in before]
    finally:
        await mesh.stop()

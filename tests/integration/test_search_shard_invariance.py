"""The search engine's invariant: search results are identical with 1 shard and with N shards, for the same corpus.

CASE-STUDY.md point 5 for the search engine (seed 000 "Search Engine (like Google)",
shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded index", "Query Processor: Parse query,
retrieve docs, rank results", "Ranker: PageRank"; seed 001 #10, shared/seeds/001_58dfc580020147d2.txt line 27). A
document-sharded index scores each page on the shard that holds it; BM25's IDF and average page length must be the
whole collection's, not the shard's, or a page's score would depend on its neighbours on the shard and the ranking on
the number of shards. search-query's two phases (the terms' statistics summed over every shard, then each shard's
best pages scored with them: Elasticsearch's "DFS query then fetch") make them the collection's.

The search mesh (search-shards, search-indexer, search-query, search-autocomplete, each a process of its own:
casemesh.harness.mesh.Mesh) is started twice, with ``search-shards.shards`` 1 and then 5, and
``search-query.shard_deadline_ms`` 0 (no shard left out for being slow on a loaded machine). Each indexes the same
generated corpus through IndexerService.IndexPage (a few hundred pages of real English words at their real
frequencies, wordfreq, with links between them), in the same order, then runs ComputePageRank; then the same
queries (words, AND of words, quoted phrases, phrases with words; their first and second pages). Every answer must be
complete (every shard answered) and the two meshes' answers identical: the same hits (url, score, bm25, pagerank) in
the same order, the same total of matches, the same page tokens.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import grpc
import wordfreq

from casemesh.harness.mesh import Mesh
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, query_pb2, query_pb2_grpc, search_pb2
from casemesh.services.search.analysis import analyze

SERVICES = ["search-shards", "search-indexer", "search-query", "search-autocomplete"]
PAGES, SITES = 300, 12
QUERIES_EACH = 12  # per kind: words, two words, phrases, phrases with a word
PAGE_SIZE = 10
RETRY_S = 60.0
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))


def _vocabulary() -> tuple[list[str], list[float]]:
    words = [w for w in wordfreq.top_n_list("en", 4_000) if w.isalpha()]
    return words, [10 ** wordfreq.zipf_frequency(w, "en") for w in words]


def _url(i: int) -> str:
    return f"https://site{i % SITES:02d}.test/pages/{i:04d}"


def corpus(seed: int = 10) -> list[search_pb2.WebPage]:
    """``PAGES`` pages of words drawn at their English frequencies; each links to a few others, the earlier pages
    more often (a skewed link graph, so PageRank varies), some links to pages that are never indexed."""
    rng = random.Random(seed)
    words, weights = _vocabulary()
    pages = []
    for i in range(PAGES):
        title = " ".join(rng.choices(words, weights, k=rng.randint(2, 6))).title()
        body = " ".join(rng.choices(words, weights, k=rng.randint(30, 160)))
        targets = {_url(min(int(rng.paretovariate(0.8)) - 1, PAGES - 1)) for _ in range(rng.randint(0, 7))}
        if rng.random() < 0.1:
            targets.add(f"https://elsewhere.test/{i}")
        pages.append(search_pb2.WebPage(url=_url(i), title=title, body=body, outlinks=sorted(targets - {_url(i)})))
    return pages


def queries(pages: list[search_pb2.WebPage], seed: int = 20) -> list[str]:
    """Words (frequent and rarer), pairs of words of one page, quoted phrases from page bodies, phrases with a word."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(QUERIES_EACH):
        out.append(rng.choice(sorted(set(analyze(rng.choice(pages).body)))))
        out.append(" ".join(rng.sample(sorted(set(analyze(rng.choice(pages).body))), 2)))
        body = analyze(rng.choice(pages).body)
        start = rng.randrange(len(body) - 3)
        out.append('"' + " ".join(body[start:start + rng.randint(2, 3)]) + '"')
        body = analyze(rng.choice(pages).body)
        start = rng.randrange(len(body) - 2)
        out.append(f'"{body[start]} {body[start + 1]}" {rng.choice(body)}')
    return list(dict.fromkeys(out))


async def _retried(call, request, timeout: float = 10.0):
    """``call(request)`` until it is not UNAVAILABLE (a shard rebuilding, a process still starting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_S
    while True:
        try:
            return await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or (
                    loop.time() > deadline):
                raise
            await asyncio.sleep(0.1)


def _answer(response: query_pb2.SearchResponse) -> tuple:
    assert not response.partial and response.shards_answered == response.shards_total, response
    return ([(h.url, h.score, h.bm25, h.pagerank, h.title, h.snippet) for h in response.hits], response.total_matches,
            response.next_page_token)


async def _results(tmp_path: Path, shards: int, pages: list[search_pb2.WebPage], texts: list[str]) -> dict:
    settings = {"search-shards": {"shards": shards}, "search-query": {"shard_deadline_ms": 0}}
    async with Mesh(SERVICES, tmp_path / f"shards-{shards}", settings=settings, restart=None) as mesh:
        indexer_channel = grpc.aio.insecure_channel(mesh.topology.endpoint("search-indexer").address,
                                                    options=FAST_RECONNECT)
        query_channel = grpc.aio.insecure_channel(mesh.topology.endpoint("search-query").address,
                                                  options=FAST_RECONNECT)
        try:
            indexer = indexer_pb2_grpc.IndexerServiceStub(indexer_channel)
            search = query_pb2_grpc.SearchServiceStub(query_channel)
            for page in pages:  # one at a time, in order: the same store, the same link graph, in both meshes
                await _retried(indexer.IndexPage, indexer_pb2.IndexPageRequest(page=page))
            computed = await _retried(indexer.ComputePageRank, indexer_pb2.ComputePageRankRequest(), timeout=60)
            rank = computed.rank_pass
            assert rank.rank_version >= 1 and rank.nodes >= PAGES, rank
            stats = await _retried(indexer.GetIndexStats, indexer_pb2.GetIndexStatsRequest())
            assert (stats.page_count, stats.shard_count) == (PAGES, shards), stats
            results = {}
            for text in texts:
                first = await _retried(search.Search, query_pb2.SearchRequest(query=text, page_size=PAGE_SIZE))
                assert first.shards_total == shards
                results[text] = [_answer(first)]
                if first.next_page_token:
                    second = await _retried(search.Search, query_pb2.SearchRequest(
                        query=text, page_size=PAGE_SIZE, page_token=first.next_page_token))
                    results[text].append(_answer(second))
            return results
        finally:
            await indexer_channel.close()
            await query_channel.close()


async def test_search_results_are_identical_with_one_shard_and_with_five(tmp_path):
    pages = corpus()
    texts = queries(pages)
    one = await _results(tmp_path, 1, pages, texts)
    five = await _results(tmp_path, 5, pages, texts)
    for text in texts:
        assert five[text] == one[text], text
    # The comparison is not empty: most queries match, many have a second page, PageRank moved the scores.
    matched = [text for text in texts if one[text][0][1] > 0]
    assert len(matched) >= 0.8 * len(texts), len(matched)
    assert sum(len(one[text]) == 2 for text in texts) >= 10
    hits = [hit for text in texts for page in one[text] for hit in page[0]]
    assert all(pagerank > 0 for _, _, _, pagerank, _, _ in hits)
    assert any(score != bm25 for _, score, bm25, _, _, _ in hits)

"""The end-of-run check: the shards hold every page the document store holds, and every page indexed reads back as
it was given.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt line 617: "Document Store: Raw HTML
storage"; line 619: "Index Server: Sharded index across thousands of machines"); indexer.proto: a page is "fsynced
before the answer, so an index server rebuilds from it" and "put on its shard". The workload's ``disconnect`` runs
:func:`check` after the process's last journey, with unrecorded calls (reads retried: 3 attempts within 5 s,
``check_concurrency`` in flight). One ``index_consistent`` sample per load process:

- **the counts** (load process 0; with ``--workers`` after ``check_delay_s``): IndexShardService.GetShardInfo's
  shards are 0 to ``shard_count - 1``, none still rebuilding, as many as GetIndexStats's ``shard_count``, and their
  ``doc_count`` sum to GetIndexStats's ``page_count`` (a page stored but on no shard, or on two, breaks it); the
  store holds at least the pages it held after seeding (nothing deletes pages). Read up to :data:`COUNT_READS`
  times, :data:`COUNT_PAUSE_S` apart, while the sum differs (a write still in flight from another process);
- **the read back**: GetPage of every breaking-news page the process indexed (IndexPage answered) and, in process 0,
  of the seeded sample (``check_pages``): the page as it was given (title, body, outlinks; a page's links are
  distinct and never to itself, so none is dropped), on shard ``crc32(url) mod shard_count``
  (:func:`~casemesh.services.search.contract.shard_of`), its PageRank in [0, 1]. NOT_FOUND is a page lost.

The sample's latency is the check's time; its code ``OK``, ``DATA_LOSS`` for any problem (each logged), or, when
nothing is wrong but a call failed for good, that call's status code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import grpc

from casemesh.search.v1 import indexer_pb2, shard_pb2
from casemesh.services.search.contract import shard_of

from ..idempotent_retry import RetryParams, send
from .corpus import Page
from .live import Searchers
from .seeding import INDEXER, SHARDS

log = logging.getLogger("casemesh.workloads.search")

INDEX_CONSISTENT = "index_consistent"
OK = "OK"
DATA_LOSS = "DATA_LOSS"
#: How the end-of-run reads are retried.
READ_RETRY = RetryParams(max_attempts=3, backoff_base_ms=100, backoff_cap_ms=1_000, retry_within_s=5)
#: Reads of the counts while they differ, and the pause between.
COUNT_READS = 3
COUNT_PAUSE_S = 1.0


def verdict(problems: Sequence[str], failed: Sequence[str]) -> str:
    """``DATA_LOSS`` for any problem, else the first failed call's code, else ``OK``."""
    return DATA_LOSS if problems else failed[0] if failed else OK


def count_problems(stats: indexer_pb2.GetIndexStatsResponse, info: shard_pb2.GetShardInfoResponse,
                   seeded: int) -> list[str]:
    """Problems of the store's and the shards' counts (module docstring)."""
    problems: list[str] = []
    if [s.shard for s in info.shards] != list(range(info.shard_count)):
        problems.append(f"GetShardInfo lists shards {[s.shard for s in info.shards]} of {info.shard_count}")
    if info.shard_count != stats.shard_count:
        problems.append(f"the shards have {info.shard_count} shards, the indexer routes to {stats.shard_count}")
    rebuilding = [s.shard for s in info.shards if s.rebuilding]
    if rebuilding:
        problems.append(f"shards {rebuilding} are still rebuilding")
    held = sum(s.doc_count for s in info.shards)
    if held != stats.page_count:
        problems.append(f"the shards hold {held} pages ({', '.join(str(s.doc_count) for s in info.shards)}), the "
                        f"document store {stats.page_count}")
    if stats.page_count < seeded:
        problems.append(f"the document store holds {stats.page_count} pages, {seeded} after seeding")
    return problems


def page_problems(page: Page, answer: indexer_pb2.GetPageResponse, shard_count: int) -> list[str]:
    """Problems of a page read back (module docstring)."""
    stored = answer.page
    problems: list[str] = []
    if stored.url != page.url:
        problems.append(f"read back as {stored.url}")
    if stored.title != page.title:
        problems.append(f"title {stored.title!r}, indexed {page.title!r}")
    if stored.body != page.body:
        problems.append(f"a body of {len(stored.body)} characters unlike the {len(page.body)} indexed")
    if tuple(stored.outlinks) != page.outlinks:
        problems.append(f"outlinks {list(stored.outlinks)}, indexed {list(page.outlinks)}")
    if shard_count and answer.shard != shard_of(page.url, shard_count):
        problems.append(f"on shard {answer.shard}, crc32 mod {shard_count} is {shard_of(page.url, shard_count)}")
    if not 0 <= answer.pagerank <= 1:
        problems.append(f"pagerank {answer.pagerank!r} is not in [0, 1]")
    return problems


async def read(searchers: Searchers, service: str, method: str, request: object, rng: random.Random) -> object:
    """One unrecorded read, retried (:data:`READ_RETRY`); raises its last error."""
    outcome = await send(searchers.streams.call, service, method, request, READ_RETRY, rng, clock=searchers.clock,
                         sleep=searchers.sleep)
    if outcome.error is not None:
        raise outcome.error
    return outcome.response


async def check_counts(searchers: Searchers, rng: random.Random) -> tuple[list[str], int]:
    """The counts' problems (module docstring) and the shard count (0 when unknown); raises a read's error."""
    problems: list[str] = []
    shard_count = 0
    for attempt in range(1, COUNT_READS + 1):
        stats = await read(searchers, INDEXER, "GetIndexStats", indexer_pb2.GetIndexStatsRequest(), rng)
        info = await read(searchers, SHARDS, "GetShardInfo", shard_pb2.GetShardInfoRequest(), rng)
        shard_count = stats.shard_count
        problems = count_problems(stats, info, searchers.state.indexed_pages)
        if not problems:
            log.info("search: %d pages in the document store and on %d shards (%s)", stats.page_count,
                     info.shard_count, ", ".join(str(s.doc_count) for s in info.shards))
            break
        if attempt < COUNT_READS:
            await searchers.sleep(COUNT_PAUSE_S)
    return problems, shard_count


async def read_back(searchers: Searchers, pages: Sequence[Page], shard_count: int,
                    rng: random.Random) -> tuple[list[str], list[str]]:
    """GetPage of every one of ``pages``: the problems and the codes of the reads that failed for good."""
    limit = asyncio.Semaphore(searchers.params.check_concurrency)
    problems: list[str] = []
    failed: list[str] = []

    async def one(page: Page) -> None:
        async with limit:
            outcome = await send(searchers.streams.call, INDEXER, "GetPage", indexer_pb2.GetPageRequest(url=page.url),
                                 READ_RETRY, rng, clock=searchers.clock, sleep=searchers.sleep)
        if outcome.error is None:
            problems.extend(f"{page.url}: {p}" for p in page_problems(page, outcome.response, shard_count))
        elif outcome.code == grpc.StatusCode.NOT_FOUND.name:
            problems.append(f"{page.url}: indexed, then not found")
        else:
            log.warning("search: GetPage %s failed: %s", page.url, outcome.code)
            failed.append(outcome.code)

    await asyncio.gather(*(one(p) for p in pages))
    return problems, failed


async def check(searchers: Searchers) -> None:
    """The ``index_consistent`` sample (module docstring), after the process's last journey."""
    if searchers.checker and searchers.streams.share[1] > 1 and searchers.params.check_delay_s > 0:
        await searchers.sleep(searchers.params.check_delay_s)
    rng = random.Random(searchers.state.run)
    started = searchers.clock()
    problems: list[str] = []
    failed: list[str] = []
    shard_count = 0  # unknown: the read back does not check shards
    try:
        if searchers.checker:
            problems, shard_count = await check_counts(searchers, rng)
        else:
            stats = await read(searchers, INDEXER, "GetIndexStats", indexer_pb2.GetIndexStatsRequest(), rng)
            shard_count = stats.shard_count
    except grpc.aio.AioRpcError as error:
        log.warning("search: reading the index's counts failed: %s %s", error.code().name, error.details())
        failed.append(error.code().name)
    pages = [*searchers.indexed, *(searchers.state.sample if searchers.checker else ())]
    read_issues, read_failed = await read_back(searchers, pages, shard_count, rng)
    problems += read_issues
    failed += read_failed
    for problem in problems:
        log.warning("search: the index is not consistent: %s", problem)
    log.info("search: %d pages read back (%d breaking-news pages of this process)", len(pages),
             len(searchers.indexed))
    searchers.streams.observe(INDEX_CONSISTENT, searchers.clock() - started, verdict(problems, failed),
                              sent_at=started)

"""The crawler journeys: crawl jobs started, followed to the end and audited by the web's referee; a dashboard's look
at a running crawl (open-loop arrivals).

Seed 001 #28 "Web Crawler" (shared/seeds/001_58dfc580020147d2.txt line 34: "URL frontier, robots.txt, politeness,
deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale"); seed 000 "Search Engine (like Google)"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Crawling: Billions of pages, politeness policies (robots.txt)";
"Web Crawler: Distributed crawlers with politeness policies").

- ``crawl``: a crawl job, as a crawl scheduler starts one. CrawlerService.StartCrawl with a fresh crawl ID
  (``crawl-<run>-<uuid4 hex>``), ``seeds`` home pages drawn uniformly (distinct), ``max_pages``, ``max_depth`` and
  ``index_pages`` (the crawl feeds the search engine's indexer). StartCrawl is idempotent by crawl ID (crawler.proto:
  "Starting a crawl ID that exists with the same request returns it"), so UNAVAILABLE and DEADLINE_EXCEEDED are sent
  again with the same ID (:mod:`..idempotent_retry`, the journey's retry params); RESOURCE_EXHAUSTED (``max_crawls``
  crawls running) and any other code end the journey. Then GetCrawl every ``poll_interval_ms`` until the crawl is no
  longer RUNNING; a poll answered UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED is only a missed look (the
  crawl goes on: the next poll looks again); NOT_FOUND means the crawler forgot the crawl (crawls live in memory: a
  restart). When ``crawl_timeout_s`` pass after StartCrawl's first send with the crawl still RUNNING, the journey
  cancels it (CancelCrawl) and fails DEADLINE_EXCEEDED; a crawl seen CANCELLED (by someone else) fails it ABORTED.
  Last, whatever the crawl's end, SyntheticWebService.Audit of the crawl ID (retried alike): the referee's count of
  what the crawl did to the web, judged by :func:`judge`.
- ``status``: a dashboard's look at a crawl: GetCrawl of one of the process's running crawls drawn uniformly, or of
  the last one that ended when none runs (no call before the first StartCrawl answered).

Measures, besides the RPCs the driver records (one sample of each per crawl StartCrawl accepted):

- ``crawl_time``: StartCrawl's first send → the answer of the first GetCrawl that shows the crawl no longer RUNNING
  (quantized by ``poll_interval_ms``: a crawl is seen done up to one interval and a GetCrawl late). Code ``OK`` for
  DONE, ``CANCELLED``, ``DEADLINE_EXCEEDED`` (timed out) or ``NOT_FOUND`` (forgotten), or a poll's final code;
- ``crawl_time_per_page``: ``crawl_time`` divided by the pages the crawl fetched (GetCrawl's ``pages_fetched``; the
  time when it fetched none): the inverse of the crawl's pages per second, so an upper bound on it is a lower bound
  on the throughput (an SLO can only bound a measure from above). Code ``OK`` only for a crawl that ended DONE with
  pages and whose Audit found no robots.txt and no politeness violation: the seed's throughput counts only at a
  politeness of at most one request a second a host with robots.txt obeyed. Otherwise the crawl's code as above,
  ``NO_PAGES``, ``ROBOTS_VIOLATION``, ``IMPOLITE``, or the Audit's final code;
- ``robots_respected``, ``politeness_respected`` and ``crawl_consistent`` (the invariants, :func:`judge`); latency 0;
- ``duplicates_kept_out``: one sample per copy the referee saw the crawl fetch (Audit's ``near_copies_fetched``:
  pages whose text copies, exactly or within ``near_copy_edits`` words, another page the crawl also fetched), for a
  crawl that ended DONE and was audited: ``OK`` for each the crawler skipped (GetCrawl's ``exact_duplicates`` plus
  ``near_duplicates``, at most the copies), ``DUPLICATE_KEPT`` for each it kept (indexed, its links followed: the
  duplicate content the seed's MD5/SimHash deduplication exists to keep out of the index); latency 0.

A journey ends OK when the crawl ended DONE and was audited; with the code above when it did not, or with Audit's
final code. A violation is the invariants' to judge: the journey itself still ends OK.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import grpc
from pydantic import Field

from casemesh.crawler.v1 import crawler_pb2, web_pb2
from casemesh.services.crawler.contract import MAX_DEPTH, MAX_PAGES, MAX_SEED_URLS

from ..base import Caller, Params
from ..idempotent_retry import Outcome, RetryParams, send
from .live import Crawls
from .seeding import CRAWLER, WEB

log = logging.getLogger("casemesh.workloads.crawler")

CRAWL_TIME = "crawl_time"
CRAWL_TIME_PER_PAGE = "crawl_time_per_page"
ROBOTS_RESPECTED = "robots_respected"
POLITENESS_RESPECTED = "politeness_respected"
CRAWL_CONSISTENT = "crawl_consistent"
DUPLICATES_KEPT_OUT = "duplicates_kept_out"
OK = "OK"
ROBOTS_VIOLATION = "ROBOTS_VIOLATION"
IMPOLITE = "IMPOLITE"
DUPLICATE_FETCH = "DUPLICATE_FETCH"
COUNT_MISMATCH = "COUNT_MISMATCH"
NO_PAGES = "NO_PAGES"
DUPLICATE_KEPT = "DUPLICATE_KEPT"
#: crawl_time's codes of a crawl that did not end DONE.
CANCELLED = "CANCELLED"
TIMED_OUT = grpc.StatusCode.DEADLINE_EXCEEDED.name

#: StartCrawl and Audit are sent again on these (the same crawl ID: harmless to repeat).
RESENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: A GetCrawl poll answered with one of these is a missed look: the crawl goes on.
MISSED_LOOK = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                         grpc.StatusCode.RESOURCE_EXHAUSTED})

RUNNING = crawler_pb2.CRAWL_STATE_RUNNING
DONE = crawler_pb2.CRAWL_STATE_DONE


class CrawlParams(RetryParams):
    """A crawl job: its seeds and bounds, how it is followed, and how StartCrawl and Audit are resent."""

    seeds: int = Field(default=3, ge=1, le=MAX_SEED_URLS, description="home pages the crawl starts from (distinct)")
    max_pages: int = Field(default=60, ge=1, le=MAX_PAGES, description="the crawl stops after this many pages (200)")
    max_depth: int = Field(default=0, ge=0, le=MAX_DEPTH, description="links followed to this depth (0: the crawler's "
                                                                       "16)")
    index_pages: bool = Field(default=True, description="the crawl sends its pages to the search engine's indexer")
    poll_interval_ms: float = Field(default=500.0, ge=10, le=60_000, description="GetCrawl every this many ms")
    crawl_timeout_s: float = Field(default=30.0, gt=0, le=3_600,
                                   description="cancel the crawl and fail DEADLINE_EXCEEDED when it still runs this "
                                               "long after StartCrawl's first send")
    max_attempts: int = Field(default=3, ge=1, le=10, description="sends of StartCrawl or Audit at most")
    backoff_base_ms: float = Field(default=100.0, gt=0, le=60_000, description="the first resend's backoff ceiling, ms")
    backoff_cap_ms: float = Field(default=1_000.0, gt=0, le=600_000, description="the largest backoff ceiling, ms")
    retry_within_s: float = Field(default=3.0, gt=0, le=600, description="no resend starts later than this, s")


class StatusParams(Params):
    """A dashboard's look: no parameters."""


@dataclass
class Progress:
    """How a crawl was followed: the last Crawl seen, crawl_time's code and seconds, the error that ends the journey
    (``None`` for DONE)."""

    crawl: crawler_pb2.Crawl
    code: str
    seconds: float
    error: grpc.aio.AioRpcError | None = None


@dataclass
class Verdict:
    """The invariants' codes of one crawl and the problems found (each logged)."""

    robots: str = OK
    politeness: str = OK
    consistent: str = OK
    problems: list[str] = field(default_factory=list)


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """An RPC error the journey ends with though no call returned it (a timeout, a cancelled crawl)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def judge(crawl: crawler_pb2.Crawl, audit: web_pb2.AuditResponse, *, done: bool, index_pages: bool) -> Verdict:
    """The invariants of one crawl from the referee's Audit and the crawler's last GetCrawl:

    - ``robots_respected``: Audit's ``robots_violations`` is 0 (``ROBOTS_VIOLATION``: a page fetched that the host's
      robots.txt disallows for ``casemesh-bot``);
    - ``politeness_respected``: Audit's ``politeness_violations`` is 0 (``IMPOLITE``: a fetch reached a host sooner
      after its previous request, by any crawl, than ``min_interval_ms`` or its Crawl-delay);
    - ``crawl_consistent``: Audit's ``duplicate_fetches`` is 0 (``DUPLICATE_FETCH``: a URL fetched again after a 200
      in the same crawl); and (``COUNT_MISMATCH``) for a crawl that ended DONE, the crawler's ``pages_fetched``
      equals the referee's ``pages_ok`` (distinct pages answered 200), and no crawl indexed more pages than it
      fetched, nor any page when ``index_pages`` is off.
    """
    verdict = Verdict()
    if audit.robots_violations:
        verdict.robots = ROBOTS_VIOLATION
        verdict.problems.append(f"{audit.robots_violations} fetches of pages robots.txt disallows")
    if audit.politeness_violations:
        verdict.politeness = IMPOLITE
        verdict.problems.append(f"{audit.politeness_violations} fetches sooner after the host's previous request than "
                                f"its interval (shortest gap {audit.min_host_gap_ms:.0f} ms)")
    if audit.duplicate_fetches:
        verdict.consistent = DUPLICATE_FETCH
        verdict.problems.append(f"{audit.duplicate_fetches} fetches of URLs already answered 200 in the crawl")
    mismatches = []
    if done and crawl.pages_fetched != audit.pages_ok:
        mismatches.append(f"the crawler counts {crawl.pages_fetched} pages fetched, the referee {audit.pages_ok} "
                          f"answered 200")
    if crawl.pages_indexed > crawl.pages_fetched or (crawl.pages_indexed and not index_pages):
        mismatches.append(f"{crawl.pages_indexed} pages indexed of {crawl.pages_fetched} fetched (index_pages "
                          f"{index_pages})")
    if mismatches:
        if verdict.consistent == OK:
            verdict.consistent = COUNT_MISMATCH
        verdict.problems += mismatches
    return verdict


async def follow(call: Caller, params: CrawlParams, crawls: Crawls, crawl_id: str, crawl: crawler_pb2.Crawl,
                 sent: float) -> Progress:
    """GetCrawl every ``poll_interval_ms`` until the crawl is no longer RUNNING, or until ``crawl_timeout_s`` after
    ``sent`` (module docstring)."""
    deadline = sent + params.crawl_timeout_s
    interval_s = params.poll_interval_ms / 1000
    request = crawler_pb2.GetCrawlRequest(crawl_id=crawl_id)
    while crawl.state == RUNNING:
        now = crawls.clock()
        if now >= deadline:
            return Progress(crawl, TIMED_OUT, now - sent, rpc_error(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"crawl {crawl_id} still running after {params.crawl_timeout_s:g} s "
                                                   f"({crawl.pages_fetched} pages): cancelled"))
        await crawls.sleep(min(interval_s, deadline - now))
        try:
            crawl = (await call(CRAWLER, "GetCrawl", request)).crawl
        except grpc.aio.AioRpcError as error:
            if error.code() not in MISSED_LOOK:
                return Progress(crawl, error.code().name, crawls.clock() - sent, error)
    seconds = crawls.clock() - sent
    if crawl.state == DONE:
        return Progress(crawl, OK, seconds)
    name = crawler_pb2.CrawlState.Name(crawl.state)
    return Progress(crawl, CANCELLED, seconds, rpc_error(grpc.StatusCode.ABORTED, f"crawl {crawl_id} ended {name}"))


async def cancel(call: Caller, crawl_id: str) -> None:
    """CancelCrawl of a crawl that ran too long; a failure is logged (the crawl stops at ``max_pages`` anyway)."""
    try:
        await call(CRAWLER, "CancelCrawl", crawler_pb2.CancelCrawlRequest(crawl_id=crawl_id))
    except grpc.aio.AioRpcError as error:
        log.warning("crawler: CancelCrawl %s failed: %s %s", crawl_id, error.code().name, error.details())


def record(call: Caller, progress: Progress, audit: Outcome, verdict: Verdict | None) -> None:
    """The crawl's measures (module docstring)."""
    crawl = progress.crawl
    call.observe(CRAWL_TIME, progress.seconds, progress.code)
    if verdict is None:
        codes = (audit.code,) * 3
    else:
        codes = (verdict.robots, verdict.politeness, verdict.consistent)
    for name, code in zip((ROBOTS_RESPECTED, POLITENESS_RESPECTED, CRAWL_CONSISTENT), codes, strict=True):
        call.observe(name, 0.0, code)
    if progress.code != OK:
        code = progress.code
    elif not crawl.pages_fetched:
        code = NO_PAGES
    elif verdict is None:
        code = audit.code
    else:
        code = next((c for c in (verdict.robots, verdict.politeness) if c != OK), OK)
    call.observe(CRAWL_TIME_PER_PAGE, progress.seconds / max(crawl.pages_fetched, 1), code)
    if progress.code == OK and audit.answered:
        copies = audit.response.near_copies_fetched
        skipped = min(copies, crawl.exact_duplicates + crawl.near_duplicates)
        for _ in range(skipped):
            call.observe(DUPLICATES_KEPT_OUT, 0.0, OK)
        for _ in range(copies - skipped):
            call.observe(DUPLICATES_KEPT_OUT, 0.0, DUPLICATE_KEPT)


async def crawl(call: Caller, params: CrawlParams, crawls: Crawls, rng: random.Random) -> None:
    """A crawl job: started, followed until it ends, audited (module docstring)."""
    crawl_id = crawls.new_crawl_id()
    request = crawler_pb2.StartCrawlRequest(crawl_id=crawl_id, seed_urls=crawls.seeds(rng, params.seeds),
                                            max_pages=params.max_pages, max_depth=params.max_depth,
                                            index_pages=params.index_pages)
    sent = crawls.clock()
    started = await send(call, CRAWLER, "StartCrawl", request, params, rng, retried=RESENT, clock=crawls.clock,
                         sleep=crawls.sleep)
    if not started.answered:
        assert started.error is not None
        raise started.error
    crawls.started(crawl_id)
    try:
        progress = await follow(call, params, crawls, crawl_id, started.response.crawl, sent)
    finally:
        crawls.ended(crawl_id)
    if progress.code == TIMED_OUT:
        await cancel(call, crawl_id)
    audit = await send(call, WEB, "Audit", web_pb2.AuditRequest(crawl_id=crawl_id), params, rng, retried=RESENT,
                       clock=crawls.clock, sleep=crawls.sleep)
    verdict = None
    if audit.answered:
        verdict = judge(progress.crawl, audit.response, done=progress.code == OK, index_pages=params.index_pages)
        for problem in verdict.problems:
            log.warning("crawler: crawl %s: %s", crawl_id, problem)
    else:
        log.warning("crawler: Audit %s failed: %s", crawl_id, audit.code)
    record(call, progress, audit, verdict)
    if progress.code == OK:
        crawls.tally.add(progress.crawl, audit.response if audit.answered else None, sent, sent + progress.seconds)
    if progress.error is not None:
        raise progress.error
    if audit.error is not None:
        raise audit.error


async def status(call: Caller, params: StatusParams, crawls: Crawls, rng: random.Random) -> None:
    """A dashboard's look at a crawl (module docstring)."""
    crawl_id = crawls.to_look_at(rng)
    if crawl_id is not None:
        await call(CRAWLER, "GetCrawl", crawler_pb2.GetCrawlRequest(crawl_id=crawl_id))

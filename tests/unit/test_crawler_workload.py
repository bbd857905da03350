"""The crawler workload without a mesh: seeding through a fake web, crawl IDs, the crawl journey against a fake crawler
and referee (the request, the polling loop, resends, a crawl refused, timed out, cancelled or forgotten, missed
looks), the referee's verdicts (robots.txt, politeness, duplicate fetches, counts), the measures, the status journey
and the tally."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
import pytest

from casemesh.crawler.v1 import crawler_pb2, web_pb2
from casemesh.harness.errors import HarnessError
from casemesh.harness.workloads.crawler import connect, disconnect
from casemesh.harness.workloads.crawler.journeys import (
    COUNT_MISMATCH,
    CRAWL_CONSISTENT,
    CRAWL_TIME,
    CRAWL_TIME_PER_PAGE,
    DUPLICATE_FETCH,
    DUPLICATE_KEPT,
    DUPLICATES_KEPT_OUT,
    IMPOLITE,
    NO_PAGES,
    POLITENESS_RESPECTED,
    ROBOTS_RESPECTED,
    ROBOTS_VIOLATION,
    CrawlParams,
    StatusParams,
    crawl,
    judge,
    status,
)
from casemesh.harness.workloads.crawler.live import Crawls, Tally
from casemesh.harness.workloads.crawler.seeding import SeedParams, State, seed
from casemesh.services.crawler.contract import host_name, is_crawl_id, is_web_url

C = crawler_pb2
INVARIANTS = (ROBOTS_RESPECTED, POLITENESS_RESPECTED, CRAWL_CONSISTENT)


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Clock:
    """A fake perf_counter that only ``sleep`` moves; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class FakeCrawlerWeb:
    """CrawlerService and SyntheticWebService's GetWeb and Audit in memory, as the protos say: StartCrawl idempotent
    per crawl ID (ALREADY_EXISTS for another request, RESOURCE_EXHAUSTED beyond ``max_crawls`` running); each GetCrawl
    of a running crawl fetches ``pages_per_poll`` more pages and the crawl is DONE at ``max_pages`` (or after
    ``polls_to_done`` polls; ``None``: never), with the exact and near duplicates of ``skipped``; CancelCrawl stops
    it. Audit counts ``pages_fetched`` + ``extra_ok`` pages and the violations and copies in ``audit_counts``.
    ``fail`` holds codes raised by the next calls of a method."""

    def __init__(self, hosts: int = 20, *, pages_per_poll: int = 20, polls_to_done: int | None = 1_000,
                 max_crawls: int = 8) -> None:
        self.hosts = hosts
        self.pages_per_poll, self.polls_to_done, self.max_crawls = pages_per_poll, polls_to_done, max_crawls
        self.crawls: dict[str, C.Crawl] = {}
        self.requests: dict[str, C.StartCrawlRequest] = {}
        self.polls: dict[str, int] = {}
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.audit_counts: dict[str, int] = {}
        self.extra_ok = 0
        self.skipped = (0, 0)
        self.calls: list[tuple[str, Any]] = []

    def home_pages(self) -> list[str]:
        return [f"http://{host_name(i)}/" for i in range(self.hosts)]

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    async def handle(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        await asyncio.sleep(0)
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        return getattr(self, f"_{method.lower()}")(request)

    def _getweb(self, request: web_pb2.GetWebRequest) -> web_pb2.GetWebResponse:
        return web_pb2.GetWebResponse(host_count=self.hosts, page_count=self.hosts * 50, home_pages=self.home_pages(),
                                      disallowed_pages=30, near_copy_pages=40, seed=42, min_interval_ms=1_000)

    def _running(self) -> int:
        return sum(c.state == C.CRAWL_STATE_RUNNING for c in self.crawls.values())

    def _startcrawl(self, request: C.StartCrawlRequest) -> C.StartCrawlResponse:
        assert is_crawl_id(request.crawl_id) and request.seed_urls
        if request.crawl_id in self.crawls:
            if self.requests[request.crawl_id] != request:
                raise rpc_error(grpc.StatusCode.ALREADY_EXISTS, "crawl_id")
            return C.StartCrawlResponse(crawl=self.crawls[request.crawl_id])
        if self._running() >= self.max_crawls:
            raise rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "max_crawls")
        self.requests[request.crawl_id] = request
        self.polls[request.crawl_id] = 0
        self.crawls[request.crawl_id] = C.Crawl(crawl_id=request.crawl_id, state=C.CRAWL_STATE_RUNNING,
                                                hosts=len(request.seed_urls))
        return C.StartCrawlResponse(crawl=self.crawls[request.crawl_id])

    def _crawl(self, crawl_id: str) -> C.Crawl:
        if crawl_id not in self.crawls:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "crawl_id")
        return self.crawls[crawl_id]

    def _getcrawl(self, request: C.GetCrawlRequest) -> C.GetCrawlResponse:
        crawl = self._crawl(request.crawl_id)
        if crawl.state == C.CRAWL_STATE_RUNNING:
            asked = self.requests[request.crawl_id]
            self.polls[request.crawl_id] += 1
            crawl.pages_fetched = min(asked.max_pages, crawl.pages_fetched + self.pages_per_poll)
            if asked.index_pages:
                crawl.pages_indexed = crawl.pages_fetched
            if crawl.pages_fetched == asked.max_pages or self.polls[request.crawl_id] == self.polls_to_done:
                crawl.state = C.CRAWL_STATE_DONE
                crawl.exact_duplicates, crawl.near_duplicates = self.skipped
        return C.GetCrawlResponse(crawl=crawl)

    def _cancelcrawl(self, request: C.CancelCrawlRequest) -> C.CancelCrawlResponse:
        crawl = self._crawl(request.crawl_id)
        if crawl.state == C.CRAWL_STATE_RUNNING:
            crawl.state = C.CRAWL_STATE_CANCELLED
        return C.CancelCrawlResponse(crawl=crawl)

    def _audit(self, request: web_pb2.AuditRequest) -> web_pb2.AuditResponse:
        crawl = self._crawl(request.crawl_id)
        return web_pb2.AuditResponse(fetches=crawl.pages_fetched + 5, pages_ok=crawl.pages_fetched + self.extra_ok,
                                     min_host_gap_ms=1_000.0, hosts=crawl.hosts, **self.audit_counts)


class FakeCaller:
    """A journey's Caller over a :class:`FakeCrawlerWeb`: calls and measures recorded."""

    def __init__(self, fake: FakeCrawlerWeb) -> None:
        self.fake = fake
        self.observed: list[tuple[str, float, str]] = []

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        assert service == ("crawler-web" if method in ("GetWeb", "Audit", "Fetch") else "crawler")
        return await self.fake.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]

    def value(self, name: str) -> float:
        (latency,) = [s for n, s, _ in self.observed if n == name]
        return latency


async def _crawls(fake: FakeCrawlerWeb, clock: Clock | None = None) -> Crawls:
    state = await seed(lambda _s, m, r: fake.handle(m, r), SeedParams(), random.Random(5))
    fake.calls.clear()
    clock = clock or Clock()
    return Crawls(state, clock=clock, sleep=clock.sleep)


# seeding and crawl IDs ------------------------------------------------------------------------------------------------

async def test_seed_asks_getweb_once_and_resends_while_the_web_starts():
    fake = FakeCrawlerWeb(hosts=12)
    fake.fail["GetWeb"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    state = await seed(lambda _s, m, r: fake.handle(m, r), SeedParams(), random.Random(5))
    assert fake.methods() == ["GetWeb"] * 3
    assert state.home_pages == tuple(fake.home_pages()) and all(is_web_url(u) for u in state.home_pages)
    assert (state.host_count, state.page_count, state.min_interval_ms, state.web_seed) == (12, 600, 1_000, 42)
    again = await seed(lambda _s, m, r: fake.handle(m, r), SeedParams(), random.Random(5))
    assert again.run == state.run and len(state.run) == 8  # the run's first draw


@pytest.mark.parametrize(("pages", "message"), [([], "without home pages"),
                                                (["http://host000.web.test/", "ftp://x/"], "not web URLs")])
async def test_seed_refuses_a_web_without_crawlable_home_pages(pages: list[str], message: str):
    async def call(_service: str, _method: str, _request: Any) -> Any:
        return web_pb2.GetWebResponse(host_count=len(pages), home_pages=pages)

    with pytest.raises(HarnessError, match=message):
        await seed(call, SeedParams(), random.Random(1))


async def test_seed_fails_with_a_refusal_that_is_not_transient():
    fake = FakeCrawlerWeb()
    fake.fail["GetWeb"] = [grpc.StatusCode.PERMISSION_DENIED]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await seed(lambda _s, m, r: fake.handle(m, r), SeedParams(), random.Random(1))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_crawl_ids_are_unique_valid_and_name_the_run():
    state = State(run="0badcafe", home_pages=("http://host000.web.test/",), host_count=1, page_count=50,
                  disallowed_pages=0, near_copy_pages=0, web_seed=1, min_interval_ms=1_000)
    ids = [state.crawl_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    assert all(is_crawl_id(i) and i.startswith("crawl-0badcafe-") and len(i) <= 64 for i in ids)


async def test_seeds_are_distinct_home_pages_and_all_of_a_small_web():
    crawls = await _crawls(FakeCrawlerWeb(hosts=30))
    rng = random.Random(3)
    for _ in range(50):
        seeds = crawls.seeds(rng, 5)
        assert len(set(seeds)) == 5 and set(seeds) <= set(crawls.state.home_pages)
    assert sorted(crawls.seeds(rng, 100)) == sorted(crawls.state.home_pages)


# the crawl journey ----------------------------------------------------------------------------------------------------

async def test_a_crawl_starts_polls_until_done_and_is_audited():
    fake = FakeCrawlerWeb(pages_per_poll=20)
    clock = Clock()
    crawls = await _crawls(fake, clock)
    caller = FakeCaller(fake)
    params = CrawlParams(seeds=3, max_pages=60, max_depth=5, poll_interval_ms=500)
    await crawl(caller, params, crawls, random.Random(1))
    start = fake.calls[0][1]
    assert fake.methods() == ["StartCrawl", "GetCrawl", "GetCrawl", "GetCrawl", "Audit"]
    assert (start.max_pages, start.max_depth, start.index_pages) == (60, 5, True)
    assert len(set(start.seed_urls)) == 3 and set(start.seed_urls) <= set(crawls.state.home_pages)
    assert {r.crawl_id for _, r in fake.calls} == {start.crawl_id}
    assert clock.sleeps == [0.5, 0.5, 0.5]  # polled every poll_interval_ms until DONE
    assert caller.codes(CRAWL_TIME) == ["OK"] and caller.value(CRAWL_TIME) == pytest.approx(1.5)
    assert caller.codes(CRAWL_TIME_PER_PAGE) == ["OK"] and caller.value(CRAWL_TIME_PER_PAGE) == pytest.approx(1.5 / 60)
    assert all(caller.codes(name) == ["OK"] for name in INVARIANTS)
    assert crawls.tally.crawls == 1 and crawls.tally.pages == 60 and crawls.tally.seconds == pytest.approx(1.5)
    assert crawls.running() == [] and crawls.to_look_at(random.Random(1)) == start.crawl_id


@pytest.mark.parametrize(("copies", "skipped", "expected"), [
    ((10, (3, 5), ["OK"] * 8 + [DUPLICATE_KEPT] * 2)),   # 2 of the copies fetched with their original were kept
    ((4, (2, 4), ["OK"] * 4)),                           # more skipped than the referee's copies: counted once each
    ((0, (0, 0), [])),                                   # no copy met its original: no sample
])
async def test_each_copy_a_done_crawl_fetched_is_counted_kept_out_or_kept(copies: int, skipped: tuple[int, int],
                                                                           expected: list[str]):
    fake = FakeCrawlerWeb(pages_per_poll=20)
    fake.skipped, fake.audit_counts = skipped, {"near_copies_fetched": copies}
    caller = FakeCaller(fake)
    await crawl(caller, CrawlParams(max_pages=60), await _crawls(fake), random.Random(1))
    assert caller.codes(DUPLICATES_KEPT_OUT) == expected


async def test_a_crawl_that_did_not_end_done_has_no_duplicate_samples():
    fake = FakeCrawlerWeb(pages_per_poll=1, polls_to_done=None)
    fake.skipped, fake.audit_counts = (1, 1), {"near_copies_fetched": 5}
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await crawl(caller, CrawlParams(max_pages=60, crawl_timeout_s=2), await _crawls(fake), random.Random(1))
    assert caller.codes(DUPLICATES_KEPT_OUT) == []


async def test_every_crawl_gets_its_own_id():
    fake = FakeCrawlerWeb(pages_per_poll=100)
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await asyncio.gather(*(crawl(caller, CrawlParams(max_pages=10), crawls, random.Random(i)) for i in range(6)))
    assert len(fake.crawls) == 6 and caller.codes(CRAWL_TIME) == ["OK"] * 6


async def test_a_lost_start_is_resent_with_the_same_crawl_id():
    fake = FakeCrawlerWeb()
    fake.fail["StartCrawl"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    fake.fail["Audit"] = [grpc.StatusCode.UNAVAILABLE]
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await crawl(caller, CrawlParams(max_pages=40), crawls, random.Random(2))
    starts = [r for m, r in fake.calls if m == "StartCrawl"]
    assert len(starts) == 3 and len({s.SerializeToString() for s in starts}) == 1
    assert fake.methods().count("Audit") == 2 and caller.codes(CRAWL_TIME_PER_PAGE) == ["OK"]


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT])
async def test_a_refused_start_ends_the_journey_with_its_code_and_no_measure(code: grpc.StatusCode):
    fake = FakeCrawlerWeb()
    fake.fail["StartCrawl"] = [code]
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await crawl(caller, CrawlParams(), crawls, random.Random(2))
    assert raised.value.code() == code and fake.methods() == ["StartCrawl"] and not caller.observed
    assert crawls.running() == [] and crawls.to_look_at(random.Random(1)) is None


async def test_max_crawls_running_is_resource_exhausted():
    fake = FakeCrawlerWeb(polls_to_done=None, pages_per_poll=0, max_crawls=2)
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    params = CrawlParams(crawl_timeout_s=5)
    results = await asyncio.gather(*(crawl(caller, params, crawls, random.Random(i)) for i in range(3)),
                                   return_exceptions=True)
    codes = sorted(r.code().name for r in results if isinstance(r, grpc.aio.AioRpcError))
    assert codes == ["DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"]


async def test_a_crawl_still_running_at_its_timeout_is_cancelled_audited_and_fails():
    fake = FakeCrawlerWeb(pages_per_poll=3, polls_to_done=None)
    clock = Clock()
    crawls = await _crawls(fake, clock)
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await crawl(caller, CrawlParams(max_pages=1_000, crawl_timeout_s=2.2, poll_interval_ms=500), crawls,
                    random.Random(4))
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.methods() == ["StartCrawl", *["GetCrawl"] * 5, "CancelCrawl", "Audit"]
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.2])  # the last look at the deadline
    assert next(iter(fake.crawls.values())).state == C.CRAWL_STATE_CANCELLED
    assert caller.codes(CRAWL_TIME) == ["DEADLINE_EXCEEDED"] and caller.value(CRAWL_TIME) == pytest.approx(2.2)
    assert caller.codes(CRAWL_TIME_PER_PAGE) == ["DEADLINE_EXCEEDED"]
    assert all(caller.codes(name) == ["OK"] for name in INVARIANTS)  # the pages it fetched were polite
    assert crawls.tally.crawls == 0


async def test_a_crawl_cancelled_by_someone_else_fails_aborted():
    fake = FakeCrawlerWeb(pages_per_poll=5)
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    original = fake._getcrawl

    def cancelled_on_second_look(request: C.GetCrawlRequest) -> C.GetCrawlResponse:
        if fake.polls.get(request.crawl_id) == 1:
            fake._cancelcrawl(C.CancelCrawlRequest(crawl_id=request.crawl_id))
        return original(request)

    fake._getcrawl = cancelled_on_second_look  # type: ignore[method-assign]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await crawl(caller, CrawlParams(), crawls, random.Random(4))
    assert raised.value.code() == grpc.StatusCode.ABORTED and "CANCELLED" in (raised.value.details() or "")
    assert "CancelCrawl" not in fake.methods()[-2:] and fake.methods()[-1] == "Audit"
    assert caller.codes(CRAWL_TIME) == ["CANCELLED"] and caller.codes(CRAWL_TIME_PER_PAGE) == ["CANCELLED"]


async def test_missed_looks_are_tolerated_and_a_forgotten_crawl_is_not_found():
    fake = FakeCrawlerWeb(pages_per_poll=20)
    fake.fail["GetCrawl"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.RESOURCE_EXHAUSTED]
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await crawl(caller, CrawlParams(max_pages=60), crawls, random.Random(4))
    assert fake.methods().count("GetCrawl") == 6 and caller.codes(CRAWL_TIME) == ["OK"]

    fake.fail["GetCrawl"] = [grpc.StatusCode.NOT_FOUND]
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await crawl(caller, CrawlParams(max_pages=60), crawls, random.Random(5))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert caller.codes(CRAWL_TIME) == ["NOT_FOUND"] and caller.codes(ROBOTS_RESPECTED) == ["OK"]


async def test_a_failed_audit_gives_its_code_to_every_invariant_and_the_journey():
    fake = FakeCrawlerWeb(pages_per_poll=30)
    fake.fail["Audit"] = [grpc.StatusCode.UNAVAILABLE] * 3
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await crawl(caller, CrawlParams(max_pages=60), crawls, random.Random(4))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and fake.methods().count("Audit") == 3
    assert all(caller.codes(name) == ["UNAVAILABLE"] for name in (*INVARIANTS, CRAWL_TIME_PER_PAGE))
    assert caller.codes(CRAWL_TIME) == ["OK"] and crawls.tally.crawls == 1


async def test_a_crawl_with_no_page_has_no_throughput():
    fake = FakeCrawlerWeb(pages_per_poll=0, polls_to_done=2)  # every seed closed: the frontier runs dry
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await crawl(caller, CrawlParams(), crawls, random.Random(4))
    assert caller.codes(CRAWL_TIME_PER_PAGE) == [NO_PAGES] and caller.codes(CRAWL_TIME) == ["OK"]


# the referee's verdicts -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("counts", "extra_ok", "expected", "per_page"), [
    ({"robots_violations": 1}, 0, (ROBOTS_VIOLATION, "OK", "OK"), ROBOTS_VIOLATION),
    ({"politeness_violations": 2}, 0, ("OK", IMPOLITE, "OK"), IMPOLITE),
    ({"robots_violations": 1, "politeness_violations": 2}, 0, (ROBOTS_VIOLATION, IMPOLITE, "OK"), ROBOTS_VIOLATION),
    ({"duplicate_fetches": 3}, 0, ("OK", "OK", DUPLICATE_FETCH), "OK"),
    ({}, 1, ("OK", "OK", COUNT_MISMATCH), "OK"),
    ({}, -1, ("OK", "OK", COUNT_MISMATCH), "OK"),
])
async def test_the_audit_flags_each_violation(counts: dict[str, int], extra_ok: int, expected: tuple[str, ...],
                                              per_page: str):
    fake = FakeCrawlerWeb(pages_per_poll=30)
    fake.audit_counts, fake.extra_ok = counts, extra_ok
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await crawl(caller, CrawlParams(max_pages=60), crawls, random.Random(4))  # a violation is the invariants' to judge
    assert tuple(caller.codes(name)[0] for name in INVARIANTS) == expected
    assert caller.codes(CRAWL_TIME_PER_PAGE) == [per_page]


def test_judge_counts_only_a_done_crawl_and_checks_what_was_indexed():
    crawl_seen = C.Crawl(state=C.CRAWL_STATE_RUNNING, pages_fetched=10, pages_indexed=10)
    audit = web_pb2.AuditResponse(pages_ok=12)
    assert judge(crawl_seen, audit, done=False, index_pages=True).consistent == "OK"  # fetches in flight at a timeout
    assert judge(crawl_seen, audit, done=True, index_pages=True).consistent == COUNT_MISMATCH
    assert judge(crawl_seen, web_pb2.AuditResponse(pages_ok=10), done=True, index_pages=False).consistent == \
        COUNT_MISMATCH  # indexed without index_pages
    over = C.Crawl(pages_fetched=10, pages_indexed=11)
    verdict = judge(over, web_pb2.AuditResponse(pages_ok=10, duplicate_fetches=1), done=True, index_pages=True)
    assert verdict.consistent == DUPLICATE_FETCH and len(verdict.problems) == 2


# the status journey, connect and the tally ----------------------------------------------------------------------------

async def test_status_looks_at_a_running_crawl_then_at_the_last_one():
    fake = FakeCrawlerWeb(pages_per_poll=10)
    crawls = await _crawls(fake)
    caller = FakeCaller(fake)
    await status(caller, StatusParams(), crawls, random.Random(1))
    assert fake.methods() == []  # nothing started yet: no call
    crawls.started("crawl-a")
    fake.crawls["crawl-a"] = C.Crawl(crawl_id="crawl-a", state=C.CRAWL_STATE_RUNNING)
    fake.requests["crawl-a"] = C.StartCrawlRequest(crawl_id="crawl-a", max_pages=100)
    fake.polls["crawl-a"] = 0
    await status(caller, StatusParams(), crawls, random.Random(1))
    assert fake.calls[-1] == ("GetCrawl", C.GetCrawlRequest(crawl_id="crawl-a"))
    crawls.ended("crawl-a")
    await crawl(caller, CrawlParams(max_pages=20), crawls, random.Random(2))
    last = [r.crawl_id for m, r in fake.calls if m == "StartCrawl"][-1]
    await status(caller, StatusParams(), crawls, random.Random(1))
    assert fake.calls[-1] == ("GetCrawl", C.GetCrawlRequest(crawl_id=last))


async def test_connect_makes_a_fresh_tally_and_disconnect_logs_it(caplog: pytest.LogCaptureFixture):
    fake = FakeCrawlerWeb(pages_per_poll=30)
    state = await seed(lambda _s, m, r: fake.handle(m, r), SeedParams(), random.Random(5))
    crawls = await connect(None, state, SeedParams(), random.Random(1))
    assert isinstance(crawls, Crawls) and crawls.tally == Tally() and fake.methods() == ["GetWeb"]
    crawls.tally.add(C.Crawl(pages_fetched=60, robots_blocked=4, near_duplicates=2), web_pb2.AuditResponse(
        near_copies_fetched=3), sent=10.0, done=16.0)
    crawls.tally.add(C.Crawl(pages_fetched=60), None, sent=12.0, done=16.0)
    with caplog.at_level("INFO", logger="casemesh.workloads.crawler"):
        await disconnect(crawls)
    assert "2 crawls DONE, 120 pages in 10.0 crawl-seconds (12.0 pages/s a crawl" in caplog.text
    assert "20.0 pages/s over the 6 s" in caplog.text and "3 near-copies fetched" in caplog.text
    assert Tally().summary() == "no crawl ended DONE"

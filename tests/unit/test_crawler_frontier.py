"""The crawler's domain without gRPC: the BFS frontier (per-host queues, depth order, the seen set, robots.txt first),
the process-wide host clock (intervals from the end of a fetch, Crawl-delay, the wait of a new process), robots.txt
readings (RFC 9309 2.3.1: 2xx rules, 4xx allow all, 5xx close) with protego, MD5 and SimHash deduplication (and the
MD5-only A/B setting), HTML parsing, validation, and one crawl's bookkeeping (max_depth, max_pages exactly, 503
retries, unknown hosts, duplicates not followed).

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness,
deduplication (MD5/Simhash), BFS").
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import grpc
import pytest
from casemesh.crawler.v1 import crawler_pb2
from casemesh.services.crawler.contract import USER_AGENT
from casemesh.services.crawler.frontier import dedup, indexing, metrics, validation
from casemesh.services.crawler.frontier.crawl import CANCELLED, DONE, RUNNING, Crawl
from casemesh.services.crawler.frontier.dedup import Deduplicator, Duplicate, fingerprint
from casemesh.services.crawler.frontier.fetch import FetchFailed, WebResponse
from casemesh.services.crawler.frontier.fetchers import Fetchers
from casemesh.services.crawler.frontier.frontier import Added, Frontier, RobotsState
from casemesh.services.crawler.frontier.indexing import web_page
from casemesh.services.crawler.frontier.parse import normalize_url, parse_page
from casemesh.services.crawler.frontier.politeness import HostClock
from casemesh.services.crawler.frontier.registry import CrawlRegistry
from casemesh.services.crawler.frontier.robots import ALLOW_ALL, UNREACHABLE, rules_from_response
from casemesh.services.crawler.frontier.settings import CrawlerSettings
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.search.contract import MAX_OUTLINKS, MAX_TITLE_CHARS
from hypothesis import given, settings
from hypothesis import strategies as st

A, B = "a.web.test", "b.web.test"


# --- the frontier ---------------------------------------------------------------------------------------------------

def test_the_frontier_queues_per_host_by_depth_and_hands_out_pages_only_after_robots_txt():
    frontier = Frontier()
    for url, depth in ((f"http://{A}/3", 3), (f"http://{A}/1", 1), (f"http://{B}/0", 0), (f"http://{A}/1b", 1),
                       (f"http://{A}/0", 0)):
        assert frontier.add(url, depth) is Added.QUEUED
    assert frontier.add(f"http://{A}/1", 0) is Added.SEEN  # once per crawl, whatever the depth it is found at again
    assert (frontier.size, frontier.host_count) == (5, 2)
    assert frontier.has_work(A) and frontier.pop(A) is None  # robots.txt first
    assert frontier.start_robots(A) and not frontier.start_robots(A)
    assert frontier.robots_state(A) is RobotsState.FETCHING and frontier.pop(A) is None
    assert frontier.set_robots(A, ALLOW_ALL) == []
    order = [frontier.pop(A).url for _ in range(4)]
    assert order == [f"http://{A}/0", f"http://{A}/1", f"http://{A}/1b", f"http://{A}/3"]  # BFS, then found first
    assert frontier.pop(A) is None and not frontier.has_work(A)
    assert frontier.size == 1 and frontier.hosts_with_work() == [B]


def test_robots_rules_filter_the_queue_and_later_discoveries_and_a_503_goes_back_at_its_depth():
    frontier = Frontier()
    for path in ("/", "/private/1", "/p/1"):
        frontier.add(f"http://{A}{path}", 1)
    rules = rules_from_response(200, b"User-agent: *\nDisallow: /private/\n", 10)
    frontier.start_robots(A)
    assert [item.url for item in frontier.set_robots(A, rules)] == [f"http://{A}/private/1"]
    assert frontier.add(f"http://{A}/private/2", 2) is Added.BLOCKED
    assert frontier.seen(f"http://{A}/private/2") and frontier.size == 2
    first = frontier.pop(A)
    frontier.add(f"http://{A}/p/2", 2)
    frontier.requeue(first, now=5.0)  # at its depth, behind the URLs of that depth already queued
    assert frontier.pop(A).url == f"http://{A}/p/1"
    again = frontier.pop(A)
    assert (again.url, again.depth, again.attempt, again.queued_at) == (first.url, 1, 1, 5.0)
    assert frontier.pop(A).url == f"http://{A}/p/2"
    frontier.add(f"http://{B}/", 0)
    assert [item.url for item in frontier.close(B)] == [f"http://{B}/"]
    assert frontier.add(f"http://{B}/x", 1) is Added.BLOCKED and frontier.size == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B, "c.web.test"]), st.integers(0, 5), st.integers(0, 30)),
                max_size=60))
def test_each_host_hands_out_its_urls_shallowest_first_and_each_url_once(found):
    frontier = Frontier()
    expected: dict[str, int] = {}
    for host, depth, page in found:
        url = f"http://{host}/p/{page}"
        expected.setdefault(url, depth)
        frontier.add(url, depth)
    out = []
    for host in (A, B, "c.web.test"):
        if frontier.start_robots(host):
            frontier.set_robots(host, ALLOW_ALL)
        depths = []
        while (item := frontier.pop(host)) is not None:
            depths.append(item.depth)
            out.append(item.url)
        assert depths == sorted(depths)
    assert sorted(out) == sorted(expected) and frontier.size == 0


# --- the host clock -------------------------------------------------------------------------------------------------

def test_the_host_clock_waits_the_interval_from_the_end_of_each_fetch():
    clock = HostClock(interval_s=1.0, restart_wait_s=2.0, start=100.0)
    assert clock.next_allowed(A) == 102.0  # a new process waits the longest interval first
    assert clock.want(A) and not clock.want(A)
    assert clock.pop_ready(101.9) is None and clock.wait_s(101.9) == pytest.approx(0.1)
    assert clock.pop_ready(102.0) == A and not clock.want(A)  # in flight: never twice at once
    clock.release(A, end=102.7)  # a fetch of 0.7 s
    assert clock.next_allowed(A) == pytest.approx(103.7)
    clock.set_crawl_delay(A, 3.0)
    clock.set_crawl_delay(A, None)
    clock.set_crawl_delay(A, 0.5)  # never shortened
    assert clock.interval(A) == 3.0 and clock.interval(B) == 1.0
    assert clock.pop_ready(1_000.0) is None and clock.wait_s(0) is None  # not queued: it has no work
    clock.want(A)
    assert clock.pop_ready(1_000.0) == A
    clock.release(A, end=1_000.0)
    assert clock.next_allowed(A) == 1_003.0


def test_the_host_clock_hands_out_the_earliest_ready_host_and_keeps_the_time_of_an_unused_one():
    clock = HostClock(interval_s=1.0, restart_wait_s=0.0, start=0.0)
    for host in (A, B):
        clock.want(host)
        assert clock.pop_ready(5.0) == host
    clock.release(A, end=5.5)
    clock.release(B, end=5.2)
    clock.want(A), clock.want(B)
    assert clock.queued == 2
    assert clock.pop_ready(6.3) == B and clock.pop_ready(6.3) is None
    clock.unused(B)  # nothing to fetch after all: its time stands
    assert clock.next_allowed(B) == pytest.approx(6.2)
    assert clock.pop_ready(6.5) == A and clock.queued == 0


# --- robots.txt -----------------------------------------------------------------------------------------------------

ROBOTS = (f"User-agent: {USER_AGENT}\nCrawl-delay: 2\nDisallow: /private/\n\n"
          "User-agent: *\nDisallow: /\n").encode()


def test_robots_txt_as_rfc_9309_reads_it():
    rules = rules_from_response(200, ROBOTS, max_crawl_delay_s=10)
    assert not rules.closed and rules.crawl_delay_s == 2.0
    assert rules.allows(f"http://{A}/p/1") and not rules.allows(f"http://{A}/private/1")  # our group, not *
    closed = rules_from_response(200, f"User-agent: {USER_AGENT}\nDisallow: /\n".encode(), 10)
    assert not closed.allows(f"http://{A}/") and closed.crawl_delay_s is None
    assert rules_from_response(404, b"", 10) is ALLOW_ALL and ALLOW_ALL.allows(f"http://{A}/private/1")
    for status in (503, 500):
        assert rules_from_response(status, b"", 10) is UNREACHABLE and not UNREACHABLE.allows(f"http://{A}/")
    too_slow = rules_from_response(200, ROBOTS, max_crawl_delay_s=1.5)
    assert too_slow.closed and too_slow.reason == "crawl_delay"
    assert rules_from_response(200, b"\xff\xfeUser-agent: *\nDisallow: /x\n", 10).allows(f"http://{A}/y")


# --- deduplication --------------------------------------------------------------------------------------------------

def _text(rng: random.Random, words: int = 250) -> list[str]:
    vocabulary = [f"w{n}" for n in range(2_000)]
    return rng.choices(vocabulary, k=words)


def _edited(words: list[str], position: int) -> list[str]:
    return [*words[:position], "changed", *words[position + 1:]]


def test_one_changed_word_moves_few_bits_and_another_text_many():
    rng = random.Random(7)
    texts = [_text(rng) for _ in range(100)]
    near = [fingerprint(" ".join(t)).distance(fingerprint(" ".join(_edited(t, 100)))) for t in texts]
    far = [fingerprint(" ".join(a)).distance(fingerprint(" ".join(b))) for a, b in itertools.pairwise(texts)]
    assert sum(d <= 3 for d in near) >= 80  # SimHash is a vote: most single-word edits stay within 3 bits
    assert min(far) > 3 * 3


def test_md5_catches_exact_copies_and_simhash_near_ones_within_3_bits():
    rng = random.Random(7)
    original = _text(rng)
    edited = next(e for p in range(len(original)) if fingerprint(" ".join(e := _edited(original, p))).distance(
        fingerprint(" ".join(original))) == 3)  # a near copy right at the distance
    seen = Deduplicator(near=True, distance=3)
    assert seen.check(" ".join(original)) is Duplicate.NONE
    assert seen.check(" ".join(original)) is Duplicate.EXACT
    assert seen.check(" ".join(edited)) is Duplicate.NEAR
    assert seen.check(" ".join(_text(rng))) is Duplicate.NONE  # another page
    assert seen.check("") is Duplicate.NONE and seen.check("") is Duplicate.EXACT  # no words: MD5 only

    strict = Deduplicator(near=True, distance=2)
    strict.check(" ".join(original))
    assert strict.check(" ".join(edited)) is Duplicate.NONE  # 3 bits apart: not within 2

    md5_only = Deduplicator(near=False)  # the A/B switch: near copies pass
    assert md5_only.check(" ".join(original)) is Duplicate.NONE
    assert md5_only.check(" ".join(edited)) is Duplicate.NONE
    assert md5_only.check(" ".join(original)) is Duplicate.EXACT


def test_shingles_are_words_and_word_pairs():
    assert dedup.shingles("The cat, the HAT") == ["the", "cat", "the", "hat", "the cat", "cat the", "the hat"]
    assert dedup.shingles("  ") == [] and fingerprint("...") is None


# --- HTML -----------------------------------------------------------------------------------------------------------

def test_parsing_resolves_relative_links_drops_fragments_and_hidden_text():
    html = (f'<html><head><title> A  page </title><style>p {{}}</style></head><body><p>Hello &amp; <b>world</b></p>'
            f'<script>var x = "<a href=/nope>";</script>'
            f'<a href="/p/1#top">one</a><a href="p/2">two</a><a href="../up">up</a><a href="#self">self</a>'
            f'<a href="http://{B}/">b</a><a href="HTTP://{B.upper()}:80/#x">b again</a>'
            f'<a href="https://{B}/">tls</a><a href="mailto:x@y">mail</a><a href="http://{B}:8080/">port</a>'
            f'<a>no href</a><a href="http://{B}/a b">space</a></body></html>')
    page = parse_page(f"http://{A}/dir/page", html)
    assert page.title == "A page"
    assert page.text == "Hello & world one two up self b b again tls mail port no href space"
    assert page.links == (f"http://{A}/p/1", f"http://{A}/dir/p/2", f"http://{A}/up", f"http://{A}/dir/page",
                          f"http://{B}/")
    based = parse_page(f"http://{A}/", f'<base href="http://{B}/x/"><a href="y">y</a>')
    assert based.links == (f"http://{B}/x/y",)
    assert normalize_url(f"http://{A}") == f"http://{A}/" and normalize_url(f"http://{A}/?q=1#f") == f"http://{A}/?q=1"
    assert normalize_url("http://[::1/") is None and normalize_url("ftp://a.web.test/") is None


def test_the_page_sent_to_the_indexer_keeps_within_the_search_contract():
    links = tuple(f"http://{B}/p/{n}" for n in range(MAX_OUTLINKS + 10))
    page = web_page(f"http://{B}/p/0", "t" * (MAX_TITLE_CHARS + 5), "body", links)
    assert len(page.title) == MAX_TITLE_CHARS and len(page.outlinks) == MAX_OUTLINKS
    assert f"http://{B}/p/0" not in page.outlinks and page.outlinks[0] == f"http://{B}/p/1"


# --- validation -----------------------------------------------------------------------------------------------------

def _request(**fields) -> crawler_pb2.StartCrawlRequest:
    values = {"crawl_id": "c1", "seed_urls": [f"http://{A}/"], "max_pages": 10, **fields}
    return crawler_pb2.StartCrawlRequest(**values)


@pytest.mark.parametrize(("fields", "field"), [
    ({"crawl_id": ""}, "crawl_id"), ({"crawl_id": "a b"}, "crawl_id"), ({"crawl_id": "x" * 65}, "crawl_id"),
    ({"seed_urls": []}, "seed_urls"), ({"seed_urls": [f"http://{A}/"] * 101}, "seed_urls"),
    ({"seed_urls": [f"http://{A}/", "https://x.test/"]}, "seed_urls[1]"), ({"seed_urls": [""]}, "seed_urls[0]"),
    ({"seed_urls": [f"http://{A}/" + "x" * 2_048]}, "seed_urls[0]"), ({"seed_urls": ["http://A.test/"]}, "seed_urls[0]"),
    ({"max_pages": 0}, "max_pages"), ({"max_pages": 100_001}, "max_pages"),
    ({"max_depth": -1}, "max_depth"), ({"max_depth": 33}, "max_depth"),
])
def test_validation_names_the_field(fields, field):
    with pytest.raises(InvalidArgument) as error:
        validation.start_crawl(_request(**fields))
    assert error.value.field == field


def test_a_valid_request_is_normalised():
    request = validation.start_crawl(_request(seed_urls=[f"http://{A}", f"http://{A}/#x"], max_depth=0))
    assert request.seed_urls == (f"http://{A}/", f"http://{A}/") and request.max_depth == 16
    assert validation.start_crawl(_request(max_depth=32, max_pages=100_000)).max_depth == 32


# --- one crawl ------------------------------------------------------------------------------------------------------

def _html(*links: str, text: str = "") -> bytes:
    body = text or " ".join(random.Random(" ".join(links)).choices([f"w{n}" for n in range(5_000)], k=200))
    return f"<title>t</title><p>{body}</p>{''.join(f'<a href={link}>x</a>' for link in links)}".encode()


class Harness:
    """A crawl with a fake clock and a notify that records the hosts given work."""

    def __init__(self, max_pages=100, max_depth=16, seeds=(f"http://{A}/",), **settings) -> None:
        self.now = 0.0
        self.notified: list[str] = []
        self.ended: list[Crawl] = []
        request = validation.CrawlRequest("c1", tuple(seeds), max_pages, max_depth, False)
        self.crawl = Crawl(request, CrawlerSettings(**settings), notify=lambda crawl, host: self.notified.append(host),
                           on_end=self.ended.append, clock=lambda: self.now, wall_ms=lambda: 1_000)
        self.crawl.begin()

    def robots(self, host: str, status: int = 404, body: bytes = b""):
        fetch = self.crawl.take(host)
        assert fetch is not None and fetch.robots and fetch.url == f"http://{host}/robots.txt"
        return self.crawl.record(fetch, WebResponse(status, body))

    def page(self, host: str, answer):
        fetch = self.crawl.take(host)
        assert fetch is not None and not fetch.robots
        self.crawl.record(fetch, answer)
        return fetch


def test_a_crawl_follows_links_breadth_first_to_max_depth_and_ends_done():
    h = Harness(max_depth=1)
    assert h.notified == [A] and h.crawl.snapshot().frontier_size == 1
    assert h.robots(A, 200, b"User-agent: *\nDisallow: /private/\nCrawl-delay: 1.5\n").crawl_delay_s == 1.5
    home = h.page(A, WebResponse(200, _html("/p/1", "/private/1", f"http://{B}/", "#frag", "/")))
    assert (home.item.depth, h.crawl.robots_blocked) == (0, 1)
    assert h.notified[-2:] == [A, B]
    h.robots(B)
    for host, links in ((A, ("/p/2",)), (B, ("/p/3",))):  # depth 1 = max_depth: links not followed
        fetch = h.page(host, WebResponse(200, _html(*links)))
        assert fetch.item.depth == 1
    assert h.crawl.state == DONE and h.ended == [h.crawl]
    crawl = h.crawl.snapshot()
    assert (crawl.pages_fetched, crawl.depth_reached, crawl.hosts, crawl.frontier_size, crawl.robots_blocked) == (
        3, 1, 2, 0, 1)
    assert crawl.finished_at_unix_ms == 1_000 and h.crawl.take(A) is None


def test_a_503_is_retried_behind_the_queue_and_errors_are_counted():
    h = Harness(max_pages=2, max_retries=1)
    h.robots(A)
    h.page(A, WebResponse(200, _html("/p/1", "/p/2", "/p/3")))
    first = h.page(A, WebResponse(503, b""))
    second = h.crawl.take(A)
    assert second.item.url == f"http://{A}/p/2"  # the retry went behind the URLs of its depth
    assert h.crawl.take(A) is None  # one page left in the budget, and it is in flight
    h.notified.clear()
    h.crawl.record(second, WebResponse(404, b""))
    assert h.notified == [A]  # the budget is free again: the host has work
    h.page(A, FetchFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"))
    retried = h.page(A, WebResponse(503, b""))  # the retries are spent: an error
    assert (retried.item.url, retried.item.attempt) == (first.item.url, 1)
    crawl = h.crawl.snapshot()
    assert (crawl.state, crawl.pages_fetched, crawl.fetch_errors) == (DONE, 1, 3)  # the frontier ran dry


def test_a_crawl_stops_at_exactly_max_pages():
    h = Harness(max_pages=2)
    h.robots(A)
    h.page(A, WebResponse(200, _html("/p/1", "/p/2", "/p/3")))
    h.page(A, WebResponse(200, _html("/p/4")))
    crawl = h.crawl.snapshot()
    assert (crawl.state, crawl.pages_fetched, crawl.frontier_size) == (DONE, 2, 3)  # what was left unfetched
    assert h.crawl.take(A) is None


def test_duplicates_are_neither_followed_nor_indexed_and_unknown_or_failing_hosts_close():
    h = Harness(seeds=(f"http://{A}/", "http://nowhere.web.test/", f"http://{B}/"))
    fetch = h.crawl.take("nowhere.web.test")
    h.crawl.record(fetch, FetchFailed(grpc.StatusCode.NOT_FOUND, "no such host"))
    assert h.crawl.fetch_errors == 1 and not h.crawl.has_work("nowhere.web.test")
    h.robots(B, 503)
    assert h.crawl.robots_blocked == 1 and not h.crawl.has_work(B)
    h.robots(A)
    text = " ".join(f"w{n}" for n in range(300))
    h.page(A, WebResponse(200, _html("/p/1", "/p/2", "http://nowhere.web.test/x", f"http://{B}/y", text=text)))
    assert (h.crawl.fetch_errors, h.crawl.robots_blocked) == (2, 2)
    size = h.crawl.snapshot().frontier_size
    h.page(A, WebResponse(200, _html("/p/6", "/p/7", "/p/8", "/p/9", text=text)))  # the same text: not followed
    assert h.crawl.snapshot().frontier_size == size - 1
    h.page(A, WebResponse(200, _html("/p/6", "/p/7", "/p/8", "/p/9", text=text.replace("w150", "other"))))
    crawl = h.crawl.snapshot()
    assert (crawl.exact_duplicates, crawl.near_duplicates, crawl.state, crawl.pages_fetched) == (1, 1, DONE, 3)


def test_a_fetch_that_never_reached_the_web_is_tried_again_without_spending_an_attempt():
    h = Harness(max_retries=0)
    unreachable = FetchFailed(grpc.StatusCode.UNAVAILABLE, "circuit open")
    fetch = h.crawl.take(A)
    h.notified.clear()
    h.crawl.record(fetch, unreachable)
    assert h.notified == [A]
    robots = h.crawl.take(A)
    assert robots.robots  # robots.txt again
    h.crawl.record(robots, WebResponse(404, b""))
    page = h.crawl.take(A)
    h.crawl.record(page, unreachable)
    again = h.crawl.take(A)
    assert (again.item.url, again.item.attempt) == (page.item.url, 0)
    assert h.crawl.state == RUNNING and h.crawl.fetch_errors == 0
    h.crawl.record(again, WebResponse(200, _html()))
    assert h.crawl.snapshot().pages_fetched == 1 and h.crawl.state == DONE


def test_a_cancelled_crawl_stops_counting():
    h = Harness()
    h.robots(A)
    fetch = h.crawl.take(A)
    h.crawl.cancel()
    h.crawl.cancel()
    assert h.crawl.state == CANCELLED and h.ended == [h.crawl]
    h.crawl.record(fetch, WebResponse(200, _html("/p/1")))
    assert h.crawl.snapshot().pages_fetched == 0 and h.crawl.take(A) is None and not h.crawl.has_work(A)


# --- the fetchers and the indexer feed, without gRPC -----------------------------------------------------------------

WORDS = [f"w{n}" for n in range(5_000)]


class FakeWeb:
    """A WebClient whose hosts each serve a chain of pages, every fetch taking ``latency_s``; it records each fetch's
    start and end (time.monotonic) per host."""

    def __init__(self, latency_s: float = 0.01) -> None:
        self.latency_s = latency_s
        self.fetches: dict[str, list[tuple[float, float, str, str]]] = {}

    async def fetch(self, url: str, crawl_id: str) -> WebResponse:
        host = url.split("/")[2]
        start = time.monotonic()
        await asyncio.sleep(self.latency_s)
        if url.endswith("/robots.txt"):
            response = WebResponse(200, f"User-agent: {USER_AGENT}\nCrawl-delay: 0.08\nDisallow: /private/\n".encode()
                                   if host == A else b"User-agent: *\nDisallow: /private/\n")
        else:
            n = int(url.rsplit("/", 1)[1] or 0)
            links = [f"/{n + 1}", f"http://{B if host == A else A}/{n + 1}", f"/private/{n}"] if n < 6 else []
            response = WebResponse(200, _html(*links, text=" ".join(random.Random(url).choices(WORDS, k=200))))
        self.fetches.setdefault(host, []).append((start, time.monotonic(), crawl_id, url))
        return response


async def test_the_fetchers_keep_each_hosts_interval_from_the_end_of_its_previous_fetch_across_crawls():
    interval = 0.03
    settings = CrawlerSettings(politeness_interval_ms=30, max_crawl_delay_ms=100, fetchers=8)
    start = time.monotonic()
    clock = HostClock(settings.interval_s, settings.restart_wait_s, start)
    web = FakeWeb()
    fetchers = Fetchers(clock, web, settings.fetchers)
    registry = CrawlRegistry(settings, fetchers, index=None)
    queued = metrics.FRONTIER_SIZE._value.get()
    fetchers.start()
    try:
        for crawl_id, seed in (("one", f"http://{A}/"), ("two", f"http://{B}/"), ("three", f"http://{A}/3")):
            registry.start(crawler_pb2.StartCrawlRequest(crawl_id=crawl_id, seed_urls=[seed], max_pages=100))
        crawls = {}
        for _ in range(500):
            crawls = {crawl_id: registry.get(crawl_id) for crawl_id in ("one", "two", "three")}
            if all(crawl.state == DONE for crawl in crawls.values()):
                break
            await asyncio.sleep(0.02)
    finally:
        await fetchers.stop()
    assert all(crawl.state == DONE for crawl in crawls.values()), crawls
    assert metrics.FRONTIER_SIZE._value.get() == queued and metrics.HOSTS_WAITING._value.get() == 0
    pages = {crawl_id: (crawl.pages_fetched, crawl.robots_blocked, crawl.exact_duplicates, crawl.near_duplicates)
             for crawl_id, crawl in crawls.items()}
    assert pages == {"one": (13, 11, 0, 0), "two": (13, 11, 0, 0), "three": (7, 5, 0, 0)}  # /n links /n+1 and /private/n
    assert clock.interval(A) == pytest.approx(0.08) and clock.interval(B) == interval  # A's Crawl-delay
    for host, fetches in web.fetches.items():
        assert fetches[0][0] >= start + settings.restart_wait_s  # a new process waits first
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(fetches)]
        assert min(gaps) >= clock.interval(host), (host, gaps)  # from the END of the previous fetch, every crawl
        for crawl_id in ("one", "two", "three"):
            urls = [url for _, _, c, url in fetches if c == crawl_id]
            assert len(urls) == len(set(urls))  # never a URL twice in a crawl
            assert not urls or urls[0].endswith("/robots.txt")  # robots.txt before any page of the host
            assert not any("/private/" in url for url in urls)


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="test")


class FakeIndexerStub:
    def __init__(self, *failures: grpc.StatusCode) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, float]] = []

    async def IndexPage(self, request, timeout):
        self.calls.append((request.page.url, timeout))
        if self.failures:
            raise _error(self.failures.pop(0))


async def test_the_indexer_feed_retries_unavailable_and_deadlines_but_not_a_refusal(monkeypatch):
    monkeypatch.setattr(indexing, "BACKOFF_BASE_S", 0.001)
    results: list[bool] = []
    for failures, expected, calls in (((), True, 1),
                                      ((grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), True, 3),
                                      ((grpc.StatusCode.UNAVAILABLE,) * 3, False, 3),
                                      ((grpc.StatusCode.INVALID_ARGUMENT,), False, 1)):
        stub = FakeIndexerStub(*failures)
        feed = indexing.IndexFeed(stub, timeout_s=2.0, concurrency=2, backlog=1)
        await (await feed.submit(web_page(f"http://{A}/", "t", "b", ()), results.append))
        assert results[-1] is expected and stub.calls == [(f"http://{A}/", 2.0)] * calls
    stub = FakeIndexerStub()
    gate = asyncio.Event()

    async def slow(request, timeout):
        await gate.wait()

    stub.IndexPage = slow
    feed = indexing.IndexFeed(stub, timeout_s=2.0, concurrency=1, backlog=1)
    first = await feed.submit(web_page(f"http://{A}/1", "", "", ()), results.append)
    second = asyncio.create_task(feed.submit(web_page(f"http://{A}/2", "", "", ()), results.append))
    await asyncio.sleep(0.01)
    assert not second.done()  # the backlog is full: the fetcher waits
    gate.set()
    await first
    await (await second)
    await feed.stop()
    assert results[-2:] == [True, True]

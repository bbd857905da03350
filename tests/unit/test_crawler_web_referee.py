"""The synthetic web's referee (services/crawler/web/referee.py) through its fetcher (fetching.py), on a fake clock:
politeness gaps (min_interval_ms and Crawl-delay, across crawls and anonymous fetches), duplicates against 503
retries, robots violations (the private path, the host closed to casemesh-bot, the host whose robots.txt answers
503), copies fetched, flaky and slow hosts, and the bound on remembered crawls.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.services.crawler import contract
from casemesh.services.crawler.web.fetching import Fetcher
from casemesh.services.crawler.web.generator import PageKind, SyntheticWeb
from casemesh.services.crawler.web.referee import Fetch, Referee
from casemesh.services.crawler.web.robots import RobotsVariant
from casemesh.services.crawler.web.settings import WebSettings
from casemesh.services.runtime.errors import NotFound

BOT = contract.USER_AGENT
WEB = SyntheticWeb(WebSettings())


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _fetcher(web: SyntheticWeb = WEB, max_crawls: int = 1_000, seed: int = 1) -> tuple[Fetcher, _Clock]:
    clock = _Clock()
    referee = Referee(web.page_count, web.settings.hosts, web.plan.partner, max_crawls)
    return Fetcher(web, referee, random.Random(seed), clock=clock, sleep=clock.sleep), clock


def _host(variant: RobotsVariant, web: SyntheticWeb = WEB, usable: bool = True) -> int:
    """A host of ``variant``, neither slow nor flaky when ``usable``."""
    return next(h for h, v in enumerate(web.plan.variants) if v is variant
                and (not usable or (h not in web.plan.slow_hosts and h not in web.plan.flaky_hosts)))


def _url(host: int, path: str = "/") -> str:
    return f"http://{contract.host_name(host)}{path}"


def _public(host: int, web: SyntheticWeb = WEB) -> list[str]:
    return [web.url_of(web.plan.key(host, i)) for i in range(1, web.settings.pages_per_host)
            if web.plan.kinds[web.plan.key(host, i)] != PageKind.PRIVATE]


async def test_politeness_gaps_per_host_across_crawls():
    fetcher, clock = _fetcher()
    a, b = _host(RobotsVariant.STANDARD), _host(RobotsVariant.MISSING)
    await fetcher.fetch(_url(a, "/robots.txt"), "one", BOT)
    clock.now += 1.0  # exactly the interval: polite
    await fetcher.fetch(_url(a), "one", BOT)
    await fetcher.fetch(_url(b), "one", BOT)  # another host: no previous request
    clock.now += 0.25
    await fetcher.fetch(_url(a, "/p/404404"), "two", BOT)  # another crawl, 250 ms after crawl one's request
    clock.now += 0.5
    await fetcher.fetch(_url(b, "/robots.txt"), "", BOT)  # no crawl: still the host's previous request
    clock.now += 0.1
    await fetcher.fetch(_public(b)[0], "one", BOT)
    one, two = fetcher.referee.audit("one"), fetcher.referee.audit("two")
    assert (one.fetches, one.politeness_violations, one.min_host_gap_ms, one.hosts) == (4, 1, pytest.approx(100), 2)
    assert (two.fetches, two.politeness_violations, two.min_host_gap_ms, two.hosts) == (1, 1, pytest.approx(250), 1)
    assert (one.pages_ok, one.duplicate_fetches, one.robots_violations) == (3, 0, 0)
    with pytest.raises(NotFound):
        fetcher.referee.audit("three")


async def test_the_crawl_delay_of_the_fetchs_user_agent():
    fetcher, clock = _fetcher()
    host = _host(RobotsVariant.CRAWL_DELAY)
    pages = _public(host)
    await fetcher.fetch(pages[0], "bot", BOT)
    clock.now += 1.5
    await fetcher.fetch(pages[1], "bot", BOT)  # Crawl-delay 2 s for casemesh-bot
    clock.now += 2.0
    await fetcher.fetch(pages[2], "bot", BOT)
    clock.now += 1.5
    await fetcher.fetch(pages[3], "other", "otherbot")  # no Crawl-delay for others: 1 s
    report = fetcher.referee.audit("bot")
    assert (report.politeness_violations, report.min_host_gap_ms) == (1, pytest.approx(1_500))
    assert fetcher.referee.audit("other").politeness_violations == 0


async def test_duplicates_count_urls_answered_200_not_retries_of_503():
    web = SyntheticWeb(WebSettings(flaky_503_share=1.0))
    fetcher, clock = _fetcher(web)
    flaky = min(web.plan.flaky_hosts - web.plan.slow_hosts)
    page = _public(flaky, web)[0]
    for _ in range(3):
        clock.now += 10
        assert (await fetcher.fetch(page, "c", BOT)).status == 503
    clock.now += 10
    assert (await fetcher.fetch(_url(flaky, "/robots.txt"), "c", BOT)).status == 200  # robots.txt never fails
    clock.now += 10
    assert (await fetcher.fetch(_url(flaky, "/robots.txt"), "c", BOT)).status == 200
    report = fetcher.referee.audit("c")
    assert (report.fetches, report.pages_ok, report.duplicate_fetches) == (5, 0, 1)

    fetcher, clock = _fetcher()
    host = _host(RobotsVariant.STANDARD)
    for url in (_url(host), _url(host, "/nowhere"), _url(host, "/nowhere"), _url(host), _url(host, "/#again")):
        clock.now += 10
        await fetcher.fetch(url, "d", BOT)
    clock.now += 10
    await fetcher.fetch(_url(host), "e", BOT)  # another crawl may fetch it again
    report = fetcher.referee.audit("d")
    assert (report.fetches, report.pages_ok, report.duplicate_fetches, report.politeness_violations) == (5, 1, 2, 0)
    assert fetcher.referee.audit("e").duplicate_fetches == 0


async def test_a_flaky_host_fails_some_fetches_and_a_retry_can_succeed():
    fetcher, clock = _fetcher(seed=7)
    flaky = min(WEB.plan.flaky_hosts - WEB.plan.slow_hosts)
    statuses = []
    for url in _public(flaky)[:20]:
        for _attempt in range(10):
            clock.now += 10
            statuses.append((await fetcher.fetch(url, "c", BOT)).status)
            if statuses[-1] == 200:
                break
    assert statuses.count(200) == 20 and 0 < statuses.count(503) < 20
    report = fetcher.referee.audit("c")
    assert (report.pages_ok, report.duplicate_fetches) == (20, 0)


async def test_robots_violations():
    fetcher, clock = _fetcher()
    standard, closed = _host(RobotsVariant.STANDARD), _host(RobotsVariant.CLOSED)
    failing, missing = _host(RobotsVariant.FAILING), _host(RobotsVariant.MISSING)
    private = next(WEB.url_of(k) for k in range(WEB.page_count)
                   if WEB.plan.kinds[k] == PageKind.PRIVATE and WEB.host_of(k) == standard)
    assert (await fetcher.fetch(_url(failing, "/robots.txt"), "c", BOT)).status == 503
    assert (await fetcher.fetch(_url(missing, "/robots.txt"), "c", BOT)).status == 404
    assert (await fetcher.fetch(_url(closed, "/robots.txt"), "c", BOT)).status == 200
    assert fetcher.referee.audit("c").robots_violations == 0
    clock.now += 10
    assert (await fetcher.fetch(private, "c", BOT)).status == 200  # served: robots.txt is advice
    assert (await fetcher.fetch(_url(closed), "c", BOT)).status == 200
    assert (await fetcher.fetch(_url(failing, "/p/99999"), "c", BOT)).status == 404  # any path of a 503 robots.txt
    assert fetcher.referee.audit("c").robots_violations == 3
    clock.now += 10
    await fetcher.fetch(_url(closed), "other", "otherbot")  # the * group allows it
    await fetcher.fetch(_url(missing, private.split("web.test")[1]), "other", BOT)  # no robots.txt: all allowed
    assert fetcher.referee.audit("other").robots_violations == 0
    clock.now += 10
    await fetcher.fetch(_url(failing), "other", "otherbot")
    assert fetcher.referee.audit("other").robots_violations == 1


async def test_copies_fetched_count_each_pair_once_in_either_order():
    fetcher, clock = _fetcher()
    pairs = list(WEB.plan.original.items())[:3]
    for copy, original in pairs[:2]:  # original first, then copy first
        for key in ((original, copy) if copy == pairs[0][0] else (copy, original)):
            clock.now += 10
            await fetcher.fetch(WEB.url_of(key), "c", BOT)
    clock.now += 10
    await fetcher.fetch(WEB.url_of(pairs[2][0]), "c", BOT)  # a copy whose original this crawl never fetched
    report = fetcher.referee.audit("c")
    assert (report.pages_ok, report.near_copies_fetched) == (5, 2)
    copy, original = pairs[0]
    assert (await fetcher.fetch(WEB.url_of(copy), "x", BOT)).body != b""
    page, copied = WEB.page(original), WEB.page(copy)
    assert page.title == copied.title and page.links == copied.links


async def test_a_slow_host_answers_after_its_delay_without_blocking():
    fetcher, clock = _fetcher()
    slow = min(WEB.plan.slow_hosts)
    fast = _host(RobotsVariant.STANDARD)
    await fetcher.fetch(_url(fast), "c", BOT)
    assert clock.sleeps == []
    await fetcher.fetch(_url(slow, "/robots.txt"), "c", BOT)
    await fetcher.fetch(_url(slow, "/gone"), "c", BOT)
    assert clock.sleeps == [0.3, 0.3]


async def test_an_unknown_host_is_not_found_and_not_recorded():
    fetcher, _ = _fetcher()
    with pytest.raises(NotFound):
        await fetcher.fetch("http://host200.web.test/", "c", BOT)
    with pytest.raises(NotFound):
        fetcher.referee.audit("c")


def test_only_the_most_recently_fetching_crawls_are_remembered():
    referee = Referee(10, 2, {}, max_crawls=2)

    def fetch(crawl: str, at: float) -> None:
        referee.record(Fetch(crawl, 0, None, False, 404, True, 1_000.0, at))

    fetch("a", 0.0)
    fetch("b", 10.0)
    fetch("a", 20.0)
    fetch("c", 30.0)  # b fetched least recently
    assert referee.crawls == 2 and referee.audit("a").fetches == 2 and referee.audit("c").fetches == 1
    with pytest.raises(NotFound):
        referee.audit("b")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3), st.integers(0, 5), st.integers(0, 2_500)),
                max_size=40))
def test_the_referee_agrees_with_a_model(steps):
    """Random fetches (crawl, host, page, milliseconds since the previous fetch), all answered 200 and allowed."""
    referee = Referee(24, 4, {0: 1, 1: 0}, max_crawls=10)
    last: dict[int, float] = {}
    model: dict[str, dict] = {}
    now = 0.0
    for crawl, host, index, wait_ms in steps:
        now += wait_ms / 1_000
        key = host * 6 + index
        referee.record(Fetch(crawl, host, key, False, 200, True, 1_000.0, now))
        m = model.setdefault(crawl, {"ok": set(), "dup": 0, "polite": 0, "gap": None, "hosts": set(), "n": 0})
        m["n"] += 1
        m["hosts"].add(host)
        if host in last:
            gap = (now - last[host]) * 1_000
            m["polite"] += gap < 1_000
            m["gap"] = gap if m["gap"] is None else min(m["gap"], gap)
        last[host] = now
        m["dup"] += key in m["ok"]
        m["ok"].add(key)
    for crawl, m in model.items():
        report = referee.audit(crawl)
        assert (report.fetches, report.pages_ok, report.duplicate_fetches, report.politeness_violations,
                report.hosts) == (m["n"], len(m["ok"]), m["dup"], m["polite"], len(m["hosts"]))
        assert report.min_host_gap_ms == pytest.approx(m["gap"] or 0.0)
        assert report.near_copies_fetched == int({0, 1} <= m["ok"])

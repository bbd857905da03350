"""The crawl's referee: it sees every fetch the synthetic web answers and counts, per crawl, what a polite crawler
never does (protos/casemesh/crawler/v1/web.proto, Audit).

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness,
deduplication (MD5/Simhash), BFS"). The rules:

- politeness: per host, the time of the previous request by anyone (every crawl, and fetches that name none); a
  request less than the host's interval after it (``min_interval_ms``, or the host's robots.txt Crawl-delay for the
  fetch's user agent when longer) is a politeness violation of the fetch's crawl. Times are ``time.monotonic()``
  taken when the request arrives, so a slow host's delay does not shorten the next gap;
- robots: a fetch of a path the host's robots.txt disallows for the fetch's user agent (any path but robots.txt itself;
  a host whose robots.txt answers 503 disallows every path, RFC 9309 2.3.1.4) is a robots violation, whatever the
  answer;
- duplicates: a fetch of a URL (a page or robots.txt) already answered 200 in the crawl is a duplicate fetch; fetching
  again a URL answered 503 or 404 is not;
- copies: a page answered 200 whose copy partner (its original, or its copy: :class:`~.generator.WebPlan` pairs each
  copy with one original) was already answered 200 in the crawl counts as a near copy fetched: what near-duplicate
  detection should keep out of the index (exact copies included).

A crawl is remembered from its first fetch; only the ``max_crawls`` crawls that fetched most recently are kept (the
others are forgotten: Audit answers NOT_FOUND). Memory per crawl: a bitmap of the URLs answered 200 (one bit per
page and per robots.txt: 1.3 KB for the default 10,000-page web) and the set of its hosts. Single-threaded (the event
loop): no locks.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...runtime.errors import NotFound

__all__ = ["AuditReport", "Fetch", "Referee", "Verdict"]


@dataclass(frozen=True, slots=True)
class Fetch:
    """One request as the referee sees it.

    ``resource`` identifies the URL for duplicates: a page key (0 to ``page_count - 1``), ``page_count + host`` for a
    host's robots.txt (``robots_txt`` True), or ``None`` for a URL that leads nowhere (404); ``allowed`` whether
    robots.txt allows the path for the user agent (always for robots.txt itself); ``interval_ms`` the host's polite
    interval for the user agent; ``at_s`` the monotonic time of arrival in seconds.
    """

    crawl_id: str
    host: int
    resource: int | None
    robots_txt: bool
    status: int
    allowed: bool
    interval_ms: float
    at_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one fetch broke (for the metrics)."""

    robots: bool
    politeness: bool
    duplicate: bool


@dataclass(frozen=True, slots=True)
class AuditReport:
    """One crawl's counts, as AuditResponse (``min_host_gap_ms`` 0 when no fetch of it had a previous request to the
    same host)."""

    fetches: int
    pages_ok: int
    duplicate_fetches: int
    robots_violations: int
    politeness_violations: int
    min_host_gap_ms: float
    near_copies_fetched: int
    hosts: int


@dataclass(slots=True)
class _Crawl:
    answered: bytearray
    hosts: set[int] = field(default_factory=set)
    fetches: int = 0
    pages_ok: int = 0
    duplicates: int = 0
    robots: int = 0
    politeness: int = 0
    near_copies: int = 0
    min_gap_ms: float = math.inf

    def is_answered(self, resource: int) -> bool:
        return bool(self.answered[resource >> 3] & (1 << (resource & 7)))

    def mark_answered(self, resource: int) -> None:
        self.answered[resource >> 3] |= 1 << (resource & 7)


class Referee:
    """Counts every crawl's fetches and violations (see the module docstring).

    ``page_count`` and ``host_count`` size the bitmaps; ``partners`` maps each page of a copy pair to the other;
    ``max_crawls`` bounds the crawls remembered.
    """

    def __init__(self, page_count: int, host_count: int, partners: Mapping[int, int], max_crawls: int):
        self._resources = page_count + host_count
        self._partners = partners
        self._max_crawls = max_crawls
        self._last_request_s: dict[int, float] = {}
        self._crawls: OrderedDict[str, _Crawl] = OrderedDict()

    def record(self, fetch: Fetch) -> Verdict:
        """Count ``fetch`` for its crawl (none when ``crawl_id`` is empty) and for its host's politeness clock."""
        previous = self._last_request_s.get(fetch.host)
        self._last_request_s[fetch.host] = fetch.at_s
        gap_ms = None if previous is None else max(0.0, (fetch.at_s - previous) * 1_000.0)
        robots = not fetch.allowed
        politeness = gap_ms is not None and gap_ms < fetch.interval_ms
        if not fetch.crawl_id:
            return Verdict(robots, politeness, False)
        crawl = self._crawl(fetch.crawl_id)
        crawl.fetches += 1
        crawl.hosts.add(fetch.host)
        crawl.robots += robots
        crawl.politeness += politeness
        if gap_ms is not None:
            crawl.min_gap_ms = min(crawl.min_gap_ms, gap_ms)
        duplicate = False
        if fetch.resource is not None:
            duplicate = crawl.is_answered(fetch.resource)
            crawl.duplicates += duplicate
            if fetch.status == 200 and not duplicate:
                crawl.mark_answered(fetch.resource)
                if not fetch.robots_txt:
                    crawl.pages_ok += 1
                    partner = self._partners.get(fetch.resource)
                    if partner is not None and crawl.is_answered(partner):
                        crawl.near_copies += 1
        return Verdict(robots, politeness, duplicate)

    def _crawl(self, crawl_id: str) -> _Crawl:
        crawl = self._crawls.get(crawl_id)
        if crawl is None:
            crawl = self._crawls[crawl_id] = _Crawl(bytearray((self._resources + 7) // 8))
            while len(self._crawls) > self._max_crawls:
                self._crawls.popitem(last=False)
        else:
            self._crawls.move_to_end(crawl_id)
        return crawl

    def audit(self, crawl_id: str) -> AuditReport:
        """Crawl ``crawl_id``'s counts; :class:`NotFound` when no remembered fetch named it."""
        crawl = self._crawls.get(crawl_id)
        if crawl is None:
            raise NotFound(f"no fetch named crawl {crawl_id!r} (or it is older than the last "
                           f"{self._max_crawls:,} crawls)")
        return AuditReport(crawl.fetches, crawl.pages_ok, crawl.duplicates, crawl.robots, crawl.politeness,
                           0.0 if math.isinf(crawl.min_gap_ms) else crawl.min_gap_ms, crawl.near_copies,
                           len(crawl.hosts))

    @property
    def crawls(self) -> int:
        """Crawls remembered."""
        return len(self._crawls)

"""The synthetic web answering a fetch as its web servers would, with the referee watching (protos/casemesh/crawler/
v1/web.proto, Fetch), seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier,
robots.txt, politeness").

A fetch of a known host is answered:

- robots.txt: 200 with its text, 404 (no file) or 503 (the failing variant), :mod:`.robots`;
- a page: 200 with its HTML (:mod:`.pages`), or 503 on a flaky host (``flaky_503_share`` of page fetches, at random:
  a retry may succeed);
- anything else: 404.

The referee (:class:`.referee.Referee`) records the fetch when it arrives, before a slow host's delay
(``slow_delay_ms``, an ``asyncio.sleep``: the event loop keeps serving). An unknown host is a DNS failure:
:class:`~services.runtime.errors.NotFound`, not recorded.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ...runtime.errors import NotFound
from . import metrics
from .generator import SyntheticWeb
from .pages import HTML_CONTENT_TYPE, TEXT_CONTENT_TYPE, render
from .referee import Fetch, Referee

__all__ = ["Fetcher", "Response"]


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer: status, content type (empty without a body) and body."""

    status: int
    content_type: str = ""
    body: bytes = b""


class Fetcher:
    """Answers fetches of ``web`` and tells ``referee`` about each.

    ``rng`` draws the flaky hosts' 503s; ``clock`` (seconds, monotonic) and ``sleep`` are injectable for tests.
    """

    def __init__(self, web: SyntheticWeb, referee: Referee, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.web = web
        self.referee = referee
        self._rng = rng or random.Random(web.settings.seed)
        self._clock = clock
        self._sleep = sleep

    async def fetch(self, url: str, crawl_id: str, user_agent: str) -> Response:
        """Answer ``url`` (a valid web URL) fetched by ``user_agent`` for crawl ``crawl_id`` (empty: none).

        Raises :class:`NotFound` when the URL's host is not one of the web's.
        """
        at_s = self._clock()
        location = self.web.locate(url)
        if location is None:
            raise NotFound(f"no such host: {url!r} is not on any of the web's {self.web.settings.hosts:,} hosts")
        web, settings, host = self.web, self.web.settings, location.host
        rules = web.rules[host]
        if location.robots:
            status, text = web.robots(host)
            response = Response(status, TEXT_CONTENT_TYPE, text.encode()) if text is not None else Response(status)
            resource: int | None = web.page_count + host
        elif location.key is None:
            response, resource = Response(404), None
        elif host in web.plan.flaky_hosts and self._rng.random() < settings.flaky_503_share:
            response, resource = Response(503), location.key
        else:
            response = Response(200, HTML_CONTENT_TYPE, render(web.page(location.key)))
            resource = location.key
        allowed = location.robots or rules.allowed(location.path, user_agent)
        interval_ms = max(float(settings.min_interval_ms), rules.crawl_delay_ms(user_agent))
        verdict = self.referee.record(Fetch(crawl_id, host, resource, location.robots, response.status, allowed,
                                            interval_ms, at_s))
        metrics.FETCHES.labels("robots" if location.robots else "page", str(response.status)).inc()
        for kind, broken in (("robots", verdict.robots), ("politeness", verdict.politeness),
                             ("duplicate", verdict.duplicate)):
            if broken:
                metrics.VIOLATIONS.labels(kind).inc()
        metrics.AUDITED_CRAWLS.set(self.referee.crawls)
        if host in web.plan.slow_hosts and settings.slow_delay_ms:
            metrics.DELAYED_FETCHES.inc()
            await self._sleep(settings.slow_delay_ms / 1_000)
        return response

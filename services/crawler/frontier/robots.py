"""What a host's robots.txt lets the crawler do (RFC 9309, parsed by ``protego``).

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness").
A crawl fetches ``http://HOST/robots.txt`` once per host, before any page of the host, and reads the answer as RFC
9309 section 2.3.1 says:

- 2xx: the rules of the group that matches ``contract.USER_AGENT`` (``casemesh-bot``), or of ``*``; its
  ``Crawl-delay`` (not in RFC 9309, but obeyed by Bing and Yandex and counted by the synthetic web's referee)
  lengthens the host's politeness interval;
- 4xx ("unavailable", 2.3.1.3): no rules, every URL may be fetched;
- 5xx or no answer at all ("unreachable", 2.3.1.4): the crawler MUST assume complete disallow: the host is closed for
  the crawl.

A Crawl-delay longer than the crawler's ``max_crawl_delay_ms`` also closes the host (the crawler does not keep a host
it may fetch only once a minute, and a restarted crawler could not honour the delay; :mod:`.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from protego import Protego

from ..contract import USER_AGENT


@dataclass(frozen=True)
class RobotsRules:
    """One host's robots.txt as one crawl obeys it.

    ``closed``: no URL of the host may be fetched (``reason`` says why: ``"unreachable"`` for a 5xx or a failed
    fetch, ``"crawl_delay"`` for a Crawl-delay beyond the crawler's limit); ``crawl_delay_s``: the Crawl-delay for
    ``casemesh-bot`` in seconds, ``None`` when the file sets none.
    """

    closed: bool = False
    reason: str = ""
    crawl_delay_s: float | None = None
    parser: Protego | None = None

    def allows(self, url: str) -> bool:
        """True when ``url`` (a URL of this host) may be fetched by ``casemesh-bot``."""
        if self.closed:
            return False
        return self.parser is None or self.parser.can_fetch(url, USER_AGENT)


#: A host whose robots.txt could not be read (RFC 9309 2.3.1.4).
UNREACHABLE = RobotsRules(closed=True, reason="unreachable")
#: A host without robots.txt (RFC 9309 2.3.1.3): everything allowed.
ALLOW_ALL = RobotsRules()


def rules_from_response(status: int, body: bytes, max_crawl_delay_s: float) -> RobotsRules:
    """The rules of a robots.txt fetch answered ``status`` with ``body`` (UTF-8; undecodable bytes replaced, as
    RFC 9309 2.2 lets a crawler ignore what it cannot parse)."""
    if 400 <= status < 500:
        return ALLOW_ALL
    if not 200 <= status < 300:
        return UNREACHABLE
    parser = Protego.parse(body.decode("utf-8", errors="replace"))
    delay = parser.crawl_delay(USER_AGENT)
    delay_s = float(delay) if delay is not None and delay > 0 else None
    if delay_s is not None and delay_s > max_crawl_delay_s:
        return RobotsRules(closed=True, reason="crawl_delay", crawl_delay_s=delay_s)
    return RobotsRules(crawl_delay_s=delay_s, parser=parser)

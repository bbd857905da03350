"""The synthetic web's robots.txt files (RFC 9309, the Robots Exclusion Protocol) and their reading with protego.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness").
Each host serves one :class:`RobotsVariant`:

- ``STANDARD``: ``User-agent: *`` / ``Disallow: /private/``;
- ``CLOSED``: a ``casemesh-bot`` group with ``Disallow: /`` (the whole host closed to the crawler) and a ``*`` group
  that only closes ``/private/``, so a crawler that reads the wrong group is caught;
- ``CRAWL_DELAY``: a ``casemesh-bot`` group with ``Crawl-delay: N`` and ``Disallow: /private/`` (a crawler's own group
  replaces the ``*`` group, RFC 9309 2.2.1, so it repeats the rule);
- ``MISSING``: robots.txt answers 404: everything is allowed (RFC 9309 2.3.1.3);
- ``FAILING``: robots.txt answers 503: the crawler must assume the host fully disallowed (RFC 9309 2.3.1.4).

:class:`HostRules` decides, for the referee and for GetWeb, what a user agent may fetch and how long it must wait
between two requests: protego (Scrapy's RFC 9309 parser) parses each host's file once.
"""

from __future__ import annotations

from enum import Enum

from protego import Protego

from .. import contract

__all__ = ["HostRules", "RobotsVariant", "robots_text"]


class RobotsVariant(Enum):
    """What a host's robots.txt says (see the module docstring)."""

    STANDARD = "standard"
    CLOSED = "closed"
    CRAWL_DELAY = "crawl_delay"
    MISSING = "missing"
    FAILING = "failing"


#: The path every robots.txt that has rules closes.
PRIVATE_PREFIX = "/private/"


def robots_text(variant: RobotsVariant, host: str, crawl_delay_s: int) -> str | None:
    """The robots.txt of ``host`` in ``variant`` (``crawl_delay_s`` seconds for CRAWL_DELAY); ``None`` for MISSING and
    FAILING, which have no file (answered 404 and 503)."""
    header = f"# robots.txt of {host} (RFC 9309)\n"
    everyone = f"User-agent: *\nDisallow: {PRIVATE_PREFIX}\n"
    if variant is RobotsVariant.STANDARD:
        return header + everyone
    if variant is RobotsVariant.CLOSED:
        return f"{header}User-agent: {contract.USER_AGENT}\nDisallow: /\n\n{everyone}"
    if variant is RobotsVariant.CRAWL_DELAY:
        return (f"{header}User-agent: {contract.USER_AGENT}\nCrawl-delay: {crawl_delay_s}\n"
                f"Disallow: {PRIVATE_PREFIX}\n\n{everyone}")
    return None


class HostRules:
    """One host's robots.txt as a crawler must read it: what a user agent may fetch and its Crawl-delay.

    A host without robots.txt (404) allows everything; a host whose robots.txt fails (503) allows nothing but the
    robots.txt itself (RFC 9309 2.3.1.4).
    """

    def __init__(self, variant: RobotsVariant, text: str | None):
        self.variant = variant
        self._parsed = Protego.parse(text) if text is not None else None

    def allowed(self, path: str, user_agent: str) -> bool:
        """True when ``user_agent`` may fetch ``path`` (a path starting with ``/``) of this host."""
        if self.variant is RobotsVariant.FAILING:
            return False
        if self._parsed is None:
            return True
        return self._parsed.can_fetch(path, user_agent)

    def crawl_delay_ms(self, user_agent: str) -> float:
        """The Crawl-delay of ``user_agent``'s group in milliseconds; 0 when none."""
        if self._parsed is None:
            return 0.0
        delay = self._parsed.crawl_delay(user_agent)
        return 0.0 if delay is None else delay * 1_000.0

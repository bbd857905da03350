"""The web crawler contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/crawler/v1/{web,crawler}.proto).

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"). Imported by the crawler, the synthetic
web and the crawler workload, and by nothing else of either side; a client in another language applies the same
rules, which the protos quote in their field comments.

- The synthetic web's hosts are ``hostNNN.web.test`` (:func:`host_name`; ``.test`` is reserved by RFC 2606, so no URL
  of it resolves anywhere else), its URLs ``http://HOST/PATH`` (:func:`is_web_url`), robots.txt at
  :func:`robots_url`.
- Crawl IDs: 1 to 64 characters of ``[A-Za-z0-9_-]`` (:func:`is_crawl_id`).
- A crawl: 1 to :data:`MAX_SEED_URLS` seeds, 1 to :data:`MAX_PAGES` pages, a depth of 0 to :data:`MAX_DEPTH`
  (0: :data:`DEFAULT_DEPTH`).
- The crawler names itself :data:`USER_AGENT` in Fetch and in robots.txt groups.
- Politeness: at most one request per :data:`MIN_INTERVAL_MS` milliseconds per host (or the host's robots.txt
  Crawl-delay, when longer), the synthetic web's rule and the crawler's default.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..runtime.identifiers import is_id

__all__ = [
    "DEFAULT_DEPTH", "HOST_SUFFIX", "MAX_DEPTH", "MAX_PAGES", "MAX_SEED_URLS", "MAX_URL_CHARS", "MIN_INTERVAL_MS",
    "USER_AGENT", "host_name", "is_crawl_id", "is_web_url", "robots_url",
]

#: Every synthetic web host's name ends with this (RFC 2606 reserves ``.test``).
HOST_SUFFIX = ".web.test"
MAX_URL_CHARS = 2_048
MAX_SEED_URLS = 100
MAX_PAGES = 100_000
MAX_DEPTH = 32
DEFAULT_DEPTH = 16
#: The crawler's robots.txt product token and Fetch user agent.
USER_AGENT = "casemesh-bot"
#: One request per second per host: the issue's politeness bound, enforced by the synthetic web's referee.
MIN_INTERVAL_MS = 1_000

_URL_RE = re.compile(r"^http://[a-z0-9.-]+(/[^\s\x00-\x1f\x7f]*)?$")


def host_name(number: int) -> str:
    """The synthetic web's host ``number`` (from 0): ``host007.web.test``."""
    return f"host{number:03d}{HOST_SUFFIX}"


def is_web_url(url: str) -> bool:
    """True for an ``http://`` URL of 1 to :data:`MAX_URL_CHARS` characters with a lower-case host and an optional
    path (any host: the web answers NOT_FOUND for a host it does not have)."""
    return 0 < len(url) <= MAX_URL_CHARS and _URL_RE.match(url) is not None


def robots_url(url: str) -> str:
    """The robots.txt URL of ``url``'s host: ``http://HOST/robots.txt``."""
    return f"http://{urlsplit(url).hostname}/robots.txt"


def is_crawl_id(value: str) -> bool:
    """True for 1 to 64 characters of ``[A-Za-z0-9_-]``."""
    return is_id(value)

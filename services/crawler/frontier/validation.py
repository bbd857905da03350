"""crawler's input rules, as protos/casemesh/crawler/v1/crawler.proto states them.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34, "Web Crawler"). Each check raises
:class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do (``crawl_id``,
``seed_urls``, ``seed_urls[i]``, ``max_pages``, ``max_depth``), the first bad one in the proto's field order. The rules
are the crawler contract's (:mod:`services.crawler.contract`).
"""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.crawler.v1 import crawler_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE
from ..contract import DEFAULT_DEPTH, MAX_DEPTH, MAX_PAGES, MAX_SEED_URLS, MAX_URL_CHARS, is_crawl_id, is_web_url
from .parse import normalize_url


@dataclass(frozen=True)
class CrawlRequest:
    """A valid StartCrawlRequest: seeds normalised (:func:`.parse.normalize_url`), ``max_depth`` 0 as
    ``contract.DEFAULT_DEPTH``."""

    crawl_id: str
    seed_urls: tuple[str, ...]
    max_pages: int
    max_depth: int
    index_pages: bool


def crawl_id(value: str) -> str:
    """A request's ``crawl_id``: 1 to 64 characters of [A-Za-z0-9_-]."""
    if not value:
        raise InvalidArgument("crawl_id", f"is required ({ID_RULE})")
    if not is_crawl_id(value):
        raise InvalidArgument("crawl_id", f"must be {ID_RULE}")
    return value


def start_crawl(request: crawler_pb2.StartCrawlRequest) -> CrawlRequest:
    """StartCrawlRequest: ``crawl_id``; ``seed_urls`` 1 to 100, each an http URL of 1 to 2,048 characters
    (``contract.is_web_url``); ``max_pages`` 1 to 100,000; ``max_depth`` 0 to 32 (0: 16)."""
    identifier = crawl_id(request.crawl_id)
    if not 1 <= len(request.seed_urls) <= MAX_SEED_URLS:
        raise InvalidArgument("seed_urls", f"must hold 1 to {MAX_SEED_URLS} URLs (got {len(request.seed_urls)})")
    seeds = []
    for i, url in enumerate(request.seed_urls):
        normalised = normalize_url(url) if is_web_url(url) else None
        if normalised is None:
            raise InvalidArgument(f"seed_urls[{i}]", f"must be an http URL of 1 to {MAX_URL_CHARS:,} characters "
                                                     "with a lower-case host and no port (http://HOST/PATH)")
        seeds.append(normalised)
    if not 1 <= request.max_pages <= MAX_PAGES:
        raise InvalidArgument("max_pages", f"{request.max_pages} is not 1 to {MAX_PAGES:,}")
    if not 0 <= request.max_depth <= MAX_DEPTH:
        raise InvalidArgument("max_depth", f"{request.max_depth} is not 0 to {MAX_DEPTH} (0: {DEFAULT_DEPTH})")
    return CrawlRequest(identifier, tuple(seeds), request.max_pages, request.max_depth or DEFAULT_DEPTH,
                        request.index_pages)

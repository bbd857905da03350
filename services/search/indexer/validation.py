"""search-indexer's input rules, as protos/casemesh/search/v1/indexer.proto and search.proto (``WebPage``) state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the proto's comments do
(``page.url``, ``page.title``, ``page.body``, ``page.outlinks[i]``; ``url``; ``shard``, ``shard_count``), the first
bad one in the proto's field order, except that ScanShard checks ``shard_count`` before ``shard`` (the range of
``shard`` depends on it). The limits and the URL rule are the contract's (:mod:`services.search.contract`): a client
in another language applies the same rules.

A page's outlinks are normalised as ``WebPage.outlinks`` says: links to the page itself and repeats are dropped, the
first occurrence of each kept in order.
"""

from __future__ import annotations

from casemesh.search.v1 import indexer_pb2

from ...runtime.errors import InvalidArgument
from ..contract import MAX_BODY_CHARS, MAX_OUTLINKS, MAX_SHARDS, MAX_TITLE_CHARS, MAX_URL_CHARS, is_page_url
from .records import Page

__all__ = ["page", "scan_shard", "url"]

_URL_RULE = f"an http:// or https:// URL of 1 to {MAX_URL_CHARS:,} characters: a host, then an optional path"


def url(value: str, field: str = "url") -> str:
    """A page URL (``contract.is_page_url``), naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_URL_RULE})")
    if not is_page_url(value):
        raise InvalidArgument(field, f"{value[:100]!r} is not {_URL_RULE}")
    return value


def page(request: indexer_pb2.IndexPageRequest) -> Page:
    """IndexPageRequest: ``page.url``, ``page.title`` (0 to 512 characters), ``page.body`` (0 to 200,000 characters),
    ``page.outlinks`` (0 to 500 URLs, each as ``page.url``; the first beyond 500 is named ``page.outlinks[500]``)."""
    web_page = request.page
    page_url = url(web_page.url, "page.url")
    if len(web_page.title) > MAX_TITLE_CHARS:
        raise InvalidArgument("page.title", f"has {len(web_page.title):,} characters; at most {MAX_TITLE_CHARS:,}")
    if len(web_page.body) > MAX_BODY_CHARS:
        raise InvalidArgument("page.body", f"has {len(web_page.body):,} characters; at most {MAX_BODY_CHARS:,}")
    if len(web_page.outlinks) > MAX_OUTLINKS:
        raise InvalidArgument(f"page.outlinks[{MAX_OUTLINKS}]", f"a page has at most {MAX_OUTLINKS} outlinks; "
                                                                 f"this one has {len(web_page.outlinks):,}")
    outlinks: dict[str, None] = {}
    for i, link in enumerate(web_page.outlinks):
        url(link, f"page.outlinks[{i}]")
        if link != page_url:
            outlinks[link] = None
    return Page(page_url, web_page.title, web_page.body, tuple(outlinks))


def scan_shard(request: indexer_pb2.ScanShardRequest) -> tuple[int, int]:
    """ScanShardRequest: ``(shard, shard_count)``, ``shard_count`` 1 to 64 and ``shard`` 0 to ``shard_count`` - 1."""
    if not 1 <= request.shard_count <= MAX_SHARDS:
        raise InvalidArgument("shard_count", f"{request.shard_count} is not 1 to {MAX_SHARDS}")
    if not 0 <= request.shard < request.shard_count:
        raise InvalidArgument("shard", f"{request.shard} is not 0 to {request.shard_count - 1} (shard_count - 1)")
    return request.shard, request.shard_count

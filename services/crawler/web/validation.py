"""crawler-web's input rules, as protos/casemesh/crawler/v1/web.proto states them (seed 001 #28,
shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler").

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field (``url``, ``crawl_id``,
``user_agent``), the first bad one in the proto's field order. The URL and crawl ID rules are the contract's
(:mod:`services.crawler.contract`).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.crawler.v1 import web_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE
from .. import contract

__all__ = ["MAX_USER_AGENT_CHARS", "FetchQuery", "audit", "fetch"]

MAX_USER_AGENT_CHARS = 64


class FetchQuery(NamedTuple):
    """A valid FetchRequest."""

    url: str
    crawl_id: str
    user_agent: str


def fetch(request: web_pb2.FetchRequest) -> FetchQuery:
    """FetchRequest: ``url`` (an ``http://`` URL of 1 to 2,048 characters), ``crawl_id`` (empty, or 1 to 64 characters
    of [A-Za-z0-9_-]) and ``user_agent`` (1 to 64 characters)."""
    if not contract.is_web_url(request.url):
        raise InvalidArgument("url", f"is not an http:// URL of 1 to {contract.MAX_URL_CHARS:,} characters with a "
                                     "lower-case host" if request.url else "is required")
    if request.crawl_id and not contract.is_crawl_id(request.crawl_id):
        raise InvalidArgument("crawl_id", f"must be empty or {ID_RULE}")
    if not 1 <= len(request.user_agent) <= MAX_USER_AGENT_CHARS:
        raise InvalidArgument("user_agent", f"has {len(request.user_agent)} characters; 1 to {MAX_USER_AGENT_CHARS}")
    return FetchQuery(request.url, request.crawl_id, request.user_agent)


def audit(request: web_pb2.AuditRequest) -> str:
    """AuditRequest: ``crawl_id`` (1 to 64 characters of [A-Za-z0-9_-])."""
    if not request.crawl_id:
        raise InvalidArgument("crawl_id", f"is required ({ID_RULE})")
    if not contract.is_crawl_id(request.crawl_id):
        raise InvalidArgument("crawl_id", f"must be {ID_RULE}")
    return request.crawl_id

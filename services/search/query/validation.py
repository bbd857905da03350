"""search-query's input rules, as protos/casemesh/search/v1/query.proto states them for SearchRequest.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field, the first bad one in the
proto's field order: ``query`` (the syntax and limits of :mod:`.parser`), ``page_size`` (0 to
:data:`~services.search.contract.MAX_PAGE_SIZE`; 0: :data:`~services.search.contract.DEFAULT_PAGE_SIZE`),
``page_token`` (empty for the first page, else a ``next_page_token`` of the same query, never past the
:data:`~services.search.contract.MAX_RESULTS`-th result).

Page tokens are :mod:`services.runtime.page_tokens` tokens of kind :data:`TOKEN_KIND`, scoped by the normalised
query (``contract.normalize_query(query).strip()``), whose position is the offset of the page's first result
(``{"o": offset}``).
"""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.search.v1 import query_pb2

from ...runtime import page_tokens
from ...runtime.errors import InvalidArgument
from ..contract import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_RESULTS, normalize_query
from .parser import ParsedQuery, parse_query

__all__ = ["TOKEN_KIND", "SearchQuery", "next_page_token", "search_request"]

#: The page tokens' listing kind.
TOKEN_KIND = "search"


@dataclass(frozen=True)
class SearchQuery:
    """A valid SearchRequest: the parsed query, its normalised text, and the page (results ``offset`` to
    ``offset + page_size - 1``, 0-based, ``offset`` below :data:`~services.search.contract.MAX_RESULTS`)."""

    parsed: ParsedQuery
    normalized: str
    page_size: int
    offset: int

    @property
    def first_page(self) -> bool:
        return self.offset == 0

    @property
    def top_k(self) -> int:
        """How many best pages each shard must return: up to the page's end, never past the 1,000th result."""
        return min(self.offset + self.page_size, MAX_RESULTS)

    @property
    def limit(self) -> int:
        """Results this page may hold: ``page_size``, fewer when the page would run past the 1,000th result."""
        return self.top_k - self.offset


def search_request(request: query_pb2.SearchRequest) -> SearchQuery:
    """SearchRequest: ``query`` (1 to 512 characters, 1 to 16 distinct terms, phrases of 2 to 16 terms, at most 4),
    ``page_size`` (0 to 50; 0: 10), ``page_token`` (this query's, before the 1,000th result)."""
    parsed = parse_query(request.query)
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"{request.page_size} is not 0 to {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})")
    page_size = request.page_size or DEFAULT_PAGE_SIZE
    normalized = normalize_query(request.query).strip()
    offset = 0
    if request.page_token:
        offset = page_tokens.decode(request.page_token, TOKEN_KIND, normalized, {"o": int})["o"]
        if offset >= MAX_RESULTS:
            raise InvalidArgument("page_token", f"is past the {MAX_RESULTS:,}th result (results end there)")
    return SearchQuery(parsed, normalized, page_size, offset)


def next_page_token(query: SearchQuery, returned: int, total_matches: int) -> str:
    """The token of the page after one of ``returned`` results of ``query``; empty after the last page (fewer
    results than asked, no more matches, or the :data:`~services.search.contract.MAX_RESULTS`-th result)."""
    end = query.offset + returned
    if returned < query.page_size or end >= min(total_matches, MAX_RESULTS):
        return ""
    return page_tokens.encode(TOKEN_KIND, query.normalized, {"o": end})

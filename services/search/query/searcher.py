"""One Search, start to end: validate and parse, scatter to the shards, merge, page, log.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query Processor: Parse
query, retrieve docs, rank results"). The steps (protos/casemesh/search/v1/query.proto, SearchService.Search):

1. :func:`.validation.search_request`: the query parsed (:mod:`.parser`), the page size, the page token's offset;
2. :meth:`.scatter.ShardScatter.gather`: the two-phase scatter-gather with ``top_k = offset + page_size`` (capped at
   the 1,000th result), shards that fail or miss their deadline left out;
3. :func:`.merge.merge_page`: the shards' best pages merged by (-score, url), the page sliced out;
4. a first page's normalised query counted in the query log (:mod:`.query_log`), after the scatter answered.

Deep pages cost more (every shard returns ``offset + page_size`` pages): the reason results stop at the 1,000th.
"""

from __future__ import annotations

from casemesh.search.v1 import query_pb2

from . import metrics
from .merge import merge_page
from .query_log import QueryLog
from .scatter import ShardScatter
from .validation import next_page_token, search_request

__all__ = ["Searcher"]


class Searcher:
    """Answers SearchRequests through ``scatter``; first-page queries are counted in ``query_log`` (if any)."""

    def __init__(self, scatter: ShardScatter, query_log: QueryLog | None = None) -> None:
        self._scatter = scatter
        self._query_log = query_log

    async def search(self, request: query_pb2.SearchRequest) -> query_pb2.SearchResponse:
        """The page of results ``request`` asks for.

        Raises :class:`~services.runtime.errors.InvalidArgument` naming ``query``, ``page_size`` or ``page_token``;
        :class:`~services.runtime.errors.Unavailable` when no shard answered in time.
        """
        query = search_request(request)
        metrics.QUERY_TERMS.observe(len(query.parsed.terms))
        gathered = await self._scatter.gather(query.parsed, query.top_k)
        hits = merge_page(gathered.hit_lists, query.offset, query.limit)
        metrics.SHARDS_ANSWERED.observe(gathered.shards_answered)
        if gathered.partial:
            metrics.PARTIAL_RESULTS.inc()
        if query.first_page and self._query_log is not None:
            self._query_log.add(query.normalized)
        return query_pb2.SearchResponse(
            hits=hits, total_matches=gathered.total_matches,
            next_page_token=next_page_token(query, len(hits), gathered.total_matches),
            shards_total=gathered.shards_total, shards_answered=gathered.shards_answered, partial=gathered.partial,
            parsed_query=query.parsed.message())

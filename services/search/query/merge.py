"""The gather of the scatter-gather: the shards' best pages merged into one page of results.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index", "Query Processor: Parse query, retrieve docs, rank results"). Each shard answers its best ``top_k`` pages,
best ``score`` first, ties by URL ascending (protos/casemesh/search/v1/shard.proto, SearchShardResponse.hits); the
global order is the same key over the union, so a k-way merge (:func:`heapq.merge`) of the sorted lists, read up to
the page's end, gives the page without sorting everything. With ``top_k = offset + page_size`` from every shard, the
merged first ``top_k`` pages are the collection's best ``top_k``: any page among them is among its own shard's best
``top_k``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from itertools import islice

from casemesh.search.v1 import search_pb2

__all__ = ["hit_order", "merge_page"]


def hit_order(hit: search_pb2.SearchHit) -> tuple[float, str]:
    """The results' order as a sort key: best ``score`` first, ties by ``url`` ascending."""
    return -hit.score, hit.url


def merge_page(shard_hits: Iterable[Sequence[search_pb2.SearchHit]], offset: int,
               limit: int) -> list[search_pb2.SearchHit]:
    """Results ``offset`` to ``offset + limit - 1`` (0-based ranks) of the union of ``shard_hits``, each list already
    in :func:`hit_order` (as shards answer)."""
    merged = heapq.merge(*shard_hits, key=hit_order)
    return list(islice(merged, offset, offset + limit))

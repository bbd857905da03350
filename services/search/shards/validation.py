"""search-shards' input rules, as protos/casemesh/search/v1/shard.proto and search.proto state them.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index"). Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the protos'
comments do, the first bad one in the proto's field order:

- every request: ``shard`` (0 to the process's ``shards`` - 1), ``shard_count`` (must be the process's ``shards``:
  the caller routes by another count);
- PutPage: ``page.url`` (:func:`~services.search.contract.is_page_url`); ``shard`` again when it is not the page's,
  ``shard_of(page.url, shards)`` (a page on a wrong shard would be found twice once it is put on its own);
  ``pagerank`` (finite, 0 to 1: not in the proto's list of errors, but a NaN or negative rank would poison every
  score of the page);
- SetPageRanks: ``ranks`` (at most :data:`MAX_RANK_ENTRIES` entries), ``ranks[i].url``, ``ranks[i].pagerank``
  (finite, 0 to 1, as ``pagerank``), ``rank_version`` (>= 1, IndexerService's pass counter);
- GetTermStatistics: ``terms`` (1 to :data:`~services.search.contract.MAX_QUERY_TERMS` terms, each 1 to
  :data:`~services.search.contract.MAX_TERM_BYTES` UTF-8 bytes);
- SearchShard: ``query.terms`` (as ``terms``, and distinct), ``query.phrases`` (at most
  :data:`~services.search.contract.MAX_PHRASES`, each of 2 to :data:`~services.search.contract.MAX_PHRASE_TERMS`
  terms that are among ``query.terms``), ``statistics`` (one entry per query term, the same terms in the same order;
  counts >= 0 and every ``doc_freq`` at most ``doc_count``, as any sum of shards' statistics is), ``top_k`` (1 to
  :data:`~services.search.contract.MAX_RESULTS`), ``pagerank_weight`` (finite, >= 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from casemesh.search.v1 import search_pb2, shard_pb2

from ...runtime.errors import InvalidArgument
from .. import contract
from .index import Query, Statistics

__all__ = ["MAX_RANK_ENTRIES", "page_rank", "put_page", "search_shard", "set_page_ranks", "shard", "term_statistics"]

#: Most entries of one SetPageRanks call (shard.proto: "0 to 100,000 entries").
MAX_RANK_ENTRIES = 100_000


def shard(index: int, shard_count: int, shards: int) -> int:
    """The request's ``shard``, checked against the process's ``shards``, and its ``shard_count``, which must equal it."""
    if not 0 <= index < shards:
        raise InvalidArgument("shard", f"{index} is not 0 to {shards - 1} (the process holds {shards} shards)")
    if shard_count != shards:
        raise InvalidArgument("shard_count", f"{shard_count} is not the process's {shards} shards (the caller routes "
                                             "pages by another shard count)")
    return index


def page_rank(field: str, value: float) -> float:
    """A PageRank: finite, 0 (none yet) to 1."""
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise InvalidArgument(field, f"{value} is not 0 to 1")
    return value


def _terms(field: str, terms: Sequence[str], most: int, fewest: int = 1) -> tuple[str, ...]:
    if not fewest <= len(terms) <= most:
        raise InvalidArgument(field, f"has {len(terms)} terms; {fewest} to {most}")
    for i, term in enumerate(terms):
        if not 1 <= len(term.encode("utf-8")) <= contract.MAX_TERM_BYTES:
            raise InvalidArgument(field, f"term {i} ({term[:50]!r}) is not 1 to {contract.MAX_TERM_BYTES} bytes")
    return tuple(terms)


def put_page(request: shard_pb2.PutPageRequest, shards: int) -> tuple[int, search_pb2.WebPage, float]:
    """PutPageRequest: the shard, the page (only its URL checked: the indexer validated the rest) and its rank."""
    index = shard(request.shard, request.shard_count, shards)
    if not contract.is_page_url(request.page.url):
        raise InvalidArgument("page.url", "is required" if not request.page.url else (
            f"{request.page.url[:100]!r} is not an http(s) URL of at most {contract.MAX_URL_CHARS:,} characters"))
    home = contract.shard_of(request.page.url, shards)
    if home != index:
        raise InvalidArgument("shard", f"{index} is not the page's: crc32(page.url) mod {shards} is {home}")
    return index, request.page, page_rank("pagerank", request.pagerank)


def set_page_ranks(request: shard_pb2.SetPageRanksRequest,
                   shards: int) -> tuple[int, list[tuple[str, float]], int]:
    """SetPageRanksRequest: the shard, the ``(url, pagerank)`` entries and the pass's ``rank_version``."""
    index = shard(request.shard, request.shard_count, shards)
    if len(request.ranks) > MAX_RANK_ENTRIES:
        raise InvalidArgument("ranks", f"has {len(request.ranks):,} entries; at most {MAX_RANK_ENTRIES:,}")
    entries = []
    for i, entry in enumerate(request.ranks):
        if not contract.is_page_url(entry.url):
            raise InvalidArgument(f"ranks[{i}].url", f"{entry.url[:100]!r} is not an http(s) URL of at most "
                                                     f"{contract.MAX_URL_CHARS:,} characters")
        entries.append((entry.url, page_rank(f"ranks[{i}].pagerank", entry.pagerank)))
    if request.rank_version < 1:
        raise InvalidArgument("rank_version", f"{request.rank_version} is not a PageRank pass (>= 1)")
    return index, entries, request.rank_version


def term_statistics(request: shard_pb2.GetTermStatisticsRequest, shards: int) -> tuple[int, tuple[str, ...]]:
    """GetTermStatisticsRequest: the shard and its terms."""
    index = shard(request.shard, request.shard_count, shards)
    return index, _terms("terms", request.terms, contract.MAX_QUERY_TERMS)


def _query(query: search_pb2.ParsedQuery) -> Query:
    terms = _terms("query.terms", query.terms, contract.MAX_QUERY_TERMS)
    if len(set(terms)) != len(terms):
        raise InvalidArgument("query.terms", "repeats a term (the terms are distinct)")
    if len(query.phrases) > contract.MAX_PHRASES:
        raise InvalidArgument("query.phrases", f"has {len(query.phrases)} phrases; at most {contract.MAX_PHRASES}")
    phrases = []
    known = frozenset(terms)
    for i, phrase in enumerate(query.phrases):
        if not 2 <= len(phrase.terms) <= contract.MAX_PHRASE_TERMS:
            raise InvalidArgument("query.phrases", f"phrase {i} has {len(phrase.terms)} terms; 2 to "
                                                   f"{contract.MAX_PHRASE_TERMS}")
        missing = [term for term in phrase.terms if term not in known]
        if missing:
            raise InvalidArgument("query.phrases", f"phrase {i} holds {missing[0][:50]!r}, which is not among "
                                                   "query.terms")
        phrases.append(tuple(phrase.terms))
    return Query(terms, tuple(phrases))


def _statistics(statistics: search_pb2.CollectionStatistics, terms: tuple[str, ...]) -> Statistics:
    entries = statistics.terms
    if len(entries) != len(terms):
        raise InvalidArgument("statistics", f"has {len(entries)} term entries for {len(terms)} query terms")
    if statistics.doc_count < 0 or statistics.total_terms < 0:
        raise InvalidArgument("statistics", "doc_count and total_terms must be >= 0")
    freqs = []
    for i, (entry, term) in enumerate(zip(entries, terms, strict=True)):
        if entry.term != term:
            raise InvalidArgument("statistics", f"terms[{i}] is {entry.term[:50]!r}, query.terms[{i}] is {term!r}")
        if not 0 <= entry.doc_freq <= statistics.doc_count:
            raise InvalidArgument("statistics", f"terms[{i}].doc_freq {entry.doc_freq} is not 0 to doc_count "
                                                f"({statistics.doc_count})")
        freqs.append(entry.doc_freq)
    return Statistics(statistics.doc_count, statistics.total_terms, tuple(freqs))


def search_shard(request: shard_pb2.SearchShardRequest,
                 shards: int) -> tuple[int, Query, Statistics, int, float]:
    """SearchShardRequest: the shard, the query, the collection's statistics, ``top_k`` and ``pagerank_weight``."""
    index = shard(request.shard, request.shard_count, shards)
    query = _query(request.query)
    statistics = _statistics(request.statistics, query.terms)
    if not 1 <= request.top_k <= contract.MAX_RESULTS:
        raise InvalidArgument("top_k", f"{request.top_k} is not 1 to {contract.MAX_RESULTS:,}")
    weight = request.pagerank_weight
    if not (math.isfinite(weight) and weight >= 0):
        raise InvalidArgument("pagerank_weight", f"{weight} is not finite and >= 0")
    return index, query, statistics, request.top_k, weight

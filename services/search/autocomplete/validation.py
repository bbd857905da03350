"""search-autocomplete's input rules, as protos/casemesh/search/v1/query.proto states them for SuggestRequest and
RecordQueriesRequest.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field, the first bad one in the
proto's field order: ``prefix`` (1 to :data:`~services.search.contract.MAX_PREFIX_CHARS` characters after
:func:`~services.search.contract.normalize_query`), ``limit`` (0 to
:data:`~services.search.contract.MAX_SUGGESTIONS`; 0: :data:`~services.search.contract.DEFAULT_SUGGESTIONS`);
``queries`` (1 to :data:`MAX_BATCH` entries), ``queries[i].query`` (1 to
:data:`~services.search.contract.MAX_QUERY_CHARS` characters, and a word after normalisation, which strips it),
``queries[i].count`` (1 to :data:`MAX_ENTRY_COUNT`). A batch with one bad entry is refused whole.
"""

from __future__ import annotations

from casemesh.search.v1 import query_pb2

from ...runtime.errors import InvalidArgument
from ..contract import DEFAULT_SUGGESTIONS, MAX_PREFIX_CHARS, MAX_QUERY_CHARS, MAX_SUGGESTIONS, normalize_query

__all__ = ["MAX_BATCH", "MAX_ENTRY_COUNT", "record_queries", "suggest"]

#: Most entries of one RecordQueries call.
MAX_BATCH = 1_000
#: Largest count of one entry.
MAX_ENTRY_COUNT = 1_000_000


def suggest(request: query_pb2.SuggestRequest) -> tuple[str, int]:
    """SuggestRequest: (the normalised prefix, the limit with 0 as the default 5)."""
    prefix = normalize_query(request.prefix)
    if not prefix:
        raise InvalidArgument("prefix", f"is required (1 to {MAX_PREFIX_CHARS} characters after normalisation: lower "
                                        "case, runs of spaces as one, no leading spaces)")
    if len(prefix) > MAX_PREFIX_CHARS:
        raise InvalidArgument("prefix", f"has {len(prefix)} characters after normalisation; at most "
                                        f"{MAX_PREFIX_CHARS}")
    if not 0 <= request.limit <= MAX_SUGGESTIONS:
        raise InvalidArgument("limit", f"{request.limit} is not 0 to {MAX_SUGGESTIONS} (0: {DEFAULT_SUGGESTIONS})")
    return prefix, request.limit or DEFAULT_SUGGESTIONS


def record_queries(request: query_pb2.RecordQueriesRequest) -> list[tuple[str, int]]:
    """RecordQueriesRequest: the entries as (normalised and stripped query, count)."""
    if not 1 <= len(request.queries) <= MAX_BATCH:
        raise InvalidArgument("queries", f"has {len(request.queries):,} entries; 1 to {MAX_BATCH:,}")
    entries = []
    for i, entry in enumerate(request.queries):
        if not 1 <= len(entry.query) <= MAX_QUERY_CHARS:
            raise InvalidArgument(f"queries[{i}].query", f"has {len(entry.query):,} characters; 1 to "
                                                         f"{MAX_QUERY_CHARS}")
        query = normalize_query(entry.query).strip()
        if not query:
            raise InvalidArgument(f"queries[{i}].query", "is only whitespace")
        if not 1 <= entry.count <= MAX_ENTRY_COUNT:
            raise InvalidArgument(f"queries[{i}].count", f"{entry.count} is not 1 to {MAX_ENTRY_COUNT:,}")
        entries.append((query, entry.count))
    return entries

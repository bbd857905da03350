"""search-query's own metrics (``casemesh_search_query_*``), seed 000 "Search Engine (like Google)"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query processing: Millions of QPS, sub-500ms latency",
"Index Server: Sharded index").

- ``casemesh_search_query_shard_calls_total{phase,outcome}``: calls to one shard, by ``phase`` (``statistics``:
  GetTermStatistics; ``search``: SearchShard) and ``outcome`` (``ok``; ``deadline``: the call missed its deadline,
  the per-shard ``shard_deadline_ms`` or the Search call's own; ``error``: any other failure, a shard rebuilding
  included). Each ``deadline`` or ``error`` leaves its shard out of the result;
- ``casemesh_search_query_partial_results_total``: Search answers with ``partial`` true (a shard left out);
- ``casemesh_search_query_shards_answered`` (histogram): per answered Search, the shards whose pages are in the
  result (``shards_answered``);
- ``casemesh_search_query_terms`` (histogram): distinct terms per parsed query (1 to 16);
- ``casemesh_search_query_log_queries_total{outcome}``: logged query occurrences by what became of them: ``sent``
  (delivered to search-autocomplete), ``dropped`` (the pending log was full: the least counted queries go first),
  ``rejected`` (refused by search-autocomplete as invalid; not retried);
- ``casemesh_search_query_log_send_failures_total``: RecordQueries calls that failed (their counts are kept and sent
  with the next flush);
- ``casemesh_search_query_log_pending`` (gauge): distinct queries queued for the next flush (set at start and on each
  change of size; those of a flush in progress are not counted).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Values of the ``phase`` label: the two rounds of the scatter-gather.
PHASES = ("statistics", "search")
#: Values of the ``outcome`` label.
OUTCOMES = ("ok", "deadline", "error")

SHARD_CALLS = Counter("casemesh_search_query_shard_calls", "Calls to one index shard, by phase (statistics, search) "
                      "and outcome (ok, deadline, error).", ["phase", "outcome"])
PARTIAL_RESULTS = Counter("casemesh_search_query_partial_results", "Search answers that left out a shard (partial).")
#: Shards: 1 to contract.MAX_SHARDS (64).
SHARDS_ANSWERED = Histogram("casemesh_search_query_shards_answered", "Shards whose pages are in a Search answer.",
                            buckets=(0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64))
QUERY_TERMS = Histogram("casemesh_search_query_terms", "Distinct terms per parsed query.",
                        buckets=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16))
LOG_QUERIES = Counter("casemesh_search_query_log_queries", "Logged query occurrences by outcome (sent, dropped, "
                      "rejected).", ["outcome"])
LOG_SEND_FAILURES = Counter("casemesh_search_query_log_send_failures", "RecordQueries calls that failed (counts kept "
                            "for the next flush).")
LOG_PENDING = Gauge("casemesh_search_query_log_pending", "Distinct queries waiting to be sent to search-autocomplete.")

# Every series exists from the start (at 0), so a dashboard's rate() sees the first event of each kind.
for _phase in PHASES:
    for _outcome in OUTCOMES:
        SHARD_CALLS.labels(_phase, _outcome)
for _outcome in ("sent", "dropped", "rejected"):
    LOG_QUERIES.labels(_outcome)


def started() -> None:
    """Set the process-global gauges of a query service that starts (tests run several in one process)."""
    LOG_PENDING.set(0)

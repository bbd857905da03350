"""search-autocomplete's own metrics (``casemesh_search_autocomplete_*``), seed 000 "Search Engine (like Google)"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Autocomplete and spell correction").

- ``casemesh_search_autocomplete_prefixes`` (gauge): distinct prefixes in the prefix index (set at start and at each
  rebuild);
- ``casemesh_search_autocomplete_distinct_queries`` (gauge): distinct queries counted (set at start and at each
  RecordQueries);
- ``casemesh_search_autocomplete_rebuild_seconds`` (histogram): one rebuild of the prefix index from the counts'
  snapshot (in its worker thread), in seconds;
- ``casemesh_search_autocomplete_index_age_seconds`` (gauge): seconds since the prefix index was last built (since the
  service started while none was built); computed when scraped. It grows on an idle log too (nothing to rebuild);
- ``casemesh_search_autocomplete_queries_total{outcome}``: logged query occurrences received by RecordQueries:
  ``counted`` or ``dropped`` (a new query while ``max_queries`` distinct queries are counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

PREFIXES = Gauge("casemesh_search_autocomplete_prefixes", "Distinct prefixes in the prefix index.")
DISTINCT_QUERIES = Gauge("casemesh_search_autocomplete_distinct_queries", "Distinct queries counted.")
#: Seconds: milliseconds for thousands of queries, seconds for a million.
REBUILD_SECONDS = Histogram("casemesh_search_autocomplete_rebuild_seconds", "One rebuild of the prefix index, in "
                            "seconds.", buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
                                                 10.0, 30.0, 60.0))
INDEX_AGE_SECONDS = Gauge("casemesh_search_autocomplete_index_age_seconds", "Seconds since the prefix index was last "
                          "built (since the start before the first build).")
QUERIES = Counter("casemesh_search_autocomplete_queries", "Logged query occurrences received, by outcome (counted, "
                  "dropped).", ["outcome"])
for _outcome in ("counted", "dropped"):
    QUERIES.labels(_outcome)


def started(built_at_unix_ms: Callable[[], int]) -> None:
    """Set the process-global gauges of an autocomplete that starts (tests run several in one process);
    ``built_at_unix_ms()`` is the index's last build time (0: none yet)."""
    start = time.time()
    PREFIXES.set(0)
    DISTINCT_QUERIES.set(0)
    INDEX_AGE_SECONDS.set_function(lambda: time.time() - (built_at_unix_ms() / 1000 or start))

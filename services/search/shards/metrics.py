"""search-shards' own metrics (``casemesh_search_shard_*``), seed 000 "Search Engine (like Google)"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded index", the inverted index example).

- ``casemesh_search_shard_pages{shard}`` (gauge): pages on each shard (set at start and after every put);
- ``casemesh_search_shard_terms{shard}`` (gauge): distinct terms on each shard (the same);
- ``casemesh_search_shard_postings_scanned`` (histogram): per SearchShard, the postings entries the AND
  intersection probed (the smallest postings list, then the survivors against each further term): the work a query
  costs, which common words ("the": nearly every page) make large;
- ``casemesh_search_shard_matched_pages`` (histogram): per SearchShard, the shard's pages that matched (all of them
  scored);
- ``casemesh_search_shard_rebuilds_total{outcome}``: ScanShard streams of the rebuild, ``completed`` or ``failed``
  (the indexer down or not started, the stream broken: retried with backoff);
- ``casemesh_search_shard_rebuild_pages_total{outcome}``: pages the rebuild streams delivered: ``indexed``,
  ``superseded`` (a PutPage of the same URL arrived during the rebuild and won: the scanned copy may be older) or
  ``misrouted`` (not this shard's by ``crc32(url) mod shards``: skipped);
- ``casemesh_search_shard_rebuild_seconds{shard}`` (gauge): how long the shard was rebuilding, from the process's
  start to the end of its scan (retries and waits included), in seconds;
- ``casemesh_search_shard_rebuilding`` (gauge): shards rebuilding now (they answer UNAVAILABLE).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PAGES = Gauge("casemesh_search_shard_pages", "Pages on each shard.", ["shard"])
TERMS = Gauge("casemesh_search_shard_terms", "Distinct terms on each shard.", ["shard"])
#: Postings entries: 0 (a term no page holds) to a whole shard's pages times the query's terms.
WORK_BUCKETS = (0, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)
POSTINGS_SCANNED = Histogram("casemesh_search_shard_postings_scanned", "Postings entries the AND intersection "
                             "probed, per SearchShard.", buckets=WORK_BUCKETS)
MATCHED_PAGES = Histogram("casemesh_search_shard_matched_pages", "Pages of the shard matching the query, per "
                          "SearchShard.", buckets=WORK_BUCKETS)
REBUILDS = Counter("casemesh_search_shard_rebuilds", "ScanShard streams of the rebuild, by outcome.", ["outcome"])
REBUILD_PAGES = Counter("casemesh_search_shard_rebuild_pages", "Pages the rebuild streams delivered, by what became "
                        "of them.", ["outcome"])
REBUILD_SECONDS = Gauge("casemesh_search_shard_rebuild_seconds", "From the process's start to the end of the "
                        "shard's rebuild, in seconds.", ["shard"])
REBUILDING = Gauge("casemesh_search_shard_rebuilding", "Shards rebuilding now (answering UNAVAILABLE).")

for _outcome in ("completed", "failed"):  # zero, not "No data", until the first rebuild
    REBUILDS.labels(_outcome)
for _outcome in ("indexed", "superseded", "misrouted"):
    REBUILD_PAGES.labels(_outcome)


def started(shards: int, rebuilding: int) -> None:
    """Set the process-global gauges of a service that starts with ``shards`` empty shards (tests start several)."""
    for gauge in (PAGES, TERMS, REBUILD_SECONDS):
        gauge.clear()
    for shard in range(shards):
        PAGES.labels(str(shard)).set(0)
        TERMS.labels(str(shard)).set(0)
    REBUILDING.set(rebuilding)

"""search-indexer's own metrics (``casemesh_search_indexer_*``), seed 000 "Search Engine (like Google)"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document Store", "Indexer", "Ranker: PageRank").

- ``casemesh_search_indexer_pages`` (gauge): pages stored (set at start and at every new page);
- ``casemesh_search_indexer_links`` (gauge): links stored, distinct page-to-URL edges (set at start and at every page);
- ``casemesh_search_indexer_pages_indexed_total{created}``: pages written to the store by IndexPage, ``created="true"``
  for a URL new to the store, ``"false"`` for a replaced page (counted once durable, whatever the shard did);
- ``casemesh_search_indexer_shard_put_failures_total``: IndexPage calls whose page the shard did not take (stored
  all the same; answered UNAVAILABLE);
- ``casemesh_search_indexer_rank_push_failures_total``: shards that did not take a pass's ranks (SetPageRanks failed;
  pushed again with the next pass or tick);
- ``casemesh_search_indexer_pagerank_pass_seconds`` (histogram): one pass's computation (the link matrix built from the
  graph and the power iteration), in seconds;
- ``casemesh_search_indexer_pagerank_iterations`` (gauge): power iterations of the last pass;
- ``casemesh_search_indexer_rank_version`` (gauge): the last pass's number (0: none yet);
- ``casemesh_search_indexer_commit_seconds`` (histogram): one group commit to the store, fsync included, in seconds;
- ``casemesh_search_indexer_writes_per_commit`` (histogram): writes per group commit.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PAGES = Gauge("casemesh_search_indexer_pages", "Pages stored in the indexer's document store.")
LINKS = Gauge("casemesh_search_indexer_links", "Links stored (distinct page-to-URL edges).")
PAGES_INDEXED = Counter("casemesh_search_indexer_pages_indexed", "Pages written by IndexPage (created: new URL or "
                        "replaced page).", ["created"])
SHARD_PUT_FAILURES = Counter("casemesh_search_indexer_shard_put_failures", "IndexPage calls whose page its shard did "
                             "not take (the page is stored).")
RANK_PUSH_FAILURES = Counter("casemesh_search_indexer_rank_push_failures", "Shards that did not take a pass's ranks "
                             "(SetPageRanks failed).")
#: Seconds: milliseconds for a few thousand pages, about a second for a few hundred thousand links.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
PASS_SECONDS = Histogram("casemesh_search_indexer_pagerank_pass_seconds", "One PageRank pass's computation (link "
                         "matrix and power iteration), in seconds.", buckets=PASS_BUCKETS)
ITERATIONS = Gauge("casemesh_search_indexer_pagerank_iterations", "Power iterations of the last PageRank pass.")
RANK_VERSION = Gauge("casemesh_search_indexer_rank_version", "The last PageRank pass's number (0: none yet).")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_search_indexer_commit_seconds", "One group commit to the document store, fsync "
                           "included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_search_indexer_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))


def started(pages: int, links: int, rank_version: int, iterations: int) -> None:
    """Set the process-global gauges of an indexer that starts (tests run several in one process), and make the
    counters' series exist."""
    for created in ("true", "false"):
        PAGES_INDEXED.labels(created=created)
    PAGES.set(pages)
    LINKS.set(links)
    RANK_VERSION.set(rank_version)
    ITERATIONS.set(iterations)

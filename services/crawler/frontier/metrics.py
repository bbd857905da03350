"""crawler's own metrics (``casemesh_crawler_*``), seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web
Crawler | URL frontier, robots.txt, politeness, deduplication (MD5/Simhash), BFS").

- ``casemesh_crawler_fetches_total{outcome}``: fetches ended, every crawl: ``200``, ``404``, ``503`` (each attempt,
  retries included), ``error`` (no HTTP answer: an unknown host, a deadline, the web down), ``robots_txt`` (robots.txt
  fetches, whatever their answer);
- ``casemesh_crawler_politeness_wait_seconds`` (histogram): per page fetch, how long the URL waited in its host's
  queue before a fetcher took it (the host's interval, the host's URLs ahead of it, its robots.txt first), in
  seconds;
- ``casemesh_crawler_frontier_size`` (gauge): URLs queued over the running crawls;
- ``casemesh_crawler_hosts_waiting`` (gauge): hosts with work waiting for their next-allowed time or a fetcher;
- ``casemesh_crawler_robots_blocked_total``: URLs left unfetched because robots.txt disallows them (or closed the
  host);
- ``casemesh_crawler_duplicates_total{kind}``: pages skipped as duplicates, ``exact`` (MD5) or ``near`` (SimHash):
  the near-duplicate A/B switch moves the second;
- ``casemesh_crawler_pages_indexed_total``: pages the indexer acknowledged;
- ``casemesh_crawler_index_failures_total``: pages the indexer did not take after every attempt;
- ``casemesh_crawler_crawls_total{state}``: crawls started (``running``) and ended (``done``, ``cancelled``);
- ``casemesh_crawler_running_crawls`` (gauge): crawls running now.

The gauges are set by the service at start (:func:`reset_gauges`): the series are process-global.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FETCH_OUTCOMES = ("200", "404", "503", "error", "robots_txt")
FETCHES = Counter("casemesh_crawler_fetches", "Fetches ended, by outcome.", ["outcome"])
#: Seconds: from a fetch at once (a host with a free slot) to minutes (a host of hundreds of URLs at one a second).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1_800.0)
POLITENESS_WAIT = Histogram("casemesh_crawler_politeness_wait_seconds", "Time a queued URL waited for its host, "
                            "in seconds.", buckets=WAIT_BUCKETS)
FRONTIER_SIZE = Gauge("casemesh_crawler_frontier_size", "URLs queued over the running crawls.")
HOSTS_WAITING = Gauge("casemesh_crawler_hosts_waiting", "Hosts with work waiting for their next-allowed time or a "
                      "fetcher.")
ROBOTS_BLOCKED = Counter("casemesh_crawler_robots_blocked", "URLs left unfetched because robots.txt disallows them.")
DUPLICATE_KINDS = ("exact", "near")
DUPLICATES = Counter("casemesh_crawler_duplicates", "Pages skipped as duplicates, by kind.", ["kind"])
PAGES_INDEXED = Counter("casemesh_crawler_pages_indexed", "Pages the indexer acknowledged.")
INDEX_FAILURES = Counter("casemesh_crawler_index_failures", "Pages the indexer did not take after every attempt.")
CRAWL_STATES = ("running", "done", "cancelled")
CRAWLS = Counter("casemesh_crawler_crawls", "Crawls started (running) and ended (done, cancelled).", ["state"])
RUNNING_CRAWLS = Gauge("casemesh_crawler_running_crawls", "Crawls running now.")

# Every labelled series exists from the start (at 0), so a dashboard's rate() sees the first event of each kind.
for _outcome in FETCH_OUTCOMES:
    FETCHES.labels(_outcome)
for _kind in DUPLICATE_KINDS:
    DUPLICATES.labels(_kind)
for _state in CRAWL_STATES:
    CRAWLS.labels(_state)


def reset_gauges() -> None:
    """Set the gauges for a service starting with nothing running."""
    FRONTIER_SIZE.set(0)
    HOSTS_WAITING.set(0)
    RUNNING_CRAWLS.set(0)

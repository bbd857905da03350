"""Settings of ``crawler`` (topology ``settings.crawler``); unknown keys are refused.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"). Times are milliseconds (``_ms``).

Politeness (:mod:`.politeness`):

- ``politeness_interval_ms`` 1,000: the least time between the end of one fetch of a host and the start of the next,
  by any crawl of the process; a host's robots.txt Crawl-delay for ``casemesh-bot`` lengthens it. 1,000 is the
  contract's ``MIN_INTERVAL_MS`` (one request per second per host), which the synthetic web's referee enforces; a
  lower value is for experiments (the referee then counts politeness violations).
- ``max_crawl_delay_ms`` 2,000: the longest robots.txt Crawl-delay the crawler honours; a host asking for more is
  closed for the crawl (its URLs count as ``robots_blocked``). It is also the wait of a new process: every host is
  first fetched ``max(politeness_interval_ms, max_crawl_delay_ms)`` after the process started, since the process
  cannot know when its predecessor last fetched it (and a host's Crawl-delay is only known once its robots.txt is
  read). 2,000 is the synthetic web's Crawl-delay (its ``crawl_delay_s``), so every host of the default web is
  crawled and a crawler starts fetching 2 s after it starts; a web with longer delays needs a longer setting, at the
  price of a longer wait at every start (politeness across restarts is not negotiable; closing the host is the
  polite answer to a delay the crawler will not wait).

Fetching (:mod:`.fetchers`, :mod:`.fetch`):

- ``fetchers`` 32: fetches in flight at once, for the whole process (every crawl shares them). At one fetch per
  second per host, a crawl of H hosts needs about H times the mean fetch time of fetchers (a 50 ms fetch: 32 fetchers
  keep 640 hosts busy).
- ``fetch_timeout_ms`` 5,000: the deadline of each Fetch (a slow host of the web answers after its delay).
- ``max_retries`` 2: how many times a page answered 503 is fetched again (each time behind its host's interval)
  before it counts as a fetch error; the proto's "a 503 is retried, up to 2 times".

Deduplication (:mod:`.dedup`), the case study's A/B knob:

- ``near_duplicates`` true: skip pages whose 64-bit SimHash is within ``simhash_distance`` bits of a page of the crawl
  (Manku et al., WWW 2007); false: only exact copies (the MD5 of the text) are skipped, so near-copies reach the index.
- ``simhash_distance`` 3: Manku et al.'s k for 64-bit fingerprints (the proto's "within 3 bits"); 0 to 8.

Indexing (:mod:`.indexing`, crawls with ``index_pages``):

- ``index_timeout_ms`` 2,000: the deadline of each IndexPage (the indexer fsyncs its document store, then puts the
  page on its shard).
- ``index_concurrency`` 8: IndexPage calls in flight at once, for the whole process.
- ``index_backlog`` 1,000: pages fetched but not yet acknowledged by the indexer, for the whole process; a fetcher
  with a page to index waits for room (the host it fetched is already free), so a slow indexer slows the crawl
  instead of filling memory.

Crawls (:mod:`.registry`):

- ``max_crawls`` 8: crawls running at once; StartCrawl beyond answers RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import MIN_INTERVAL_MS


class CrawlerSettings(BaseModel):
    """crawler's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    politeness_interval_ms: int = Field(default=MIN_INTERVAL_MS, ge=0, le=3_600_000, description=(
        "Least time from the end of a fetch of a host to the start of the next (any crawl), in ms; the host's "
        "robots.txt Crawl-delay when longer."))
    max_crawl_delay_ms: int = Field(default=2_000, ge=0, le=3_600_000, description=(
        "Longest robots.txt Crawl-delay honoured, in ms; a host asking for more is closed for the crawl. Also what "
        "a restarted process waits before its first fetch of any host (with politeness_interval_ms)."))
    fetchers: int = Field(default=32, ge=1, le=1_024, description=(
        "Fetches in flight at once, shared by every crawl of the process."))
    fetch_timeout_ms: int = Field(default=5_000, ge=1, le=600_000, description="Deadline of each Fetch, in ms.")
    max_retries: int = Field(default=2, ge=0, le=10, description=(
        "Times a page answered 503 is fetched again before it counts as a fetch error."))
    near_duplicates: bool = Field(default=True, description=(
        "Skip near-duplicate pages (SimHash); false: exact copies (MD5) only."))
    simhash_distance: int = Field(default=3, ge=0, le=8, description=(
        "Bits within which two 64-bit SimHashes are near duplicates."))
    index_timeout_ms: int = Field(default=2_000, ge=1, le=600_000, description="Deadline of each IndexPage, in ms.")
    index_concurrency: int = Field(default=8, ge=1, le=256, description="IndexPage calls in flight at once.")
    index_backlog: int = Field(default=1_000, ge=1, le=100_000, description=(
        "Pages waiting for the indexer's acknowledgement before fetchers wait for room."))
    max_crawls: int = Field(default=8, ge=1, le=1_000, description="Crawls running at once.")

    @property
    def interval_s(self) -> float:
        """``politeness_interval_ms`` in seconds."""
        return self.politeness_interval_ms / 1_000

    @property
    def restart_wait_s(self) -> float:
        """The longest interval any host can have, in seconds: the wait before a new process's first fetch of a
        host."""
        return max(self.politeness_interval_ms, self.max_crawl_delay_ms) / 1_000

"""Settings of ``crawler-web`` (topology ``settings.crawler-web``); unknown keys are refused.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"). The same settings give the same web
(:mod:`.generator`); shares are fractions from 0 to 1, and a share of hosts or pages is rounded to a whole count
(``round(share * hosts)``), so a small web still has, say, its failing robots.txt host.

The web:

- ``seed`` 42: the generator's seed;
- ``hosts`` 200 (1 to 1,000): ``host000.web.test`` to ``host199.web.test`` (:func:`..contract.host_name`);
- ``pages_per_host`` 50 (1 to 1,000): pages of each host, its home page ``/`` included; 200 x 50 = 10,000 pages;
- ``words_per_page`` 250 (10 to 10,000) and ``vocabulary`` 20,000 (100 to 100,000): a page's text is this many
  words drawn from the ``vocabulary`` most frequent English words at their real frequencies (wordfreq);
- ``links_min`` 8 and ``links_max`` 12 (0 to 100): outlinks per page, uniformly; ``internal_link_share`` 0.7 of them
  to pages of the page's own host (the home page always among them), the rest to other hosts picked by preferential
  attachment: host ``i`` with weight ``1 / (i + 1) ** host_popularity_exponent`` (``host_popularity_exponent`` 1.0,
  0 to 3: Zipf, so ``host000`` is the most linked-to host); ``broken_link_share`` 0.02 of links lead to a 404;
- ``private_page_share`` 0.05: pages under ``/private/`` (closed by every robots.txt that has rules);
- ``near_copy_share`` 0.1 and ``exact_copy_share`` 0.03: pages whose HTML copies another page's, with
  ``near_copy_edits`` 1 (0 to 10) words of its text replaced (near copies) or none (exact copies). One edit among a
  page's ~260 words of title and text keeps a near copy within 3 bits of its original's 64-bit SimHash (Manku et al.,
  WWW 2007; the simhash library) for 93% of near copies when the features are the page's distinct words, 84% for
  word 2-shingles, 72% for word 3-shingles; 2 edits: 87%, 60%, 43%; 3 edits: 79%, 44%, 27% (measured on the default
  web). Unrelated pages are never within 3 bits (tests/unit/test_crawler_web.py).

robots.txt (RFC 9309; :mod:`.robots`), each host one variant:

- ``closed_host_share`` 0.05: ``casemesh-bot`` may fetch nothing (its own group ``Disallow: /``);
- ``crawl_delay_host_share`` 0.1: a ``Crawl-delay`` of ``crawl_delay_s`` 2 (1 to 60) seconds for ``casemesh-bot``;
- ``missing_robots_share`` 0.05: robots.txt answers 404 (everything allowed);
- ``failing_robots_share`` 0.02: robots.txt answers 503 (RFC 9309 2.3.1.4: the host is fully disallowed);
- every other host: ``User-agent: *`` / ``Disallow: /private/``.

Failures:

- ``slow_host_share`` 0.05: hosts that answer every fetch after ``slow_delay_ms`` 300 (0 to 10,000) milliseconds;
- ``flaky_host_share`` 0.05: hosts that answer ``flaky_503_share`` 0.3 of page fetches with 503 (at random: a retry
  may succeed; robots.txt never fails there).

The referee (:mod:`.referee`):

- ``min_interval_ms`` 1,000 (0 to 60,000): the shortest polite gap between two requests to one host, in
  milliseconds, unless the host's robots.txt Crawl-delay for the fetch's user agent is longer
  (:data:`..contract.MIN_INTERVAL_MS`);
- ``max_audited_crawls`` 1,000 (1 to 100,000): crawls the referee remembers (the least recently fetching dropped).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import contract

_SHARE = {"ge": 0.0, "le": 1.0}


class WebSettings(BaseModel):
    """crawler-web's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=42, ge=0, le=2**63 - 1, description="The generator's seed.")
    hosts: int = Field(default=200, ge=1, le=1_000, description="Hosts of the web.")
    pages_per_host: int = Field(default=50, ge=1, le=1_000, description="Pages per host, the home page included.")
    words_per_page: int = Field(default=250, ge=10, le=10_000, description="Words of a page's text.")
    vocabulary: int = Field(default=20_000, ge=100, le=100_000, description=(
        "The most frequent English words (wordfreq) that texts are drawn from."))
    links_min: int = Field(default=8, ge=0, le=100, description="Fewest outlinks of a page.")
    links_max: int = Field(default=12, ge=0, le=100, description="Most outlinks of a page.")
    internal_link_share: float = Field(default=0.7, **_SHARE, description="Share of links to the page's own host.")
    host_popularity_exponent: float = Field(default=1.0, ge=0.0, le=3.0, description=(
        "Zipf exponent of the hosts that cross-host links pick: host i weighs 1 / (i + 1) ** exponent."))
    broken_link_share: float = Field(default=0.02, **_SHARE, description="Share of links that lead to a 404.")
    private_page_share: float = Field(default=0.05, **_SHARE, description="Share of pages under /private/.")
    near_copy_share: float = Field(default=0.1, **_SHARE, description="Share of pages that are near copies.")
    exact_copy_share: float = Field(default=0.03, **_SHARE, description="Share of pages that are exact copies.")
    near_copy_edits: int = Field(default=1, ge=0, le=10, description="Words a near copy changes in its text.")
    closed_host_share: float = Field(default=0.05, **_SHARE, description=(
        "Share of hosts whose robots.txt closes the host to casemesh-bot."))
    crawl_delay_host_share: float = Field(default=0.1, **_SHARE, description=(
        "Share of hosts whose robots.txt sets a Crawl-delay for casemesh-bot."))
    crawl_delay_s: int = Field(default=2, ge=1, le=60, description="That Crawl-delay, in seconds.")
    missing_robots_share: float = Field(default=0.05, **_SHARE, description="Share of hosts without robots.txt (404).")
    failing_robots_share: float = Field(default=0.02, **_SHARE, description=(
        "Share of hosts whose robots.txt answers 503 (the host is then fully disallowed)."))
    slow_host_share: float = Field(default=0.05, **_SHARE, description="Share of hosts that answer late.")
    slow_delay_ms: int = Field(default=300, ge=0, le=10_000, description="How late, in milliseconds.")
    flaky_host_share: float = Field(default=0.05, **_SHARE, description="Share of hosts that answer some fetches 503.")
    flaky_503_share: float = Field(default=0.3, **_SHARE, description="Share of a flaky host's page fetches answered 503.")
    min_interval_ms: int = Field(default=contract.MIN_INTERVAL_MS, ge=0, le=60_000, description=(
        "Shortest polite gap between two requests to one host, in milliseconds (or the Crawl-delay when longer)."))
    max_audited_crawls: int = Field(default=1_000, ge=1, le=100_000, description="Crawls the referee remembers.")

    @model_validator(mode="after")
    def _consistent(self) -> WebSettings:
        if self.links_min > self.links_max:
            raise ValueError(f"links_min {self.links_min} is more than links_max {self.links_max}")
        robots = (self.closed_host_share + self.crawl_delay_host_share + self.missing_robots_share
                  + self.failing_robots_share)
        if robots > 1.0:
            raise ValueError(f"the robots.txt variants' host shares add up to {robots:g}, more than 1")
        if self.near_copy_share + self.exact_copy_share > 0.4:
            raise ValueError("near_copy_share + exact_copy_share is more than 0.4 (each copy needs an original)")
        return self

"""crawler-web's own metrics (``casemesh_crawler_web_*``), seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line
34: "Web Crawler | URL frontier, robots.txt, politeness, deduplication (MD5/Simhash), BFS").

- ``casemesh_crawler_web_fetches_total{resource, status}``: fetches answered, by what was fetched (``page``: a page
  or a path that leads nowhere; ``robots``: robots.txt) and HTTP status (``200``, ``404``, ``503``); a fetch of an
  unknown host (NOT_FOUND) is not counted;
- ``casemesh_crawler_web_violations_total{kind}``: what the referee caught: ``robots`` (a path robots.txt disallows
  for the fetch's user agent), ``politeness`` (sooner than the host's interval after its previous request),
  ``duplicate`` (a URL already answered 200 in the same crawl); robots and politeness violations are counted for
  fetches that name no crawl too;
- ``casemesh_crawler_web_delayed_fetches_total``: fetches a slow host answered ``slow_delay_ms`` late;
- ``casemesh_crawler_web_pages`` / ``..._hosts`` / ``..._disallowed_pages`` / ``..._copy_pages`` (gauges, set at
  start): the web's size, the pages robots.txt closes to ``casemesh-bot`` and the pages that copy another (near or
  exact);
- ``casemesh_crawler_web_audited_crawls`` (gauge): crawls the referee remembers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FETCHES = Counter("casemesh_crawler_web_fetches", "Fetches answered, by resource (page, robots) and HTTP status.",
                  ["resource", "status"])
VIOLATIONS = Counter("casemesh_crawler_web_violations", "Fetches the referee caught breaking a rule (robots, "
                     "politeness, duplicate).", ["kind"])
DELAYED_FETCHES = Counter("casemesh_crawler_web_delayed_fetches", "Fetches a slow host answered slow_delay_ms late.")
PAGES = Gauge("casemesh_crawler_web_pages", "Pages of the synthetic web.")
HOSTS = Gauge("casemesh_crawler_web_hosts", "Hosts of the synthetic web.")
DISALLOWED_PAGES = Gauge("casemesh_crawler_web_disallowed_pages", "Pages robots.txt closes to casemesh-bot.")
COPY_PAGES = Gauge("casemesh_crawler_web_copy_pages", "Pages that copy another page (near or exact).")
AUDITED_CRAWLS = Gauge("casemesh_crawler_web_audited_crawls", "Crawls the referee remembers.")


def started(pages: int, hosts: int, disallowed: int, copies: int) -> None:
    """Set the process-global gauges of a web that starts (tests run several in one process)."""
    PAGES.set(pages)
    HOSTS.set(hosts)
    DISALLOWED_PAGES.set(disallowed)
    COPY_PAGES.set(copies)
    AUDITED_CRAWLS.set(0)

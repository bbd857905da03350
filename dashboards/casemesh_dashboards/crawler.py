"""Web crawler: a crawl's pages per second against the 5 a second of its SLO, at a politeness of at most one request a
second per host with no robots.txt rule broken (counted by the synthetic web's referee); GetCrawl against 100 ms and
StartCrawl answered; the URL frontier, the fetches by outcome, the politeness waits, robots.txt, deduplication (exact
copies by MD5, near copies by SimHash within 3 bits: the A/B switch ``crawler.near_duplicates``) and the pages sent to
the search engine's indexer.

Case study: seed 001 #28, shared/seeds/001_58dfc580020147d2.txt line 34 ("| 28 | Web Crawler | URL frontier,
robots.txt, politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"), and seed 000's "Search Engine
(like Google)", shared/seeds/000_69ff90d97cf45f9b.txt lines 606 and 615-616 ("Crawling: Billions of pages, politeness
policies (robots.txt)", "URL Frontier: Priority queue of URLs to crawl", "Web Crawler: Distributed crawlers with
politeness policies"). Contracts in protos/casemesh/crawler/v1/, SLOs in harness/profiles/crawler.slo.yaml (drawn here:
crawler-crawl-throughput's bound of 200 ms a page, 5 pages a second, and the server-side twins
crawler-status-latency-server, crawler-start-availability-server, crawler-robots-respected-server and
crawler-politeness-respected-server; their bounds and targets are read from that file when the dashboard is built).

Service metrics, as the crawler services expose them: ``casemesh_crawler_fetches_total{outcome}`` (``200``, ``404``,
``503``, ``error``, ``robots_txt``), ``casemesh_crawler_politeness_wait_seconds`` (a URL's wait in its host's queue),
``casemesh_crawler_frontier_size``, ``casemesh_crawler_hosts_waiting``, ``casemesh_crawler_robots_blocked_total``,
``casemesh_crawler_duplicates_total{kind}`` (``exact``, ``near``), ``casemesh_crawler_pages_indexed_total``,
``casemesh_crawler_index_failures_total``, ``casemesh_crawler_crawls_total{state}`` (``running``, ``done``,
``cancelled``), ``casemesh_crawler_running_crawls`` (crawler, services/crawler/frontier/metrics.py);
``casemesh_crawler_web_fetches_total{resource,status}`` (``page``, ``robots``; ``200``, ``404``, ``503``),
``casemesh_crawler_web_violations_total{kind}`` (``robots``, ``politeness``, ``duplicate``: the referee's),
``casemesh_crawler_web_delayed_fetches_total``, ``casemesh_crawler_web_pages``, ``casemesh_crawler_web_hosts``,
``casemesh_crawler_web_disallowed_pages``, ``casemesh_crawler_web_copy_pages``, ``casemesh_crawler_web_audited_crawls``
(crawler-web, services/crawler/web/metrics.py); and the runtime's ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` of both services and ``grpc_client_handled_total`` of the crawler's calls (Fetch,
IndexPage). Only the gRPC histograms carry exemplars.

Not exposed, so not drawn: the gap between two fetches of one host (the referee reports a crawl's shortest one in its
Audit, ``min_host_gap_ms``; its violations counter is what crosses the interval) and the SimHash distances of the near
copies (only the pages skipped are counted).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX
from casemesh.harness.slo import Slo, load_slos

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-crawler"
CRAWLER = "casemesh.crawler.v1.CrawlerService"
WEB = "casemesh.crawler.v1.SyntheticWebService"
INDEXER = "casemesh.search.v1.IndexerService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The crawler profile's SLOs: the bounds and targets drawn here are read from it (:func:`slos`).
SLO_FILE = PROFILES_DIR / f"crawler{SLO_FILE_SUFFIX}"
#: crawler-status-latency-server (crawler.slo.yaml): GetCrawl handled within 100 ms, a bucket of
#: grpc_server_handling_seconds.
STATUS_S = 0.1
FETCHES = "casemesh_crawler_fetches_total"
WEB_FETCHES = "casemesh_crawler_web_fetches_total"
VIOLATIONS = "casemesh_crawler_web_violations_total"
DUPLICATES = "casemesh_crawler_duplicates_total"
WAIT = "casemesh_crawler_politeness_wait_seconds"
JOB = 'job=~"$job"'
CRAWLER_SERVICES = r'grpc_service=~"casemesh\\.crawler\\.v1\\..+"'
#: The crawler services' jobs (crawler, crawler-web).
CRAWLER_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.crawler\\.v1\\..+"}'


def slos() -> dict[str, Slo]:
    """SLO name → SLO of every SLO of :data:`SLO_FILE` (harness/profiles/crawler.slo.yaml)."""
    return {slo.name: slo for slo in load_slos(SLO_FILE)}


def respected(kind: str, matchers: str) -> str:
    """Share of the web's fetches that broke no ``kind`` rule, as the twin crawler-KIND-respected-server counts it."""
    broken = rate(VIOLATIONS, selector(JOB, f'kind="{kind}"'))
    return f"1 - ({broken} or vector(0)) / {rate(WEB_FETCHES, matchers)}"


def build() -> Dashboard:
    slo = slos()
    throughput = slo["crawler-crawl-throughput"]
    page_s = throughput.good.latency_le_ms / 1000
    pages_per_s = 1 / page_s
    status_target = slo["crawler-status-latency-server"].target
    start_target = slo["crawler-start-availability-server"].target
    robots_target = slo["crawler-robots-respected-server"].target
    polite_target = slo["crawler-politeness-respected-server"].target
    jobs = selector(JOB)
    fetched = selector(JOB, 'outcome="200"')
    running = f"sum(casemesh_crawler_running_crawls{jobs})"
    status = selector(JOB, f'grpc_service="{CRAWLER}"', 'grpc_method="GetCrawl"')
    starts = selector(JOB, f'grpc_service="{CRAWLER}"', 'grpc_method="StartCrawl"')
    started_ok = selector(JOB, f'grpc_service="{CRAWLER}"', 'grpc_method="StartCrawl"', 'grpc_code="OK"')
    status_ms = f"{STATUS_S * 1000:g} ms"
    done = selector(JOB, 'state="done"')
    impolite, disobedient = selector(JOB, 'kind="politeness"'), selector(JOB, 'kind="robots"')
    board = (
        new_dashboard(UID, "casemesh / web crawler",
                      "The web crawler case study (Googlebot): pages per second per crawl against 5, at one request "
                      "a second per host and no robots.txt rule broken (the synthetic web's referee counts both); "
                      "GetCrawl against 100 ms; the URL frontier, fetches, politeness waits, robots.txt, MD5 and "
                      "SimHash deduplication (the near-duplicates A/B) and the pages sent to the indexer.",
                      ["crawler"])
        .with_variable(query_variable("job", "Job", f"label_values({CRAWLER_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Crawl throughput: {pages_per_s:g} pages a second per crawl "
                           f"({throughput.target:.0%} of crawls), politely"))
        .with_panel(timeseries_panel(
            f"Pages fetched per second vs {pages_per_s:g} per crawl",
            f"Pages answered 200 per second (casemesh_crawler_fetches_total{{outcome=\"200\"}}), over every crawl and "
            f"per running crawl (over casemesh_crawler_running_crawls, at least 1). The dashed line is the bound of "
            f"the SLO crawler-crawl-throughput of crawler.slo.yaml: {throughput.good.latency_le_ms:g} ms a page, "
            f"{pages_per_s:g} pages a second, for {throughput.target:g} of crawls. The SLO itself is measured by the "
            f"harness per crawl (StartCrawl to DONE over its pages, good only for a crawl the referee found polite "
            f"and obedient to robots.txt; the harness dashboard draws it): this is the crawler's side of it, which "
            f"the crawls that share hosts (and the process-wide politeness clock) share.", "short",
            refs([(rate(FETCHES, fetched), "pages/s"),
                  (f"{rate(FETCHES, fetched)} / clamp_min({running}, 1)", "pages/s per running crawl")]),
            width=10, threshold_line=(pages_per_s, "red"), min_value=0))
        .with_panel(timeseries_panel(
            "Crawls running, started and ended",
            "Crawls running now (casemesh_crawler_running_crawls; StartCrawl answers RESOURCE_EXHAUSTED beyond "
            "max_crawls), and crawls started (running) and ended (done: the frontier ran dry or max_pages were "
            "fetched; cancelled: CancelCrawl) per second (casemesh_crawler_crawls_total).", "short",
            refs([(running, "running"),
                  (rate("casemesh_crawler_crawls_total", jobs, ("state",)), "{{state}} /s")]), width=6, min_value=0))
        .with_panel(stat_panel(
            "Crawls done over the range",
            "Crawls that ended DONE over the selected time range (casemesh_crawler_crawls_total{state=\"done\"}).",
            "short",
            [query(f"sum(increase(casemesh_crawler_crawls_total{done}[$__range]))",
                   instant=True)], width=4, height=8, decimals=0))
        .with_panel(stat_panel(
            "Pages fetched over the range",
            "Pages answered 200 over the selected time range (casemesh_crawler_fetches_total{outcome=\"200\"}).",
            "short", [query(f"sum(increase({FETCHES}{fetched}[$__range]))", instant=True)],
            width=4, height=8, decimals=0))
    )
    board = (
        board.with_row(Row(f"Looks and starts: GetCrawl {status_target:.0%} within {status_ms}, StartCrawl "
                           f"{start_target:.0%} answered OK"))
        .with_panel(latency_panel(
            f"GetCrawl time vs {status_ms}",
            "CrawlerService/GetCrawl handling time in crawler (grpc_server_handling_seconds): an operator's "
            "dashboard looking at a crawl and the crawl journeys' polls; a few counters in memory, so what it shows "
            "is the crawler's event loop, which parses, fingerprints and sends on every page the crawls fetch. The "
            "dashed line is the SLO crawler-status-latency-server of crawler.slo.yaml (the twin of "
            "crawler-status-latency). Dots are exemplars.", HANDLING, status, (), "", width=8, threshold_s=STATUS_S))
        .with_panel(timeseries_panel(
            f"GetCrawl within {status_ms}",
            f"Share of GetCrawl calls handled within {status_ms} (le=\"{le(STATUS_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: crawler-status-latency-server); the dashed line is its target "
            f"{status_target:g}.", "percentunit",
            [query(within(HANDLING, status, STATUS_S), f"within {status_ms}")],
            width=5, threshold_line=(status_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"GetCrawl within {status_ms} over the range",
            f"Share of GetCrawl calls handled within {status_ms} over the selected time range, against "
            f"{status_target:g} (crawler-status-latency-server).", "percentunit",
            [query(within(HANDLING, status, STATUS_S, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((status_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "StartCrawl answered OK",
            f"StartCrawl calls answered OK over all of them (grpc_server_handled_total: the SLO "
            f"crawler-start-availability-server of crawler.slo.yaml, RESOURCE_EXHAUSTED at max_crawls counted as "
            f"bad); the dashed line is its target {start_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, started_ok)} / {rate(HANDLED, starts)}", "answered OK")],
            width=5, threshold_line=(start_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "StartCrawl OK over the range",
            f"Share of StartCrawl calls answered OK over the selected time range, against {start_target:g} "
            f"(crawler-start-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{started_ok}[$__range])) / sum(increase({HANDLED}{starts}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((start_target, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("The URL frontier and the fetches (seed 001 #28: \"URL frontier\", \"BFS\")"))
        .with_panel(timeseries_panel(
            "Frontier size and hosts waiting",
            "URLs queued over the running crawls (casemesh_crawler_frontier_size: breadth-first, a URL's priority "
            "its depth) and hosts with work waiting for their next-allowed time or a fetcher "
            "(casemesh_crawler_hosts_waiting).", "short",
            refs([(f"sum(casemesh_crawler_frontier_size{jobs})", "URLs queued"),
                  (f"sum(casemesh_crawler_hosts_waiting{jobs})", "hosts waiting")]), width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Crawler fetches by outcome",
            "Fetches the crawler ended per second (casemesh_crawler_fetches_total): 200 (a page), 404, 503 (each "
            "attempt: a 503 is retried up to max_retries times), error (no HTTP answer: a deadline, the web down), "
            "robots_txt (robots.txt fetches, whatever their answer).", "reqps",
            [query(rate(FETCHES, jobs, ("outcome",)), "{{outcome}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Web's fetches by resource and status",
            "Fetches the synthetic web answered per second (casemesh_crawler_web_fetches_total), by resource (page, "
            "robots) and HTTP status, and those a slow host answered slow_delay_ms late "
            "(casemesh_crawler_web_delayed_fetches_total). The crawler's count seen from the other side: a crawl's "
            "robots.txt, its pages, the flaky hosts' 503s.", "reqps",
            refs([(rate(WEB_FETCHES, jobs, ("resource", "status")), "{{resource}} {{status}}"),
                  (rate("casemesh_crawler_web_delayed_fetches_total", jobs), "delayed (slow host)")]),
            width=8, stacked=False))
    )
    fetch = selector(JOB, f'grpc_service="{WEB}"', 'grpc_method="Fetch"')
    board = (
        board.with_row(Row("Politeness: at most one request a second per host (the referee counts every breach)"))
        .with_panel(latency_panel(
            "Politeness wait",
            "Per page fetch, how long the URL waited in its host's queue before a fetcher took it "
            "(casemesh_crawler_politeness_wait_seconds): the host's interval (politeness_interval_ms, or its "
            "robots.txt Crawl-delay when longer, counted from the end of the previous fetch by any crawl), the "
            "host's URLs ahead of it, its robots.txt first. The gap between two fetches of a host is not exported "
            "(the referee's Audit reports a crawl's shortest).", WAIT, jobs, (), "", quantiles=(0.5, 0.9, 0.99),
            width=6))
        .with_panel(timeseries_panel(
            "Referee: violations by kind",
            "Fetches the synthetic web's referee caught breaking a rule, per second "
            "(casemesh_crawler_web_violations_total): politeness (sooner than the host's interval after its previous "
            "request by anyone), robots (a path robots.txt disallows for the fetch's user agent), duplicate (a URL "
            "already answered 200 in the same crawl). A polite crawler has none.", "reqps",
            [query(rate(VIOLATIONS, jobs, ("kind",)), "{{kind}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Fetches polite and obedient",
            f"Share of the web's fetches that broke no politeness rule and no robots.txt rule (the twins "
            f"crawler-politeness-respected-server and crawler-robots-respected-server of crawler.slo.yaml: "
            f"casemesh_crawler_web_violations_total over casemesh_crawler_web_fetches_total); the dashed line is "
            f"their target {polite_target:g}.", "percentunit",
            refs([(respected("politeness", jobs), "polite"), (respected("robots", jobs), "obeys robots.txt")]),
            width=4, threshold_line=(polite_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Politeness violations over the range",
            f"Fetches sooner than their host's interval over the selected time range (the referee's count; "
            f"crawler-politeness-respected-server's target {polite_target:g} fails on any).", "short",
            [query(f"sum(increase({VIOLATIONS}{impolite}[$__range])) or vector(0)",
                   instant=True)], width=4, height=8, steps=((1, "red"),), decimals=0))
        .with_panel(stat_panel(
            "robots.txt violations over the range",
            f"Fetches of a path robots.txt disallows over the selected time range (the referee's count; "
            f"crawler-robots-respected-server's target {robots_target:g} fails on any).", "short",
            [query(f"sum(increase({VIOLATIONS}{disobedient}[$__range])) or vector(0)",
                   instant=True)], width=4, height=8, steps=((1, "red"),), decimals=0))
    )
    board = (
        board.with_row(Row("robots.txt (RFC 9309, protego): read once per host and crawl, obeyed"))
        .with_panel(timeseries_panel(
            "URLs skipped for robots.txt, robots.txt fetches",
            "URLs left unfetched per second because robots.txt disallows them or closed the host (a 5xx robots.txt, "
            "a Crawl-delay beyond max_crawl_delay_ms) (casemesh_crawler_robots_blocked_total), and robots.txt "
            "fetches per second, the crawler's (casemesh_crawler_fetches_total{outcome=\"robots_txt\"}) and the "
            "web's by status (200; 404: no file, everything allowed; 503: the host closed).", "ops",
            refs([(rate("casemesh_crawler_robots_blocked_total", jobs), "URLs disallowed"),
                  (rate(FETCHES, selector(JOB, 'outcome="robots_txt"')), "robots.txt fetched (crawler)"),
                  (rate(WEB_FETCHES, selector(JOB, 'resource="robots"'), ("status",)),
                   "robots.txt answered {{status}} (web)")]), width=12))
        .with_panel(stat_panel(
            "The synthetic web",
            "The web crawler-web serves (gauges set at its start): pages, hosts, pages robots.txt closes to "
            "casemesh-bot, pages that copy another (near or exact), and the crawls its referee remembers.", "short",
            refs([(f"sum(casemesh_crawler_web_pages{jobs})", "pages"),
                  (f"sum(casemesh_crawler_web_hosts{jobs})", "hosts"),
                  (f"sum(casemesh_crawler_web_disallowed_pages{jobs})", "disallowed"),
                  (f"sum(casemesh_crawler_web_copy_pages{jobs})", "copies"),
                  (f"sum(casemesh_crawler_web_audited_crawls{jobs})", "crawls audited")]),
            width=12, height=8, decimals=0))
    )
    board = (
        board.with_row(Row("Deduplication: exact copies by MD5, near copies by SimHash (crawler.near_duplicates)"))
        .with_panel(timeseries_panel(
            "Duplicates skipped by kind",
            "Pages skipped as duplicates per second (casemesh_crawler_duplicates_total): exact (the MD5 of a page "
            "seen before in the crawl) and near (a 64-bit SimHash within simhash_distance bits of one: Manku et al., "
            "WWW 2007). Neither is indexed nor has its links followed. The A/B switch crawler.near_duplicates=false "
            "leaves only exact: near copies then reach the index. The distances themselves are not exported.", "ops",
            [query(rate(DUPLICATES, jobs, ("kind",)), "{{kind}}")], width=12, stacked=True))
        .with_panel(timeseries_panel(
            "Share of fetched pages skipped as duplicates",
            "Duplicates skipped (casemesh_crawler_duplicates_total, by kind) over the pages answered 200 "
            "(casemesh_crawler_fetches_total{outcome=\"200\"}).", "percentunit",
            [query(f"{rate(DUPLICATES, jobs, ('kind',))} / scalar({rate(FETCHES, fetched)})", "{{kind}}")],
            width=12, max_value=1, min_value=0))
    )
    indexer_calls = selector(JOB, f'grpc_service="{INDEXER}"', 'grpc_method="IndexPage"')
    web_calls = selector(JOB, f'grpc_service="{WEB}"', 'grpc_method="Fetch"')
    board = (
        board.with_row(Row("Pages sent to the search engine's indexer (crawls with index_pages)"))
        .with_panel(timeseries_panel(
            "Pages indexed and failed",
            "Pages the indexer acknowledged per second (casemesh_crawler_pages_indexed_total) and pages it did not "
            "take after every attempt (casemesh_crawler_index_failures_total); duplicates are never sent.", "ops",
            refs([(rate("casemesh_crawler_pages_indexed_total", jobs), "indexed"),
                  (rate("casemesh_crawler_index_failures_total", jobs), "failed")]), width=8))
        .with_panel(timeseries_panel(
            "Crawler's calls by code",
            "The crawler's calls per second by method and status code (grpc_client_handled_total): Fetch to "
            "crawler-web (NotFound: a host not on the web; DeadlineExceeded: past fetch_timeout_ms) and IndexPage "
            "to search-indexer (Unavailable and DeadlineExceeded are retried).", "reqps",
            refs([(rate("grpc_client_handled_total", web_calls, ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}"),
                  (rate("grpc_client_handled_total", indexer_calls, ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")]), width=8, stacked=True))
        .with_panel(latency_panel(
            "Fetch time (the web's)",
            "SyntheticWebService/Fetch handling time in crawler-web (grpc_server_handling_seconds): rendering a "
            "page, and a slow host's slow_delay_ms. Dots are exemplars.", HANDLING, fetch, (), "",
            quantiles=(0.5, 0.99), width=8))
    )
    calls = selector(JOB, CRAWLER_SERVICES)
    board = (
        board.with_row(Row("gRPC per crawler service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each crawler method: CrawlerService (StartCrawl, GetCrawl, "
            "CancelCrawl) in crawler; SyntheticWebService (Fetch: the crawler's; GetWeb and Audit: the harness's) in "
            "crawler-web.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists). StartCrawl's ResourceExhausted is max_crawls running, FailedPrecondition no indexer to "
            "send pages to; Unavailable a service down.", "reqps",
            [query(rate(HANDLED, selector(JOB, CRAWLER_SERVICES, ERROR_CODES_MATCHER), ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, HANDLING, calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board

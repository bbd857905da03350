"""Search engine: Search against the seed's 500 ms and its three nines, Suggest against 100 ms, the completeness of the
answers (a shard past search-query's per-shard deadline is left out: the A/B switch ``search-query.shard_deadline_ms``),
the two-phase scatter-gather over the index shards (term statistics, then each shard's BM25 + PageRank top pages) and
the work each shard does, the index's size per shard, indexing and its freshness, the PageRank passes, and the
autocomplete's prefix index rebuilt from the query log.

Case study: seed 000 "Search Engine (like Google)", shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664 (line 600
"Autocomplete and spell correction", line 608 "Query processing: Millions of QPS, sub-500ms latency", line 609
"Freshness: Breaking news indexed in minutes", lines 617-621 "Document Store", "Indexer", "Index Server: Sharded index
across thousands of machines", "Query Processor", "Ranker: PageRank + ML models", line 637 "PageRank Algorithm");
contracts in protos/casemesh/search/v1/, SLOs in harness/profiles/search.slo.yaml (the server-side twins drawn here:
search-query-latency-server, search-query-availability-server, search-results-complete-server,
search-suggest-latency-server and search-typing-time-server (one series), search-index-freshness-server; their targets
are read from that file when the dashboard is built).

Service metrics, as the search services expose them: ``casemesh_search_query_shard_calls_total{phase,outcome}``
(``statistics``, ``search``; ``ok``, ``deadline``, ``error``), ``casemesh_search_query_partial_results_total``,
``casemesh_search_query_shards_answered`` (shards in each answer), ``casemesh_search_query_terms`` (distinct terms per
query), ``casemesh_search_query_log_queries_total{outcome}`` (``sent``, ``dropped``, ``rejected``),
``casemesh_search_query_log_send_failures_total``, ``casemesh_search_query_log_pending`` (search-query,
services/search/query/metrics.py); ``casemesh_search_shard_pages{shard}``, ``casemesh_search_shard_terms{shard}``,
``casemesh_search_shard_postings_scanned`` and ``casemesh_search_shard_matched_pages`` (per SearchShard),
``casemesh_search_shard_rebuilds_total{outcome}`` (``completed``, ``failed``),
``casemesh_search_shard_rebuild_pages_total{outcome}`` (``indexed``, ``superseded``, ``misrouted``),
``casemesh_search_shard_rebuild_seconds{shard}``, ``casemesh_search_shard_rebuilding`` (search-shards,
services/search/shards/metrics.py); ``casemesh_search_indexer_pages``, ``casemesh_search_indexer_links``,
``casemesh_search_indexer_pages_indexed_total{created}`` (``true``, ``false``),
``casemesh_search_indexer_shard_put_failures_total``, ``casemesh_search_indexer_rank_push_failures_total``,
``casemesh_search_indexer_pagerank_pass_seconds``, ``casemesh_search_indexer_pagerank_iterations``,
``casemesh_search_indexer_rank_version``, ``casemesh_search_indexer_commit_seconds``,
``casemesh_search_indexer_writes_per_commit`` (search-indexer, services/search/indexer/metrics.py);
``casemesh_search_autocomplete_prefixes``, ``casemesh_search_autocomplete_distinct_queries``,
``casemesh_search_autocomplete_rebuild_seconds``, ``casemesh_search_autocomplete_index_age_seconds``,
``casemesh_search_autocomplete_queries_total{outcome}`` (``counted``, ``dropped``) (search-autocomplete,
services/search/autocomplete/metrics.py); and the runtime's ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` of the search services (the twins of Search, Suggest and IndexPage; the shards' own
time per phase) and ``grpc_client_handling_seconds`` of search-query's shard calls (the wait per shard, cut by the
deadline). Only the gRPC histograms carry exemplars.

The services expose no per-shard call counter and no timer of their own for BM25 scoring or the phases: the shards'
work per call is drawn as the postings the AND intersection probed and the pages it matched (each of them scored), a
phase's time as its gRPC method's (GetTermStatistics, SearchShard). The index's postings are not counted either: its
size is drawn as pages and distinct terms per shard. ``IndexerService/ScanShard`` is a stream (a shard's whole rebuild):
it is left out of the gRPC duration and error panels.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-search"
SEARCH = "casemesh.search.v1.SearchService"
AUTOCOMPLETE = "casemesh.search.v1.AutocompleteService"
INDEXER = "casemesh.search.v1.IndexerService"
SHARDS = "casemesh.search.v1.IndexShardService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The search profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"search{SLO_FILE_SUFFIX}"
#: search-query-latency-server (search.slo.yaml): Search handled within 500 ms (the seed's "sub-500ms latency"), a
#: bucket of grpc_server_handling_seconds.
SEARCH_S = 0.5
#: search-suggest-latency-server and search-typing-time-server: Suggest handled within 100 ms.
SUGGEST_S = 0.1
#: search-index-freshness-server: IndexPage handled within 1 s.
FRESH_S = 1.0
PARTIAL = "casemesh_search_query_partial_results_total"
SHARD_CALLS = "casemesh_search_query_shard_calls_total"
ANSWERED = "casemesh_search_query_shards_answered"
JOB = 'job=~"$job"'
SEARCH_SERVICES = r'grpc_service=~"casemesh\\.search\\.v1\\..+"'
#: The search services' jobs.
SEARCH_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.search\\.v1\\..+"}'
#: ScanShard streams a shard's every page to its rebuild (drawn in the request rate only).
NOT_SCAN = 'grpc_method!="ScanShard"'


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    search_target = target["search-query-latency-server"]
    answered_target = target["search-query-availability-server"]
    complete_target = target["search-results-complete-server"]
    suggest_target = target["search-suggest-latency-server"]
    fresh_target = target["search-index-freshness-server"]
    jobs = selector(JOB)
    searches = selector(JOB, f'grpc_service="{SEARCH}"', 'grpc_method="Search"')
    answered = selector(JOB, f'grpc_service="{SEARCH}"', 'grpc_method="Search"', 'grpc_code="OK"')
    suggests = selector(JOB, f'grpc_service="{AUTOCOMPLETE}"', 'grpc_method="Suggest"')
    indexed = selector(JOB, f'grpc_service="{INDEXER}"', 'grpc_method="IndexPage"')
    search_ms, suggest_ms, fresh_ms = (f"{SEARCH_S * 1000:g} ms", f"{SUGGEST_S * 1000:g} ms",
                                       f"{FRESH_S * 1000:g} ms")
    board = (
        new_dashboard(UID, "casemesh / search engine",
                      "The search engine case study (Google): Search against the seed's 500 ms and its three nines, "
                      "the answers' completeness (a shard past its deadline left out: the shard-deadline A/B), the "
                      "scatter-gather over the index shards, the index per shard, indexing and its freshness, "
                      "PageRank passes, and Suggest against 100 ms from a prefix index rebuilt from the query log.",
                      ["search"])
        .with_variable(query_variable("job", "Job", f"label_values({SEARCH_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Search: {search_target:.0%} within {search_ms}, {answered_target:.1%} answered OK"))
        .with_panel(latency_panel(
            f"Search time vs {search_ms}",
            "SearchService/Search handling time in search-query (grpc_server_handling_seconds): the query parsed, "
            "both rounds of shard calls (term statistics, then each shard's best pages, each cut at "
            "shard_deadline_ms) and the merge. The dashed line is the SLO search-query-latency-server of "
            "search.slo.yaml (the server-side twin of search-query-latency: seed 000 line 608's \"sub-500ms "
            "latency\"). Dots are exemplars.",
            HANDLING, searches, (), "", width=6, threshold_s=SEARCH_S))
        .with_panel(timeseries_panel(
            f"Searches within {search_ms}",
            f"Share of Search calls handled within {search_ms} (le=\"{le(SEARCH_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: search-query-latency-server); the dashed line is its target "
            f"{search_target:g}.", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S), f"within {search_ms}")],
            width=5, threshold_line=(search_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Search answered OK",
            f"Search calls answered OK (partial answers included) over all of them: the SLO "
            f"search-query-availability-server of search.slo.yaml; UNAVAILABLE when no shard answered. The dashed "
            f"line is its target {answered_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, answered)} / {rate(HANDLED, searches)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Within {search_ms} over the range",
            f"Share of Search calls handled within {search_ms} over the selected time range, against "
            f"{search_target:g} (search-query-latency-server).", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((search_target, "green"),), decimals=3))
        .with_panel(stat_panel(
            "Answered OK over the range",
            f"Share of Search calls answered OK over the selected time range, against {answered_target:g} "
            f"(search-query-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{answered}[$__range])) / sum(increase({HANDLED}{searches}[$__range]))",
                   instant=True)],
            width=4, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
    )
    missed = selector(JOB, 'outcome!="ok"')
    complete = f"({rate(HANDLED, answered)} - {rate(PARTIAL, jobs)}) / {rate(HANDLED, answered)}"
    complete_range = (f"(sum(increase({HANDLED}{answered}[$__range])) - sum(increase({PARTIAL}{jobs}[$__range]))) "
                      f"/ sum(increase({HANDLED}{answered}[$__range]))")
    board = (
        board.with_row(Row(f"Completeness: {complete_target:.0%} of answers hold every shard's pages (a shard past "
                           f"search-query.shard_deadline_ms is left out)"))
        .with_panel(timeseries_panel(
            "Complete answers",
            f"Search answers OK and not partial, over every Search answered OK (casemesh_search_query_partial_results"
            f"_total against grpc_server_handled_total): the SLO search-results-complete-server of search.slo.yaml; "
            f"the dashed line is its target {complete_target:g}. A partial answer left out a shard that missed "
            f"its deadline in either round (its best pages missing): the latency the deadline bought, paid in "
            f"completeness (the A/B switch search-query.shard_deadline_ms; 0 waits for every shard).",
            "percentunit", [query(complete, "complete")],
            width=6, threshold_line=(complete_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Complete over the range",
            f"Share of the Search answers OK that were complete over the selected time range, against "
            f"{complete_target:g} (search-results-complete-server).", "percentunit",
            [query(complete_range, instant=True)],
            width=3, height=8, base="red", steps=((complete_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Shards per answer",
            "Shards whose pages are in each Search answer (casemesh_search_query_shards_answered): the mean and the "
            "1st percentile (the answers missing the most), against the shards search-shards holds (count of "
            "casemesh_search_shard_pages); partial answers per second below (casemesh_search_query_partial_results"
            "_total).", "short",
            refs([(mean(ANSWERED, jobs), "mean shards answered"),
                  (quantile(0.01, ANSWERED, jobs), "p1 shards answered"),
                  (f"count(casemesh_search_shard_pages{jobs})", "shards held"),
                  (rate(PARTIAL, jobs), "partial answers/s")]),
            width=5, min_value=0))
        .with_panel(timeseries_panel(
            "Shard calls by phase and outcome",
            "search-query's calls to one shard per second (casemesh_search_query_shard_calls_total), by phase "
            "(statistics: GetTermStatistics, the collection-wide document frequencies BM25 needs; search: "
            "SearchShard, the shard's top pages) and outcome: ok, deadline (past shard_deadline_ms or the Search "
            "call's own deadline), error (a shard rebuilding, unreachable). Each deadline or error leaves its shard "
            "out of the answer. Every query calls every shard once per phase.", "reqps",
            [query(rate(SHARD_CALLS, jobs, ("phase", "outcome")), "{{phase}} {{outcome}}")], width=5, stacked=True))
        .with_panel(timeseries_panel(
            "Shard calls missed",
            "Shard calls that ended deadline or error, over all of them, per phase "
            "(casemesh_search_query_shard_calls_total).", "percentunit",
            [query(f"{rate(SHARD_CALLS, missed, ('phase',))} / {rate(SHARD_CALLS, jobs, ('phase',))}", "{{phase}}")],
            width=5, min_value=0))
    )
    shard_method = {method: selector(JOB, f'grpc_service="{SHARDS}"', f'grpc_method="{method}"')
                    for method in ("GetTermStatistics", "SearchShard")}
    postings, matched = "casemesh_search_shard_postings_scanned", "casemesh_search_shard_matched_pages"
    board = (
        board.with_row(Row("Scatter-gather: each shard's time and work per phase (seed 000 line 619: \"Sharded index\")"))
        .with_panel(timeseries_panel(
            "Shard time per phase",
            "search-shards' handling time of one shard call (grpc_server_handling_seconds): GetTermStatistics (the "
            "query's terms' document frequencies on the shard) and SearchShard (the AND intersection of the "
            "postings, phrases checked on positions, every match scored BM25 with the collection-wide statistics "
            "and boosted by PageRank, the shard's top pages sorted). Dots are exemplars.", "s",
            [query(quantile(0.5, HANDLING, shard_method["GetTermStatistics"]), "p50 GetTermStatistics", "A"),
             query(quantile(0.99, HANDLING, shard_method["GetTermStatistics"]), "p99 GetTermStatistics", "B"),
             query(quantile(0.5, HANDLING, shard_method["SearchShard"]), "p50 SearchShard", "C"),
             query(quantile(0.99, HANDLING, shard_method["SearchShard"]), "p99 SearchShard", "D", exemplar=True)],
            width=6))
        .with_panel(timeseries_panel(
            "search-query's wait per shard call",
            "From search-query's call to a shard until its answer (grpc_client_handling_seconds), per phase: the "
            "shard's time, the network and the queue before its handler, cut at shard_deadline_ms (a call past it "
            "is left out). Dots are exemplars.", "s",
            [query(quantile(0.5, "grpc_client_handling_seconds", shard_method["GetTermStatistics"]),
                   "p50 GetTermStatistics", "A"),
             query(quantile(0.99, "grpc_client_handling_seconds", shard_method["GetTermStatistics"]),
                   "p99 GetTermStatistics", "B"),
             query(quantile(0.5, "grpc_client_handling_seconds", shard_method["SearchShard"]), "p50 SearchShard",
                   "C"),
             query(quantile(0.99, "grpc_client_handling_seconds", shard_method["SearchShard"]), "p99 SearchShard",
                   "D", exemplar=True)], width=6))
        .with_panel(timeseries_panel(
            "Postings probed per SearchShard",
            "Postings entries the AND intersection probed per SearchShard (casemesh_search_shard_postings_scanned: "
            "the smallest postings list, then the survivors against each further term): the work BM25 scoring "
            "starts from, which common words make large.", "short",
            refs([(quantile(0.5, postings, jobs), "p50"), (quantile(0.99, postings, jobs), "p99"),
                  (mean(postings, jobs), "mean")]), width=4, min_value=0))
        .with_panel(timeseries_panel(
            "Pages matched (scored) per SearchShard",
            "The shard's pages matching every term and phrase, per SearchShard "
            "(casemesh_search_shard_matched_pages): each is scored BM25 (k1 1.2, b 0.75) times its PageRank boost.",
            "short",
            refs([(quantile(0.5, matched, jobs), "p50"), (quantile(0.99, matched, jobs), "p99"),
                  (mean(matched, jobs), "mean")]), width=4, min_value=0))
        .with_panel(timeseries_panel(
            "Terms per query",
            "Distinct terms per parsed query (casemesh_search_query_terms, 1 to 16; a phrase's words counted): each "
            "is one postings list per shard.", "short",
            refs([(quantile(0.5, "casemesh_search_query_terms", jobs), "p50"),
                  (quantile(0.99, "casemesh_search_query_terms", jobs), "p99"),
                  (mean("casemesh_search_query_terms", jobs), "mean")]), width=4, min_value=0))
    )
    board = (
        board.with_row(Row("The index: pages and terms per shard, the document store, the rebuild at start"))
        .with_panel(timeseries_panel(
            "Pages per shard",
            "Pages on each shard (casemesh_search_shard_pages{shard}; a page lives on crc32(url) mod shards), "
            "stacked: their sum is the index, which must equal the document store's pages.", "short",
            [query(f"sum by (shard) (casemesh_search_shard_pages{jobs})", "shard {{shard}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Distinct terms per shard",
            "Distinct terms on each shard (casemesh_search_shard_terms{shard}): one postings list each.", "short",
            [query(f"sum by (shard) (casemesh_search_shard_terms{jobs})", "shard {{shard}}")], width=6))
        .with_panel(timeseries_panel(
            "Document store and index",
            "Pages and links in search-indexer's document store (casemesh_search_indexer_pages, "
            "casemesh_search_indexer_links: distinct page-to-URL edges, the link graph PageRank ranks), and the "
            "pages on all shards (casemesh_search_shard_pages): the two counts of pages agree once every put landed.",
            "short",
            refs([(f"sum(casemesh_search_indexer_pages{jobs})", "pages stored"),
                  (f"sum(casemesh_search_shard_pages{jobs})", "pages on the shards"),
                  (f"sum(casemesh_search_indexer_links{jobs})", "links stored")]), width=6, min_value=0))
        .with_panel(timeseries_panel(
            "Shard rebuilds",
            "A restarted search-shards rebuilds each shard from the document store (IndexerService.ScanShard) and "
            "answers UNAVAILABLE meanwhile: shards rebuilding now (casemesh_search_shard_rebuilding), the seconds "
            "each shard took from the start (casemesh_search_shard_rebuild_seconds{shard}), scan streams per second "
            "by outcome (casemesh_search_shard_rebuilds_total: completed, failed and retried) and the pages they "
            "delivered (casemesh_search_shard_rebuild_pages_total: indexed, superseded by a newer PutPage, "
            "misrouted).", "short",
            refs([(f"sum(casemesh_search_shard_rebuilding{jobs})", "shards rebuilding"),
                  (f"max by (shard) (casemesh_search_shard_rebuild_seconds{jobs})", "shard {{shard}} rebuilt in (s)"),
                  (rate("casemesh_search_shard_rebuilds_total", jobs, ("outcome",)), "scans {{outcome}}/s"),
                  (rate("casemesh_search_shard_rebuild_pages_total", jobs, ("outcome",)), "pages {{outcome}}/s")]),
            width=6, min_value=0))
    )
    board = (
        board.with_row(Row(f"Indexing and freshness: IndexPage {fresh_target:.0%} within {fresh_ms} (seed 000 line "
                           f"609: \"Breaking news indexed in minutes\")"))
        .with_panel(timeseries_panel(
            "Pages indexed",
            "Pages IndexPage wrote to the store per second (casemesh_search_indexer_pages_indexed_total), new URLs "
            "(created true) and replaced pages (false); pages whose shard did not take them "
            "(casemesh_search_indexer_shard_put_failures_total: stored all the same, answered UNAVAILABLE).", "ops",
            refs([(rate("casemesh_search_indexer_pages_indexed_total", jobs, ("created",)), "created {{created}}"),
                  (rate("casemesh_search_indexer_shard_put_failures_total", jobs), "shard put failed")]),
            width=5, stacked=True))
        .with_panel(latency_panel(
            f"IndexPage time vs {fresh_ms}",
            "IndexerService/IndexPage handling time in search-indexer (grpc_server_handling_seconds): the page "
            "validated, written in a group commit (fsync) and put on its shard; when it answers OK the page is "
            "searchable. The dashed line is the SLO search-index-freshness-server of search.slo.yaml. Dots are "
            "exemplars.", HANDLING, indexed, (), "", width=5, threshold_s=FRESH_S))
        .with_panel(timeseries_panel(
            f"Pages searchable within {fresh_ms}",
            f"Share of IndexPage calls handled within {fresh_ms} (le=\"{le(FRESH_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: search-index-freshness-server); the dashed line is its target "
            f"{fresh_target:g}.", "percentunit",
            [query(within(HANDLING, indexed, FRESH_S), f"within {fresh_ms}")],
            width=4, threshold_line=(fresh_target, "red"), max_value=1))
        .with_panel(latency_panel(
            "Store group commit",
            "One group commit to the document store's SQLite file, fsync included "
            "(casemesh_search_indexer_commit_seconds): IndexPage waits for it.",
            "casemesh_search_indexer_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=5))
        .with_panel(timeseries_panel(
            "Writes per commit",
            "Writes (pages, PageRank pass records) per group commit (casemesh_search_indexer_writes_per_commit): "
            "how many share one fsync.", "short",
            refs([(quantile(0.5, "casemesh_search_indexer_writes_per_commit", jobs), "p50"),
                  (quantile(0.99, "casemesh_search_indexer_writes_per_commit", jobs), "p99"),
                  (mean("casemesh_search_indexer_writes_per_commit", jobs), "mean")]), width=5, min_value=0))
    )
    passes = "casemesh_search_indexer_pagerank_pass_seconds"
    board = (
        board.with_row(Row("PageRank (seed 000 line 637: damping 0.85, power iteration)"))
        .with_panel(latency_panel(
            "PageRank pass time",
            "One pass's computation (casemesh_search_indexer_pagerank_pass_seconds): the link matrix built from the "
            "graph and the power iteration, every pagerank_interval_s when the graph changed and on "
            "ComputePageRank.", passes, jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Passes and iterations",
            "Power iterations of the last pass until the ranks moved less than the tolerance "
            "(casemesh_search_indexer_pagerank_iterations; the seed's loop runs 100), the last pass's number "
            "(casemesh_search_indexer_rank_version) and passes per minute.", "short",
            refs([(f"max(casemesh_search_indexer_pagerank_iterations{jobs})", "iterations of the last pass"),
                  (f"max(casemesh_search_indexer_rank_version{jobs})", "rank version"),
                  (f"60 * {rate(f'{passes}_count', jobs)}", "passes per minute")]), width=6, min_value=0))
        .with_panel(timeseries_panel(
            "Rank pushes failed",
            "Shards that did not take a pass's ranks per second (casemesh_search_indexer_rank_push_failures_total: "
            "SetPageRanks failed; pushed again with the next pass or tick).", "ops",
            [query(rate("casemesh_search_indexer_rank_push_failures_total", jobs), "rank push failed")], width=6))
        .with_panel(stat_panel(
            "Pages ranked",
            "Pages in the document store (casemesh_search_indexer_pages) and the last PageRank pass "
            "(casemesh_search_indexer_rank_version).", "short",
            [query(f"max(casemesh_search_indexer_rank_version{jobs})", "rank version", "A", instant=True),
             query(f"sum(casemesh_search_indexer_pages{jobs})", "pages", "B", instant=True)],
            width=6, height=8, base="blue"))
    )
    board = (
        board.with_row(Row(f"Autocomplete: Suggest {suggest_target:.0%} within {suggest_ms}, the prefix index rebuilt "
                           f"from the query log (seed 000 line 600)"))
        .with_panel(latency_panel(
            f"Suggest time vs {suggest_ms}",
            "AutocompleteService/Suggest handling time in search-autocomplete (grpc_server_handling_seconds): one "
            "lookup in the prefix index, in the process search-query shares. The dashed line is the SLO "
            "search-suggest-latency-server of search.slo.yaml (and search-typing-time-server, the same series). "
            "Dots are exemplars.", HANDLING, suggests, (), "", width=5, threshold_s=SUGGEST_S))
        .with_panel(timeseries_panel(
            f"Suggestions within {suggest_ms}",
            f"Share of Suggest calls handled within {suggest_ms} (le=\"{le(SUGGEST_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: search-suggest-latency-server); the dashed line is its target "
            f"{suggest_target:g}.", "percentunit",
            [query(within(HANDLING, suggests, SUGGEST_S), f"within {suggest_ms}")],
            width=4, threshold_line=(suggest_target, "red"), max_value=1))
        .with_panel(latency_panel(
            "Prefix index rebuild time",
            "One rebuild of the prefix index from the query counts (casemesh_search_autocomplete_rebuild_seconds, "
            "in a worker thread), every rebuild_interval_ms when the counts changed.",
            "casemesh_search_autocomplete_rebuild_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=5))
        .with_panel(timeseries_panel(
            "Prefix index",
            "Distinct prefixes in the prefix index (casemesh_search_autocomplete_prefixes), distinct queries counted "
            "(casemesh_search_autocomplete_distinct_queries), and the index's age in seconds "
            "(casemesh_search_autocomplete_index_age_seconds: how stale suggestions may be; it grows on an idle log, "
            "nothing to rebuild).", "short",
            refs([(f"sum(casemesh_search_autocomplete_prefixes{jobs})", "prefixes"),
                  (f"sum(casemesh_search_autocomplete_distinct_queries{jobs})", "distinct queries"),
                  (f"max(casemesh_search_autocomplete_index_age_seconds{jobs})", "index age (s)")]),
            width=5, min_value=0, log_scale=True))
        .with_panel(timeseries_panel(
            "Query log",
            "First-page queries search-query logged per second, by what became of them "
            "(casemesh_search_query_log_queries_total: sent to search-autocomplete, dropped from a full pending "
            "log, rejected as invalid), RecordQueries calls failed (casemesh_search_query_log_send_failures_total), "
            "occurrences search-autocomplete received (casemesh_search_autocomplete_queries_total: counted, or "
            "dropped by a full log), and queries waiting for the next flush (casemesh_search_query_log_pending).",
            "short",
            refs([(rate("casemesh_search_query_log_queries_total", jobs, ("outcome",)), "logged {{outcome}}/s"),
                  (rate("casemesh_search_query_log_send_failures_total", jobs), "sends failed/s"),
                  (rate("casemesh_search_autocomplete_queries_total", jobs, ("outcome",)), "received {{outcome}}/s"),
                  (f"sum(casemesh_search_query_log_pending{jobs})", "pending")]), width=5, min_value=0))
    )
    calls = selector(JOB, SEARCH_SERVICES)
    board = (
        board.with_row(Row("gRPC per search service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each search method. IndexShardService's are search-query's "
            "(GetTermStatistics, SearchShard: one per shard per query) and search-indexer's (PutPage, "
            "SetPageRanks); RecordQueries is the query log's flush; ScanShard a shard's rebuild.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); ScanShard left out. A shard call's Cancelled or DeadlineExceeded is a shard past its "
            "deadline; Unavailable a shard rebuilding or no shard answering a Search; IndexPage's Unavailable a "
            "page its shard did not take; ComputePageRank's FailedPrecondition an empty store.", "reqps",
            [query(rate(HANDLED, selector(JOB, SEARCH_SERVICES, NOT_SCAN, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, ScanShard left out. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, SEARCH_SERVICES, NOT_SCAN),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board

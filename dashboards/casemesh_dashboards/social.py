"""Social feed: feed loads against their 500 ms SLO, the hybrid fan-out (width, lag, celebrity skips), the "For you"
timeline and its like signals, and the graph.

Case study: shared/seeds/003_…, "Twitter Feed System" ("Feed loads < 500ms", "tweets appear
immediately"), shared/seeds/000_…, "Social Media Feed" (the hybrid fan-out); contracts in
protos/casemesh/social/v1/, docs/case-studies/social-feed.md.

Service metrics, as the social services expose them: ``casemesh_social_fanout_width``
(followers a tweet was pushed to), ``casemesh_social_fanout_lag_seconds`` (create time → fan-out
done), ``casemesh_social_fanout_celebrity_tweets_total``, ``casemesh_social_fanout_applied_sequence``,
``casemesh_social_home_pulled_authors`` (celebrities pulled per home-timeline read),
``casemesh_social_tweets_logged_total``, ``casemesh_social_tweet_log_commits_total``,
``casemesh_social_follow_edges``, ``casemesh_social_like_signals_total{outcome}`` and
``casemesh_social_like_signal_delay_seconds`` (likes sent on to the recommendation engine, profile
social-for-you). Only the gRPC histograms carry exemplars.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-social-feed"
TIMELINE = "casemesh.social.v1.TimelineService"
#: Feed-load SLO (seed 003): 99% of home timelines within 500 ms. 0.5 is a bucket of the runtime's histograms.
FEED_LOAD_S = 0.5
FEED_LOAD_TARGET = 0.99
#: Fan-out freshness bound (docs/case-studies/social-feed.md): 1 s, a bucket of casemesh_social_fanout_lag_seconds.
FRESHNESS_S = 1.0
#: Like-to-"For you" bound (social-for-you.slo.yaml): 1 s, a bucket of casemesh_social_like_signal_delay_seconds.
LIKE_SIGNAL_S = 1.0
JOB = 'job=~"$job"'
SOCIAL_SERVICES = r'grpc_service=~"casemesh\\.social\\.v1\\..+"'
SOCIAL_JOBS = r'{__name__="grpc_server_handled_total", ' + SOCIAL_SERVICES + "}"


def build() -> Dashboard:
    reads = selector(JOB, f'grpc_service="{TIMELINE}"', 'grpc_method="GetHomeTimeline"')
    board = (
        new_dashboard(UID, "casemesh / social feed",
                      "The social-feed case study: home-timeline loads against their 500 ms p99 SLO, the hybrid fan-out's "
                      "write side (width, lag, celebrities skipped) and read side (celebrities pulled), the \"For you\" "
                      "timeline and its like signals, the tweet log and the graph.",
                      ["social-feed"])
        .with_variable(query_variable("job", "Job", f"label_values({SOCIAL_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Feed load: 99% within 500 ms (GetHomeTimeline)"))
        .with_panel(latency_panel(
            "GetHomeTimeline duration vs 500 ms",
            "Server handling time of TimelineService/GetHomeTimeline (graph read, cache read, celebrity pull, hydration); "
            "the dashed line is the feed-load threshold (seed 003: feed loads < 500 ms), the SLO feed-load-server of "
            "social-feed.slo.yaml. Dots are exemplars: click one to open the read's trace in Jaeger.",
            "grpc_server_handling_seconds", reads, (), "", quantiles=(0.5, 0.99), width=12, threshold_s=FEED_LOAD_S))
        .with_panel(timeseries_panel(
            "Reads within 500 ms",
            f"Share of GetHomeTimeline calls handled within 500 ms (le=\"{le(FEED_LOAD_S)}\" bucket over the count); "
            f"the dashed line is the target {FEED_LOAD_TARGET:g}.",
            "percentunit", [query(within("grpc_server_handling_seconds", reads, FEED_LOAD_S), "within 500 ms")],
            width=6, threshold_line=(FEED_LOAD_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "p99 over the range", "99th percentile of GetHomeTimeline over the selected time range, against 500 ms.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", reads, window="$__range"), instant=True)],
            width=6, height=8, steps=((FEED_LOAD_S, "red"),)))
    )
    board = (
        board.with_row(Row("Hybrid fan-out"))
        .with_panel(latency_panel(
            "Fan-out lag", "From a tweet's create time to the end of its push into every follower's timeline cache "
            "(or the decision not to push a celebrity's tweet): the server side of fan-out freshness (1 s bound).",
            "casemesh_social_fanout_lag_seconds", selector(JOB), (), "", width=6, threshold_s=FRESHNESS_S))
        .with_panel(timeseries_panel(
            "Fan-out width", "Mean followers a pushed tweet was written to, and cache entries written per second: the "
            "write amplification that the celebrity threshold bounds.", "short",
            refs([(f"sum(rate(casemesh_social_fanout_width_sum{{{JOB}}}[{RATE}])) / sum(rate(casemesh_social_fanout_width_count{{{JOB}}}[{RATE}]))",
                   "mean width"),
                  (f"sum(rate(casemesh_social_fanout_width_sum{{{JOB}}}[{RATE}]))", "entries/s")]), width=6))
        .with_panel(timeseries_panel(
            "Pushed vs pulled", "Tweets per second pushed on write, and tweets left to fan-out on read (their author is a "
            "celebrity).", "ops",
            refs([(rate("casemesh_social_fanout_width_count", selector(JOB)), "pushed"),
                  (rate("casemesh_social_fanout_celebrity_tweets_total", selector(JOB)), "celebrity (pulled)")]), width=6))
        .with_panel(timeseries_panel(
            "Celebrities pulled per read", "Mean celebrity followees whose tweets one GetHomeTimeline pulled (the read cost "
            "of the hybrid).", "short",
            [query(f"sum(rate(casemesh_social_home_pulled_authors_sum{{{JOB}}}[{RATE}])) / "
                   f"sum(rate(casemesh_social_home_pulled_authors_count{{{JOB}}}[{RATE}]))", "pulled per read")], width=6))
    )
    for_you = selector(JOB, f'grpc_service="{TIMELINE}"', 'grpc_method="GetForYouTimeline"')
    board = (
        board.with_row(Row("For you: 99% within 500 ms (GetForYouTimeline), likes as real-time signals"))
        .with_panel(latency_panel(
            "GetForYouTimeline duration vs 500 ms",
            "Server handling time of TimelineService/GetForYouTimeline (reco-ranker's recommendations, then hydration "
            "of the tweets); the dashed line is the feed-load threshold, the SLO for-you-load-server of "
            "social-for-you.slo.yaml. Dots are exemplars: click one to open the read's trace in Jaeger.",
            "grpc_server_handling_seconds", for_you, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=FEED_LOAD_S))
        .with_panel(timeseries_panel(
            "Like signals", "Likes per second that social-tweets sent on to reco-signals, and those dropped because "
            "the buffer was full (reco-signals down or slow for long). Empty unless social-tweets' record_signals is on.",
            "ops", [query(rate("casemesh_social_like_signals_total", selector(JOB), ("outcome",)), "{{outcome}}")],
            width=8, stacked=True))
        .with_panel(latency_panel(
            "Like → reco-signals delay", "From an acknowledged like to reco-signals' RecordInteractions OK for its batch: "
            "the pipeline's share of like_to_for_you (1 s bound, like-signal-delay-server).",
            "casemesh_social_like_signal_delay_seconds", selector(JOB), (), "", width=8, threshold_s=LIKE_SIGNAL_S))
    )
    board = (
        board.with_row(Row("Tweet log and graph"))
        .with_panel(timeseries_panel(
            "Tweets logged and group commits", "Tweets committed to the durable tweet log per second, and the commits (fsyncs) "
            "that carried them.", "ops",
            refs([(rate("casemesh_social_tweets_logged_total", selector(JOB)), "tweets"),
                  (rate("casemesh_social_tweet_log_commits_total", selector(JOB)), "commits")]), width=8))
        .with_panel(timeseries_panel(
            "Fan-out position", "Last tweet-log sequence the fan-out has applied; flat while tweets are logged means the "
            "fan-out is stuck.", "short",
            [query(f"max by (instance) (casemesh_social_fanout_applied_sequence{selector(JOB)})", "{{instance}}")], width=8))
        .with_panel(timeseries_panel(
            "Follow edges", "Edges in the follow graph.", "short",
            [query(f"sum(casemesh_social_follow_edges{selector(JOB)})", "edges")], width=8))
    )
    calls = selector(JOB, SOCIAL_SERVICES)
    board = (
        board.with_row(Row("gRPC per social service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each social-feed method.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists).", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, SOCIAL_SERVICES, ERROR_CODES_MATCHER), ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board

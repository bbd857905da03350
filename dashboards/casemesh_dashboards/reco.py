"""Recommendation engine: For-you latency against its 100 ms SLO, the candidate pool and its sources, the model, and
the real-time signals.

Case study: shared/seeds/001_… #19 "Recommendation Engine" (collaborative filtering, two-tower
embeddings, candidate generation, real-time signals; 100M users) and 003_… Netflix
``getRecommendations``; contracts in protos/casemesh/reco/v1/, docs/case-studies/recommendations.md.

Service metrics, as the reco services expose them: ``casemesh_reco_candidates_pool`` (candidates per
GetCandidates), ``casemesh_reco_candidates_by_source_total{source}``, ``casemesh_reco_model_version``,
``casemesh_reco_model_train_seconds`` (reco-candidates); ``casemesh_reco_ranked_candidates``,
``casemesh_reco_recent_signals`` (reco-ranker); ``casemesh_reco_interactions_recorded_total{kind}``,
``casemesh_reco_interactions`` (reco-signals). Only the gRPC histograms carry exemplars.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-recommendations"
RANKER = "casemesh.reco.v1.RecommendationService"
#: Recommendation latency SLO (docs/case-studies/recommendations.md): 99% within 100 ms; 0.1 is a bucket bound.
RECO_S = 0.1
RECO_TARGET = 0.99
JOB = 'job=~"$job"'
RECO_SERVICES = r'grpc_service=~"casemesh\\.reco\\.v1\\..+"'
RECO_JOBS = r'{__name__="grpc_server_handled_total", ' + RECO_SERVICES + "}"


def _mean(histogram: str) -> str:
    return f"sum(rate({histogram}_sum{{{JOB}}}[{RATE}])) / sum(rate({histogram}_count{{{JOB}}}[{RATE}]))"


def build() -> Dashboard:
    reads = selector(JOB, f'grpc_service="{RANKER}"', 'grpc_method="GetRecommendations"')
    board = (
        new_dashboard(UID, "casemesh / recommendations",
                      "The recommendation-engine case study: GetRecommendations against its 100 ms p99 SLO, the candidate "
                      "pool (the A/B's pool size) and its sources, the model and its training, and the real-time signals.",
                      ["recommendations"])
        .with_variable(query_variable("job", "Job", f"label_values({RECO_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("For you: 99% within 100 ms (GetRecommendations)"))
        .with_panel(latency_panel(
            "GetRecommendations duration vs 100 ms",
            "Server handling time of RecommendationService/GetRecommendations (recent signals, candidate generation, "
            "ranking); the dashed line is the SLO's 100 ms (reco-latency-server of recommendations.slo.yaml). Dots are "
            "exemplars: click one to open the call's trace in Jaeger.",
            "grpc_server_handling_seconds", reads, (), "", quantiles=(0.5, 0.99), width=12, threshold_s=RECO_S))
        .with_panel(timeseries_panel(
            "Calls within 100 ms",
            f"Share of GetRecommendations calls handled within 100 ms (le=\"{le(RECO_S)}\" bucket over the count); the "
            f"dashed line is the target {RECO_TARGET:g}.",
            "percentunit", [query(within("grpc_server_handling_seconds", reads, RECO_S), "within 100 ms")],
            width=6, threshold_line=(RECO_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "p99 over the range", "99th percentile of GetRecommendations over the selected time range, against 100 ms.",
            "s", [query(quantile(0.99, "grpc_server_handling_seconds", reads, window="$__range"), instant=True)],
            width=6, height=8, steps=((RECO_S, "red"),)))
    )
    board = (
        board.with_row(Row("Candidate generation and ranking"))
        .with_panel(timeseries_panel(
            "Candidates per call", "Mean candidates one GetCandidates returned and one GetRecommendations ranked (the "
            "pool size, the A/B switch, bounds both).", "short",
            [query(_mean("casemesh_reco_candidates_pool"), "generated"),
             query(_mean("casemesh_reco_ranked_candidates"), "ranked", ref="B")], width=8))
        .with_panel(timeseries_panel(
            "Candidates by source", "Candidates per second that each source proposed: collaborative (item "
            "co-occurrence), embedding (nearest neighbours of the user's embedding), trending.", "ops",
            [query(rate("casemesh_reco_candidates_by_source_total", selector(JOB), ("source",)), "{{source}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Real-time signals per call", "Mean recent interactions the ranker passed to candidate generation: what a "
            "like changes before the next training.", "short",
            [query(_mean("casemesh_reco_recent_signals"), "recent items")], width=8))
    )
    board = (
        board.with_row(Row("Model and signals"))
        .with_panel(timeseries_panel(
            "Model version", "Version of the candidate model in use (one more per training).", "short",
            [query(f"max by (instance) (casemesh_reco_model_version{selector(JOB)})", "{{instance}}")], width=8))
        .with_panel(latency_panel(
            "Training time", "Seconds one training took: reading every interaction and fitting co-occurrence and "
            "ALS embeddings.", "casemesh_reco_model_train_seconds", selector(JOB), (), "", width=8))
        .with_panel(timeseries_panel(
            "Interactions", "Interactions recorded per second by kind, and distinct interactions held.", "ops",
            [query(rate("casemesh_reco_interactions_recorded_total", selector(JOB), ("kind",)), "{{kind}}/s"),
             query(f"sum(casemesh_reco_interactions{selector(JOB)})", "held", ref="B")], width=8))
    )
    calls = selector(JOB, RECO_SERVICES)
    board = (
        board.with_row(Row("gRPC per reco service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each recommendation method.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists).",
            "reqps", [query(rate("grpc_server_handled_total", selector(JOB, RECO_SERVICES, ERROR_CODES_MATCHER),
                                 ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board

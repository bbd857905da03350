"""Content moderation: time to decision of auto-routed items against its bound, the human review queue against its
SLA (depth, oldest task, waits, overdue tasks), confidence routing (auto-approved, auto-removed, sent to review, and the
classifier's probabilities: the A/B switch ``moderation-pipeline.approve_below`` / ``remove_above``), reviewers'
verdicts and appeals, the classifier's cost and held-out AUC, the pipeline's stages (pending, bound for review) and
every store's group commit.

Case study: seed 001 #26, shared/seeds/001_58dfc580020147d2.txt line 50 ("| 26 | Content Moderation | AI classifiers
(BERT/ResNet), confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). Contracts in
protos/casemesh/moderation/v1/, SLOs in harness/profiles/moderation.slo.yaml (drawn here: the server-side twins
moderation-time-to-decision-server, moderation-review-wait-server (each review kind within its SLA) and moderation-submit-availability-server; their bounds and targets are read from that file
when the dashboard is built).

Service metrics, as the moderation services expose them: ``casemesh_moderation_items_routed_total{route}``
(``auto_approved``, ``auto_removed``, ``review``), ``casemesh_moderation_time_to_decision_seconds{route}``,
``casemesh_moderation_review_turnaround_seconds{kind}`` (``first``, ``appeal``),
``casemesh_moderation_verdicts_applied_total{kind,verdict}`` (``approve``, ``remove``),
``casemesh_moderation_appeals_total``, ``casemesh_moderation_pending``, ``casemesh_moderation_unenqueued``,
``casemesh_moderation_items{state}``, ``casemesh_moderation_classify_failures_total``,
``casemesh_moderation_submit_rejected_total{reason}``, ``casemesh_moderation_pipeline_commit_seconds``,
``casemesh_moderation_pipeline_writes_per_commit`` (moderation-pipeline, services/moderation/pipeline/metrics.py);
``casemesh_moderation_classifier_seconds``, ``casemesh_moderation_classifier_probability``,
``casemesh_moderation_classifier_held_out_auc``, ``casemesh_moderation_classifier_fit_seconds``
(moderation-classifier, services/moderation/classifier/metrics.py);
``casemesh_moderation_review_queue_depth{kind,status}`` (``open``, ``claimed``),
``casemesh_moderation_review_oldest_age_seconds{kind}``, ``casemesh_moderation_review_overdue{kind}``,
``casemesh_moderation_review_queue_wait_seconds{kind}``, ``casemesh_moderation_review_tasks_total{event}``
(``enqueued``, ``claimed``, ``completed``, ``lease_expired``), ``casemesh_moderation_review_verdicts_pending``,
``casemesh_moderation_review_commit_seconds``, ``casemesh_moderation_review_writes_per_commit`` (moderation-review,
services/moderation/review/metrics.py); and the runtime's ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` of the three services. Only the gRPC histograms carry exemplars.

Not exported, so not drawn: whether a decision was right (only the labelled set knows: the harness's
auto_decision_correct journey, drawn on the harness dashboard) and per-item histories (ModerationService.ListAuditLog).
"""

from __future__ import annotations

import re

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX
from casemesh.harness.slo import load_slos

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel, within,
)

UID = "casemesh-moderation"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The moderation profiles' SLOs: the bounds and targets drawn here are read from it (:func:`build`).
SLO_FILE = PROFILES_DIR / f"moderation{SLO_FILE_SUFFIX}"
DECISION_TWIN = "moderation-time-to-decision-server"
REVIEW_TWIN = "moderation-review-wait-server"
SUBMIT_TWIN = "moderation-submit-availability-server"
MODERATION_SERVICE = "casemesh.moderation.v1.ModerationService"
TIME_TO_DECISION = "casemesh_moderation_time_to_decision_seconds"
QUEUE_WAIT = "casemesh_moderation_review_queue_wait_seconds"
ROUTED = "casemesh_moderation_items_routed_total"
TASKS = "casemesh_moderation_review_tasks_total"
VERDICTS = "casemesh_moderation_verdicts_applied_total"
#: The three stores' group commits (one SQLite file each), by service.
STORES = ("pipeline", "review")
JOB = 'job=~"$job"'
MODERATION_SERVICES = r'grpc_service=~"casemesh\\.moderation\\.v1\\..+"'
#: The moderation services' jobs.
MODERATION_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.moderation\\.v1\\..+"}'
AUTO = 'route=~"auto_approved|auto_removed"'


def _bound_s(slo) -> float:
    """The latency bound of a twin, in seconds: the ``le`` of its good query's bucket."""
    return float(re.search(r'le="([0-9.]+)"', slo.good.query).group(1))


def _sla_bounds_s(slo) -> dict[str, float]:
    """Review kind → its SLA in seconds, from the review-wait twin's good query (one bucket per kind)."""
    return {kind: float(bound) for kind, bound in re.findall(r'kind="(\w+)",le="([0-9.]+)"', slo.good.query)}


def _within_sla(bounds: dict[str, float], matchers: str, window: str = RATE) -> str:
    """Share of review tasks claimed within their kind's SLA: each kind's ``le`` bucket, summed, over the count."""
    good = " + ".join(
        f'sum (increase({QUEUE_WAIT}_bucket{matchers[:-1]}, kind="{kind}", le="{le(bound)}"}}[{window}]))'
        for kind, bound in bounds.items())
    return f"({good}) / sum (increase({QUEUE_WAIT}_count{matchers}[{window}]))"


def build() -> Dashboard:
    slos = {slo.name: slo for slo in load_slos(SLO_FILE)}
    decision, review, submit = slos[DECISION_TWIN], slos[REVIEW_TWIN], slos[SUBMIT_TWIN]
    decision_s, slas = _bound_s(decision), _sla_bounds_s(review)
    review_s = slas["first"]
    decision_ms = f"{decision_s * 1000:g} ms"
    review_sla = f"{review_s:g} s"
    sla_text = ", ".join(f"{kind} {bound:g} s" for kind, bound in slas.items())
    jobs = selector(JOB)
    auto = selector(JOB, AUTO)
    to_review = selector(JOB, 'route="review"')
    submits = selector(JOB, f'grpc_service="{MODERATION_SERVICE}"', 'grpc_method="SubmitItem"')
    submitted_ok = selector(JOB, f'grpc_service="{MODERATION_SERVICE}"', 'grpc_method="SubmitItem"', 'grpc_code="OK"')
    appeals = selector(JOB, 'kind="appeal"')
    reversed_appeals = selector(JOB, 'kind="appeal"', 'verdict="approve"')
    board = (
        new_dashboard(UID, "casemesh / content moderation",
                      "The content moderation case study (Meta/YouTube): time to decision of auto-routed items, the "
                      "human review queue against its SLA, confidence routing (the thresholds A/B), reviewers' "
                      "verdicts and appeals, the classifier, the pipeline's stages and every store's group commit.",
                      ["moderation"])
        .with_variable(query_variable("job", "Job", f"label_values({MODERATION_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Time to decision: {decision.target:.0%} of auto-routed items within {decision_ms}; "
                           f"{review.target:.0%} of review tasks claimed within their SLA ({sla_text}) "
                           f"(seed 001 #26: confidence routing, human review)"))
        .with_panel(latency_panel(
            f"Time to decision vs {decision_ms}",
            "From SubmitItem's durable write to the classifier's routing, by route "
            "(casemesh_moderation_time_to_decision_seconds, the pipeline's clock): the wait for a classification "
            "worker, ClassifierService/Classify and the routing's durable write. The dashed line is the SLO "
            "moderation-time-to-decision-server of moderation.slo.yaml (the twin of the harness's time_to_decision, "
            "timed from the post's intended start to AwaitDecision's answer).",
            TIME_TO_DECISION, jobs, ("route",), "{{route}}", width=8, threshold_s=decision_s))
        .with_panel(timeseries_panel(
            f"Auto-routed within {decision_ms}",
            f"Share of auto-approved and auto-removed items routed within {decision_ms} (le=\"{le(decision_s)}\" "
            f"bucket over the count: moderation-time-to-decision-server); the dashed line is its target "
            f"{decision.target:g}.", "percentunit",
            [query(within(TIME_TO_DECISION, auto, decision_s), f"within {decision_ms}")],
            width=5, threshold_line=(decision.target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Within {decision_ms} over the range",
            f"Share of auto-routed items routed within {decision_ms} over the selected time range, against "
            f"{decision.target:g}.", "percentunit",
            [query(within(TIME_TO_DECISION, auto, decision_s, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((decision.target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Review tasks claimed within their SLA",
            f"Share of review tasks whose first claim came within their kind's SLA ({sla_text}) of their enqueueing "
            f"(casemesh_moderation_review_queue_wait_seconds: each kind's le bucket over the count, the SLO "
            f"moderation-review-wait-server); the dashed line is its target {review.target:g}. Falls when reviewers "
            f"cannot keep up with what the review band and the appeals send them.", "percentunit",
            [query(_within_sla(slas, jobs), "within the SLA")],
            width=5, threshold_line=(review.target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Within the SLA over the range",
            f"Share of review tasks claimed within their SLA over the selected time range, against "
            f"{review.target:g}.", "percentunit",
            [query(_within_sla(slas, jobs, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((review.target, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("Confidence routing (moderation-pipeline.approve_below and remove_above: the A/B)"))
        .with_panel(timeseries_panel(
            "Items by route",
            "Items routed per second (casemesh_moderation_items_routed_total): auto_approved (probability below "
            "approve_below), auto_removed (at or above remove_above), review (in between: a human decides).", "ops",
            [query(rate(ROUTED, jobs, ("route",)), "{{route}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Share sent to human review",
            "Items routed to review over all items routed: the review queue's load, which a wider band raises.",
            "percentunit",
            [query(f"{rate(ROUTED, to_review)} / {rate(ROUTED, jobs)}", "to review")],
            width=8, max_value=1, min_value=0))
        .with_panel(timeseries_panel(
            "Classifier probability",
            "The classifier's violation probabilities (casemesh_moderation_classifier_probability): median, p90 and "
            "p99 of the scores it returned; where they fall against the thresholds decides the routes.", "short",
            refs([(quantile(q, "casemesh_moderation_classifier_probability", jobs), f"p{q * 100:g}")
                  for q in (0.5, 0.9, 0.99)]), width=8, min_value=0, max_value=1))
    )
    board = (
        board.with_row(Row("The human review queue: earliest due first, leased to reviewers"))
        .with_panel(timeseries_panel(
            "Queue depth",
            "Review tasks by kind (first review, appeal) and status (open: waiting; claimed: leased to a "
            "reviewer) (casemesh_moderation_review_queue_depth), and tasks past their SLA "
            "(casemesh_moderation_review_overdue).", "short",
            refs([(f"sum by (kind, status) (casemesh_moderation_review_queue_depth{jobs})", "{{kind}} {{status}}"),
                  (f"sum by (kind) (casemesh_moderation_review_overdue{jobs})", "{{kind}} overdue")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Oldest task",
            f"Age of the oldest task not yet completed, by kind (casemesh_moderation_review_oldest_age_seconds); "
            f"the dashed line is the first review's SLA ({review_sla}; appeals: {slas.get('appeal', 0):g} s).", "s",
            [query(f"max by (kind) (casemesh_moderation_review_oldest_age_seconds{jobs})", "{{kind}}")],
            width=8, threshold_line=(review_s, "red"), min_value=0))
        .with_panel(latency_panel(
            "Wait for a reviewer",
            "From enqueueing to the first claim, by kind (casemesh_moderation_review_queue_wait_seconds).",
            QUEUE_WAIT, jobs, ("kind",), "{{kind}}", quantiles=(0.5, 0.95, 0.99), width=8, threshold_s=review_s))
        .with_panel(timeseries_panel(
            "Tasks by event",
            "Review tasks per second by event (casemesh_moderation_review_tasks_total): enqueued (first reviews and "
            "appeals from the pipeline), claimed, completed (a verdict in the outbox), lease_expired (a reviewer "
            "who did not answer within the lease: the task went back to the queue).", "ops",
            [query(rate(TASKS, jobs, ("event",)), "{{event}}")], width=12))
        .with_panel(latency_panel(
            "Review turnaround",
            "From routing to review (or from the appeal) to the verdict applied in the pipeline, by kind "
            "(casemesh_moderation_review_turnaround_seconds): the queue's wait, the reviewer's time and the "
            "verdict's way back through the outbox.",
            "casemesh_moderation_review_turnaround_seconds", jobs, ("kind",), "{{kind}}", quantiles=(0.5, 0.95),
            width=12))
    )
    board = (
        board.with_row(Row("Verdicts and appeals"))
        .with_panel(timeseries_panel(
            "Verdicts applied",
            "Reviewers' verdicts applied to items per second, by kind and verdict "
            "(casemesh_moderation_verdicts_applied_total): a first review's approve or remove; an appeal's approve "
            "(the removal reversed) or remove (upheld).", "ops",
            [query(rate(VERDICTS, jobs, ("kind", "verdict")), "{{kind}} {{verdict}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Appeals and reversals",
            "Appeals per second (casemesh_moderation_appeals_total) and the share of appeal verdicts that reversed "
            "the removal: a high share is auto-removals that should not have been.", "short",
            refs([(rate("casemesh_moderation_appeals_total", jobs), "appeals /s"),
                  (f"{rate(VERDICTS, reversed_appeals)} / {rate(VERDICTS, appeals)}", "reversed share")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Items by state",
            "Items the pipeline holds, by state (casemesh_moderation_items): pending, in_review, approved, removed, "
            "in_appeal.", "short",
            [query(f"sum by (state) (casemesh_moderation_items{jobs})", "{{state}}")], width=8, min_value=0))
    )
    board = (
        board.with_row(Row("Between stages: nothing acknowledged is lost; SubmitItem answered"))
        .with_panel(timeseries_panel(
            "Waiting between stages",
            "Items stored but not yet routed (casemesh_moderation_pending: the classification backlog, re-queued "
            "after a restart), items bound for review that the review service has not accepted yet "
            "(casemesh_moderation_unenqueued: re-sent until it does) and verdicts the pipeline has not applied yet "
            "(casemesh_moderation_review_verdicts_pending: the review service's outbox).", "short",
            refs([(f"sum(casemesh_moderation_pending{jobs})", "pending classification"),
                  (f"sum(casemesh_moderation_unenqueued{jobs})", "bound for review"),
                  (f"sum(casemesh_moderation_review_verdicts_pending{jobs})", "verdicts in the outbox")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Failures and shed load",
            "Classify calls that failed (casemesh_moderation_classify_failures_total: the item stays pending and is "
            "retried) and SubmitItem calls refused because the backlog was full "
            "(casemesh_moderation_submit_rejected_total: RESOURCE_EXHAUSTED, nothing stored).", "ops",
            refs([(rate("casemesh_moderation_classify_failures_total", jobs), "classify failures"),
                  (rate("casemesh_moderation_submit_rejected_total", jobs, ("reason",)), "rejected {{reason}}")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "SubmitItem answered OK",
            f"SubmitItem calls answered OK (the item durable) over all of them (grpc_server_handled_total: the SLO "
            f"moderation-submit-availability-server of moderation.slo.yaml); the dashed line is its target "
            f"{submit.target:g}.", "percentunit",
            [query(f"{rate(HANDLED, submitted_ok)} / {rate(HANDLED, submits)}", "answered OK")],
            width=5, threshold_line=(submit.target, "red"), max_value=1))
        .with_panel(stat_panel(
            "SubmitItem OK over the range",
            f"Share of SubmitItem calls answered OK over the selected time range, against {submit.target:g}.",
            "percentunit",
            [query(f"sum(increase({HANDLED}{submitted_ok}[$__range])) / sum(increase({HANDLED}{submits}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((submit.target, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("The classifier: a lexical model fitted at start"))
        .with_panel(latency_panel(
            "Classify time",
            "Features and score of one text in moderation-classifier (casemesh_moderation_classifier_seconds): the "
            "profanity matcher, VADER's valence and the logistic regression.",
            "casemesh_moderation_classifier_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=12))
        .with_panel(timeseries_panel(
            "Held-out AUC and fit time",
            "The model's ROC AUC on the corpus's held-out split when it was fitted "
            "(casemesh_moderation_classifier_held_out_auc) and the fit's time at start "
            "(casemesh_moderation_classifier_fit_seconds).", "short",
            refs([(f"max(casemesh_moderation_classifier_held_out_auc{jobs})", "held-out AUC"),
                  (f"max(casemesh_moderation_classifier_fit_seconds{jobs})", "fit (s)")]), width=12, min_value=0))
    )
    board = (
        board.with_row(Row("Group commits: every item, task and verdict durable (fsynced) before its answer"))
        .with_panel(timeseries_panel(
            "Group commit time",
            "One group commit to each service's SQLite file, fsync included "
            "(casemesh_moderation_<service>_commit_seconds), p99 and mean: the pipeline's items and audit log, the "
            "review service's tasks and verdicts.", "s",
            refs([expr for store in STORES for expr in (
                (quantile(0.99, f"casemesh_moderation_{store}_commit_seconds", jobs), f"{store} p99"),
                (mean(f"casemesh_moderation_{store}_commit_seconds", jobs), f"{store} mean"))]), width=12))
        .with_panel(timeseries_panel(
            "Writes per commit",
            "Writes sharing one fsync, on average, per store (casemesh_moderation_<service>_writes_per_commit).",
            "short",
            refs([(mean(f"casemesh_moderation_{store}_writes_per_commit", jobs), store) for store in STORES]),
            width=12, min_value=0))
    )
    calls = selector(JOB, MODERATION_SERVICES)
    board = (
        board.with_row(Row("gRPC per moderation service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each moderation method: ModerationService (SubmitItem, "
            "AwaitDecision, GetItem, AppealDecision, ListAuditLog) in moderation-pipeline; ClassifierService "
            "(Classify: the pipeline's workers) in moderation-classifier; ReviewService (Enqueue and PullVerdicts: "
            "the pipeline's; ClaimTask, CompleteTask, GetQueueStats: reviewers') in moderation-review.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists). AppealDecision's FailedPrecondition is an appeal refused (not removed, appealed "
            "already); CompleteTask's a lease lost; SubmitItem's ResourceExhausted a full backlog.", "reqps",
            [query(rate(HANDLED, selector(JOB, MODERATION_SERVICES, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method (AwaitDecision and PullVerdicts are "
            "long polls: they wait by design). Dots are exemplars.", "s",
            [query(quantile(0.99, HANDLING, calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board

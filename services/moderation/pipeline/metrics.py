"""moderation-pipeline's own metrics (``casemesh_moderation_*``), seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt
line 50: "Content Moderation | AI classifiers (BERT/ResNet), confidence routing, human review").

- ``casemesh_moderation_items_routed_total{route}``: items the classifier routed, ``route`` one of ``auto_approved``,
  ``auto_removed``, ``review``;
- ``casemesh_moderation_time_to_decision_seconds{route}`` (histogram): submitted → routed, on the pipeline's clock (0.5
  is a bucket bound: the server-side twin of the workload's time_to_decision SLO);
- ``casemesh_moderation_review_turnaround_seconds{kind}`` (histogram): routed to review (``first``) or appealed
  (``appeal``) → the reviewer's verdict applied here;
- ``casemesh_moderation_verdicts_applied_total{kind,verdict}``: verdicts applied (``verdict`` ``approve`` or
  ``remove``); a verdict applied already (a repeat after a restart) is not counted again;
- ``casemesh_moderation_appeals_total``: appeals recorded;
- ``casemesh_moderation_pending`` (gauge): items waiting for classification;
- ``casemesh_moderation_unenqueued`` (gauge): items bound for review that the review service has not accepted yet
  (the re-sender's backlog);
- ``casemesh_moderation_items{state}`` (gauge): items per state (``pending``, ``in_review``, ``approved``,
  ``removed``, ``in_appeal``);
- ``casemesh_moderation_classify_failures_total``: Classify calls that failed (retried);
- ``casemesh_moderation_submit_rejected_total{reason}``: SubmitItems refused, ``reason`` ``backlog`` (more than
  ``max_pending`` items waiting for classification);
- ``casemesh_moderation_pipeline_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_moderation_pipeline_writes_per_commit`` (histogram): writes per group commit.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROUTES = ("auto_approved", "auto_removed", "review")
KINDS = ("first", "appeal")
STATES = ("pending", "in_review", "approved", "removed", "in_appeal")

ITEMS_ROUTED = Counter("casemesh_moderation_items_routed", "Items routed by the classifier's confidence "
                       "(auto_approved, auto_removed, review).", ["route"])
#: Seconds; 0.5 is a bound (the time_to_decision SLO's server-side twin).
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TIME_TO_DECISION = Histogram("casemesh_moderation_time_to_decision_seconds", "Submitted to routed (auto-decided or "
                             "sent to review), on the pipeline's clock, in seconds.", ["route"],
                             buckets=DECISION_BUCKETS)
#: Seconds, up to a day (the first review's SLA).
TURNAROUND_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 900, 3600, 86400)
REVIEW_TURNAROUND = Histogram("casemesh_moderation_review_turnaround_seconds", "Routed to review (first) or appealed "
                              "(appeal) to the reviewer's verdict applied, in seconds.", ["kind"],
                              buckets=TURNAROUND_BUCKETS)
VERDICTS_APPLIED = Counter("casemesh_moderation_verdicts_applied", "Reviewers' verdicts applied (kind first or "
                           "appeal; verdict approve or remove).", ["kind", "verdict"])
APPEALS = Counter("casemesh_moderation_appeals", "Appeals recorded.")
PENDING = Gauge("casemesh_moderation_pending", "Items waiting for classification.")
UNENQUEUED = Gauge("casemesh_moderation_unenqueued", "Items bound for review not yet accepted by the review service.")
ITEMS = Gauge("casemesh_moderation_items", "Items per state.", ["state"])
CLASSIFY_FAILURES = Counter("casemesh_moderation_classify_failures", "Classify calls that failed (retried).")
SUBMIT_REJECTED = Counter("casemesh_moderation_submit_rejected", "SubmitItems refused (backlog).", ["reason"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_moderation_pipeline_commit_seconds", "One group commit to the pipeline's SQLite "
                           "file, fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_moderation_pipeline_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))

for _route in ROUTES:  # every series exists from the start (a dashboard's rate of a missing series is empty)
    ITEMS_ROUTED.labels(_route)
for _state in STATES:
    ITEMS.labels(_state)
SUBMIT_REJECTED.labels("backlog")

"""moderation-review's own metrics (``casemesh_moderation_review_*``), seed 001 #26
(shared/seeds/001_58dfc580020147d2.txt line 50: "human review").

- ``casemesh_moderation_review_queue_depth{kind,status}`` (gauge): tasks not yet completed, by kind (``first``,
  ``appeal``) and status (``open``: waiting for a reviewer; ``claimed``: leased to one);
- ``casemesh_moderation_review_oldest_age_seconds{kind}`` (gauge): age of the oldest task not yet completed, seconds
  (0 when none); refreshed on every change and by the sweeper every ``sweep_interval_s``;
- ``casemesh_moderation_review_overdue{kind}`` (gauge): tasks not yet completed whose due time has passed;
- ``casemesh_moderation_review_queue_wait_seconds{kind}`` (histogram): from queueing to the task's first claim,
  seconds (the server-side twin of the workload's review_wait SLO: 15 s, the compressed SLA, is a bucket bound);
- ``casemesh_moderation_review_tasks_total{event}``: ``enqueued`` (a new task, durable), ``claimed`` (a lease
  granted, durable), ``completed`` (a verdict recorded), ``lease_expired`` (a lease ran out: the task went back to
  the queue);
- ``casemesh_moderation_review_verdicts_pending`` (gauge): verdicts in the outbox the pipeline has not acknowledged;
- ``casemesh_moderation_review_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_moderation_review_writes_per_commit`` (histogram): writes per group commit.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

KINDS = ("first", "appeal")
STATUSES = ("open", "claimed")

QUEUE_DEPTH = Gauge("casemesh_moderation_review_queue_depth", "Review tasks not yet completed, by kind and status "
                    "(open, claimed).", ["kind", "status"])
OLDEST_AGE_SECONDS = Gauge("casemesh_moderation_review_oldest_age_seconds", "Age of the oldest review task not yet "
                           "completed, in seconds.", ["kind"])
OVERDUE = Gauge("casemesh_moderation_review_overdue", "Review tasks not yet completed whose due time has passed.",
                ["kind"])
#: Seconds: 15 is the moderation profile's compressed first-review SLA (the SLO twin needs it as a bound).
QUEUE_WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 300, 3600, 86400)
QUEUE_WAIT_SECONDS = Histogram("casemesh_moderation_review_queue_wait_seconds", "From queueing to a review task's "
                               "first claim, in seconds.", ["kind"], buckets=QUEUE_WAIT_BUCKETS)
TASKS = Counter("casemesh_moderation_review_tasks", "Review task events (enqueued, claimed, completed, "
                "lease_expired).", ["event"])
VERDICTS_PENDING = Gauge("casemesh_moderation_review_verdicts_pending", "Verdicts in the outbox not yet acknowledged "
                         "by the pipeline.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_moderation_review_commit_seconds", "One group commit to the review queue's "
                           "SQLite file, fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_moderation_review_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))

"""Settings of ``moderation-review`` (topology ``settings.moderation-review``); unknown keys are refused.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |").

- ``first_review_sla_s`` 86,400 (one day; 1 to 2,592,000): a first review task is due this many seconds after it was
  queued (``due_at = enqueued_at + SLA``; the queue hands out the task due soonest). The benchmark profiles compress
  it (``moderation``: 15 s) so that a run of minutes can miss it;
- ``appeal_sla_s`` 172,800 (two days; 1 to 2,592,000): the same for an appeal. A later first review may be due before
  an older appeal, and is then handed out first;
- ``sweep_interval_s`` 1.0 (0.05 to 60): how often expired leases are returned to the queue and the age and overdue
  gauges refreshed (ClaimTask and CompleteTask also check leases when they run);
- ``max_commit_writes`` 256 (1 to 100,000): most writes (tasks, claims, verdicts, acknowledgements) in one group
  commit (one transaction, one fsync).

Changing an SLA moves the due time of tasks queued afterwards only (a task's due time is stored with it).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Longest SLA, seconds (30 days).
MAX_SLA_S = 2_592_000


class ReviewSettings(BaseModel):
    """moderation-review's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_review_sla_s: int = Field(default=86_400, ge=1, le=MAX_SLA_S, description=(
        "Seconds from queueing to the due time of a first review task."))
    appeal_sla_s: int = Field(default=172_800, ge=1, le=MAX_SLA_S, description=(
        "Seconds from queueing to the due time of an appeal task."))
    sweep_interval_s: float = Field(default=1.0, ge=0.05, le=60, description=(
        "Seconds between two sweeps returning expired leases and refreshing the queue gauges."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))

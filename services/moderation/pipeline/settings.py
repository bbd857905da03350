"""Settings of ``moderation-pipeline`` (topology ``settings.moderation-pipeline``); unknown keys are refused.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). Times in milliseconds.

Confidence routing, the A/B knobs (``casemesh run PROFILE --set moderation-pipeline.approve_below=0.05``): an item
whose violation probability ``p`` is below ``approve_below`` (default 0.2) is approved by the classifier, one with
``p >= remove_above`` (default 0.8) removed, anything in between goes to human review. ``0 <= approve_below <=
remove_above <= 1``: equal thresholds send nothing to review (every decision automatic); ``0`` and ``1`` send
everything to review except ``p == 1``. On the corpus's held-out split (services/moderation/corpus.py) the defaults
send about 12% of the items to review with about 3.4% of the automatic decisions wrong; (0.5, 0.5) sends none with
about 8% wrong (docs/case-studies/moderation.md).

The stages:

- ``classify_concurrency`` 8 (1 to 256): worker tasks calling ClassifierService.Classify, each with the timeout
  ``classify_timeout_ms`` 1,000 (1 to 60,000); a failed call is retried after ``retry_backoff_ms`` 100 (1 to
  60,000), doubling up to ``max_retry_backoff_ms`` 5,000 (1 to 600,000), jittered: the item stays PENDING meanwhile;
- ``max_pending`` 10,000 (1 to 10,000,000): most items waiting for classification; a SubmitItem that would make it
  more answers RESOURCE_EXHAUSTED (nothing stored);
- ``review_timeout_ms`` 2,000 (1 to 60,000): the timeout of ReviewService.Enqueue, and what a PullVerdicts may take
  beyond its long poll; ``resend_interval_ms`` 500 (10 to 60,000): how often items bound for review that the review
  service has not accepted yet are sent again;
- ``verdict_batch`` 256 (1 to 1,000) and ``verdict_wait_ms`` 1,000 (0 to 30,000): the most verdicts one PullVerdicts
  returns, and how long it waits for one (a long poll);
- ``max_commit_writes`` 256 (1 to 100,000): most writes in one group commit (one transaction, one fsync).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_PULL_VERDICTS, MAX_PULL_WAIT_MS


class PipelineSettings(BaseModel):
    """moderation-pipeline's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve_below: float = Field(default=0.2, ge=0.0, le=1.0, description=(
        "Violation probabilities below this are approved by the classifier."))
    remove_above: float = Field(default=0.8, ge=0.0, le=1.0, description=(
        "Violation probabilities at or above this are removed by the classifier; in between: human review."))
    classify_concurrency: int = Field(default=8, ge=1, le=256, description=(
        "Worker tasks calling Classify at once."))
    classify_timeout_ms: int = Field(default=1_000, ge=1, le=60_000, description="Timeout of Classify, in ms.")
    retry_backoff_ms: int = Field(default=100, ge=1, le=60_000, description=(
        "First wait before a failed call (Classify, a write, PullVerdicts) is tried again, in ms."))
    max_retry_backoff_ms: int = Field(default=5_000, ge=1, le=600_000, description=(
        "Longest wait between two tries, in ms (the wait doubles from retry_backoff_ms)."))
    max_pending: int = Field(default=10_000, ge=1, le=10_000_000, description=(
        "Most items waiting for classification; more are refused with RESOURCE_EXHAUSTED."))
    review_timeout_ms: int = Field(default=2_000, ge=1, le=60_000, description=(
        "Timeout of Enqueue, and of PullVerdicts beyond its long poll, in ms."))
    resend_interval_ms: int = Field(default=500, ge=10, le=60_000, description=(
        "Milliseconds between two re-sends of items the review service has not accepted yet."))
    verdict_batch: int = Field(default=256, ge=1, le=MAX_PULL_VERDICTS, description=(
        "Most verdicts one PullVerdicts returns."))
    verdict_wait_ms: int = Field(default=1_000, ge=0, le=MAX_PULL_WAIT_MS, description=(
        "How long one PullVerdicts waits for a verdict, in ms."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))

    @model_validator(mode="after")
    def _thresholds(self) -> PipelineSettings:
        if self.approve_below > self.remove_above:
            raise ValueError(f"approve_below ({self.approve_below}) must be at most remove_above "
                             f"({self.remove_above})")
        if self.retry_backoff_ms > self.max_retry_backoff_ms:
            raise ValueError(f"retry_backoff_ms ({self.retry_backoff_ms}) must be at most max_retry_backoff_ms "
                             f"({self.max_retry_backoff_ms})")
        return self

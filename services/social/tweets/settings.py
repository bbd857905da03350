"""Settings of ``social-tweets`` (the topology's ``settings: {social-tweets: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TweetSettings(BaseModel):
    """social-tweets' knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_block_size: int = Field(
        default=64, ge=1, le=10_000,
        description="Snowflake IDs leased from idgen per LeaseIds call; a smaller block keeps IDs closer to post time.",
    )
    max_commit_batch: int = Field(
        default=512, ge=1, le=100_000,
        description="Most tweets in one group commit (one fsync) of the tweet log.",
    )
    durable: bool = Field(
        default=True,
        description="Keep the tweet log on disk (DATA_DIR/social-tweets/tweets.sqlite3, fsynced before PostTweet "
                    "answers); false keeps tweets in memory only (lost on restart).",
    )
    record_signals: bool = Field(
        default=False,
        description="Send every acknowledged like to the recommendation engine's reco-signals as a LIKE interaction "
                    "(item ID: the tweet ID in decimal), in batches off the request path, so that the reader's \"For "
                    "you\" timeline (TimelineService.GetForYouTimeline) reflects it within about "
                    "signal_flush_interval_ms. Needs reco-signals in the mesh; a like never waits for or fails "
                    "because of it.",
    )
    signal_flush_interval_ms: float = Field(
        default=100.0, gt=0, le=60_000,
        description="How often queued like signals are sent to reco-signals, in ms (at once when signal_batch_size "
                    "are waiting); also the wait before a failed send is retried.",
    )
    signal_batch_size: int = Field(default=500, ge=1, le=10_000,
                                   description="Most like signals in one RecordInteractions call (reco-signals takes "
                                               "at most 10,000).")
    max_pending_signals: int = Field(
        default=100_000, ge=1, le=10_000_000,
        description="Most like signals held while reco-signals is slow or down (a few hundred bytes each); beyond "
                    "this new ones are dropped and counted in casemesh_social_like_signals_total{outcome=\"dropped\"}.",
    )

    @model_validator(mode="after")
    def _batch_fits(self) -> TweetSettings:
        if self.max_pending_signals < self.signal_batch_size:
            raise ValueError(f"max_pending_signals ({self.max_pending_signals}) must be at least signal_batch_size "
                             f"({self.signal_batch_size})")
        return self

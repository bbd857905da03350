"""Settings of ``social-tweets`` (the topology's ``settings: {social-tweets: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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

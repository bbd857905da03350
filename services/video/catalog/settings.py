"""Settings of ``video-catalog`` (the topology's ``settings: {video-catalog: {...}}``).

Every field carries its unit in its name; unknown keys are refused, so a typo
in a profile fails before anything starts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CatalogSettings(BaseModel):
    """video-catalog's knobs, with the seed's defaults where it gives one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    view_snapshot_interval_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="Seconds between view-count snapshots: RecordViews batches wait at most this long before "
                    "they show in Video.view_count (seed 004, 'View Count': snapshots every 30 s).",
    )
    index_batch_interval_ms: float = Field(
        default=200.0, gt=0, le=60_000,
        description="Least time between two IndexVideos calls to video-search, in ms: published videos are "
                    "sent in batches at most this often (seed 004, 'Search Freshness': searchable within seconds).",
    )
    index_batch_size: int = Field(default=500, ge=1, le=1000, description="Most documents per IndexVideos call.")
    index_max_pending: int = Field(
        default=100_000, ge=1,
        description="Most documents waiting for video-search; beyond it new ones are dropped and counted.",
    )
    index_call_timeout_ms: float = Field(default=2000.0, gt=0, description="Deadline of one IndexVideos call, in ms.")
    index_max_backoff_ms: float = Field(
        default=5000.0, gt=0,
        description="Longest wait between retries of a failed IndexVideos call, in ms (the wait doubles from "
                    "index_batch_interval_ms up to this).",
    )
    index_stop_timeout_s: float = Field(
        default=5.0, ge=0,
        description="How long stopping waits for the last documents to reach video-search, in seconds.",
    )
    trending_size: int = Field(
        default=100, ge=0, le=10_000,
        description="Videos in the trending list (most views first) that follows the subscriptions in the home feed.",
    )
    feed_videos_per_channel: int = Field(
        default=10, ge=1, le=1000,
        description="Newest videos of each subscribed channel merged into the home feed (fan-out on read).",
    )

"""Settings of ``video-playback`` (topology ``settings.video-playback``).

Defaults from seed 004: manifests live 60 s ("CDN Cache Hit Rate": "The
manifest itself should have a short TTL (60 s)"); view events are flushed
every 10 s ("View Count": "flushes them in batches every 10 seconds").
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PlaybackSettings(BaseModel):
    """``video-playback`` settings; every field optional, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest_ttl_s: int = Field(default=60, ge=1, le=86_400, description=(
        "Seconds a video's metadata is cached before playlists are rebuilt from the catalogue; "
        "also the playlists' max_age_s."))
    video_cache_entries: int = Field(default=10_000, ge=1, description="Most videos held in that cache (LRU beyond).")
    view_buffer_max: int = Field(default=100_000, ge=1, description=(
        "Most distinct videos with view counts held (queued plus in flight); views of further videos "
        "are dropped and counted."))
    view_flush_interval_s: float = Field(default=10.0, gt=0, le=3_600, description=(
        "Seconds between flushes of the view counts to CatalogService.RecordViews."))
    view_batch_max: int = Field(default=1_000, ge=1, le=10_000, description=(
        "Most videos per RecordViews call (the catalogue takes at most 10,000); this many waiting also "
        "triggers an early flush."))
    view_flush_timeout_s: float = Field(default=5.0, gt=0, le=600, description=(
        "Deadline of one RecordViews call, and of the final flush at shutdown, in seconds."))

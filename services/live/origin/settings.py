"""Settings of ``live-origin`` (the topology's ``settings: {live-origin: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OriginSettings(BaseModel):
    """live-origin's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dvr_window_s: int = Field(
        default=60, ge=1, le=3_600,
        description="How far back a viewer can seek, in seconds of media: whole segments that ended longer ago "
                    "than this before the stream's live edge are dropped (the last complete segment and the open "
                    "one are always kept). Memory per stream is about the window times the stream's bitrate.",
    )
    max_streams: int = Field(
        default=10_000, ge=1, le=1_000_000,
        description="Most streams the origin holds (every state); RegisterStream beyond them is RESOURCE_EXHAUSTED.",
    )

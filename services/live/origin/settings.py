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
    idle_end_s: int = Field(
        default=90, ge=0, le=86_400,
        description="A stream that has had no part appended for this many seconds (its broadcaster gone, or never "
                    "come) is ended (a broadcaster reconnects within seconds; 90 s leaves room for an encoder "
                    "restart); an ended stream nobody watches is forgotten one DVR window later. 0: never (streams last until "
                    "EndStream, and ended ones until max_streams makes room).",
    )

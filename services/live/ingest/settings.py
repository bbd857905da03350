"""Settings of ``live-ingest`` (the topology's ``settings: {live-ingest: {...}}``); unknown keys are refused.

The A/B switch of the case study is ``part_target_ms``
(``casemesh run live --set live-ingest.part_target_ms=1000``): the LL-HLS
part target of the streams created from then on. The default 200 ms gives
parts of 6 frames at 30 frames/s and a PART-HOLD-BACK of 0.6 s; a part
target equal to (or above) ``segment_target_ms`` turns parts off: one part
per segment, plain HLS latency (a player holds back three segments).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import MAX_PART_TARGET_MS, MAX_SEGMENT_TARGET_MS, MIN_PART_TARGET_MS, MIN_SEGMENT_TARGET_MS

#: Admission slots of LiveIngestService's Publish streams (a broadcast lasts hours): not the slots of unary work.
PUBLISH_STREAM_SLOTS = 10_000


class IngestSettings(BaseModel):
    """live-ingest's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    part_target_ms: int = Field(
        default=200, ge=MIN_PART_TARGET_MS, le=MAX_PART_TARGET_MS,
        description="LL-HLS part target (EXT-X-PART-INF PART-TARGET) of new streams, in ms. At or above "
                    "segment_target_ms the streams are packaged without parts (one part per segment: plain HLS, "
                    "the A/B arm), and registered with part_target_ms = segment_target_ms.",
    )
    segment_target_ms: int = Field(
        default=2_000, ge=MIN_SEGMENT_TARGET_MS, le=MAX_SEGMENT_TARGET_MS,
        description="Segment target of new streams, in ms: a segment closes at the first keyframe once it has "
                    "lasted 90% of it (broadcasters send a keyframe every segment target).",
    )
    start_timeout_ms: int = Field(
        default=10_000, ge=100, le=600_000,
        description="A Publish whose first frame (start) does not come within this many ms ends DEADLINE_EXCEEDED.",
    )
    origin_timeout_ms: int = Field(
        default=2_000, ge=10, le=60_000,
        description="Deadline of each call to live-origin (an AppendPart is retried once, with the same part, "
                    "after UNAVAILABLE or DEADLINE_EXCEEDED).",
    )
    chat_timeout_ms: int = Field(
        default=2_000, ge=10, le=60_000,
        description="Deadline of LiveChatService.OpenRoom in CreateStream.",
    )
    max_publishers: int = Field(
        default=1_000, ge=1, le=PUBLISH_STREAM_SLOTS,
        description="Most Publish connections open on this server at once; one more ends RESOURCE_EXHAUSTED.",
    )

    @property
    def stream_part_target_ms(self) -> int:
        """The part target streams are registered with (the segment target when parts are off)."""
        return min(self.part_target_ms, self.segment_target_ms)

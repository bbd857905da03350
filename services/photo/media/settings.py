"""Settings of ``photo-media`` (the topology's ``settings: {photo-media: {...}}``); unknown keys are refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SizeName = Literal["thumbnail", "medium", "large"]


class MediaSettings(BaseModel):
    """photo-media's knobs. ``pregenerate_sizes`` is the case study's A/B switch (docs/case-studies/photo-sharing.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pregenerate_sizes: list[SizeName] = Field(
        default=["thumbnail", "medium", "large"],
        description="Sizes made when an upload completes (the seed's queue.add('create-thumbnails'): all three); "
                    "the photo is READY once they are stored. Sizes not listed are made on their first GetPhoto. "
                    "[] makes every size on first request and a photo READY as soon as its upload is checked.",
    )
    render_workers: int = Field(
        default=2, ge=1, le=64,
        description="Photos whose pre-generated sizes are made at once (the processing queue's consumers).",
    )
    render_timeout_ms: int = Field(
        default=5_000, ge=100, le=120_000,
        description="Deadline of one RenderSizes call to photo-resizer, in milliseconds (first-request renders and "
                    "queue renders alike; a queue render that fails is retried with backoff).",
    )
    upload_token_ttl_s: int = Field(
        default=3_600, ge=10, le=7 * 86_400,
        description="Lifetime of an upload token, in seconds.",
    )
    id_block_size: int = Field(
        default=64, ge=1, le=10_000,
        description="Snowflake IDs leased from idgen per LeaseIds call.",
    )

    @field_validator("pregenerate_sizes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"lists a size twice: {value}")
        return value

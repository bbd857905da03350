"""Settings of ``video-search`` (the topology's ``settings: {video-search: {...}}``); units in the names, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .index import MIN_WRITER_HEAP_BYTES


class SearchSettings(BaseModel):
    """video-search's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    writer_heap_bytes: int = Field(
        default=MIN_WRITER_HEAP_BYTES, ge=MIN_WRITER_HEAP_BYTES,
        description="Memory budget of the index writer in bytes (tantivy's minimum, 15,000,000, is plenty for "
                    "batches of a few hundred documents).",
    )
    max_result_window: int = Field(
        default=10_000, ge=1, le=1_000_000,
        description="Deepest hit a client can page to (offset + page size), as Elasticsearch's "
                    "index.max_result_window (default 10,000); total_hits still counts every match.",
    )

"""Settings of ``collab-documents`` (the topology's ``settings: {collab-documents: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import SESSION_TIMEOUT_MS


class DocumentSettings(BaseModel):
    """collab-documents' knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    durable: bool = Field(
        default=True,
        description="Keep documents, their update log and snapshots on disk (DATA_DIR/collab-documents/"
                    "documents.sqlite3, fsynced before CreateDocument and ApplyUpdate answer); false keeps them in "
                    "memory only (lost on restart).",
    )
    snapshot_every_updates: int = Field(
        default=200, ge=0, le=1_000_000,
        description="Every this many updates of a document, write its whole CRDT state as a snapshot and delete its "
                    "logged updates up to it, in the same transaction (log compaction; a restart replays the latest "
                    "snapshot plus the updates after it). 0 never snapshots: the log keeps every update and a restart "
                    "replays them all. Each snapshot encodes the whole document on the event loop (O(state)).",
    )
    max_commit_batch: int = Field(
        default=512, ge=1, le=100_000,
        description="Most log records (updates and created documents) in one group commit (one fsync) of the "
                    "update log; 1 is one fsync per update.",
    )
    awareness_timeout_ms: int = Field(
        default=SESSION_TIMEOUT_MS, ge=1_000, le=3_600_000,
        description="An awareness state not renewed for this long is removed, and its removal relayed to the "
                    "watchers (y-protocols' outdatedTimeout, 30 s; clients renew every 15 s).",
    )

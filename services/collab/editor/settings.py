"""Settings of ``collab-editor-N`` (the topology's ``settings: {collab-editor-1: {...}}``, one entry per editor server); unknown keys are refused.

The A/B switch of the case study is ``broadcast_window_ms``
(``casemesh run PROFILE --set collab-editor-1.broadcast_window_ms=0``): 0
relays every applied update to every local session as it comes; above 0, the
updates of one document that arrive within the window go out as one merged
RemoteUpdate per session (:mod:`.broadcaster`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import HEARTBEAT_INTERVAL_MS, MAX_DOCUMENT_STATE_BYTES, MAX_EDITORS_PER_DOCUMENT, SESSION_TIMEOUT_MS

#: Admission slots of EditorService (its Edit streams) unless the topology's server.limits says otherwise:
#: long-lived streams must not take the slots that bound unary work (services/runtime/admission.py).
EDIT_STREAM_SLOTS = 100_000


class EditorSettings(BaseModel):
    """An editor server's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broadcast_window_ms: int = Field(
        default=20, ge=0, le=1_000,
        description="Coalescing window of remote updates, in ms: a document's updates that arrive within it are "
                    "merged (pycrdt.merge_updates) into one RemoteUpdate per session, at most one per window "
                    "(Figma/Liveblocks-style throttling); 0 relays each update as it comes.",
    )
    max_sessions: int = Field(
        default=20_000, ge=1, le=EDIT_STREAM_SLOTS,
        description="Most Edit sessions this server holds at once; a join beyond them is answered RESOURCE_EXHAUSTED.",
    )
    max_editors_per_document: int = Field(
        default=MAX_EDITORS_PER_DOCUMENT, ge=1, le=MAX_EDITORS_PER_DOCUMENT,
        description="Most sessions of one document on THIS server (the contract's 100 per document, enforced per "
                    "server: a server cannot see the others' sessions); beyond it a join is RESOURCE_EXHAUSTED.",
    )
    max_session_queue: int = Field(
        default=1_000, ge=16, le=1_000_000,
        description="Frames waiting to be written to one client; one more ends the session with RESOURCE_EXHAUSTED "
                    "(a slow consumer must not grow the server's memory or hold up the others).",
    )
    max_session_queue_bytes: int = Field(
        default=32 * 1024 * 1024, ge=MAX_DOCUMENT_STATE_BYTES + 1024 * 1024, le=1024 * 1024 * 1024,
        description="Bytes of updates waiting to be written to one client (the joined frame's sync_update included); "
                    "beyond them the session ends with RESOURCE_EXHAUSTED.",
    )
    max_pending_updates: int = Field(
        default=256, ge=1, le=100_000,
        description="A session's local updates waiting for ApplyUpdate (applied one after another, in the client's "
                    "order); one more is answered with a RESOURCE_EXHAUSTED `rejected` frame (the stream goes on).",
    )
    max_awareness_clients: int = Field(
        default=16, ge=1, le=1_000,
        description="Awareness client IDs one session may announce; an awareness frame announcing more is rejected "
                    "(INVALID_ARGUMENT, awareness.update). They are removed (y-protocols null state) when it ends.",
    )
    apply_timeout_ms: float = Field(default=5_000.0, gt=0, le=60_000,
                                    description="Deadline of each ApplyUpdate and ApplyAwareness call, in ms.")
    sync_timeout_ms: float = Field(default=10_000.0, gt=0, le=120_000,
                                   description="Deadline of the Sync call of a join, in ms (it may carry a whole "
                                               "document, up to 3 MiB).")
    heartbeat_interval_ms: int = Field(
        default=HEARTBEAT_INTERVAL_MS, ge=50, le=600_000,
        description="Told to clients (Joined.heartbeat_interval_ms): send a frame at least this often, in ms.",
    )
    session_timeout_ms: int = Field(
        default=SESSION_TIMEOUT_MS, ge=100, le=3_600_000,
        description="A session without any client frame for this long ends with DEADLINE_EXCEEDED, in ms (also the "
                    "time allowed for the first frame, `join`).",
    )
    watch_linger_ms: int = Field(
        default=2_000, ge=0, le=600_000,
        description="How long a document's Watch stays open after its last session here left, in ms (a rejoin "
                    "within it reuses the watch).",
    )
    watch_max_duration_s: float = Field(
        default=86_400.0, ge=1, le=30 * 86_400,
        description="Deadline of one Watch stream, in s. When it ends (this deadline or any failure) the "
                    "document's sessions here end with UNAVAILABLE and their clients rejoin with their state vector.",
    )

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> EditorSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below session_timeout_ms "
                             f"({self.session_timeout_ms})")
        return self

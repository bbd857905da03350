"""Settings of ``chat-gateway-N`` (the topology's ``settings: {chat-gateway-1: {...}}``, one entry per gateway); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import HEARTBEAT_INTERVAL_MS

#: Admission slots of ChatGatewayService (its Connect streams) unless the topology's server.limits says otherwise:
#: long-lived streams must not take the slots that bound unary work (services/runtime/admission.py).
CONNECT_STREAM_SLOTS = 100_000


class GatewaySettings(BaseModel):
    """A connection server's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sessions: int = Field(
        default=20_000, ge=1, le=CONNECT_STREAM_SLOTS,
        description="Most Connect sessions held at once; a hello beyond them is answered RESOURCE_EXHAUSTED "
                    "(the seed's connection servers hold a fixed share of the 500M concurrent users).",
    )
    heartbeat_interval_ms: int = Field(
        default=HEARTBEAT_INTERVAL_MS, ge=50, le=600_000,
        description="The heartbeat interval told to clients (Connected.heartbeat_interval_ms), in ms; a session "
                    "without any frame for HEARTBEAT_TIMEOUT_INTERVALS (3) intervals ends with DEADLINE_EXCEEDED.",
    )
    refresh_interval_ms: int = Field(
        default=2_000, ge=50, le=600_000,
        description="How often the gateway sends chat-router all its sessions (RefreshSessions), in ms; keep it "
                    "well below the router's session_timeout_ms (default 10,000).",
    )
    outbound_queue_frames: int = Field(
        default=1_024, ge=16, le=1_000_000,
        description="Frames waiting to be written to one client; a live push beyond them ends the session with "
                    "RESOURCE_EXHAUSTED (a slow consumer must not hold up deliveries to others).",
    )
    sync_batch: int = Field(default=256, ge=1, le=10_000,
                            description="Messages asked for in the connect-time SyncInbox (the rest of the offline "
                                        "queue is paged with ListMessages).")
    fill_page_size: int = Field(default=200, ge=1, le=1_000,
                                description="Messages per ListMessages call when filling a gap or paging the offline queue.")
    max_pending_sends: int = Field(default=256, ge=1, le=100_000,
                                   description="A session's sends waiting for MessageService; beyond them a send is "
                                               "rejected with RESOURCE_EXHAUSTED (the stream goes on).")
    call_timeout_ms: float = Field(default=3_000.0, gt=0, le=60_000,
                                   description="Deadline of each call to chat-messages and chat-router, in ms.")
    gap_fill_attempts: int = Field(
        default=5, ge=1, le=100,
        description="Failed or fruitless ListMessages calls in a row before a gap fill gives up and ends the session "
                    "with UNAVAILABLE (the client reconnects and resyncs).",
    )

    @model_validator(mode="after")
    def _pages_fit(self) -> GatewaySettings:
        half = self.outbound_queue_frames // 2
        if self.sync_batch > half or self.fill_page_size > half:
            raise ValueError(f"sync_batch ({self.sync_batch}) and fill_page_size ({self.fill_page_size}) must be at "
                             f"most half of outbound_queue_frames ({self.outbound_queue_frames})")
        return self

"""Settings of ``chat-messages`` (the topology's ``settings: {chat-messages: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MessageSettings(BaseModel):
    """chat-messages' knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    durable: bool = Field(
        default=True,
        description="Keep messages, groups and delivery cursors on disk (DATA_DIR/chat-messages/messages.sqlite3, "
                    "fsynced before SendMessage, CreateGroup and Acknowledge answer); false keeps them in memory only "
                    "(lost on restart).",
    )
    max_commit_batch: int = Field(
        default=512, ge=1, le=100_000,
        description="Most messages (and most acknowledgements) in one group commit (one fsync) of the message log; "
                    "1 is one fsync per message.",
    )
    fanout_concurrency: int = Field(
        default=64, ge=1, le=1024,
        description="Conversations routed at once (PresenceService.Route calls in flight); within a conversation "
                    "items are always routed one after the other, in sequence order. The A/B switch of the delivery "
                    "SLO: 1 is a single queue consumer for the whole service (every conversation waits behind the "
                    "slowest Route call), the default lets a busy conversation delay only itself, at the price of "
                    "more concurrent calls at the router and the gateways.",
    )
    route_timeout_ms: float = Field(
        default=2_000.0, gt=0, le=60_000,
        description="Deadline of one Route call, in ms; a call that fails or runs out is not retried (its recipients "
                    "get the message from the offline queue, SyncInbox).",
    )
    max_pending_routes: int = Field(
        default=100_000, ge=1, le=10_000_000,
        description="Most items (messages and receipts) queued for routing; beyond this new ones are not routed "
                    "(counted in casemesh_chat_route_recipients_total{outcome=\"dropped\"}) and reach their "
                    "recipients through the offline queue.",
    )

"""Settings of ``chat-router`` (the topology's ``settings: {chat-router: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RouterSettings(BaseModel):
    """chat-router's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_timeout_ms: int = Field(
        default=10_000, ge=100, le=3_600_000,
        description="A session its gateway has not refreshed (RefreshSessions) for this long is dropped and its "
                    "user, if it was their last, goes offline, last seen at that refresh (a gateway that died). "
                    "Keep it several times the gateways' refresh_interval_ms.",
    )
    deliver_timeout_ms: float = Field(
        default=2_000.0, gt=0, le=60_000,
        description="Deadline of each Deliver call to a gateway, in ms (cut to what is left of the Route call's).",
    )

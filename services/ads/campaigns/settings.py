"""Settings of ``ads-campaigns`` (topology ``settings.ads-campaigns``); unknown keys are refused.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | ... | 1M RPS, Google Ads |").
Campaign changes are rare next to ad requests (the ad server reads them through ListCampaigns, not per request), so
the one knob is the log's:

- ``max_commit_writes`` 256 (1 to 100,000): most writes (creations, state changes) in one group commit (one
  transaction, one fsync).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CampaignsSettings(BaseModel):
    """ads-campaigns' knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))

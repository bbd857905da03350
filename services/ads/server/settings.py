"""Settings of ``ads-server`` (topology ``settings.ads-server``); unknown keys are refused.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). Times in milliseconds.

The index and the auction:

- ``sync_interval_ms`` 200 (10 to 60,000): how often the targeting index asks CampaignService.ListCampaigns for the
  campaigns changed since the last version it saw (a new or paused campaign serves, or stops, within about this);
- ``max_candidates`` 200 (1 to 1,000, the contract's batch limit): the most candidates retrieved by targeting, the
  highest bids first (the budget and frequency checks ask about all of them in one call each);
- ``max_attempts`` 3 (1 to 20): the most bidders tried, best first, when the winner's reservation or charge is refused.

The deadline budget ("<100ms decisioning"): a Decide's outgoing calls must fit in ``decide_deadline_ms`` 90 (10 to
60,000) from its arrival, leaving ~10 ms for the impression's log write and the answer. Each call's timeout is its own
(``filter_timeout_ms`` 40 for CheckEligibility and GetCounts, sent in parallel; ``reserve_timeout_ms`` 30 for
FrequencyService.Reserve; ``charge_timeout_ms`` 30 for BudgetService.Charge; each 1 to 60,000) shortened to what is
left of the budget (and of the caller's own deadline); a call with nothing left is not sent and the Decide answers
UNAVAILABLE. A Reserve and a Charge each wait for a fsync on their side: on a loaded disk these are the timeouts to
raise (with the budget). ``release_timeout_ms`` 1,000 (1 to 60,000): a Release of a reservation whose charge was
refused or failed, outside the budget (best effort when the decision failed). ``campaigns_timeout_ms`` 2,000 (1 to
60,000): one ListCampaigns call of the index's sync.

The log: ``max_commit_writes`` 256 (1 to 100,000): most writes (impressions, clicks) in one group commit;
``recent_impressions`` 100,000 (0 to 10,000,000): impressions served kept in memory by request ID (for repeated
Decides and clicks; least recently used dropped; older ones are read from the file).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import MAX_BATCH


class ServerSettings(BaseModel):
    """ads-server's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sync_interval_ms: int = Field(default=200, ge=10, le=60_000, description=(
        "Milliseconds between two ListCampaigns polls of the targeting index."))
    max_candidates: int = Field(default=200, ge=1, le=MAX_BATCH, description=(
        "Most candidates retrieved by targeting, highest bids first."))
    max_attempts: int = Field(default=3, ge=1, le=20, description=(
        "Most bidders tried, best first, when a reservation or charge is refused."))
    decide_deadline_ms: int = Field(default=90, ge=10, le=60_000, description=(
        "A Decide's outgoing calls must fit in this many ms from its arrival."))
    filter_timeout_ms: int = Field(default=40, ge=1, le=60_000, description=(
        "Timeout of CheckEligibility and GetCounts (in parallel), in ms."))
    reserve_timeout_ms: int = Field(default=30, ge=1, le=60_000, description="Timeout of Reserve, in ms.")
    charge_timeout_ms: int = Field(default=30, ge=1, le=60_000, description="Timeout of Charge, in ms.")
    release_timeout_ms: int = Field(default=1_000, ge=1, le=60_000, description="Timeout of Release, in ms.")
    campaigns_timeout_ms: int = Field(default=2_000, ge=1, le=60_000, description=(
        "Timeout of one ListCampaigns call, in ms."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))
    recent_impressions: int = Field(default=100_000, ge=0, le=10_000_000, description=(
        "Impressions kept in memory by request ID; older ones are read from the file."))

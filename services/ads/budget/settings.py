"""Settings of ``ads-budget`` (topology ``settings.ads-budget``); unknown keys are refused.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). The A/B switch is ``pacing``
(``casemesh run PROFILE --set ads-budget.pacing=false``):

- ``pacing`` true (default, the seed's "pacing"): even budget pacing. A charge is taken only while the day's spend
  plus its price is no further ahead of an even spread of the budget over the day than ``pacing_slack`` of the
  budget: ``spend + price <= budget * elapsed / day_length + budget * pacing_slack``. This is the "standard
  delivery" of Google Ads, which "aims to evenly distribute your budget across the entire day" (Google Ads Help,
  "About ad delivery", https://support.google.com/google-ads/answer/2404248), and the throttling form of budget pacing
  (D. Agarwal, S. Ghosh, K. Wei, S. You, "Budget Pacing for Targeted Online Advertisements at LinkedIn", KDD 2014,
  pp. 1613-1619, https://doi.org/10.1145/2623330.2623366: a campaign takes part in an auction with a probability
  adjusted so that its spend follows a target curve over the day; the even spread here is the simplest such curve,
  with no traffic forecast, and the throttle is a hard yes/no rather than a probability);
- ``false``: "accelerated" delivery, spend as soon as impressions come until the budget is exhausted (the day's
  budget may be gone in the morning; Google Ads withdrew it for Search and Shopping campaigns in September 2019).

Either way no charge takes the day's spend beyond the daily budget (the tolerance is zero). Others:

- ``pacing_slack`` 0.02 (0 to 1): how far ahead of the even spread the spend may run, as a share of the daily budget
  (without it, the first impressions of a day could not be paid: the even spread is 0 at midnight);
- ``day_length_s`` 86,400 (10 to 86,400): a day's length in seconds, days counted from the Unix epoch (shorter days
  in benchmarks and tests);
- ``sync_interval_ms`` 200 (10 to 60,000): how often the campaigns are asked for the changes since the last version
  seen (CampaignService.ListCampaigns), in milliseconds;
- ``campaigns_timeout_s`` 2.0: the deadline of each ListCampaigns call (the runtime channel's default is 500 ms);
- ``max_commit_writes`` 256 (1 to 100,000): most charges in one group commit (one transaction, one fsync);
- ``recent_refusals`` 100,000 (0 to 10,000,000): refused impression IDs remembered (least recent dropped), so that a
  retry of a refusal gets the same refusal; refusals are not written (a retry after a restart is decided afresh).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BudgetSettings(BaseModel):
    """ads-budget's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pacing: bool = Field(default=True, description=(
        "Even budget pacing (standard delivery); false spends as fast as impressions come (accelerated)."))
    pacing_slack: float = Field(default=0.02, ge=0.0, le=1.0, description=(
        "How far ahead of an even spread the day's spend may run, as a share of the daily budget."))
    day_length_s: int = Field(default=86_400, ge=10, le=86_400, description=(
        "A day's length in seconds, days counted from the Unix epoch."))
    sync_interval_ms: int = Field(default=200, ge=10, le=60_000, description=(
        "Milliseconds between two ListCampaigns polls of ads-campaigns."))
    campaigns_timeout_s: float = Field(default=2.0, gt=0, le=60, description=(
        "Deadline of each ListCampaigns call, in seconds."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most charges in one group commit (one transaction, one fsync)."))
    recent_refusals: int = Field(default=100_000, ge=0, le=10_000_000, description=(
        "Refused impression IDs remembered, so a retry gets the same refusal."))

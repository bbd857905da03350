"""Settings of ``ads-frequency`` (topology ``settings.ads-frequency``); unknown keys are refused.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |").

- ``max_window_s`` 2,592,000 (30 days, the contract's longest cap window; 1 to 2,592,000): the longest cap window the
  service honours. Reservations older than it are dropped from memory and pruned from the file, and only those within
  it are loaded at start; a cap with a longer window is refused (INVALID_ARGUMENT naming ``cap`` or ``caps[i]``)
  rather than silently under-counted after a restart;
- ``sweep_interval_s`` 60 (1 to 86,400): how often the sweeper drops the timestamps that left their window from
  memory and deletes the rows older than ``max_window_s`` from the file (a key's timestamps are also pruned whenever a
  call touches it);
- ``max_commit_writes`` 256 (1 to 100,000): most writes (reservations, releases, prunes) in one group commit (one
  transaction, one fsync).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import MAX_CAP_WINDOW_S


class FrequencySettings(BaseModel):
    """ads-frequency's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_window_s: int = Field(default=MAX_CAP_WINDOW_S, ge=1, le=MAX_CAP_WINDOW_S, description=(
        "The longest cap window honoured, in s: older reservations are dropped; longer caps are refused."))
    sweep_interval_s: float = Field(default=60.0, ge=1, le=86_400, description=(
        "Seconds between two sweeps that drop expired timestamps from memory and old rows from the file."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))

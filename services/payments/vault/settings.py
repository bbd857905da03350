"""Settings of ``payments-vault`` (topology ``settings.payments-vault``); unknown keys are refused.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": "PCI DSS (HSM tokenization)",
10K TPS). The seed gives no figure for the vault itself; the defaults are this case study's:

- ``record_cache_size`` 100,000: stored cards kept in memory (least recently used out), *encrypted* as on disk (the
  number is decrypted per DetokenizeCard, never cached in clear). At the seed's 10K TPS scaled to one machine (a few
  hundred payments a second) that holds the cards of several minutes of payments, so the DetokenizeCard that follows a
  TokenizeCard is answered from memory; a miss reads the SQLite file.
- ``max_commit_cards`` 256: most new cards written in one group commit (one transaction, one fsync).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VaultSettings(BaseModel):
    """payments-vault's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_cache_size: int = Field(default=100_000, ge=0, le=10_000_000, description=(
        "Stored cards kept in memory, encrypted (least recently used out; 0: every DetokenizeCard reads the file)."))
    max_commit_cards: int = Field(default=256, ge=1, le=10_000, description=(
        "Most new cards written in one group commit (one transaction, one fsync)."))

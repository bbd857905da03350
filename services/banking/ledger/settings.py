"""Settings of ``banking-ledger`` (topology ``settings.banking-ledger``); unknown keys are refused.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts"). The A/B switch is ``locking``, the isolation of
PostEntry (:mod:`.locking`; ``casemesh run PROFILE --set banking-ledger.locking=global``):

- ``locking`` ``"account"`` (default): two-phase locking per account: an entry locks the customer accounts it debits,
  in sorted order, from its balance check until it is durable and applied; entries on other accounts commit
  alongside it (and share its group commit), entries debiting the same account wait;
- ``"global"``: one lock around every entry's check, commit and apply: entries commit one at a time, one fsync each
  (the baseline: serial execution, no group commit);
- ``"none"``: **unsafe, for the demonstration only**: no lock, so two concurrent debits of one account can both pass
  the balance check and overdraw it (the lost update that isolation prevents; Reconcile then reports the account).

Others:

- ``recent_entries`` 100,000: entries kept in memory by ID (least recently used dropped) so that a retry of a recent
  PostEntry is answered at once, without locks or the file; an older one is found in the file (by the commit's unique
  index, or looked up when the balance check refuses it);
- ``max_commit_entries`` 256: most writes (entries, account openings) in one group commit (one transaction, one
  fsync).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Locking(StrEnum):
    """The isolation of PostEntry (see the module docstring)."""

    ACCOUNT = "account"
    GLOBAL = "global"
    NONE = "none"


class LedgerSettings(BaseModel):
    """banking-ledger's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locking: Locking = Field(default=Locking.ACCOUNT, description=(
        "PostEntry's isolation: 'account' (per-account two-phase locking), 'global' (one lock, serial) or 'none' "
        "(UNSAFE: concurrent debits can overdraw; demonstration only)."))
    recent_entries: int = Field(default=100_000, ge=0, le=10_000_000, description=(
        "Entries kept in memory by ID to answer retries without reading the file."))
    max_commit_entries: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes (entries, account openings) in one group commit."))

"""The campaigns' log: one durable SQLite file, ``DATA_DIR/ads-campaigns/campaigns.sqlite3``, group-committed.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40, "Ad Serving"): an acknowledged campaign or state change
is never lost. The file (opened by ``services/runtime/sqlite_journal.open_durable``: WAL, ``synchronous=FULL``) holds
one table, ``campaigns (campaign_id PK, advertiser_id, state, version UNIQUE, created_at_unix_ms, body)``: a campaign
per row, ``body`` its ``casemesh.ads.v1.Campaign`` message (the columns are authoritative for state and version). The
store-wide version counter is the highest ``version`` of any row: every change sets its campaign's version to the
counter plus one, so ``ListCampaigns`` pages by that column.

Writes go through the shared :class:`~services.runtime.group_commit.GroupCommit` (one transaction, one fsync for
every write queued meanwhile; ``apply`` runs on the event loop in commit order once committed). Every method raises
:class:`StoreUnavailable` when the file cannot be written or read: nothing of that write changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from casemesh.ads.v1 import ads_pb2

from ...runtime.errors import Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

#: The campaigns' file under DATA_DIR/ads-campaigns/.
FILE_NAME = "campaigns.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS campaigns (campaign_id TEXT PRIMARY KEY, advertiser_id TEXT NOT NULL, "
    "state INTEGER NOT NULL CHECK (state IN (1, 2)), version INTEGER NOT NULL UNIQUE CHECK (version > 0), "
    "created_at_unix_ms INTEGER NOT NULL, body BLOB NOT NULL)"),
)


class StoreUnavailable(Unavailable):
    """The campaigns' file could not be read or written (a disk or SQLite error, or the store is closed): nothing of
    the write changed; the servicer answers UNAVAILABLE (retry)."""


def _load(db: sqlite3.Connection) -> list[ads_pb2.Campaign]:
    campaigns = []
    for state, version, created_at, body in db.execute(
            "SELECT state, version, created_at_unix_ms, body FROM campaigns ORDER BY version"):
        campaign = ads_pb2.Campaign.FromString(body)
        campaign.state, campaign.version, campaign.created_at_unix_ms = state, version, created_at
        campaigns.append(campaign)
    return campaigns


class CampaignStore:
    """The campaigns' SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self._log = GroupCommit(open_durable(path, SCHEMA), name="ads-campaigns", max_writes=max_commit_writes,
                                commit_seconds=metrics.COMMIT_SECONDS, writes_per_commit=metrics.WRITES_PER_COMMIT)

    async def load(self) -> list[ads_pb2.Campaign]:
        """Every stored campaign, by version."""
        try:
            return await self._log.run(_load)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the campaigns' file could not be read: {error}") from error

    async def insert(self, campaign: ads_pb2.Campaign, apply: Callable[[Any], None]) -> None:
        """Write the new ``campaign``; durable when this returns, ``apply`` run once committed."""
        body = campaign.SerializeToString(deterministic=True)

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO campaigns (campaign_id, advertiser_id, state, version, created_at_unix_ms, body) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (campaign.campaign_id, campaign.advertiser_id, campaign.state,
                                                     campaign.version, campaign.created_at_unix_ms, body))

        await self._write(write, apply)

    async def set_state(self, campaign: ads_pb2.Campaign, apply: Callable[[Any], None]) -> None:
        """Write ``campaign``'s new state and version; durable when this returns, ``apply`` run once committed."""
        body = campaign.SerializeToString(deterministic=True)

        def write(db: sqlite3.Connection) -> None:
            cursor = db.execute("UPDATE campaigns SET state = ?, version = ?, body = ? WHERE campaign_id = ?",
                                (campaign.state, campaign.version, body, campaign.campaign_id))
            if cursor.rowcount != 1:
                raise sqlite3.IntegrityError(f"campaign {campaign.campaign_id} is not in the file")

        await self._write(write, apply)

    async def _write(self, write: Callable[[sqlite3.Connection], None], apply: Callable[[Any], None]) -> None:
        try:
            await self._log.write(write, apply)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the campaigns' file could not be written: {error}") from error

    async def close(self) -> None:
        """Finish the queued writes, then close the file."""
        await self._log.close()

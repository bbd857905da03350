"""The budget's log: every charge taken, one row each, in one durable SQLite file,
``DATA_DIR/ads-budget/charges.sqlite3``, group-committed.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40, "Ad Serving ... pacing"): an acknowledged charge is never
lost and never counted twice. The file (``services/runtime/sqlite_journal.open_durable``: WAL, ``synchronous=FULL``)
holds one table, ``charges (seq PK, impression_id UNIQUE, campaign_id, day, price_milli_minor, budget_milli_minor,
bid_milli_minor, currency_code, charged_at_unix_ms)``: the impression (the idempotency key, unique: the file itself
refuses a second charge of one impression), the campaign and its day, the price, and the campaign's budget, bid and
currency at the time (so that the log alone rebuilds each charge's answer, :func:`fold`, without asking
ads-campaigns). ``seq`` is the commit order: replaying a day's rows in ``seq`` order gives each charge's answer as it
was given. Refusals are not written.

Writes go through the shared :class:`~services.runtime.group_commit.GroupCommit`. Every method raises
:class:`StoreUnavailable` when the file cannot be written or read: nothing of that write changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...runtime.errors import Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

#: The budget's file under DATA_DIR/ads-budget/.
FILE_NAME = "charges.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS charges (seq INTEGER PRIMARY KEY, impression_id TEXT NOT NULL UNIQUE, "
     "campaign_id TEXT NOT NULL, day INTEGER NOT NULL, "
     "price_milli_minor INTEGER NOT NULL CHECK (price_milli_minor > 0), "
     "budget_milli_minor INTEGER NOT NULL CHECK (budget_milli_minor > 0), "
     "bid_milli_minor INTEGER NOT NULL CHECK (bid_milli_minor > 0), currency_code TEXT NOT NULL, "
     "charged_at_unix_ms INTEGER NOT NULL)"),
    "CREATE INDEX IF NOT EXISTS charges_by_day ON charges (day, campaign_id)",
)
_COLUMNS = ("impression_id, campaign_id, day, price_milli_minor, budget_milli_minor, bid_milli_minor, currency_code, "
            "charged_at_unix_ms")


class StoreUnavailable(Unavailable):
    """The budget's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of
    the write changed; the servicer answers UNAVAILABLE (retry)."""


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """One charge taken: ``price`` of ``campaign_id``'s ``day``, with the campaign's budget, bid (its impression
    price) and currency when it was taken; all amounts in thousandths of a minor unit."""

    impression_id: str
    campaign_id: str
    day: int
    price: int
    budget: int
    bid: int
    currency_code: str
    charged_at_unix_ms: int


@dataclass(slots=True)
class DaySpend:
    """A campaign's day: what the committed charges spent, how many there were, when the bid stopped fitting in the
    budget (0: not yet); ``pending`` is what charges taken but not yet durable reserve."""

    spent: int = 0
    impressions: int = 0
    exhausted_at_unix_ms: int = 0
    pending: int = 0

    def fold(self, row: ChargeRow) -> None:
        """Count ``row`` (the next charge of this day, in commit order)."""
        self.spent += row.price
        self.impressions += 1
        if self.exhausted_at_unix_ms == 0 and row.budget - self.spent < row.bid:
            self.exhausted_at_unix_ms = row.charged_at_unix_ms


def fold(rows: Iterable[ChargeRow]) -> DaySpend:
    """The day that ``rows`` (one campaign's day, in commit order) add up to."""
    day = DaySpend()
    for row in rows:
        day.fold(row)
    return day


class KnownCharge(Exception):
    """The impression was charged already (a row of an earlier day than memory holds): nothing was written; ``day``
    is that campaign's day up to and including it (its first answer), ``row`` the stored charge."""

    def __init__(self, row: ChargeRow, day: DaySpend) -> None:
        super().__init__(f"impression {row.impression_id} was charged already")
        self.row = row
        self.day = day


def _load(since_day: int) -> Callable[[sqlite3.Connection], list[ChargeRow]]:
    def load(db: sqlite3.Connection) -> list[ChargeRow]:
        return [ChargeRow(*row) for row in db.execute(
            f"SELECT {_COLUMNS} FROM charges WHERE day >= ? ORDER BY seq", (since_day,))]
    return load


class ChargeStore:
    """The budget's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` charges per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self._log = GroupCommit(open_durable(path, SCHEMA), name="ads-budget", max_writes=max_commit_writes,
                                commit_seconds=metrics.COMMIT_SECONDS, writes_per_commit=metrics.WRITES_PER_COMMIT)

    async def load(self, since_day: int) -> list[ChargeRow]:
        """Every charge of day ``since_day`` and later, in commit order."""
        try:
            return await self._log.run(_load(since_day))
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the budget's file could not be read: {error}") from error

    async def insert(self, row: ChargeRow, apply: Callable[[Any], None]) -> None:
        """Write ``row``; durable when this returns, ``apply`` run once committed. Raises :class:`KnownCharge` when its
        impression is in the file already (nothing written), :class:`StoreUnavailable`."""

        def write(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                f"INSERT INTO charges ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (impression_id) "
                "DO NOTHING", (row.impression_id, row.campaign_id, row.day, row.price, row.budget, row.bid,
                               row.currency_code, row.charged_at_unix_ms))
            if cursor.rowcount == 0:
                seq, *stored = db.execute(f"SELECT seq, {_COLUMNS} FROM charges WHERE impression_id = ?",
                                          (row.impression_id,)).fetchone()
                known = ChargeRow(*stored)
                rows = [ChargeRow(*r) for r in db.execute(
                    f"SELECT {_COLUMNS} FROM charges WHERE day = ? AND campaign_id = ? AND seq <= ? ORDER BY seq",
                    (known.day, known.campaign_id, seq))]
                raise KnownCharge(known, fold(rows))

        try:
            await self._log.write(write, apply)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the budget's file could not be written: {error}") from error

    async def close(self) -> None:
        """Finish the queued writes, then close the file."""
        await self._log.close()

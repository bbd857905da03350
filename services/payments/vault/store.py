"""Stored cards: durable in SQLite, sealed, a recent few in memory (sealed too).

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": "PCI DSS (HSM tokenization)"): a
token the merchant was given must keep naming its card, through crashes and restarts, and the number must never be
written anywhere in clear. Here an SQLite file (``DATA_DIR/payments-vault/cards.sqlite``) opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): :meth:`CardStore.put` returns once
the row is committed and fsynced, so a token TokenizeCard answered survives a crash. Concurrent puts are
group-committed (one transaction, one fsync, for all the cards waiting), in one writer thread; reads use a second,
read-only connection in a thread of their own (WAL lets them run beside a commit): the event loop never waits on the
disk.

A row holds the number only sealed (:mod:`.cipher`: AES-256-GCM, the token as associated data) and what the gateway
may show (brand, last four digits, expiry, fingerprint). The schema holds the invariants:

- ``card_token`` the primary key, ``tok_`` and 24 characters: one card per token (a token drawn twice, odds 36^-24,
  is refused and drawn again by the vault);
- CHECKs: a 96-bit nonce, a ciphertext of 12 to 19 bytes plus the 16-byte tag (the length of a sealed number), a
  64-character fingerprint, four last digits, a month 1 to 12, a known brand;
- trigger ``cards_immutable``: a stored card is never changed, so a token always names the card it was given for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from cachetools import LRUCache

from casemesh.payments.v1 import payments_pb2

from ...runtime.sqlite_journal import open_durable
from ..contract import CARD_TOKEN_PREFIX, GATEWAY_ID_CHARS
from . import metrics
from .cipher import NONCE_BYTES, TAG_BYTES, Sealed

log = logging.getLogger("casemesh.payments.vault.store")

#: ``contract.card_brand`` → the proto's CardBrand.
BRANDS: dict[str, int] = {
    "visa": payments_pb2.CARD_BRAND_VISA,
    "mastercard": payments_pb2.CARD_BRAND_MASTERCARD,
    "amex": payments_pb2.CARD_BRAND_AMEX,
    "other": payments_pb2.CARD_BRAND_OTHER,
}
_TOKEN_CHARS = len(CARD_TOKEN_PREFIX) + GATEWAY_ID_CHARS

SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS cards ("
     " card_token TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, kid TEXT NOT NULL, nonce BLOB NOT NULL,"
     " ciphertext BLOB NOT NULL, fingerprint TEXT NOT NULL, brand TEXT NOT NULL, last4 TEXT NOT NULL,"
     " exp_month INTEGER NOT NULL, exp_year INTEGER NOT NULL, created_at_unix_ms INTEGER NOT NULL,"
     f" CHECK (card_token LIKE '{CARD_TOKEN_PREFIX}%' AND length(card_token) = {_TOKEN_CHARS}),"
     " CHECK (length(merchant_id) BETWEEN 1 AND 64 AND length(kid) = 8),"
     f" CHECK (typeof(nonce) = 'blob' AND length(nonce) = {NONCE_BYTES}),"
     f" CHECK (typeof(ciphertext) = 'blob' AND length(ciphertext) BETWEEN {12 + TAG_BYTES} AND {19 + TAG_BYTES}),"
     " CHECK (length(fingerprint) = 64 AND length(last4) = 4),"
     f" CHECK (brand IN ({', '.join(repr(b) for b in BRANDS)})),"
     " CHECK (exp_month BETWEEN 1 AND 12 AND exp_year BETWEEN 1000 AND 9999))"),
    ("CREATE TRIGGER IF NOT EXISTS cards_immutable BEFORE UPDATE ON cards "
     "BEGIN SELECT RAISE(ABORT, 'cards_immutable: a stored card never changes'); END"),
)


@dataclass(frozen=True, slots=True)
class CardRecord:
    """One stored card (a row of ``cards``): its token and merchant, the sealed number (:class:`.cipher.Sealed`'s
    ``kid``, ``nonce``, ``ciphertext``), and what may be shown: the fingerprint (hex), the brand
    (``contract.card_brand``), the last four digits, the expiry; ``created_at_unix_ms`` in ms since the Unix epoch."""

    card_token: str
    merchant_id: str
    kid: str
    nonce: bytes
    ciphertext: bytes
    fingerprint: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    created_at_unix_ms: int

    @property
    def sealed(self) -> Sealed:
        """The sealed number."""
        return Sealed(self.kid, self.nonce, self.ciphertext)

    def to_proto(self) -> payments_pb2.Card:
        """The ``casemesh.payments.v1.Card`` of this card (never its number)."""
        return payments_pb2.Card(brand=BRANDS[self.brand], last4=self.last4, exp_month=self.exp_month,
                                 exp_year=self.exp_year, fingerprint=self.fingerprint)


_COLUMNS = ", ".join(f.name for f in fields(CardRecord))
_INSERT = f"INSERT INTO cards ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(CardRecord)))})"


class TokenTaken(Exception):
    """The token is stored already (a random draw repeated): nothing written; draw another."""


class StoreUnavailable(Exception):
    """A card could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry later."""


class CardStore:
    """Cards by token in the SQLite file at ``path``, the ``cache_size`` most recently used also in memory (sealed).

    Raises ``sqlite3.Error`` when the file cannot be opened. ``max_commit_cards``: most cards in one group commit.
    """

    def __init__(self, path: Path, cache_size: int = 100_000, max_commit_cards: int = 256) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False,
                                                                  isolation_level=None)
        self._reader.execute("PRAGMA query_only = ON")
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payments-vault-write")
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payments-vault-read")
        self._cache: LRUCache[str, CardRecord] | None = LRUCache(maxsize=cache_size) if cache_size > 0 else None
        self._max_commit = max_commit_cards
        self._queue: list[tuple[tuple, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- reads ------------------------------------------------------------------------------------------------------

    async def get(self, card_token: str) -> CardRecord | None:
        """The card of ``card_token``, from memory or else the file; ``None`` when there is none.
        :class:`StoreUnavailable` when the file cannot be read."""
        if self._cache is not None:
            record = self._cache.get(card_token)
            if record is not None:
                return record
        try:
            self._check_open()
            row = await asyncio.get_running_loop().run_in_executor(self._reads, self._select, card_token)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"card {card_token} could not be read: {error}") from error
        if row is None:
            return None
        record = CardRecord(*row)
        if self._cache is not None:
            self._cache[card_token] = record
        return record

    def _select(self, card_token: str) -> tuple | None:
        reader = self._reader
        if reader is None:
            raise sqlite3.ProgrammingError("the card store is closed")
        return reader.execute(f"SELECT {_COLUMNS} FROM cards WHERE card_token = ?", (card_token,)).fetchone()

    def count(self) -> int:
        """Cards stored (a blocking read of the file: for tests and start-up logs)."""
        assert self._db is not None
        return self._db.execute("SELECT count(*) FROM cards").fetchone()[0]

    # -- writes -----------------------------------------------------------------------------------------------------

    async def put(self, record: CardRecord) -> None:
        """Store a new card; returns once it is committed and fsynced. :class:`TokenTaken` when its token is stored
        already, :class:`StoreUnavailable` when it cannot be written (nothing changed either way). Cancelling the
        caller does not stop a write under way."""
        await asyncio.shield(asyncio.ensure_future(self._put(record)))

    async def _put(self, record: CardRecord) -> None:
        try:
            await self._write(astuple(record))
        except sqlite3.IntegrityError as error:
            if "cards.card_token" in str(error):
                raise TokenTaken(f"token {record.card_token} is stored already") from None
            log.error("the cards schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"card {record.card_token} could not be written: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"card {record.card_token} could not be written: {error}") from error
        if self._cache is not None:
            self._cache[record.card_token] = record

    async def _write(self, row: tuple) -> None:
        """Queue ``row`` for the next group commit and wait until it is on disk."""
        self._check_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="payments-vault-commit")
        await future

    async def _commit_queued(self) -> None:
        """Commit what is queued, one transaction per batch; when a batch fails, each card alone (so one bad card
        fails only itself)."""
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:self._max_commit], self._queue[self._max_commit:]
            rows = [row for row, _ in batch]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._writes, self._commit, rows)
                errors: list[BaseException | None] = [None] * len(rows)
            except (sqlite3.Error, OSError) as error:
                if len(rows) == 1:
                    errors = [error]
                else:
                    errors = await loop.run_in_executor(self._writes, self._commit_each, rows)
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _commit(self, rows: list[tuple]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the card store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_INSERT, rows)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, rows: list[tuple]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for row in rows:
            try:
                self._commit([row])
                errors.append(None)
            except (sqlite3.Error, OSError) as error:
                errors.append(error)
        return errors

    def _check_open(self) -> None:
        if self._closed:
            raise sqlite3.ProgrammingError("the card store is closed")

    async def close(self) -> None:
        """Finish the writes queued, then close the file; reads and writes after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        loop = asyncio.get_running_loop()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await loop.run_in_executor(self._reads, reader.close)
        if self._db is not None:
            db, self._db = self._db, None
            await loop.run_in_executor(self._writes, db.close)
        self._reads.shutdown(wait=False)
        self._writes.shutdown(wait=False)

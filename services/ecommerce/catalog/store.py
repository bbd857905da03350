"""The catalogue's products, durable in SQLite, searched through an FTS5 full-text index ranked by BM25.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 513 and 519: "Latency:
Sub-200ms for search", "Product Service: Catalog, search (Elasticsearch)"). SQLite's FTS5 extension
(https://sqlite.org/fts5.html) stands in for Elasticsearch: an inverted index over each product's title and
description, queried with every word of the query (:mod:`.search`) and ranked by its built-in ``bm25()`` (Okapi BM25,
as Elasticsearch's default similarity; k1 = 1.2, b = 0.75), with per-column weights (:mod:`.settings`).

One file, ``DATA_DIR/ecommerce-catalog/catalog.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable``
(WAL, ``synchronous=FULL``):

- table ``products``: one row per product; ``seq`` (the INTEGER PRIMARY KEY, so a stable rowid) is the FTS5 row id;
  ``product_id`` unique; an index on (``category``, ``product_id``) serves ListProducts' pages; CHECKs hold the
  contract's lengths and price range (a backstop: validation refuses them first);
- ``products_fts``: an FTS5 *external content* table over ``products`` (title, description), tokenizer
  ``unicode61 remove_diacritics 2`` (case and diacritics folded: "Café" is found by "cafe"), with prefix indexes of 1
  and 2 characters (``prefix='1 2'``: a search as you type's first letters read one index entry instead of every
  term that starts with them; measured 13 → 7 ms for a one-letter prefix over 10,000 products); kept in step by the
  trigger ``products_indexed`` (in the same transaction as the row), and a product never changes nor is deleted
  (triggers refuse both), so the index can never disagree with the table.

Writes: :meth:`ProductStore.create` returns once its row (and its index entries) is committed and fsynced; concurrent
creates are group-committed (one transaction, one fsync, up to ``commit_batch`` products) in one worker thread, so the
event loop never waits on the disk. An existing product id is never overwritten (``ON CONFLICT DO NOTHING``, in the
writer thread: two concurrent creates of one id store the first and both see it). When a group's transaction fails,
each create of it is committed alone, so one failing write fails only its own caller.

Reads: a point read (:meth:`ProductStore.get`, a primary-key lookup, microseconds) and a category page
(:meth:`ProductStore.list_category`, at most 101 rows of an index range, well under a millisecond) run on the event
loop on a read-only connection of their own (WAL: readers never wait for the writer). A search
(:meth:`ProductStore.search`) ranks every match before it pages: measured 1 to 13 ms over 10,000 products (a
one-letter prefix matches most of them), too long to hold a loop that also serves the carts, so searches run in
``SEARCH_THREADS`` worker threads, one connection each (SQLite releases the GIL while it steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, TypeVar

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import ecommerce_pb2

from ...runtime.errors import Unavailable
from ...runtime.sqlite_journal import open_durable
from .. import contract
from . import metrics

T = TypeVar("T")

#: Worker threads (one SQLite connection each) that run searches: the machine's two cores.
SEARCH_THREADS = 2
#: The FTS5 tokenizer: Unicode letters and digits are token characters; case and diacritics folded.
TOKENIZER = "unicode61 remove_diacritics 2"

SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS products ("
     " seq INTEGER PRIMARY KEY, product_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, description TEXT NOT NULL,"
     " category TEXT NOT NULL, currency_code TEXT NOT NULL, amount_minor INTEGER NOT NULL,"
     " created_at_unix_ms INTEGER NOT NULL,"
     f" CHECK (length(product_id) BETWEEN 1 AND 64), CHECK (length(title) BETWEEN 1 AND {contract.TITLE_MAX_CHARS}),"
     f" CHECK (length(description) <= {contract.DESCRIPTION_MAX_CHARS}), CHECK (length(category) BETWEEN 1 AND 64),"
     f" CHECK (length(currency_code) = 3), CHECK (amount_minor BETWEEN 1 AND {contract.MAX_PRICE_MINOR}))"),
    "CREATE INDEX IF NOT EXISTS products_category ON products (category, product_id)",
    ("CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(title, description, content='products',"
     f" content_rowid='seq', prefix='1 2', tokenize='{TOKENIZER}')"),
    ("CREATE TRIGGER IF NOT EXISTS products_indexed AFTER INSERT ON products BEGIN"
     " INSERT INTO products_fts (rowid, title, description) VALUES (new.seq, new.title, new.description); END"),
    ("CREATE TRIGGER IF NOT EXISTS products_unchanged BEFORE UPDATE ON products"
     " BEGIN SELECT RAISE(ABORT, 'products_unchanged: a product never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS products_kept BEFORE DELETE ON products"
     " BEGIN SELECT RAISE(ABORT, 'products_kept: a product is never deleted'); END"),
)


class ProductRecord(NamedTuple):
    """One product, as stored (the fields of ``casemesh.ecommerce.v1.Product``): the unit price in minor units of
    ``currency_code``, the creation time in Unix ms."""

    product_id: str
    title: str
    description: str
    category: str
    currency_code: str
    amount_minor: int
    created_at_unix_ms: int

    def to_proto(self) -> ecommerce_pb2.Product:
        """The ``casemesh.ecommerce.v1.Product`` of this record."""
        return ecommerce_pb2.Product(
            product_id=self.product_id, title=self.title, description=self.description, category=self.category,
            price=money_pb2.Money(currency_code=self.currency_code, amount_minor=self.amount_minor),
            created_at_unix_ms=self.created_at_unix_ms)


class Hit(NamedTuple):
    """A search result: the product and its BM25 relevance (``-bm25()``: higher is better)."""

    product: ProductRecord
    score: float


_COLUMNS = ", ".join(ProductRecord._fields)
_P_COLUMNS = ", ".join(f"p.{name}" for name in ProductRecord._fields)
_INSERT = (f"INSERT INTO products ({_COLUMNS}) VALUES ({', '.join('?' * len(ProductRecord._fields))})"
           " ON CONFLICT (product_id) DO NOTHING")
_GET = f"SELECT {_COLUMNS} FROM products WHERE product_id = ?"


class StoreUnavailable(Unavailable):
    """The catalogue could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class Stored(NamedTuple):
    """What :meth:`ProductStore.create` found: the product stored under the id, and whether this create stored it."""

    product: ProductRecord
    created: bool


class _Create(NamedTuple):
    """One caller's create and the future of what it found."""

    record: ProductRecord
    future: asyncio.Future[Stored]


class ProductStore:
    """The SQLite file at ``path`` (see the module docstring); ``commit_batch``: most products in one group commit.
    Raises ``sqlite3.Error`` when the file cannot be opened; every method raises :class:`StoreUnavailable` when it
    cannot be read or written."""

    def __init__(self, path: Path, commit_batch: int = 1_000) -> None:
        self.path = path
        self.commit_batch = commit_batch
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        # The event loop's connection for point reads: query-only, and it never waits long for a lock.
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False,
                                                                  isolation_level=None, timeout=0.1)
        self._reader.execute("PRAGMA query_only = ON")
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecommerce-catalog-db")
        self._search_threads = ThreadPoolExecutor(max_workers=SEARCH_THREADS,
                                                  thread_name_prefix="ecommerce-catalog-search")
        self._search_local = threading.local()
        self._search_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._queue: list[_Create] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- writes -------------------------------------------------------------------------------------------------------

    async def create(self, record: ProductRecord) -> Stored:
        """Store ``record`` unless its ``product_id`` exists; when this returns, the product stored under that id (on
        disk, fsynced): ``record`` (``created``) when it was new, else the one that was there. A cancelled caller
        does not stop the write."""
        self._check_open()
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Create(record, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="ecommerce-catalog-commit")
        try:
            return await asyncio.shield(future)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the catalogue could not be written: {error}") from error

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            group, self._queue = self._queue[:self.commit_batch], self._queue[self.commit_batch:]
            records = [create.record for create in group]
            started = time.perf_counter()
            results: list[Stored | BaseException]
            try:
                results = list(await loop.run_in_executor(self._writer_thread, self._commit, records))
            except (sqlite3.Error, OSError) as error:
                if len(group) == 1:
                    results = [error]
                else:
                    results = await loop.run_in_executor(self._writer_thread, self._commit_each, records)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            for create, result in zip(group, results, strict=True):
                if create.future.done():
                    continue
                if isinstance(result, BaseException):
                    create.future.set_exception(result)
                else:
                    create.future.set_result(result)

    def _commit(self, records: Sequence[ProductRecord]) -> list[Stored]:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the catalogue is closed")
        stored: list[Stored] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                if db.execute(_INSERT, record).rowcount == 1:
                    stored.append(Stored(record, True))
                else:
                    stored.append(Stored(ProductRecord._make(db.execute(_GET, (record.product_id,)).fetchone()),
                                         False))
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return stored

    def _commit_each(self, records: Sequence[ProductRecord]) -> list[Stored | BaseException]:
        results: list[Stored | BaseException] = []
        for record in records:
            try:
                results.extend(self._commit([record]))
            except (sqlite3.Error, OSError) as error:
                results.append(error)
        return results

    # -- reads --------------------------------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        self._check_open()
        assert self._reader is not None  # set until close
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the catalogue could not be read: {error}") from error

    def count(self) -> int:
        """How many products are stored."""
        return self._read("SELECT count(*) FROM products", ())[0][0]

    def get(self, product_id: str) -> ProductRecord | None:
        """The product ``product_id``, or ``None``."""
        rows = self._read(_GET, (product_id,))
        return ProductRecord._make(rows[0]) if rows else None

    def list_category(self, category: str, after_product_id: str, limit: int) -> list[ProductRecord]:
        """Up to ``limit`` products of ``category`` whose id sorts after ``after_product_id`` (``""``: from the
        first), by product id (binary order)."""
        return [ProductRecord._make(row) for row in self._read(
            f"SELECT {_COLUMNS} FROM products WHERE category = ? AND product_id > ? ORDER BY product_id LIMIT ?",
            (category, after_product_id, limit))]

    async def search(self, match: str, *, category: str, max_price_minor: int, weights: tuple[float, float],
                     offset: int, limit: int) -> list[Hit]:
        """Products whose title or description match the FTS5 expression ``match`` (:func:`.search.match_expression`
        only: never user text), within ``category`` (``""``: every one) and at most ``max_price_minor`` (0: no
        bound), best ``bm25()`` first (ties by age, oldest first): ``limit`` of them from rank ``offset``.
        ``weights`` are ``bm25()``'s (title, description) column weights."""
        self._check_open()
        where = ["products_fts MATCH ?"]
        params: list[object] = [*weights, match]
        if category:
            where.append("p.category = ?")
            params.append(category)
        if max_price_minor:
            where.append("p.amount_minor <= ?")
            params.append(max_price_minor)
        sql = (f"SELECT {_P_COLUMNS}, bm25(products_fts, ?, ?) AS rank_score"
               " FROM products_fts JOIN products AS p ON p.seq = products_fts.rowid"
               f" WHERE {' AND '.join(where)} ORDER BY rank_score, p.seq LIMIT ? OFFSET ?")
        params += [limit, offset]
        rows = await self._in_search_thread(lambda db: db.execute(sql, params).fetchall())
        # bm25() is lower-is-better (negative); the contract's score is higher-is-better.
        return [Hit(ProductRecord._make(row[:-1]), -row[-1]) for row in rows]

    async def _in_search_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            db = getattr(self._search_local, "db", None)
            if db is None:
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA query_only = ON")
                self._search_local.db = db
                with self._connections_lock:
                    self._search_connections.append(db)
            return work(db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._search_threads, run)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the catalogue could not be searched: {error}") from error

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the catalogue is closed")

    async def close(self) -> None:
        """Finish the writes queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._search_threads.shutdown)
        for db in self._search_connections:
            db.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._db is not None:
            db, self._db = self._db, None
            await loop.run_in_executor(self._writer_thread, db.close)
        self._writer_thread.shutdown(wait=False)

"""The matching engine (services/trading/engine): its durable log (framing, reopen and replay, a torn or corrupt tail
truncated, both commit modes durable before the answer, group commit sharing one flush, a failed write answered
UNAVAILABLE and nothing acknowledged), the engine (validation naming the field, idempotent resubmits, cancels and
their status codes, reads answered from durable state, a new engine on the same folder rebuilding the same books and
orders), StreamEvents (catch-up from the file and from memory then live, no gap or repeat even while orders keep
arriving, a slow subscriber dropped), the contract module, settings, metrics, and the real gRPC service through the
runtime.

Nothing here measures time: group commit is made deterministic by holding the writer thread's flush."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import sys
import threading
import zlib
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.trading import contract
from casemesh.services.trading.engine import journal as journal_module
from casemesh.services.trading.engine import metrics
from casemesh.services.trading.engine.engine import EngineClosed, JournalCorrupt, MatchingEngine
from casemesh.services.trading.engine.journal import HEADER, Journal, JournalFailed
from casemesh.services.trading.engine.service import DEFINITION, FULL_NAME, NAME
from casemesh.services.trading.engine.settings import EngineSettings
from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc, trading_pb2

from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
BUY, SELL = trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL
LIMIT, MARKET = trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET
NEW, PARTIAL = trading_pb2.ORDER_STATUS_NEW, trading_pb2.ORDER_STATUS_PARTIALLY_FILLED
FILLED, CANCELLED = trading_pb2.ORDER_STATUS_FILLED, trading_pb2.ORDER_STATUS_CANCELLED


def oid(number: int) -> str:
    return "ord_" + base64.b32encode(number.to_bytes(15, "big")).decode().lower()


def request(number: int, side: int = BUY, price: int = 100, quantity: int = 10, *, symbol: str = "ABC",
            account: str = "acct-1", kind: int = LIMIT, **changes) -> engine_pb2.SubmitOrderRequest:
    fields = {"order_id": oid(number), "client_order_id": f"c-{number}", "account_id": account, "symbol": symbol,
              "side": side, "type": kind, "price_minor": 0 if kind == MARKET else price, "quantity": quantity}
    fields.update(changes)
    return engine_pb2.SubmitOrderRequest(**fields)


def settings(**changes) -> EngineSettings:
    return EngineSettings(**{"gc_freeze_orders": 0, **changes})


async def opened(folder: Path, **changes) -> MatchingEngine:
    engine = MatchingEngine(folder, settings(**changes))
    await engine.open()
    return engine


@pytest.fixture
async def engine(tmp_path):
    made = await opened(tmp_path)
    yield made
    await made.close()


async def submit(engine: MatchingEngine, *args, **kwargs) -> engine_pb2.SubmitOrderResponse:
    submitted = engine.submit(request(*args, **kwargs))
    await submitted.durable
    return submitted.response


def state(engine: MatchingEngine) -> tuple:
    """Everything a rebuilt engine must reproduce: every order, every book's resting orders in priority order and
    levels, the sequence number."""
    orders = {order_id: (o.client_order_id, o.account_id, o.symbol, o.side, o.type, o.price, o.quantity, o.filled,
                         o.status, o.accepted_sequence, o.accepted_at_ns) for order_id, o in engine.orders.items()}
    books = {symbol: ([o.order_id for o in book.resting_orders(BUY)], [o.order_id for o in book.resting_orders(SELL)],
                      book.levels(BUY), book.levels(SELL), book.resting)
             for symbol, book in engine.books.items()}
    return engine.sequence, orders, books


# ----------------------------------------------------------------------------------------------------- the journal


def payloads(count: int, start: int = 1) -> list[bytes]:
    return [engine_pb2.EngineEvent(sequence=s, at_unix_ns=s).SerializeToString() for s in range(start, start + count)]


class Commits:
    """on_commit / on_failure of a journal under test."""

    def __init__(self) -> None:
        self.tokens: list = []
        self.failed: list = []
        self.event = asyncio.Event()

    def commit(self, tokens, events, seconds) -> None:
        self.tokens.extend(tokens)
        self.event.set()

    def failure(self, tokens, error) -> None:
        self.failed.extend((token, error) for token in tokens)
        self.event.set()

    async def until(self, count: int) -> None:
        while len(self.tokens) + len(self.failed) < count:
            self.event.clear()
            await asyncio.wait_for(self.event.wait(), WAIT_S)


def started(folder: Path, commit: str = "group", **kwargs) -> tuple[Journal, list[bytes], Commits]:
    journal = Journal(folder, commit=commit, **kwargs)
    recovered = list(journal.recover())
    commits = Commits()
    journal.start(asyncio.get_running_loop(), commits.commit, commits.failure)
    return journal, recovered, commits


@pytest.mark.parametrize("commit", ["group", "per_order"])
async def test_journal_append_reopen_replay(tmp_path, commit):
    journal, recovered, commits = started(tmp_path, commit)
    assert recovered == [] and journal.durable_sequence == 0
    written = payloads(10)
    for number, group in enumerate((written[:3], written[3:4], written[4:])):
        journal.append(group, number)
    await commits.until(3)
    assert commits.tokens == [0, 1, 2] and journal.durable_sequence == 10
    await journal.close()
    again, recovered, _ = started(tmp_path, commit)
    assert recovered == written and again.durable_sequence == 10
    data = (tmp_path / "events.log").read_bytes()
    length, crc = HEADER.unpack_from(data, 0)
    assert (length, crc) == (len(written[0]), zlib.crc32(written[0]))
    await again.close()


def write_records(folder: Path, records: list[bytes]) -> Path:
    path = folder / "events.log"
    path.write_bytes(b"".join(HEADER.pack(len(p), zlib.crc32(p)) + p for p in records))
    return path


@pytest.mark.parametrize("damage", ["torn_payload", "torn_header", "bad_crc", "zero_length", "huge_length"])
async def test_journal_truncates_a_torn_or_corrupt_tail(tmp_path, damage, caplog):
    good = payloads(5)
    path = write_records(tmp_path, good)
    good_size = path.stat().st_size
    bad = payloads(1, 6)[0]
    tail = {
        "torn_payload": HEADER.pack(len(bad), zlib.crc32(bad)) + bad[:3],
        "torn_header": HEADER.pack(len(bad), zlib.crc32(bad))[:5],
        "bad_crc": HEADER.pack(len(bad), zlib.crc32(bad) ^ 1) + bad,
        "zero_length": HEADER.pack(0, 0) + bytes(16),
        "huge_length": HEADER.pack(10**9, 0) + bad,
    }[damage]
    with path.open("ab") as file:
        file.write(tail)
        file.write(HEADER.pack(len(bad), zlib.crc32(bad)) + bad)  # a good record after a bad one is dropped too
    journal, recovered, commits = started(tmp_path)
    assert recovered == good
    assert path.stat().st_size == good_size
    assert f"byte offset {good_size}" in caplog.text
    journal.append(payloads(1, 6), "next")  # the log goes on from the good end
    await commits.until(1)
    await journal.close()
    again, recovered, _ = started(tmp_path)
    assert recovered == [*good, *payloads(1, 6)]
    await again.close()


async def test_journal_corrupt_record_in_the_middle(tmp_path, caplog):
    good = payloads(6)
    path = write_records(tmp_path, good)
    data = bytearray(path.read_bytes())
    offset = sum(HEADER.size + len(p) for p in good[:3])
    data[offset + HEADER.size + 1] ^= 0xFF  # a flipped bit in record 4's payload
    path.write_bytes(bytes(data))
    journal, recovered, _ = started(tmp_path)
    assert recovered == good[:3] and path.stat().st_size == offset
    assert f"record 4 at byte offset {offset}" in caplog.text
    await journal.close()


async def test_group_commit_shares_one_flush(tmp_path, monkeypatch):
    """The writer thread's first flush is held while 49 more orders are appended: they go to disk in one write and
    one fdatasync, and none is acknowledged before its flush."""
    real_fdatasync = os.fdatasync
    release = threading.Event()
    flushes: list[int] = []

    def held_fdatasync(fd: int) -> None:
        flushes.append(os.fstat(fd).st_size)
        if len(flushes) == 1:
            release.wait(WAIT_S)
        real_fdatasync(fd)

    monkeypatch.setattr(journal_module.os, "fdatasync", held_fdatasync)
    journal, _, commits = started(tmp_path)
    written = payloads(50)
    journal.append(written[:1], 0)
    while not flushes:
        await asyncio.sleep(0.001)
    for number in range(1, 50):
        journal.append(written[number:number + 1], number)
    await asyncio.sleep(0.01)
    assert commits.tokens == []  # nothing acknowledged before its flush
    release.set()
    await commits.until(50)
    assert commits.tokens == list(range(50))
    assert len(flushes) == 2 and flushes[1] == (tmp_path / "events.log").stat().st_size
    await journal.close()


async def test_per_order_commit_flushes_before_append_returns(tmp_path, monkeypatch):
    real_fdatasync = os.fdatasync
    flushes: list[int] = []

    def counted_fdatasync(fd: int) -> None:
        flushes.append(fd)
        real_fdatasync(fd)

    monkeypatch.setattr(journal_module.os, "fdatasync", counted_fdatasync)
    journal, _, commits = started(tmp_path, "per_order")
    for number, payload in enumerate(payloads(5)):
        journal.append([payload], number)
        assert commits.tokens == list(range(number + 1))  # durable before append returned
    assert len(flushes) == 5
    await journal.close()


@pytest.mark.parametrize("commit", ["group", "per_order"])
async def test_a_failed_write_fails_its_orders_and_everything_after(tmp_path, monkeypatch, commit):
    journal, _, commits = started(tmp_path, commit)
    journal.append(payloads(1), "durable")
    await commits.until(1)

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal_module.os, "fdatasync", broken)
    journal.append(payloads(1, 2), "lost")
    await commits.until(2)
    monkeypatch.undo()
    journal.append(payloads(1, 3), "after")  # never written: the log must not have a gap
    await commits.until(3)
    assert commits.tokens == ["durable"]
    assert [token for token, _ in commits.failed] == ["lost", "after"]
    assert all(isinstance(error, JournalFailed) for _, error in commits.failed)
    assert journal.failed is not None and journal.durable_sequence == 1
    await journal.close()


@pytest.mark.parametrize("small_reads", [False, True])
async def test_journal_reads_back_from_file_and_ring(tmp_path, monkeypatch, small_reads):
    if small_reads:  # a few records per read: records cut at the end of a read are read again with the next
        monkeypatch.setattr(journal_module, "MIN_READ_BYTES", 20)
        monkeypatch.setattr(journal_module, "TYPICAL_RECORD_BYTES", 1)
    journal, _, commits = started(tmp_path, recent_events=7, index_every=4)
    written = payloads(40)
    for number in range(0, 40, 3):
        journal.append(written[number:number + 3], number)
    await commits.until(14)
    for first in (1, 2, 4, 5, 17, 33, 34, 40):
        assert await journal.read(first, 100) == written[first - 1:]
        assert await journal.read(first, 3) == written[first - 1:first + 2]
    assert await journal.read(41, 10) == []
    await journal.close()
    again, recovered, _ = started(tmp_path, recent_events=7, index_every=4)
    assert recovered == written
    for first in (1, 9, 30, 39):
        assert await again.read(first, 5) == written[first - 1:first + 4]
    await again.close()


# ------------------------------------------------------------------------------------------------------ the engine


@pytest.mark.parametrize(("changes", "field"), [
    ({"order_id": ""}, "order_id"),
    ({"order_id": "ord_" + "a" * 23}, "order_id"),
    ({"order_id": "ord_" + "a" * 23 + "1"}, "order_id"),
    ({"order_id": "ORD_" + "a" * 24}, "order_id"),
    ({"client_order_id": ""}, "client_order_id"),
    ({"client_order_id": "c" * 65}, "client_order_id"),
    ({"account_id": "a b"}, "account_id"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "abc"}, "symbol"),
    ({"symbol": "ABCDEFGHI"}, "symbol"),
    ({"symbol": "AB\n"}, "symbol"),
    ({"side": 0}, "side"),
    ({"side": 7}, "side"),
    ({"type": 0}, "type"),
    ({"price_minor": 0}, "price_minor"),
    ({"price_minor": -5}, "price_minor"),
    ({"price_minor": 10**12 + 1}, "price_minor"),
    ({"type": MARKET, "price_minor": 5}, "price_minor"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": 10**9 + 1}, "quantity"),
])
async def test_submit_validation_names_the_field(engine, changes, field):
    with pytest.raises(InvalidArgument) as raised:
        engine.submit(request(1, **changes))
    assert raised.value.field == field
    assert engine.sequence == 0 and not engine.orders  # nothing stored


async def test_submit_limits_are_inclusive(engine):
    response = await submit(engine, 1, price=10**12, quantity=10**9)
    assert response.order.status == NEW


async def test_submit_matches_and_answers_after_durable(engine):
    await submit(engine, 1, SELL, 101, 5)
    await submit(engine, 2, SELL, 100, 5)
    taker = engine.submit(request(3, BUY, 101, 8))
    assert not taker.durable.done()  # group commit: matched at once, answered once the writer thread flushed
    await taker.durable
    response = taker.response
    assert (response.order.filled_quantity, response.order.status) == (8, FILLED)
    assert [(t.maker_order_id, t.price_minor, t.quantity, t.sequence, t.trade_id) for t in response.trades] == [
        (oid(2), 100, 5, 4, "ABC-4"), (oid(1), 101, 3, 5, "ABC-5")]
    assert engine.sequence == 5
    market = await submit(engine, 4, BUY, quantity=10, kind=MARKET)
    assert (market.order.filled_quantity, market.order.status, market.order.price_minor) == (2, CANCELLED, 0)
    assert engine.sequence == 8  # accepted, one trade, the rest cancelled
    book = await engine.get_book("ABC", 0, True)
    assert book.sequence == 8 and not book.bids and not book.asks


async def test_resubmit_is_idempotent_and_a_changed_one_refused(engine):
    first = await submit(engine, 1, SELL, 100, 10)
    await submit(engine, 2, BUY, 100, 4)
    sequence = engine.sequence
    again = await submit(engine, 1, SELL, 100, 10)
    assert not again.trades and again.order.filled_quantity == 4 and again.order.status == PARTIAL
    assert again.order.accepted_sequence == first.order.accepted_sequence
    assert engine.sequence == sequence  # no new event
    for changes in ({"price": 101}, {"quantity": 9}, {"side": BUY}, {"account": "acct-2"}, {"symbol": "XYZ"},
                    {"client_order_id": "other"}, {"kind": MARKET}):
        with pytest.raises(FailedPrecondition, match="different order"):
            engine.submit(request(1, **{"side": SELL, "price": 100, "quantity": 10, **changes}))
    assert engine.sequence == sequence


async def test_cancel_status_codes(engine):
    await submit(engine, 1, SELL, 100, 10)
    await submit(engine, 2, BUY, 100, 10)  # fills 1
    await submit(engine, 3, BUY, 99, 10)
    with pytest.raises(NotFound):
        engine.cancel(oid(9), "acct-1")
    with pytest.raises(NotFound):
        engine.cancel(oid(3), "acct-2")  # another account's
    with pytest.raises(FailedPrecondition):
        engine.cancel(oid(1), "acct-1")
    with pytest.raises(InvalidArgument) as raised:
        engine.cancel("nope", "acct-1")
    assert raised.value.field == "order_id"
    with pytest.raises(InvalidArgument) as raised:
        engine.cancel(oid(3), "")
    assert raised.value.field == "account_id"
    cancelled = engine.cancel(oid(3), "acct-1")
    await cancelled.durable
    assert cancelled.order.status == CANCELLED
    sequence = engine.sequence
    again = engine.cancel(oid(3), "acct-1")
    await again.durable
    assert again.order == cancelled.order and engine.sequence == sequence  # no new event
    assert (await engine.get_book("ABC")).bids == []


async def test_reads(engine):
    await submit(engine, 1, BUY, 100, 10)
    await submit(engine, 2, BUY, 100, 5, account="acct-2")
    await submit(engine, 3, BUY, 99, 1)
    await submit(engine, 4, SELL, 102, 7)
    order = await engine.get_order(oid(2))
    assert (order.order_id, order.account_id, order.quantity, order.status) == (oid(2), "acct-2", 5, NEW)
    with pytest.raises(NotFound):
        await engine.get_order(oid(8))
    with pytest.raises(InvalidArgument):
        await engine.get_order("")
    book = await engine.get_book("ABC", 1, True)
    assert [(b.price_minor, b.quantity, b.order_count) for b in book.bids] == [(100, 15, 2)]
    assert [(a.price_minor, a.quantity, a.order_count) for a in book.asks] == [(102, 7, 1)]
    assert [o.order_id for o in book.bid_orders] == [oid(1), oid(2), oid(3)]
    assert [o.order_id for o in book.ask_orders] == [oid(4)]
    full = await engine.get_book("ABC")
    assert len(full.bids) == 2 and not full.bid_orders
    assert await engine.get_book("NEW") == engine_pb2.GetBookResponse(sequence=4)
    for symbol, depth, field in (("abc", 0, "symbol"), ("ABC", 1_001, "depth")):
        with pytest.raises(InvalidArgument) as raised:
            await engine.get_book(symbol, depth)
        assert raised.value.field == field
    assert len((await engine.get_book("ABC", 1_000)).bids) == 2


async def test_reads_wait_for_durable_state(tmp_path, monkeypatch):
    """GetOrder, GetBook and a retry answer only once the events they show are on disk."""
    real_fdatasync = os.fdatasync
    release = threading.Event()

    def held(fd: int) -> None:
        release.wait(WAIT_S)
        real_fdatasync(fd)

    monkeypatch.setattr(journal_module.os, "fdatasync", held)
    engine = await opened(tmp_path)
    submitted = engine.submit(request(1))
    reads = [asyncio.ensure_future(engine.get_order(oid(1))), asyncio.ensure_future(engine.get_book("ABC")),
             engine.submit(request(1)).durable]
    await asyncio.sleep(0.01)
    assert not any(read.done() for read in (submitted.durable, *reads))
    release.set()
    await asyncio.wait_for(asyncio.gather(submitted.durable, *reads), WAIT_S)
    assert reads[0].result().status == NEW and reads[1].result().bids[0].quantity == 10
    await engine.close()


async def test_a_new_engine_rebuilds_the_same_books_and_orders(tmp_path):
    rng = random.Random(7)
    engine = await opened(tmp_path, commit="group")
    live: list[tuple[str, str]] = []
    pending = []
    for number in range(1, 400):
        kind = MARKET if rng.random() < 0.1 else LIMIT
        account = f"acct-{rng.randrange(5)}"
        submitted = engine.submit(request(number, rng.choice((BUY, SELL)), rng.randint(95, 105), rng.randint(1, 20),
                                          symbol=rng.choice(("ABC", "XYZ")), account=account, kind=kind))
        pending.append(submitted.durable)
        if submitted.response.order.status in (NEW, PARTIAL):
            live.append((oid(number), account))
        if rng.random() < 0.15 and live:
            order_id, owner = live.pop(rng.randrange(len(live)))
            if engine.orders[order_id].status in (NEW, PARTIAL):
                pending.append(engine.cancel(order_id, owner).durable)
    await asyncio.gather(*pending)
    before = state(engine)
    assert before[0] > 400
    await engine.close()
    for commit in ("group", "per_order"):
        rebuilt = await opened(tmp_path, commit=commit)
        assert state(rebuilt) == before
        await rebuilt.close()


async def test_replay_refuses_a_log_it_did_not_write(tmp_path):
    write_records(tmp_path, [engine_pb2.EngineEvent(sequence=2).SerializeToString()])
    with pytest.raises(JournalCorrupt):
        MatchingEngine(tmp_path, settings()).recover()
    trade = engine_pb2.EngineEvent(sequence=1, trade=trading_pb2.Trade(maker_order_id=oid(1), taker_order_id=oid(2)))
    write_records(tmp_path, [trade.SerializeToString()])
    with pytest.raises(JournalCorrupt):
        MatchingEngine(tmp_path, settings()).recover()


@pytest.mark.parametrize("commit", ["group", "per_order"])
async def test_a_failed_write_is_unavailable_and_nothing_is_acknowledged(tmp_path, monkeypatch, commit):
    engine = await opened(tmp_path, commit=commit)
    await submit(engine, 1, SELL, 100, 10)
    subscriber = engine.stream(1)
    assert (await anext(subscriber)).event.sequence == 1

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "fdatasync", broken)
    lost = engine.submit(request(2, BUY, 100, 4))
    with pytest.raises(JournalFailed):
        await lost.durable
    monkeypatch.undo()
    with pytest.raises(JournalFailed):
        engine.submit(request(3))
    with pytest.raises(JournalFailed):
        engine.submit(request(2, BUY, 100, 4))  # the retry: its state is not durable
    with pytest.raises(JournalFailed):
        await engine.get_order(oid(1))
    with pytest.raises(JournalFailed):
        await anext(subscriber)  # the stream ends UNAVAILABLE
    await engine.close()
    rebuilt = await opened(tmp_path)
    assert rebuilt.sequence in (1, 3)  # the failed flush may or may not have reached the disk; nothing else did
    assert set(rebuilt.orders) <= {oid(1), oid(2)}
    await rebuilt.close()


async def test_closing_refuses_new_orders(tmp_path):
    engine = await opened(tmp_path)
    pending = engine.submit(request(1))
    await engine.close()
    assert pending.durable.done() and pending.durable.exception() is None  # flushed on close
    with pytest.raises(EngineClosed):
        engine.submit(request(2))


# ---------------------------------------------------------------------------------------------------- StreamEvents


async def collect(stream, count: int) -> list[engine_pb2.EngineEvent]:
    events = []
    async for response in stream:
        events.append(response.event)
        if len(events) == count:
            break
    return events


@pytest.mark.parametrize("commit", ["group", "per_order"])
async def test_stream_catches_up_from_file_and_memory_then_follows_live(tmp_path, commit):
    engine = await opened(tmp_path, commit=commit, recent_events=10, index_every=3)
    for number in range(1, 31):
        await submit(engine, number, BUY if number % 2 else SELL, 100, 3 if number % 3 else 7)
    total = engine.sequence
    written = [engine_pb2.EngineEvent.FromString(p) for p in await engine.journal.read(1, 10_000)]
    assert [e.sequence for e in written] == list(range(1, total + 1))
    for first in (0, 1, 2, 5, total - 12, total - 3, total):
        stream = engine.stream(first)
        events = await collect(stream, total - max(first, 1) + 1)
        assert events == written[max(first, 1) - 1:]
        follow = asyncio.ensure_future(collect(stream, 2))
        await asyncio.sleep(0)
        live = [await submit(engine, number, SELL, 200, 1) for number in (100 + 2 * first, 101 + 2 * first)]
        got = await asyncio.wait_for(follow, WAIT_S)
        assert [e.sequence for e in got] == [total + 1, total + 2]
        assert [e.accepted.order_id for e in got] == [answer.order.order_id for answer in live]
        total = engine.sequence
        written = [engine_pb2.EngineEvent.FromString(p) for p in await engine.journal.read(1, 10_000)]
        await stream.aclose()
    with pytest.raises(InvalidArgument) as raised:
        await anext(engine.stream(total + 2))
    assert raised.value.field == "from_sequence"
    await engine.close()


async def test_stream_has_no_gap_or_repeat_while_orders_keep_coming(tmp_path):
    """Subscribers that start from old, recent and future sequence numbers while a producer keeps submitting (group
    commit, a tiny ring: catch-up crosses from the file to memory to live under way) each see 1..N exactly once."""
    engine = await opened(tmp_path, recent_events=16, index_every=5)
    rng = random.Random(3)
    orders = 600

    async def produce() -> None:
        for number in range(1, orders + 1):
            submitted = engine.submit(request(number, rng.choice((BUY, SELL)), rng.randint(98, 102), rng.randint(1, 5)))
            if number % 7 == 0:
                await submitted.durable
            elif number % 3 == 0:
                await asyncio.sleep(0)

    async def follow(start_after: int) -> list[int]:
        while engine.journal.durable_sequence < start_after:
            await asyncio.sleep(0.001)
        sequences = []
        async with contextlib.aclosing(engine.stream(1)) as stream:
            async for response in stream:
                sequences.append(response.event.sequence)
                if len(sequences) % 50 == 0:
                    await asyncio.sleep(0)
                if sequences[-1] == last[0]:
                    break
        return sequences

    last = [-1]  # the sequence number of the final event, once it is given out
    producer = asyncio.ensure_future(produce())
    followers = [asyncio.ensure_future(follow(after)) for after in (0, 30, 200, 500)]
    await asyncio.wait_for(producer, WAIT_S)
    final = engine.submit(request(orders + 1, BUY, 1, 1))  # rests: one event, the last
    last[0] = engine.sequence
    await final.durable
    results = await asyncio.wait_for(asyncio.gather(*followers), WAIT_S)
    for sequences in results:
        assert sequences == list(range(1, engine.sequence + 1))
    await engine.close()


async def test_a_slow_subscriber_is_dropped(tmp_path):
    engine = await opened(tmp_path, stream_queue_events=3)
    dropped_before = REGISTRY.get_sample_value("casemesh_trading_engine_stream_dropped_total") or 0
    slow, fast = engine.stream(1), engine.stream(1)
    first = [asyncio.ensure_future(anext(slow)), asyncio.ensure_future(anext(fast))]
    await asyncio.sleep(0)
    await submit(engine, 1)
    assert [(await f).event.sequence for f in first] == [1, 1]
    assert REGISTRY.get_sample_value("casemesh_trading_engine_stream_subscribers") == 2
    following = asyncio.ensure_future(collect(fast, 5))
    for number in range(2, 7):
        await submit(engine, number)
    assert [e.sequence for e in await asyncio.wait_for(following, WAIT_S)] == [2, 3, 4, 5, 6]
    with pytest.raises(ResourceExhausted):
        await anext(slow)
    assert REGISTRY.get_sample_value("casemesh_trading_engine_stream_dropped_total") == dropped_before + 1
    assert REGISTRY.get_sample_value("casemesh_trading_engine_stream_subscribers") == 1
    await fast.aclose()
    await engine.close()


async def test_close_ends_streams(tmp_path):
    engine = await opened(tmp_path)
    stream = engine.stream(1)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await engine.close()
    with pytest.raises(EngineClosed):
        await waiting


# ---------------------------------------------------------------------------------- contract, settings, metrics


def test_contract():
    assert contract.is_symbol("A") and contract.is_symbol("ABCDEFGH")
    assert not any(contract.is_symbol(s) for s in ("", "ABCDEFGHI", "abc", "AB1", "AB\n", "ÄB"))
    assert contract.is_order_id("ord_" + "a2" * 12) and not contract.is_order_id("ord_" + "a1" * 12)
    assert not contract.is_order_id("ord_" + "a" * 24 + "\n")
    assert contract.is_id("acct-1_X") and not contract.is_id("a" * 65)
    assert contract.ID_RE.fullmatch("x" * 64) and contract.ORDER_ID_RE.fullmatch(oid(5))
    assert contract.trade_id("ABC", 42) == "ABC-42"
    assert (contract.MAX_PRICE_MINOR, contract.MAX_QUANTITY, contract.MAX_STREAM_SYMBOLS, contract.MAX_STREAM_DEPTH,
            contract.MAX_BOOK_DEPTH) == (10**12, 10**9, 32, 50, 1_000)
    assert all(c in contract.ORDER_ID_ALPHABET for c in oid(123)[4:])


def test_settings_and_definition():
    defaults = EngineSettings()
    assert (defaults.commit, defaults.recent_events, defaults.stream_queue_events, defaults.index_every,
            defaults.gc_freeze_orders, defaults.gil_switch_interval_ms) == ("group", 100_000, 10_000, 1_000, 20_000,
                                                                             0.5)
    for bad in ({"commit": "sometimes"}, {"recent_events": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            EngineSettings(**bad)
    assert DEFINITION.name == NAME == "trading-engine" and DEFINITION.grpc_services == (FULL_NAME,)
    assert DEFINITION.dependencies == ()
    assert DEFINITION.access.public == {"GetBook"}
    assert dict(DEFINITION.access.internal) == {"SubmitOrder": ("trading-gateway",),
                                                "CancelOrder": ("trading-gateway",),
                                                "GetOrder": ("trading-gateway",),
                                                "StreamEvents": ("trading-marketdata", "trading-gateway")}
    assert DEFINITION.access.methods() == set(engine_pb2.DESCRIPTOR.services_by_name[
        "MatchingEngineService"].methods_by_name)


async def test_metrics(tmp_path):
    engine = await opened(tmp_path)
    sample = REGISTRY.get_sample_value

    def accepted(side: str, kind: str) -> float:
        return sample("casemesh_trading_engine_orders_accepted_total", {"side": side, "type": kind}) or 0

    before = (accepted("buy", "limit"), accepted("sell", "market"), sample("casemesh_trading_engine_trades_total"),
              sample("casemesh_trading_engine_traded_shares_total"),
              sample("casemesh_trading_engine_ack_wait_seconds_count"))
    await submit(engine, 1, BUY, 100, 10)
    await submit(engine, 2, BUY, 100, 10, symbol="XYZ")
    await submit(engine, 3, SELL, quantity=4, kind=MARKET)
    assert accepted("buy", "limit") == before[0] + 2 and accepted("sell", "market") == before[1] + 1
    assert sample("casemesh_trading_engine_trades_total") == before[2] + 1
    assert sample("casemesh_trading_engine_traded_shares_total") == before[3] + 4
    assert sample("casemesh_trading_engine_ack_wait_seconds_count") == before[4] + 3
    assert sample("casemesh_trading_engine_sequence") == 4
    assert sample("casemesh_trading_engine_resting_orders", {"symbol": "ABC"}) == 1
    assert sample("casemesh_trading_engine_resting_orders", {"symbol": "XYZ"}) == 1
    assert sample("casemesh_trading_engine_replay_events") == 0
    assert metrics.ENGINE_STATE.source is not None
    await engine.close()
    rebuilt = await opened(tmp_path)
    assert sample("casemesh_trading_engine_replay_events") == 4
    await rebuilt.close()


# ---------------------------------------------------------------------------------------------------- real gRPC


async def _code(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_the_engine_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path,
                                 settings={NAME: {"commit": "per_order", "gc_freeze_orders": 0}})
    switch_interval_s = sys.getswitchinterval()
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        assert sys.getswitchinterval() == pytest.approx(0.000_5)  # gil_switch_interval_ms, while the engine runs
        stub = engine_pb2_grpc.MatchingEngineServiceStub(running.channel(NAME))
        resting = await stub.SubmitOrder(request(1, SELL, 100, 10), timeout=WAIT_S)
        assert resting.order.status == NEW and resting.order.accepted_sequence == 1
        taker = await stub.SubmitOrder(request(2, BUY, 101, 4), timeout=WAIT_S)
        assert [(t.maker_order_id, t.price_minor, t.quantity) for t in taker.trades] == [(oid(1), 100, 4)]
        retry = await stub.SubmitOrder(request(2, BUY, 101, 4), timeout=WAIT_S)
        assert retry.order == taker.order and not retry.trades
        code, details = await _code(stub.SubmitOrder(request(2, BUY, 102, 4), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        code, details = await _code(stub.SubmitOrder(request(3, quantity=0), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("quantity")

        got = await stub.GetOrder(engine_pb2.GetOrderRequest(order_id=oid(1)), timeout=WAIT_S)
        assert (got.order.filled_quantity, got.order.status) == (4, PARTIAL)
        code, _ = await _code(stub.GetOrder(engine_pb2.GetOrderRequest(order_id=oid(7)), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await _code(stub.CancelOrder(engine_pb2.CancelOrderRequest(order_id=oid(1), account_id="x"),
                                               timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await _code(stub.CancelOrder(engine_pb2.CancelOrderRequest(order_id=oid(2), account_id="acct-1"),
                                               timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        cancelled = await stub.CancelOrder(engine_pb2.CancelOrderRequest(order_id=oid(1), account_id="acct-1"),
                                           timeout=WAIT_S)
        assert cancelled.order.status == CANCELLED

        await stub.SubmitOrder(request(4, BUY, 99, 3), timeout=WAIT_S)
        book = await stub.GetBook(engine_pb2.GetBookRequest(symbol="ABC", include_orders=True), timeout=WAIT_S)
        assert [(b.price_minor, b.quantity) for b in book.bids] == [(99, 3)] and not book.asks
        assert book.sequence == 5
        code, details = await _code(stub.GetBook(engine_pb2.GetBookRequest(symbol="ABC", depth=5_000),
                                                 timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("depth")

        stream = stub.StreamEvents(engine_pb2.StreamEventsRequest(from_sequence=1), timeout=WAIT_S)
        sequences = []
        async for response in stream:
            sequences.append(response.event.sequence)
            if len(sequences) == 5:
                break
        stream.cancel()
        assert sequences == [1, 2, 3, 4, 5]
        code, details = await _code(stub.StreamEvents(engine_pb2.StreamEventsRequest(from_sequence=7),
                                                      timeout=WAIT_S).read())
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("from_sequence")

        anonymous = engine_pb2_grpc.MatchingEngineServiceStub(running.anonymous_channel(NAME))
        code, _ = await _code(anonymous.SubmitOrder(request(5), timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        public = await anonymous.GetBook(engine_pb2.GetBookRequest(symbol="ABC"), timeout=WAIT_S)
        assert public.sequence == 5
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

    assert sys.getswitchinterval() == switch_interval_s  # restored

    # the restarted engine (a new process would do the same) holds exactly what was acknowledged
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        stub = engine_pb2_grpc.MatchingEngineServiceStub(running.channel(NAME))
        book = await stub.GetBook(engine_pb2.GetBookRequest(symbol="ABC", include_orders=True), timeout=WAIT_S)
        assert book.sequence == 5 and [o.order_id for o in book.bid_orders] == [oid(4)]
        got = await stub.GetOrder(engine_pb2.GetOrderRequest(order_id=oid(1)), timeout=WAIT_S)
        assert (got.order.status, got.order.filled_quantity) == (CANCELLED, 4)
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

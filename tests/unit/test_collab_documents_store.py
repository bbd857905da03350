"""collab-documents' domain without gRPC: the authoritative Yjs document per document, duplicates, malformed and
oversized updates, pending (out-of-order) updates, watchers, awareness, the durable log with snapshots and
compaction, and CRDT convergence of random concurrent replicas through random deliveries and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import tempfile
from pathlib import Path

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemesh.services.collab.contract import TEXT_NAME
from casemesh.services.collab.documents import crdt
from casemesh.services.collab.documents.journal import DocumentJournal
from casemesh.services.collab.documents.store import (
    OVERFLOW,
    SHUTDOWN,
    AwarenessEvent,
    DocumentExists,
    DocumentStore,
    StoreObserver,
    WatchEnded,
    growth,
)
from casemesh.services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted

WAIT_S = 10.0  # generous: only a hang would reach it


class Replica:
    """An editor's pycrdt replica; ``updates`` collects the update of each local transaction."""

    def __init__(self, client_id: int) -> None:
        self.doc = pycrdt.Doc(client_id=client_id)
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self.updates: list[bytes] = []
        self._local = False
        self.doc.observe(self._observed)

    def _observed(self, event) -> None:
        if self._local:
            self.updates.append(event.update)

    def edit(self, change) -> bytes:
        """Run ``change(text)`` as one local transaction; its update."""
        self._local = True
        try:
            with self.doc.transaction():
                change(self.text)
        finally:
            self._local = False
        return self.updates[-1]

    def insert(self, index: int, chunk: str) -> bytes:
        return self.edit(lambda t: t.insert(index, chunk))

    def delete(self, start: int, stop: int) -> bytes:
        def change(t):
            del t[start:stop]
        return self.edit(change)

    def pull(self, store: DocumentStore, document_id: str) -> None:
        self.doc.apply_update(store.sync(document_id, self.doc.get_state()).update)

    def __str__(self) -> str:
        return str(self.text)


def assert_same(found, expected) -> None:
    """Two reads of a document hold the same document: metadata, sequence, text, state vector. (Not ``state_bytes``:
    how Yrs packs the same items into an encoding depends on the order it integrated them in.)"""
    found_info, expected_info = (dataclasses.replace(i, state_bytes=0) for i in (found.info, expected.info))
    assert found_info == expected_info
    assert crdt.decode_state_vector(found.state_vector) == crdt.decode_state_vector(expected.state_vector)
    assert state_text(found.state_update) == state_text(expected.state_update) == expected.info.text


def state_text(update: bytes) -> str:
    doc = pycrdt.Doc()
    text = doc.get(TEXT_NAME, type=pycrdt.Text)
    doc.apply_update(update)
    return str(text)


@contextlib.asynccontextmanager
async def running(journal=None, **kwargs):
    store = DocumentStore(journal, **kwargs)
    await store.start()
    try:
        yield store
    finally:
        async with asyncio.timeout(WAIT_S):
            await store.stop()


@contextlib.asynccontextmanager
async def on_disk(folder: Path, **kwargs):
    journal = DocumentJournal(folder)
    try:
        async with running(journal, **kwargs) as store:
            yield store, journal
    finally:
        journal.close()


async def drain(watcher, count: int) -> list:
    events: list = []
    async with asyncio.timeout(WAIT_S):
        while len(events) < count:
            events.extend(await watcher.next())
    return events


# -- create, get, sync ----------------------------------------------------------------------------------------------

async def test_create_get_and_sync():
    async with running() as store:
        created = await store.create("doc-1", "Notes", "hello")
        assert (created.sequence, created.text, created.editors) == (1, "hello", 0)
        assert created.state_bytes > len("hello")
        empty = await store.create("doc-2", "Empty")
        assert (empty.sequence, empty.text) == (0, "")
        with pytest.raises(DocumentExists):
            await store.create("doc-1", "Again", "other text")
        assert store.get("doc-1").info.text == "hello"

        found = store.get("doc-1", include_state=True)
        assert state_text(found.state_update) == "hello"
        assert len(found.state_update) == found.info.state_bytes
        assert crdt.decode_state_vector(found.state_vector) and store.get("doc-1").state_update is None

        replica = Replica(7)
        result = store.sync("doc-1", b"")
        assert (result.sequence, result.awareness) == (1, b"")
        replica.doc.apply_update(result.update)
        assert str(replica) == "hello"
        up_to_date = store.sync("doc-1", replica.doc.get_state())
        assert not crdt.adds_to(up_to_date.update, replica.doc.get_state())  # nothing the replica lacks

        for bad in (b"\xff", b"\x02\x01\x01", b"\x01\x01\x01junk"):
            with pytest.raises(InvalidArgument) as refused:
                store.sync("doc-1", bad)
            assert refused.value.field == "state_vector"
        with pytest.raises(NotFound):
            store.get("nope")
        with pytest.raises(NotFound):
            await store.apply_update("nope", replica.insert(0, "x"))


async def test_concurrent_creates_of_one_id_make_one_document(tmp_path):
    async with on_disk(tmp_path) as (store, journal):
        results = await asyncio.gather(*(store.create("same", f"title {i}") for i in range(5)), return_exceptions=True)
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert sum(isinstance(r, DocumentExists) for r in results) == 4
    async with on_disk(tmp_path) as (store, journal):
        assert store.document_count == 1


# -- updates: sequences, duplicates, malformed, size ----------------------------------------------------------------

async def test_duplicates_are_answered_and_not_logged(tmp_path):
    async with on_disk(tmp_path, snapshot_every_updates=0) as (store, journal):
        await store.create("d", "Doc", "hello")
        alice, bob = Replica(1), Replica(2)
        alice.pull(store, "d")
        bob.pull(store, "d")
        insert = alice.insert(5, " world")
        assert await store.apply_update("d", insert, "alice", "s1") == (2, False)
        assert await store.apply_update("d", insert, "alice", "s1") == (2, True)  # a retry
        # A pure delete changes the delete set, not the state vector: new the first time, a duplicate after.
        bob.pull(store, "d")
        delete = bob.delete(0, 2)
        assert await store.apply_update("d", delete) == (3, False)
        assert await store.apply_update("d", delete) == (3, True)
        # The same characters deleted concurrently by another replica: different bytes, nothing new.
        also = alice.delete(0, 1)
        assert also != delete
        assert await store.apply_update("d", also) == (3, True)
        # Duplicates in flight together with their original: one is new, the others wait for it to be durable.
        more = alice.insert(0, ">")
        results = await asyncio.gather(*(store.apply_update("d", more) for _ in range(4)))
        assert sorted(results) == [(4, False), (4, True), (4, True), (4, True)]
        assert store.get("d").info.text == ">llo world"
        assert journal.counts("d") == (4, 0)  # the initial text and three updates, nothing twice


async def test_malformed_updates_change_nothing(tmp_path):
    async with on_disk(tmp_path, snapshot_every_updates=0) as (store, journal):
        await store.create("d", "Doc", "hello")
        before = store.get("d", include_state=True)
        replica = Replica(3)
        replica.pull(store, "d")
        good = replica.insert(0, "abc")
        for bad in (b"garbage!", good[:-4], b"\x01", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"):
            with pytest.raises(InvalidArgument) as refused:
                await store.apply_update("d", bad)
            assert refused.value.field == "update"
        after = store.get("d", include_state=True)
        assert after.info == before.info and after.state_update == before.state_update
        assert journal.counts("d") == (1, 0)
        assert await store.apply_update("d", good) == (2, False)


async def test_fuzzed_updates_never_corrupt_the_document():
    """Random byte mutations of real updates: refused ones change nothing, accepted ones are logged in order."""
    rng = random.Random(6)
    async with running() as store:
        await store.create("d", "Doc", "0123456789")
        writer = Replica(11)
        writer.pull(store, "d")
        updates = [writer.insert(rng.randint(0, len(writer.text)), "ab") for _ in range(30)]
        for update in updates:
            await store.apply_update("d", update)
        watcher = store.watch("d", "fuzz")
        for _ in range(300):
            mutated = bytearray(rng.choice(updates))
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            before = store.get("d", include_state=True)
            try:
                result = await store.apply_update("d", bytes(mutated))
            except InvalidArgument:
                after = store.get("d", include_state=True)
                assert after.state_update == before.state_update and after.info.sequence == before.info.sequence
            else:
                assert result.sequence == before.info.sequence + (0 if result.duplicate else 1)
        last = store.get("d").info.sequence
        events = await drain(watcher, last - watcher.started_sequence) if last > watcher.started_sequence else []
        assert [e.sequence for e in events] == list(range(watcher.started_sequence + 1, last + 1))


async def test_state_size_limit_refuses_without_changing_the_document():
    async with running(max_state_bytes=6_000) as store:
        await store.create("d", "Doc")
        writer = Replica(5)
        accepted = refused = 0
        for i in range(40):
            update = writer.insert(len(writer.text), chr(ord("a") + i % 26) * 400)
            before = store.get("d", include_state=True)
            try:
                await store.apply_update("d", update)
                accepted += 1
            except ResourceExhausted:
                refused += 1
                after = store.get("d", include_state=True)
                assert after.state_update == before.state_update and after.info == before.info
                break
        assert accepted >= 10 and refused == 1
        state = store.get("d", include_state=True)
        assert state.info.state_bytes <= 6_000 and len(state.state_update) == state.info.state_bytes
        # Room for a small edit is still there: a fresh replica deletes a little and types a little.
        editor = Replica(6)
        editor.pull(store, "d")
        result = await store.apply_update("d", editor.delete(0, 10))
        assert not result.duplicate
        assert store.get("d").info.state_bytes <= 6_000


def test_the_growth_bound_holds_for_fragmenting_edits():
    """The size check's fast path relies on growth(): no update grows the encoded state by more."""
    rng = random.Random(3)
    server = pycrdt.Doc()
    server.get(TEXT_NAME, type=pycrdt.Text)
    replicas = [Replica(rng.randrange(1, 2**32)) for _ in range(3)]
    first = replicas[0].insert(0, "x" * 2_000)
    server.apply_update(first)
    size = len(server.get_update())
    worst = 0.0
    for _ in range(400):
        replica = rng.choice(replicas)
        replica.doc.apply_update(server.get_update(replica.doc.get_state()))
        n = len(replica.text)
        if rng.random() < 0.6 and n > 4:
            def scatter(t):
                for _ in range(rng.randint(1, 8)):
                    p = rng.randrange(len(t) - 1)
                    del t[p:p + 1]
            update = replica.edit(scatter)
        else:
            update = replica.insert(rng.randint(0, n), "y" * rng.randint(1, 3))
        server.apply_update(update)
        new = len(server.get_update())
        assert new - size <= growth(len(update))
        worst = max(worst, (new - size) / len(update))
        size = new
    assert worst < 16  # far below the bound's 64 bytes per byte


# -- pending (out-of-order) updates ---------------------------------------------------------------------------------

async def test_an_update_ahead_of_its_dependency_is_kept_logged_and_integrated_later(tmp_path):
    writer = Replica(21)
    first = writer.insert(0, "abc")
    second = writer.insert(1, "X")  # depends on the first
    deletion = writer.delete(2, 4)  # deletes "bc": structs of the first
    async with on_disk(tmp_path, snapshot_every_updates=2) as (store, journal):
        await store.create("d", "Doc")
        assert await store.apply_update("d", second) == (1, False)  # new, though Yjs cannot integrate it yet
        assert await store.apply_update("d", deletion) == (2, False)  # a delete of structs the document lacks
        assert (store.get("d").info.text, store.pending_updates("d")) == ("", 2)
        assert await store.apply_update("d", second) == (2, True)  # the same bytes while they wait: a duplicate
        assert journal.counts("d") == (0, 1)  # compacted into a snapshot that keeps them aside
    async with on_disk(tmp_path, snapshot_every_updates=2) as (store, journal):
        assert (store.get("d").info.text, store.pending_updates("d")) == ("", 2)
        assert await store.apply_update("d", second) == (2, True)
        assert await store.apply_update("d", first) == (3, False)
        assert (store.get("d").info.text, store.pending_updates("d")) == ("aX", 0)
    async with on_disk(tmp_path) as (store, journal):
        assert store.get("d").info.text == "aX"
        assert store.get("d").info.sequence == 3


async def test_updates_yrs_holds_aside_are_integrated_once_they_can_be():
    """Regression: Yrs 0.28 retries the structs it holds aside once per update, so of three updates of one client
    arriving newest first, the oldest integrated the middle one but left the newest aside although its origin was
    there (the document lacked "abc"; built in causal order it has it). The store applies them again until nothing
    more integrates. (Client 100's first structs never arrive: Yrs integrates these anyway, their origins known.)"""
    seed = bytes.fromhex("0101f0ece8bfc080e20500040107636f6e74656e740973656564207465787400")  # "seed text"
    newest = bytes.fromhex("01016408c4640464050361626300")
    middle = bytes.fromhex("01016407c4f0ece8bfc080e20504f0ece8bfc080e20505016100")
    oldest = bytes.fromhex("01016403c4f0ece8bfc080e20506f0ece8bfc080e20507046162636400")
    causal = pycrdt.Doc()
    for update in (seed, oldest, middle, newest):
        causal.apply_update(update)
    expected = str(causal.get(TEXT_NAME, type=pycrdt.Text))
    assert expected == "seed ateababccdxt"
    async with running() as store:
        await store.create("d", "Doc")
        for sequence, update in enumerate((seed, newest, middle, oldest), start=1):
            assert await store.apply_update("d", update) == (sequence, False)
        assert store.get("d").info.text == expected
        assert state_text(store.sync("d", b"").update) == expected
        for update in (newest, middle, oldest):
            assert await store.apply_update("d", update) == (4, True)


async def test_a_gap_that_never_fills_keeps_a_client_waiting_and_the_others_going():
    """A client's first update never arrives (refused, say): their later ones wait for ever, as in Yjs; everyone else's
    edits go on, at a bounded cost (SETTLE_LIMIT)."""
    async with running() as store:
        await store.create("d", "Doc", "base")
        lost, other = Replica(70), Replica(71)
        lost.pull(store, "d")
        other.pull(store, "d")
        lost.insert(len(lost.text), " never sent")  # the later ones come after it: they need it
        for i in range(100):
            assert not (await store.apply_update("d", lost.insert(len(lost.text), "L"))).duplicate
            assert not (await store.apply_update("d", other.insert(0, "o"))).duplicate
        assert store.pending_updates("d") == 100
        assert store.get("d").info.text == "o" * 100 + "base"


# -- watchers -------------------------------------------------------------------------------------------------------

async def test_watchers_get_every_update_in_sequence_order():
    async with running() as store:
        await store.create("d", "Doc", "start")
        replicas = [Replica(30 + i) for i in range(3)]
        for replica in replicas:
            replica.pull(store, "d")
        watcher = store.watch("d", "editor-1")
        assert watcher.started_sequence == 1
        updates = [replica.insert(0, f"{i}") for i in range(10) for replica in replicas]
        results = await asyncio.gather(*(store.apply_update("d", u, f"o{i}", "s") for i, u in enumerate(updates)))
        assert sorted(r.sequence for r in results) == list(range(2, 32))
        events = await drain(watcher, 30)
        assert [e.sequence for e in events] == list(range(2, 32))
        by_sequence = {r.sequence: u for r, u in zip(results, updates)}
        assert all(e.update == by_sequence[e.sequence] for e in events)
        late = store.watch("d", "editor-2")  # starts after everything committed so far
        assert late.started_sequence == 31
        await store.apply_update("d", replicas[0].insert(0, "!"))
        assert [e.sequence for e in await drain(late, 1)] == [32]


async def test_a_watcher_that_falls_behind_is_dropped():
    observer = CountingObserver()
    async with running(watch_backlog=5, observer=observer) as store:
        await store.create("d", "Doc")
        slow, fast = store.watch("d", "slow"), store.watch("d", "fast")
        writer = Replica(40)
        for i in range(5):
            await store.apply_update("d", writer.insert(0, "x"))
        assert len(await drain(fast, 5)) == 5
        assert observer.watcher_count == 2
        await store.apply_update("d", writer.insert(0, "y"))  # the sixth message the slow one has not taken
        with pytest.raises(WatchEnded) as ended:
            await slow.next()
        assert ended.value.reason == OVERFLOW
        assert observer.dropped == 1 and observer.watcher_count == 1
        assert [e.sequence for e in await drain(fast, 1)] == [6]
        store.unwatch(slow)  # idempotent
        store.unwatch(fast)
        assert observer.watcher_count == 0


async def test_stopping_ends_every_watch():
    store = DocumentStore(None)
    await store.start()
    await store.create("d", "Doc")
    watcher = store.watch("d", "editor")
    waiting = asyncio.create_task(watcher.next())
    await asyncio.sleep(0)
    await store.stop()
    with pytest.raises(WatchEnded) as ended:
        await asyncio.wait_for(waiting, WAIT_S)
    assert ended.value.reason == SHUTDOWN


# -- awareness ------------------------------------------------------------------------------------------------------

def awareness_update(client_id: int, clock: int, state) -> bytes:
    import json
    body = b"" if state is None else json.dumps(state).encode()
    return bytes([1]) + _var(client_id) + _var(clock) + _var(len(body)) + body


def _var(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def test_awareness_is_merged_relayed_counted_and_expired():
    async with running() as store:
        await store.create("d", "Doc")
        watcher = store.watch("d", "editor-1")
        # What a y-protocols client sends (pycrdt's own encoder).
        client = pycrdt.Awareness(pycrdt.Doc(client_id=501))
        client.set_local_state({"user": "alice", "cursor": 3})
        assert store.apply_awareness("d", client.encode_awareness_update([501]), "session-a")
        assert store.apply_awareness("d", awareness_update(502, 1, {"user": "alice2"}), "session-a")
        assert store.apply_awareness("d", awareness_update(600, 4, {"user": "bob"}), "session-b")
        assert not store.apply_awareness("d", awareness_update(600, 2, {"user": "old"}), "session-b")  # stale clock
        assert store.get("d").info.editors == 2  # two sessions, three awareness clients
        synced = store.sync("d", b"")
        assert {e.client_id for e in crdt.decode_awareness(synced.awareness)} == {501, 502, 600}
        events = await drain(watcher, 3)
        assert all(isinstance(e, AwarenessEvent) for e in events)
        assert [e.session_id for e in events] == ["session-a", "session-a", "session-b"]

        for bad in (b"", b"\x01", b"\x02\x05\x01\x02{}\x06", b"\x01\x05\x01\x03abc", awareness_update(7, 1, {}) + b"x"):
            with pytest.raises(InvalidArgument) as refused:
                store.apply_awareness("d", bad, "session-c")
            assert refused.value.field == "update"
        assert 5 not in {e.client_id for e in crdt.decode_awareness(store.sync("d", b"").awareness)}  # nothing merged
        assert store.get("d").info.editors == 2

        assert store.end_session("d", "session-a") == 2
        assert store.get("d").info.editors == 1
        removal = (await drain(watcher, 1))[0]
        assert removal.session_id == "session-a"
        assert {(e.client_id, e.state) for e in crdt.decode_awareness(removal.update)} == {(501, None), (502, None)}

        assert store.expire_awareness(now_ms=10**15) == 1  # bob timed out
        expired = (await drain(watcher, 1))[0]
        assert expired.session_id == "" and crdt.decode_awareness(expired.update)[0].state is None
        assert store.sync("d", b"").awareness == b"" and store.get("d").info.editors == 0


# -- the log: compaction, recovery, failed commits ------------------------------------------------------------------

async def test_snapshots_compact_the_log_and_a_reopened_store_is_the_same(tmp_path):
    writer = Replica(50)
    async with on_disk(tmp_path, snapshot_every_updates=5) as (store, journal):
        await store.create("d", "Doc", "base")
        await store.create("other", "Other")
        writer.pull(store, "d")
        for i in range(12):
            await store.apply_update("d", writer.insert(len(writer.text), f" {i}"), f"origin-{i}", "s")
        before = store.get("d", include_state=True)
        assert before.info.sequence == 13
        assert journal.counts("d") == (3, 1)  # a snapshot at 10, updates 11 to 13 after it
    async with on_disk(tmp_path, snapshot_every_updates=5) as (store, journal):
        assert store.document_count == 2
        after = store.get("d", include_state=True)
        assert_same(after, before)
        assert after.info.text == str(writer)
        assert await store.apply_update("d", writer.insert(0, ">")) == (14, False)
        assert await store.apply_update("d", writer.updates[3]) == (14, True)  # replayed updates are known
    async with on_disk(tmp_path, snapshot_every_updates=0) as (store, journal):
        await store.apply_update("d", writer.insert(0, ">"))
        assert journal.counts("d") == (5, 1)  # never compacted again
        assert store.get("d").info.text == str(writer)


class FlakyJournal(DocumentJournal):
    """A real journal whose disk refuses commits while ``failing``."""

    failing = False

    def append(self, documents, updates, snapshots):
        if self.failing:
            raise OSError(28, "No space left on device")
        super().append(documents, updates, snapshots)


async def test_a_failed_commit_acknowledges_nothing_and_reloads_the_document(tmp_path):
    journal = FlakyJournal(tmp_path)
    try:
        async with running(journal) as store:
            await store.create("d", "Doc", "hello")
            watcher = store.watch("d", "editor")
            writer = Replica(60)
            writer.pull(store, "d")
            journal.failing = True
            updates = [writer.insert(0, "a"), writer.insert(0, "b")]
            results = await asyncio.gather(*(store.apply_update("d", u) for u in updates), return_exceptions=True)
            assert all(isinstance(r, OSError) for r in results)
            assert store.get("d").info.text == "hello" and store.get("d").info.sequence == 1
            journal.failing = False
            assert await store.apply_update("d", updates[0]) == (2, False)  # not a duplicate: it was never applied
            assert [e.sequence for e in await drain(watcher, 1)] == [2]
    finally:
        journal.close()


class CountingObserver(StoreObserver):
    def __init__(self) -> None:
        self.watcher_count = 0
        self.dropped = 0

    def watchers(self, delta: int) -> None:
        self.watcher_count += delta

    def watcher_dropped(self) -> None:
        self.dropped += 1


# -- convergence: random concurrent replicas, random deliveries, a restart ------------------------------------------

@st.composite
def scenarios(draw):
    """Edits of three replicas (some after pulling the store), then the order the store receives their updates in
    (with duplicates), and the point where the store restarts."""
    steps = draw(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["insert", "delete", "pull"]),
                                     st.integers(0, 10_000), st.integers(1, 4)), min_size=1, max_size=14))
    return steps, random.Random(draw(st.integers(0, 2**32))), draw(st.integers(0, 100)), draw(st.integers(1, 4))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_replicas_converge_through_any_delivery_order_and_a_restart(scenario):
    steps, rng, restart_at_percent, snapshot_every = scenario
    with tempfile.TemporaryDirectory(prefix="collab-docs-") as folder:
        asyncio.run(_converge(Path(folder), steps, rng, restart_at_percent, snapshot_every))


async def _converge(folder: Path, steps, rng: random.Random, restart_at_percent: int, snapshot_every: int) -> None:
    replicas = [Replica(100 + i) for i in range(3)]
    journal = DocumentJournal(folder)
    store = DocumentStore(journal, snapshot_every_updates=snapshot_every, max_commit_batch=3)
    await store.start()
    await store.create("d", "Doc", "seed text")
    for replica in replicas:
        replica.pull(store, "d")
    in_flight: list[bytes] = []
    for who, kind, position, length in steps:
        replica = replicas[who]
        n = len(replica.text)
        if kind == "pull":  # the replica catches up with what reached the store so far: causal dependencies
            replica.pull(store, "d")
        elif kind == "delete" and n:
            start = position % n
            in_flight.append(replica.delete(start, min(n, start + length)))
        else:
            in_flight.append(replica.insert(position % (n + 1), "abcdefgh"[:length]))
        if rng.random() < 0.3 and in_flight:  # some updates reach the store before the later edits are made
            await store.apply_update("d", in_flight.pop(rng.randrange(len(in_flight))))
    deliveries = in_flight + [u for u in in_flight if rng.random() < 0.3]  # some twice
    rng.shuffle(deliveries)
    restart_at = len(deliveries) * restart_at_percent // 100
    for i, update in enumerate(deliveries):
        if i == restart_at:
            before = store.get("d", include_state=True)
            await store.stop()
            journal.close()
            journal = DocumentJournal(folder)
            store = DocumentStore(journal, snapshot_every_updates=snapshot_every, max_commit_batch=3)
            await store.start()
            assert_same(store.get("d", include_state=True), before)
        batch = [store.apply_update("d", update)]
        if rng.random() < 0.5:  # concurrently with its neighbour, in one group commit
            batch.append(store.apply_update("d", rng.choice(deliveries)))
        await asyncio.gather(*batch)
    final = store.get("d", include_state=True)
    assert store.pending_updates("d") == 0  # every dependency arrived
    for replica in replicas:
        replica.pull(store, "d")
        assert str(replica) == final.info.text
        assert not crdt.adds_to(final.state_update, replica.doc.get_state())
    await store.stop()
    journal.close()
    journal = DocumentJournal(folder)
    reopened = DocumentStore(journal, snapshot_every_updates=snapshot_every)
    await reopened.start()
    assert_same(reopened.get("d", include_state=True), final)
    await reopened.stop()
    journal.close()

"""The editor servers' relay (services/collab/editor/broadcaster.py) without gRPC: a fake Watch source, fake sessions.

Window 0 relays each update as it comes and skips its author; a window above 0 merges a burst into one RemoteUpdate
per session (origins in sequence order, sequence the last one's) whose merged update gives the same text as the
updates one by one; a session whose queue overflows is ended with RESOURCE_EXHAUSTED while the others go on; a broken
watch ends the document's sessions with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pycrdt
import pytest

from casemesh.collab.v1 import editor_pb2, sync_pb2
from casemesh.services.collab.contract import TEXT_NAME
from casemesh.services.collab.editor.broadcaster import Batch, Broadcaster, WatchFailed
from casemesh.services.collab.editor.metrics import EditorMetrics
from casemesh.services.collab.editor.session import EditorSession
from casemesh.services.collab.editor.settings import EditorSettings
from casemesh.services.runtime.errors import ResourceExhausted

WAIT_S = 30.0


class FakeWatch:
    """A Watch source: each opened stream yields what is put in its queue (an exception is raised, ``None`` ends it)."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.queues: list[asyncio.Queue] = []
        self.closed = 0

    def open(self, document_id: str):
        self.opened.append(document_id)
        queue: asyncio.Queue = asyncio.Queue()
        self.queues.append(queue)
        return self._stream(queue)

    async def _stream(self, queue: asyncio.Queue):
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed += 1

    async def put(self, *events, stream: int = -1) -> None:
        """Put ``events`` in a stream's queue (the last opened; waits until the watch task opened it)."""
        await eventually(lambda: len(self.queues) > max(stream, 0), "the watch to be opened")
        for event in events:
            self.queues[stream].put_nowait(event)


class FakeSession:
    """Records what the broadcaster offers; skips its own updates as EditorSession does."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.batches: list[Batch] = []
        self.awareness: list[bytes] = []
        self.ended: tuple[grpc.StatusCode, str, str] | None = None

    def offer_remote(self, batch: Batch) -> bool:
        if len(batch.authors) == 1 and self.session_id in batch.authors:
            return False
        self.batches.append(batch)
        return True

    def offer_awareness(self, frame: editor_pb2.EditResponse) -> bool:
        self.awareness.append(frame.awareness.update)
        return True

    def end(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        if self.ended is None:
            self.ended = (code, message, reason)

    def sequences(self) -> list[int]:
        return [b.last_sequence for b in self.batches]


def started(sequence: int = 0) -> sync_pb2.WatchResponse:
    return sync_pb2.WatchResponse(started=sync_pb2.WatchStarted(sequence=sequence))


def applied(sequence: int, update: bytes, session_id: str, origin: str = "") -> sync_pb2.WatchResponse:
    return sync_pb2.WatchResponse(update=sync_pb2.AppliedUpdate(
        sequence=sequence, update=update, origin=origin or f"o{sequence}", session_id=session_id,
        applied_at_unix_ns=1_700_000_000_000_000_000 + sequence))


class Replica:
    """A pycrdt document whose local edits are captured as Yjs updates (one per edit)."""

    def __init__(self, client_id: int) -> None:
        self.doc = pycrdt.Doc(client_id=client_id)
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self._capture: list[bytes] | None = None
        self.doc.observe(lambda event: self._capture.append(event.update) if self._capture is not None else None)

    def edit(self, change) -> bytes:
        self._capture = []
        try:
            change(self.text)
        finally:
            captured, self._capture = self._capture, None
        assert len(captured) == 1
        return captured[0]

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)


def broadcaster(source: FakeWatch, window_ms: float, **kwargs) -> Broadcaster:
    return Broadcaster("collab-editor-t", source.open, window_ms=window_ms, linger_ms=kwargs.pop("linger_ms", 0),
                       max_per_document=kwargs.pop("max_per_document", 100), metrics=EditorMetrics("collab-editor-t"))


async def eventually(check, what: str, timeout_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def concurrent_updates(count: int, seed: int = 7) -> tuple[list[tuple[str, bytes]], str]:
    """``count`` updates by three replicas editing concurrently (inserts and deletes), each made after the replica saw
    the others' earlier ones; returns ``[(author, update)]`` in the order a server would apply them, and the text."""
    rng = random.Random(seed)
    replicas = {name: Replica(client_id=i + 1) for i, name in enumerate(("s-a", "s-b", "s-c"))}
    made: list[tuple[str, bytes]] = []
    for _ in range(count):
        author = rng.choice(list(replicas))
        replica = replicas[author]

        def change(text: pycrdt.Text) -> None:
            if len(text) > 3 and rng.random() < 0.3:
                start = rng.randrange(len(text) - 1)
                del text[start:start + rng.randint(1, 2)]
            else:
                text.insert(rng.randrange(len(text) + 1), rng.choice(["x", "yz", "hello ", "é"]))

        update = replica.edit(change)
        made.append((author, update))
        for name, other in replicas.items():  # the others see it at once (so later edits depend on earlier ones)
            if name != author:
                other.apply(update)
    texts = {str(r.text) for r in replicas.values()}
    assert len(texts) == 1
    return made, texts.pop()


async def test_window_0_relays_each_update_as_it_comes_and_skips_its_author():
    source = FakeWatch()
    b = broadcaster(source, window_ms=0)
    a, c = FakeSession("s-a"), FakeSession("s-c")
    watch = b.subscribe("doc-1", a)
    b.subscribe("doc-1", c)
    await source.put(started(10))
    assert await asyncio.wait_for(watch.ready(), WAIT_S) == 10
    assert b.watch_of("doc-1") is watch and source.opened == ["doc-1"]  # one watch per document
    made, _ = concurrent_updates(6)
    for i, (author, update) in enumerate(made):
        await source.put(applied(11 + i, update, author))
    await eventually(lambda: len(a.batches) + len(c.batches) >= sum((author != "s-a") + (author != "s-c") for author, _ in made),
                     "every update relayed")
    for session in (a, c):
        expected = [11 + i for i, (author, _) in enumerate(made) if author != session.session_id]
        assert session.sequences() == expected
        for batch in session.batches:
            assert batch.updates == 1 and batch.first_sequence == batch.last_sequence
            i = batch.last_sequence - 11
            remote = batch.frame.remote
            assert remote.update == made[i][1] and list(remote.origins) == [f"o{batch.last_sequence}"]
            assert remote.sequence == batch.last_sequence
    assert a.ended is None and c.ended is None


async def test_a_window_merges_a_burst_into_one_frame_per_session_with_origins_in_order_and_the_same_text():
    source = FakeWatch()
    b = broadcaster(source, window_ms=1_000)  # long: the burst below certainly falls within one window
    a, c, reader = FakeSession("s-a"), FakeSession("s-c"), FakeSession("s-reader")
    watch = b.subscribe("doc-2", a)
    b.subscribe("doc-2", c)
    b.subscribe("doc-2", reader)
    await source.put(started(0))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    made, text = concurrent_updates(40)

    # Leading edge: the first update after a quiet window goes out at once, alone.
    await source.put(applied(1, made[0][1], made[0][0]))
    await eventually(lambda: len(reader.batches) == 1, "the first update")
    assert reader.batches[0].updates == 1
    # The rest arrive within the window: one more frame per session, all 39 merged.
    for i, (author, update) in enumerate(made[1:], start=2):
        await source.put(applied(i, update, author))
    await eventually(lambda: len(reader.batches) == 2, "the merged frame", timeout_s=WAIT_S)
    await asyncio.sleep(0.05)
    assert len(reader.batches) == 2
    merged = reader.batches[1]
    assert merged.updates == 39 and (merged.first_sequence, merged.last_sequence) == (2, 40)
    assert merged.frame.remote.sequence == 40
    assert list(merged.frame.remote.origins) == [f"o{i}" for i in range(2, 41)]
    assert merged.authors == {author for author, _ in made[1:]}
    # Sessions whose own updates are in the batch get it too (it holds the others' as well): one frame each.
    assert [len(s.batches) for s in (a, c)] == [1 + (made[0][0] != "s-a"), 1 + (made[0][0] != "s-c")]
    assert a.batches[-1] is c.batches[-1] is merged  # one frame object shared by every session

    # Merged or one by one, a fresh replica ends with the same text.
    one_by_one, at_once = Replica(100), Replica(101)
    for _, update in made:
        one_by_one.apply(update)
    at_once.apply(reader.batches[0].frame.remote.update)
    at_once.apply(merged.frame.remote.update)
    assert str(one_by_one.text) == str(at_once.text) == text


async def test_a_batch_made_only_of_a_sessions_own_updates_is_not_echoed_to_it():
    source = FakeWatch()
    b = broadcaster(source, window_ms=1_000)
    a, c = FakeSession("s-a"), FakeSession("s-c")
    watch = b.subscribe("doc-3", a)
    b.subscribe("doc-3", c)
    await source.put(started(0))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    writer = Replica(1)
    updates = [writer.edit(lambda t, i=i: t.insert(len(t), f"{i} ")) for i in range(5)]
    for i, update in enumerate(updates, start=1):  # all by s-a: one leading frame, then one merged frame of four
        await source.put(applied(i, update, "s-a"))
    await eventually(lambda: len(c.batches) >= 1 and c.batches[-1].last_sequence == 5, "c's frames")
    assert a.batches == []
    assert sum(batch.updates for batch in c.batches) == 5


async def test_awareness_is_relayed_at_once_to_every_session_but_its_author():
    source = FakeWatch()
    b = broadcaster(source, window_ms=1_000)
    a, c = FakeSession("s-a"), FakeSession("s-c")
    watch = b.subscribe("doc-4", a)
    b.subscribe("doc-4", c)
    await source.put(started(0), sync_pb2.WatchResponse(awareness=sync_pb2.AwarenessChange(update=b"from-a", session_id="s-a")),
               sync_pb2.WatchResponse(awareness=sync_pb2.AwarenessChange(update=b"timed-out", session_id="")))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    await eventually(lambda: len(c.awareness) == 2, "the awareness changes")
    assert c.awareness == [b"from-a", b"timed-out"] and a.awareness == [b"timed-out"]


def session(settings: EditorSettings, session_id: str = "s-slow") -> EditorSession:
    return EditorSession(session_id, "doc-5", "user-1", b"", "collab-editor-t", documents=None, settings=settings,
                         metrics=EditorMetrics("collab-editor-t"), on_end=lambda s: None)


async def test_a_session_whose_queue_overflows_is_ended_with_resource_exhausted_and_the_others_go_on():
    source = FakeWatch()
    b = broadcaster(source, window_ms=0)
    slow = session(EditorSettings(max_session_queue=16))  # nothing writes its queue: a client that does not read
    fast = FakeSession("s-fast")
    watch = b.subscribe("doc-5", slow)
    b.subscribe("doc-5", fast)
    await source.put(started(0))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    writer = Replica(9)
    for i in range(1, 31):
        await source.put(applied(i, writer.edit(lambda t, i=i: t.insert(len(t), str(i % 10))), "s-writer"))
    await eventually(lambda: len(fast.batches) == 30, "the fast session's frames")
    assert slow.ended is not None and slow.ended.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert slow.ended.reason == "slow_consumer"
    assert fast.ended is None and fast.sequences() == list(range(1, 31))


async def test_a_session_queue_is_also_bounded_in_bytes():
    settings = EditorSettings(max_session_queue=1_000, max_session_queue_bytes=9 * 1024 * 1024 + 1024)
    s = session(settings)
    big = Batch(frame=editor_pb2.EditResponse(), first_sequence=1, last_sequence=1, authors=frozenset({"x"}),
                applied=(("x", 0),), size_bytes=4 * 1024 * 1024)
    assert s.offer_remote(big) and s.offer_remote(Batch(big.frame, 2, 2, big.authors, big.applied, big.size_bytes))
    assert not s.offer_remote(Batch(big.frame, 3, 3, big.authors, big.applied, big.size_bytes))
    assert s.ended.code == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_broken_watch_ends_the_documents_sessions_with_unavailable_and_the_next_join_watches_again():
    source = FakeWatch()
    b = broadcaster(source, window_ms=20)
    a, c = FakeSession("s-a"), FakeSession("s-c")
    watch = b.subscribe("doc-6", a)
    b.subscribe("doc-6", c)
    await source.put(started(0))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    await source.put(grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "restarting"))
    await eventually(lambda: a.ended is not None and c.ended is not None, "the sessions' end")
    assert a.ended[0] == c.ended[0] == grpc.StatusCode.UNAVAILABLE and a.ended[2] == "watch_lost"
    assert "state vector" in a.ended[1]
    assert b.watch_of("doc-6") is None
    again = b.subscribe("doc-6", FakeSession("s-d"))
    await source.put(started(3), stream=1)
    assert await asyncio.wait_for(again.ready(), WAIT_S) == 3
    assert again is not watch and source.opened == ["doc-6", "doc-6"]


async def test_a_gap_in_the_sequences_ends_the_sessions_and_a_missing_document_ends_them_with_not_found():
    source = FakeWatch()
    b = broadcaster(source, window_ms=0)
    a = FakeSession("s-a")
    watch = b.subscribe("doc-7", a)
    await source.put(started(4), applied(5, b"\x00\x00", "s-x"), applied(7, b"\x00\x00", "s-x"))
    await asyncio.wait_for(watch.ready(), WAIT_S)
    await eventually(lambda: a.ended is not None, "the end")
    assert a.ended[0] == grpc.StatusCode.UNAVAILABLE and a.sequences() == [5]

    missing = FakeSession("s-m")
    watch = b.subscribe("no-such-doc", missing)
    await source.put(grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                          "no such document"), stream=1)
    with pytest.raises(WatchFailed) as failed:
        await asyncio.wait_for(watch.ready(), WAIT_S)
    assert failed.value.code == grpc.StatusCode.NOT_FOUND
    assert missing.ended[0] == grpc.StatusCode.NOT_FOUND and missing.ended[2] == "not_found"


async def test_the_editors_per_document_bound_and_the_watch_closes_when_the_last_session_leaves():
    source = FakeWatch()
    b = broadcaster(source, window_ms=0, max_per_document=2)
    a, c = FakeSession("s-a"), FakeSession("s-c")
    watch = b.subscribe("doc-8", a)
    b.subscribe("doc-8", c)
    with pytest.raises(ResourceExhausted):
        b.subscribe("doc-8", FakeSession("s-third"))
    b.subscribe("doc-9", FakeSession("s-other"))  # another document is not affected
    await source.put(started(0), stream=0)
    await asyncio.wait_for(watch.ready(), WAIT_S)
    b.leave(watch, a)
    assert b.watch_of("doc-8") is watch
    b.leave(watch, c)  # the last one (linger 0): the watch closes
    assert b.watch_of("doc-8") is None and watch.closed
    await eventually(lambda: source.closed >= 1, "the stream's end")
    assert a.ended is None and c.ended is None
    await b.close()

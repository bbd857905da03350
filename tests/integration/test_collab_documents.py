"""collab-documents through real gRPC on 127.0.0.1 (served in this process), with pycrdt replicas as the editors.

- CreateDocument / GetDocument: a created document reads back (text, whole state, state vector); a taken ID is
  ALREADY_EXISTS; an unknown one NOT_FOUND.
- Every bad input is INVALID_ARGUMENT naming its field, as documents.proto and sync.proto say.
- ApplyUpdate is durable when it answers (a restarted server on the same data dir has it) and Watch delivers every
  update in sequence order, without gaps, starting after the sequence ``started`` names; Watch ends UNAVAILABLE on
  shutdown.
- A watcher that calls Sync after ``started`` misses nothing, while another editor keeps writing.
- Awareness reaches watchers and Sync; the internal side refuses unidentified callers.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import pycrdt
import pytest

from casemesh.collab.v1 import documents_pb2, documents_pb2_grpc, sync_pb2, sync_pb2_grpc
from casemesh.harness.mesh import free_port
from casemesh.services.catalog import definitions
from casemesh.services.collab.contract import MAX_INITIAL_TEXT_BYTES, MAX_UPDATE_BYTES, TEXT_NAME
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .conftest import start_mesh

NAME = "collab-documents"
WAIT_S = 60.0  # only a hang would reach it (a loaded 2-core machine)


def topology(data_dir: Path, **settings) -> Topology:
    return Topology(services={NAME: Endpoint(address=f"127.0.0.1:{free_port()}")}, data_dir=str(data_dir),
                    settings={NAME: settings}, server=ServerPolicy(grace_s=0.5))


class Running:
    """collab-documents served in this process; the stubs carry the test identity (allowed on every method)."""

    def __init__(self, mesh, stop, task):
        self.mesh, self._stop, self._task = mesh, stop, task
        self.documents = documents_pb2_grpc.DocumentServiceStub(mesh.channel(NAME))
        self.sync = sync_pb2_grpc.DocumentSyncServiceStub(mesh.channel(NAME))
        self.anonymous_sync = sync_pb2_grpc.DocumentSyncServiceStub(mesh.anonymous_channel(NAME))

    @classmethod
    async def start(cls, topo: Topology) -> Running:
        return cls(*await start_mesh(definitions([NAME]), topo))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, WAIT_S)
        await self.mesh.close()


@contextlib.asynccontextmanager
async def serving(topo: Topology):
    running = await Running.start(topo)
    try:
        yield running
    finally:
        await running.stop()


class Replica:
    """An editor's pycrdt replica; ``edit`` returns the update of one local change."""

    def __init__(self, client_id: int) -> None:
        self.doc = pycrdt.Doc(client_id=client_id)
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self._captured: list[bytes] = []
        self.doc.observe(lambda event: self._captured.append(event.update))

    def insert(self, index: int, chunk: str) -> bytes:
        self._captured.clear()
        self.text.insert(index, chunk)
        return self._captured[-1]

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def __str__(self) -> str:
        return str(self.text)


class Watch:
    """A Watch call read in the background: ``started`` (the sequence), then ``updates`` and ``awareness`` as they come."""

    def __init__(self, stub: sync_pb2_grpc.DocumentSyncServiceStub, document_id: str, watcher: str = "collab-editor-1"):
        self.call = stub.Watch(sync_pb2.WatchRequest(document_id=document_id, watcher=watcher))
        self.started: int | None = None
        self.updates: list[sync_pb2.AppliedUpdate] = []
        self.awareness: list[sync_pb2.AwarenessChange] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self._started = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for response in self.call:
                kind = response.WhichOneof("event")
                if kind == "started":
                    self.started = response.started.sequence
                    self._started.set()
                elif kind == "update":
                    self.updates.append(response.update)
                else:
                    self.awareness.append(response.awareness)
            self.code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            self.code, self.details = error.code(), error.details() or ""
        finally:
            self._started.set()

    async def wait_started(self) -> int:
        await asyncio.wait_for(self._started.wait(), WAIT_S)
        assert self.started is not None, f"the watch ended before it started: {self.code} {self.details}"
        return self.started

    async def wait_for(self, sequence: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while not self.updates or self.updates[-1].sequence < sequence:
                assert self.code is None, f"the watch ended: {self.code} {self.details}"
                await asyncio.sleep(0.01)

    async def ended(self) -> grpc.StatusCode:
        await asyncio.wait_for(asyncio.shield(self._task), WAIT_S)
        return self.code

    def cancel(self) -> None:
        self.call.cancel()


async def invalid(call, field: str) -> None:
    """``call`` (awaitable, or a stream to read) fails with INVALID_ARGUMENT naming ``field``."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert refused.value.details().startswith(f"{field}: "), refused.value.details()


async def test_create_and_get(tmp_path):
    async with serving(topology(tmp_path)) as running:
        created = await running.documents.CreateDocument(documents_pb2.CreateDocumentRequest(
            document_id="doc-1", title="Plan", initial_text="hello"), timeout=WAIT_S)
        assert (created.document.sequence, created.document.text, created.document.editors) == (1, "hello", 0)
        assert created.document.created_at_unix_ms > 0 and created.document.state_bytes > 5
        empty = await running.documents.CreateDocument(documents_pb2.CreateDocumentRequest(document_id="doc-2", title="Empty"))
        assert (empty.document.sequence, empty.document.text) == (0, "")
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await running.documents.CreateDocument(documents_pb2.CreateDocumentRequest(document_id="doc-1", title="Again"))
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

        found = await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="doc-1", include_state=True))
        assert found.document == created.document
        replica = Replica(9)
        replica.apply(found.state_update)
        assert str(replica) == "hello" and replica.doc.get_state() == found.state_vector
        bare = await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="doc-1"))
        assert bare.state_update == b"" and bare.state_vector == found.state_vector
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="nope"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_input_is_invalid_argument_naming_the_field(tmp_path):
    async with serving(topology(tmp_path, durable=False)) as running:
        docs, sync = running.documents, running.sync
        await docs.CreateDocument(documents_pb2.CreateDocumentRequest(document_id="d", title="T", initial_text="abc"))
        replica = Replica(5)
        replica.apply((await sync.Sync(sync_pb2.SyncRequest(document_id="d"))).update)
        good = replica.insert(0, "x")
        create = documents_pb2.CreateDocumentRequest
        for request, field in ((create(document_id="", title="T"), "document_id"),
                               (create(document_id="has space", title="T"), "document_id"),
                               (create(document_id="x" * 65, title="T"), "document_id"),
                               (create(document_id="ok", title=""), "title"),
                               (create(document_id="ok", title="t" * 201), "title"),
                               (create(document_id="ok", title="T", initial_text="é" * (MAX_INITIAL_TEXT_BYTES // 2 + 1)),
                                "initial_text")):
            await invalid(docs.CreateDocument(request), field)
        await invalid(docs.GetDocument(documents_pb2.GetDocumentRequest(document_id="a/b")), "document_id")
        await invalid(sync.Sync(sync_pb2.SyncRequest(document_id="")), "document_id")
        await invalid(sync.Sync(sync_pb2.SyncRequest(document_id="d", state_vector=b"\xff")), "state_vector")
        apply = sync_pb2.ApplyUpdateRequest
        for request, field in ((apply(document_id="", update=good), "document_id"),
                               (apply(document_id="d"), "update"),
                               (apply(document_id="d", update=b"\x00" * (MAX_UPDATE_BYTES + 1)), "update"),
                               (apply(document_id="d", update=b"not an update"), "update"),
                               (apply(document_id="d", update=good, origin="o" * 65), "origin"),
                               (apply(document_id="d", update=good, origin="tab\there"), "origin"),
                               (apply(document_id="d", update=good, session_id="no spaces"), "session_id")):
            await invalid(sync.ApplyUpdate(request), field)
        awareness = sync_pb2.ApplyAwarenessRequest
        for request, field in ((awareness(document_id="", update=b"\x00"), "document_id"),
                               (awareness(document_id="d"), "update"),
                               (awareness(document_id="d", update=b"\x01" * 4097), "update"),
                               (awareness(document_id="d", update=b"\x01\x05\x01\x03abc"), "update"),
                               (awareness(document_id="d", update=b"\x01\x05\x01\x02{}", session_id="!"), "session_id")):
            await invalid(sync.ApplyAwareness(request), field)
        await invalid(sync.Watch(sync_pb2.WatchRequest(document_id="", watcher="w")), "document_id")
        await invalid(sync.Watch(sync_pb2.WatchRequest(document_id="d", watcher="")), "watcher")
        # Nothing of it changed the document; the good update still applies.
        assert (await docs.GetDocument(documents_pb2.GetDocumentRequest(document_id="d"))).document.sequence == 1
        assert (await sync.ApplyUpdate(apply(document_id="d", update=good))).sequence == 2
        for call in (sync.Sync(sync_pb2.SyncRequest(document_id="nope")),
                     sync.ApplyUpdate(apply(document_id="nope", update=good)),
                     sync.ApplyAwareness(awareness(document_id="nope", update=b"\x01\x05\x01\x02{}"))):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            async for _ in sync.Watch(sync_pb2.WatchRequest(document_id="nope", watcher="w")):
                pass
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as denied:  # the internal side is the editor servers'
            await running.anonymous_sync.Sync(sync_pb2.SyncRequest(document_id="d"))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_updates_are_durable_and_watched_in_sequence_order(tmp_path):
    topo = topology(tmp_path, snapshot_every_updates=7)
    editors = [Replica(100 + i) for i in range(3)]
    async with serving(topo) as running:
        await running.documents.CreateDocument(documents_pb2.CreateDocumentRequest(document_id="d", title="T",
                                                                                   initial_text="start"))
        watch = Watch(running.sync, "d")
        assert await watch.wait_started() == 1
        start = (await running.sync.Sync(sync_pb2.SyncRequest(document_id="d"))).update
        for editor in editors:
            editor.apply(start)

        async def write(editor: Replica, n: int) -> list[sync_pb2.ApplyUpdateResponse]:
            answers = []
            for i in range(n):
                update = editor.insert(len(editor.text) if i % 2 else 0, f"{editor.doc.client_id}.{i} ")
                answers.append(await running.sync.ApplyUpdate(sync_pb2.ApplyUpdateRequest(
                    document_id="d", update=update, origin=f"e{editor.doc.client_id}", session_id=f"s{i % 2}"),
                    timeout=WAIT_S))
            return answers

        answers = [a for batch in await asyncio.gather(*(write(e, 10) for e in editors)) for a in batch]
        assert sorted(a.sequence for a in answers) == list(range(2, 32)) and not any(a.duplicate for a in answers)
        await watch.wait_for(31)
        assert [u.sequence for u in watch.updates] == list(range(2, 32))
        assert all(u.applied_at_unix_ns > 0 and u.origin.startswith("e") for u in watch.updates)
        # Every editor that applies what the watch carried holds the document's text.
        mirror = Replica(7)
        mirror.apply(start)
        for applied in watch.updates:
            mirror.apply(applied.update)
        document = (await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="d"))).document
        assert str(mirror) == document.text and document.sequence == 31
        retry = await running.sync.ApplyUpdate(sync_pb2.ApplyUpdateRequest(document_id="d", update=watch.updates[4].update))
        assert (retry.sequence, retry.duplicate) == (31, True)

        # Awareness is relayed to the watcher and counted as an editor.
        awareness = pycrdt.Awareness(editors[0].doc)
        awareness.set_local_state({"user": "ann", "cursor": 4})
        await running.sync.ApplyAwareness(sync_pb2.ApplyAwarenessRequest(
            document_id="d", update=awareness.encode_awareness_update([editors[0].doc.client_id]), session_id="s0"))
        async with asyncio.timeout(WAIT_S):
            while not watch.awareness:
                await asyncio.sleep(0.01)
        assert watch.awareness[0].session_id == "s0"
        assert (await running.sync.Sync(sync_pb2.SyncRequest(document_id="d"))).awareness
        assert (await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="d"))).document.editors == 1
    assert await watch.ended() == grpc.StatusCode.UNAVAILABLE  # the server shut down under it

    async with serving(topo) as running:  # a new server on the same data dir: every acknowledged update is there
        again = (await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="d"))).document
        assert (again.text, again.sequence, again.editors) == (document.text, 31, 0)  # awareness is not stored


async def test_sync_after_watch_started_misses_nothing(tmp_path):
    async with serving(topology(tmp_path)) as running:
        await running.documents.CreateDocument(documents_pb2.CreateDocumentRequest(document_id="d", title="T",
                                                                                   initial_text="base "))
        writer = Replica(1)
        writer.apply((await running.sync.Sync(sync_pb2.SyncRequest(document_id="d"))).update)
        stop = asyncio.Event()

        async def keep_writing() -> int:
            written = 0
            while not stop.is_set():
                update = writer.insert(len(writer.text), f"w{written} ")
                await running.sync.ApplyUpdate(sync_pb2.ApplyUpdateRequest(document_id="d", update=update), timeout=WAIT_S)
                written += 1
            return written

        writing = asyncio.create_task(keep_writing())
        await asyncio.sleep(0.05)
        watch = Watch(running.sync, "d", watcher="collab-editor-2")
        started = await watch.wait_started()
        synced = await running.sync.Sync(sync_pb2.SyncRequest(document_id="d"))
        assert synced.sequence >= started
        reader = Replica(2)
        reader.apply(synced.update)
        await asyncio.sleep(0.1)
        stop.set()
        written = await writing
        final = (await running.documents.GetDocument(documents_pb2.GetDocumentRequest(document_id="d"))).document
        assert written > 0 and final.sequence == 1 + written
        await watch.wait_for(final.sequence)
        assert [u.sequence for u in watch.updates] == list(range(started + 1, final.sequence + 1))
        for applied in watch.updates:  # overlapping what Sync returned is harmless: applying twice is a no-op
            reader.apply(applied.update)
        assert str(reader) == final.text == str(writer)
        watch.cancel()

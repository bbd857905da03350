"""Shared by the collab integration tests: the mesh (collab-documents and both editor servers) and an editor client.

:func:`collab_mesh` serves the three services in the test's event loop (a
module-scoped fixture wraps it); :class:`Editor` is what a Yjs client does
over EditorService.Edit: a pycrdt replica of the document, local edits sent
as updates (kept until acknowledged, sent again after a rejoin), remote
frames applied, heartbeats, and checks of the stream's guarantees
(``joined`` first, remote sequences increasing).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pycrdt

from casemesh.collab.v1 import documents_pb2, documents_pb2_grpc, editor_pb2, editor_pb2_grpc
from casemesh.services.catalog import definitions
from casemesh.services.collab.contract import TEXT_NAME
from casemesh.services.runtime.component import ServiceDefinition
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests
from .conftest import RunningMesh, free_port, start_mesh

SERVICES = ["collab-documents", "collab-editor-1", "collab-editor-2"]
EDITORS = ["collab-editor-1", "collab-editor-2"]
#: Codes of a ``rejected`` update that sending it again may cure.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE.value[0], grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]})


@contextlib.asynccontextmanager
async def collab_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                      chosen: Sequence[ServiceDefinition] | None = None) -> AsyncIterator[RunningMesh]:
    """collab-documents, collab-editor-1 and collab-editor-2 served in this event loop on 127.0.0.1 (data in ``data_dir``)."""
    chosen = list(chosen or definitions(SERVICES))
    topology = Topology(services={d.name: Endpoint(address=f"127.0.0.1:{free_port()}") for d in chosen},
                        data_dir=str(data_dir), settings=settings or {}, server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def create_document(channel: grpc.aio.Channel, document_id: str, initial_text: str = "",
                          title: str = "test") -> documents_pb2.Document:
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    reply = await stub.CreateDocument(documents_pb2.CreateDocumentRequest(
        document_id=document_id, title=title, initial_text=initial_text), timeout=30)
    return reply.document


async def get_document(channel: grpc.aio.Channel, document_id: str, include_state: bool = False) -> documents_pb2.GetDocumentResponse:
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    return await stub.GetDocument(documents_pb2.GetDocumentRequest(document_id=document_id, include_state=include_state),
                                  timeout=30)


def encode_awareness(client_id: int, clock: int, state_json: str) -> bytes:
    """One y-protocols awareness entry as an update (a client in another language encodes the same bytes)."""
    def var_uint(value: int) -> bytes:
        out = bytearray()
        while value > 0x7F:
            out.append(0x80 | (value & 0x7F))
            value >>= 7
        out.append(value)
        return bytes(out)

    raw = state_json.encode()
    return var_uint(1) + var_uint(client_id) + var_uint(clock) + var_uint(len(raw)) + raw


class Session:
    """One Edit stream of an :class:`Editor`."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.joined: editor_pb2.Joined | None = None
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.remote_sequences: list[int] = []
        self.frames = 0
        self.tasks: list[asyncio.Task] = []
        self.sends: asyncio.Queue[int] = asyncio.Queue()
        self.done = asyncio.Event()
        self.joined_event = asyncio.Event()
        self.write_lock = asyncio.Lock()  # grpc.aio takes one write at a time per call

    @property
    def alive(self) -> bool:
        return not self.done.is_set()

    async def write(self, request: editor_pb2.EditRequest) -> None:
        async with self.write_lock:
            await self.call.write(request)


class Editor:
    """A Yjs client of EditorService.Edit holding a pycrdt replica (``doc``, its text ``text``).

    Local edits (:meth:`insert`, :meth:`delete`, :meth:`random_edit`) are
    captured as Yjs updates, numbered (``client_update_id``), kept in
    ``unacked`` until their ``ack`` and sent in order; after a rejoin
    (:meth:`join` again) every unacknowledged one is sent again, before any
    new one (with ``rejoin_on_refusal``, an update refused with UNAVAILABLE
    or RESOURCE_EXHAUSTED ends the stream, for the caller to rejoin). Remote
    frames are applied to the replica as they come.
    ``violations`` collects broken stream guarantees (a frame before
    ``joined``, remote sequences not increasing).
    """

    def __init__(self, channel: grpc.aio.Channel, document_id: str, user: str, *, client_id: int | None = None,
                 heartbeat: bool = True, rejoin_on_refusal: bool = False) -> None:
        self.stub = editor_pb2_grpc.EditorServiceStub(channel)
        self.rejoin_on_refusal = rejoin_on_refusal
        self.document_id = document_id
        self.user = user
        self.heartbeat = heartbeat
        self.doc = pycrdt.Doc(client_id=client_id) if client_id is not None else pycrdt.Doc()
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self._captured: list[bytes] | None = None
        self.doc.observe(self._on_transaction)
        self.next_id = 1
        self.unacked: dict[int, tuple[bytes, str]] = {}
        self.acked: dict[int, tuple[bytes, editor_pb2.UpdateAck]] = {}
        self.rejected: list[editor_pb2.Rejected] = []
        self.awareness: list[bytes] = []
        self.violations: list[str] = []
        self.sessions: list[Session] = []

    def _on_transaction(self, event) -> None:
        if self._captured is not None:
            self._captured.append(event.update)

    @property
    def current(self) -> Session | None:
        return self.sessions[-1] if self.sessions else None

    @property
    def alive(self) -> bool:
        return self.current is not None and self.current.alive

    # Connecting.

    async def join(self, channel: grpc.aio.Channel | None = None, state_vector: bytes | None = None,
                   must: bool = True) -> editor_pb2.Joined | None:
        """Open an Edit stream (on ``channel``, else the last one) and join with the replica's state vector; apply
        ``sync_update`` and send every unacknowledged update again. ``None`` (or ``AssertionError`` when ``must``)
        when the stream ended first."""
        if channel is not None:
            self.stub = editor_pb2_grpc.EditorServiceStub(channel)
        if state_vector is None:
            state_vector = self.doc.get_state() if self.next_id > 1 or str(self.text) else b""
        session = Session(self.stub.Edit())
        self.sessions.append(session)
        try:
            await session.write(editor_pb2.EditRequest(join=editor_pb2.Join(
                document_id=self.document_id, user_id=self.user, state_vector=state_vector)))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            pass  # the stream's status says why
        session.tasks.append(asyncio.create_task(self._read(session)))
        waiter = asyncio.create_task(session.joined_event.wait())
        ended = asyncio.create_task(session.done.wait())
        await asyncio.wait({waiter, ended}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        ended.cancel()
        if session.joined is None:
            if must:
                raise AssertionError(f"{self.user}: not joined ({session.code}: {session.details})")
            return None
        return session.joined

    async def _read(self, session: Session) -> None:
        try:
            async for frame in session.call:
                kind = frame.WhichOneof("frame")
                session.frames += 1
                if kind == "joined":
                    if session.frames != 1:
                        self.violations.append(f"{self.user}: joined came as frame #{session.frames}")
                    session.joined = frame.joined
                    self.doc.apply_update(frame.joined.sync_update)
                    if frame.joined.awareness:
                        self.awareness.append(frame.joined.awareness)
                    for client_update_id in self.unacked:  # in order, before any new one
                        session.sends.put_nowait(client_update_id)
                    session.tasks.append(asyncio.create_task(self._send(session)))
                    if self.heartbeat:
                        session.tasks.append(asyncio.create_task(
                            self._beat(session, frame.joined.heartbeat_interval_ms / 3000)))
                    session.joined_event.set()
                    continue
                if session.joined is None:
                    self.violations.append(f"{self.user}: a {kind} frame before joined")
                if kind == "remote":
                    last = session.remote_sequences[-1] if session.remote_sequences else session.joined.sequence
                    if frame.remote.sequence <= last:
                        self.violations.append(f"{self.user}: remote #{frame.remote.sequence} after #{last}")
                    session.remote_sequences.append(frame.remote.sequence)
                    self.doc.apply_update(frame.remote.update)
                elif kind == "ack":
                    cid = frame.ack.client_update_id
                    sent = self.unacked.pop(cid, None)
                    if sent is not None:
                        self.acked[cid] = (sent[0], frame.ack)
                elif kind == "rejected":
                    self.rejected.append(frame.rejected)
                    if (self.rejoin_on_refusal and frame.rejected.client_update_id in self.unacked
                            and frame.rejected.code in RETRY_CODES):
                        # Send it again before the later ones, which may depend on it: end the stream; rejoining
                        # sends every unacknowledged update again, in order.
                        session.call.cancel()
                elif kind == "awareness":
                    self.awareness.append(frame.awareness.update)
            session.code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            session.code, session.details = error.code(), error.details() or ""
        except asyncio.CancelledError:
            session.code = grpc.StatusCode.CANCELLED
        finally:
            session.done.set()
            for task in session.tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def _send(self, session: Session) -> None:
        with contextlib.suppress(Exception):
            while session.alive:
                client_update_id = await session.sends.get()
                sent = self.unacked.get(client_update_id)
                if sent is not None:
                    await session.write(editor_pb2.EditRequest(update=editor_pb2.LocalUpdate(
                        client_update_id=client_update_id, update=sent[0], origin=sent[1])))

    async def _beat(self, session: Session, every_s: float) -> None:
        with contextlib.suppress(Exception):
            while session.alive:
                await asyncio.sleep(every_s)
                await session.write(editor_pb2.EditRequest(heartbeat=editor_pb2.Heartbeat()))

    # Editing.

    def edit(self, change: Callable[[pycrdt.Text], None]) -> int | None:
        """Make a local change; its update is queued to be sent (now if joined, else after the next join)."""
        self._captured = []
        try:
            change(self.text)
        finally:
            captured, self._captured = self._captured, None
        if not captured:
            return None
        update = captured[0] if len(captured) == 1 else pycrdt.merge_updates(*captured)
        client_update_id = self.next_id
        self.next_id += 1
        self.unacked[client_update_id] = (update, f"{self.user}#{client_update_id}")
        session = self.current
        if session is not None and session.joined is not None and session.alive:
            session.sends.put_nowait(client_update_id)
        return client_update_id

    # pycrdt's Text indexes UTF-8 bytes: these take character positions and convert them.

    def _offset(self, index: int) -> int:
        return len(str(self.text)[:index].encode())

    def insert(self, index: int, value: str) -> int | None:
        """Insert ``value`` before character ``index``."""
        offset = self._offset(index)
        return self.edit(lambda text: text.insert(offset, value))

    def delete(self, start: int, length: int) -> int | None:
        """Delete ``length`` characters from character ``start``."""
        begin, end = self._offset(start), self._offset(start + length)
        return self.edit(lambda text: text.__delitem__(slice(begin, end)))

    def random_edit(self, rng: random.Random) -> int | None:
        """Insert a few characters at a random place, or (a third of the time, when there is text) delete a few."""
        size = len(str(self.text))
        if size > 4 and rng.random() < 0.33:
            start = rng.randrange(size - 1)
            return self.delete(start, min(rng.randint(1, 3), size - start))
        return self.insert(rng.randrange(size + 1), rng.choice(["a", "bc", "def ", "é", "中", self.user[-1]]))

    async def send(self, request: editor_pb2.EditRequest) -> None:
        """Write a raw frame on the current stream."""
        await self.current.write(request)

    # Waiting.

    async def wait_text(self, expected: str | Callable[[], str], timeout_s: float = WAIT_S) -> None:
        want = expected if callable(expected) else (lambda: expected)
        await eventually(lambda: str(self.text) == want(),
                         lambda: f"{self.user}'s text {str(self.text)!r:.200} to be {want()!r:.200}", timeout_s)

    async def wait_acked(self, timeout_s: float = WAIT_S) -> None:
        await eventually(lambda: not self.unacked, lambda: f"{self.user}'s acks of {sorted(self.unacked)[:20]}", timeout_s)

    async def ended(self, timeout_s: float = WAIT_S) -> grpc.StatusCode | None:
        """Wait for the current stream's status."""
        await asyncio.wait_for(self.current.done.wait(), timeout_s)
        return self.current.code

    async def close(self) -> grpc.StatusCode | None:
        """Half-close and wait for the status (OK), then stop the background tasks."""
        session = self.current
        if session is None:
            return None
        if session.alive:
            with contextlib.suppress(Exception):
                async with session.write_lock:
                    await session.call.done_writing()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.done.wait(), WAIT_S)
        for s in self.sessions:
            for task in s.tasks:
                task.cancel()
            s.call.cancel()
        return session.code


def contains_all(final_state: bytes, updates: list[bytes]) -> bool:
    """Whether the document ``final_state`` (one Yjs update) already holds every update in ``updates``: applying them
    to it changes nothing (a Yjs update applied twice is a no-op)."""
    doc = pycrdt.Doc()
    doc.apply_update(final_state)
    before = doc.get_update()
    for update in updates:
        doc.apply_update(update)
    return doc.get_update() == before

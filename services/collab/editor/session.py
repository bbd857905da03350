"""One editor's Edit session: join and sync, local updates and acks, awareness, the outbound queue and its writer.

Seed 001 #06 ("Collaborative Docs": Google Docs over WebSocket; here a gRPC
bidi stream) with the y-protocols sync and awareness protocols
(github.com/yjs/y-protocols: ``sync.js``, ``awareness.js``). Life of a
session (:meth:`EditorSession.run`, the Edit handler's body after ``join``):

1. the session is added to its document's watch (:mod:`.broadcaster`; the
   watch is opened on the document's first session here); from now on the
   document's updates and awareness changes are held for it;
2. once the watch has started, DocumentSyncService.Sync with the client's
   state vector (y-protocols sync step 1) gives what the replica lacks (sync
   step 2) as of sequence S, and every awareness state; ``joined`` is the
   first frame (session_id, editor_server, sync_update, sequence S,
   awareness, heartbeat_interval_ms); then the held frames, the updates
   among them only when they go past S. The watch was live before Sync was
   called, so no update falls between the two;
3. then, concurrently: the relay (:meth:`offer_remote`,
   :meth:`offer_awareness`, called by the broadcaster: never waiting), the
   client's frames (one reader task), local updates (one worker: ApplyUpdate
   one after another in the client's order, since a Yjs update may depend on
   the one before; each answered ``ack`` {client_update_id, sequence,
   duplicate} once durable, or ``rejected``), awareness (one worker: the
   latest pending state per client ID goes out in one ApplyAwareness), the
   heartbeat watchdog.

Frame rules (a bad frame is answered with ``rejected`` naming the field; the
stream goes on): ``update.client_update_id`` at least 1; ``update.update``
1 to 262,144 bytes and a decodable Yjs v1 update; ``update.origin`` at most
64 printable ASCII characters; ``awareness.update`` 1 to 4,096 bytes, a
y-protocols awareness update (count, then client ID, clock and JSON state per
entry), announcing at most ``max_awareness_clients`` client IDs per session.
collab-documents' own refusals come back the same way (its INVALID_ARGUMENT
field prefixed with ``update.`` or ``awareness.``; RESOURCE_EXHAUSTED as is
when the document is full, as UNAVAILABLE when it is load shedding; anything
else as UNAVAILABLE: send it again, a Yjs update applied twice is a no-op).
A local update beyond ``max_pending_updates`` waiting is rejected with
RESOURCE_EXHAUSTED. The session goes on applying the client's later updates
after a rejected one; a later update that depends on a rejected one stays
pending in collab-documents' CRDT until that one arrives, so a client should
send a refused update again before it relies on its later ones being durable
(rejoining sends every unacknowledged update again, in order).

Writes: every frame goes through one bounded queue (``max_session_queue``
frames, ``max_session_queue_bytes`` bytes) that one writer, the handler
itself, drains into the stream. The relay never waits: when the queue is
full, the session ends with RESOURCE_EXHAUSTED (a slow consumer; the
document's other sessions go on).

Awareness when the session ends: every client ID it announced (and did not
remove itself) is removed with a y-protocols "null state" update sent to
collab-documents, ``(client ID, last clock seen, "null")`` per ID, as the
y-websocket server's ``closeConn`` does with ``removeAwarenessStates`` (a
remote client's clock is not bumped: a receiver removes a state whose clock
equals its own when the new state is null, and keeps a newer one, so a client
that already re-announced itself on another session keeps its state).

Ends (:meth:`EditorSession.end`, first one wins): OK on the client's
half-close (after its updates and awareness were answered),
DEADLINE_EXCEEDED after ``session_timeout_ms`` without a client frame,
RESOURCE_EXHAUSTED for a slow consumer, UNAVAILABLE when the server stops
or the watch of the document is lost or Sync fails, NOT_FOUND when the
document does not exist, INVALID_ARGUMENT for an undecodable frame or a
state vector collab-documents refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
import pycrdt

from casemesh.collab.v1 import editor_pb2 as pb
from casemesh.collab.v1 import sync_pb2

from ...runtime.admission import PUSHBACK_TRAILER
from ...runtime.errors import InvalidArgument
from ..contract import MAX_AWARENESS_BYTES, MAX_ORIGIN_CHARS, MAX_UPDATE_BYTES, valid_id, valid_origin
from .broadcaster import Batch, DocumentWatch, WatchFailed
from .metrics import EditorMetrics
from .settings import EditorSettings

log = logging.getLogger("casemesh.collab.editor")

#: Codes a ``rejected`` frame may carry (editor.proto, Rejected.code); anything else is reported as UNAVAILABLE.
REJECTED_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            grpc.StatusCode.UNAVAILABLE})
#: A write to the client not done this long after the session ended is stuck (a client that does not read): the call
#: is then ended from outside the writer (seconds).
STUCK_WRITE_S = 1.0
#: Bytes a queued frame counts for besides its payload.
FRAME_OVERHEAD_BYTES = 64
#: lib0 reads var-uints of at most 53 bits (JavaScript's safe integers).
MAX_VAR_UINT = 2 ** 53 - 1
#: A y-protocols awareness entry: (client ID, clock, JSON state text; ``"null"`` removes the client's state).
AwarenessEntry = tuple[int, int, str]


class DocumentsClient(Protocol):
    """The DocumentSyncService calls a session makes (service.py binds them to the stub with deadlines)."""

    async def sync(self, request: sync_pb2.SyncRequest) -> sync_pb2.SyncResponse: ...

    async def apply_update(self, request: sync_pb2.ApplyUpdateRequest) -> sync_pb2.ApplyUpdateResponse: ...

    async def apply_awareness(self, request: sync_pb2.ApplyAwarenessRequest) -> sync_pb2.ApplyAwarenessResponse: ...


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How a session ended: the stream's status ``code`` and ``message``, and the metrics ``reason``."""

    code: grpc.StatusCode
    message: str
    reason: str


# Validation (the contract's rules, services/collab/contract.py).

def check_join(join: pb.Join) -> None:
    """Raise :class:`InvalidArgument` naming ``join.document_id``, ``join.user_id`` or ``join.state_vector``."""
    for field, value in (("join.document_id", join.document_id), ("join.user_id", join.user_id)):
        if not value:
            raise InvalidArgument(field, "is required (1 to 64 characters of A-Z, a-z, 0-9, '_' or '-')")
        if not valid_id(value):
            raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    if join.state_vector and not is_state_vector(join.state_vector):
        raise InvalidArgument("join.state_vector", "is not a Yjs state vector (leave it empty for a new replica)")


def is_state_vector(data: bytes) -> bool:
    """Whether ``data`` decodes as a Yjs state vector (the diff against an empty document is computed with it)."""
    try:
        pycrdt.Doc().get_update(data)
    except ValueError:
        return False
    return True


def is_update(data: bytes) -> bool:
    """Whether ``data`` decodes as a Yjs v1 update (its state vector can be read)."""
    try:
        pycrdt.get_state(data)
    except ValueError:
        return False
    return True


def rejected(code: grpc.StatusCode, field: str, message: str, client_update_id: int = 0) -> pb.EditResponse:
    """A ``rejected`` frame."""
    return pb.EditResponse(rejected=pb.Rejected(client_update_id=client_update_id, code=code.value[0], field=field,
                                                message=message))


def check_update(update: pb.LocalUpdate) -> pb.EditResponse | None:
    """The ``rejected`` frame of a local ``update`` that breaks the contract's rules, else ``None``."""
    cid = update.client_update_id
    if cid < 1:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "update.client_update_id", "must be at least 1")
    if not 1 <= len(update.update) <= MAX_UPDATE_BYTES:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "update.update",
                        f"is {len(update.update):,} bytes; must be 1 to {MAX_UPDATE_BYTES:,}", cid)
    if not valid_origin(update.origin):
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "update.origin",
                        f"must be at most {MAX_ORIGIN_CHARS} printable ASCII characters", cid)
    if not is_update(update.update):
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "update.update", "is not a Yjs (v1) update", cid)
    return None


def shed(error: grpc.aio.AioRpcError) -> bool:
    """Whether ``error`` is an admission-control rejection (RESOURCE_EXHAUSTED with a retry pushback: try again), not
    the document's own limit."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    try:
        return any(key == PUSHBACK_TRAILER for key, _ in (error.trailing_metadata() or ()))
    except Exception:  # noqa: BLE001 - metadata of an unusual shape: not a pushback
        return False


def rejection(error: grpc.aio.AioRpcError, prefix: str, client_update_id: int = 0) -> pb.EditResponse:
    """The ``rejected`` frame of a failed DocumentSyncService call: its code (UNAVAILABLE for codes the contract does
    not list, and for collab-documents shedding load: send it again), the field its INVALID_ARGUMENT named (as
    ``PREFIX.FIELD``), its message."""
    code = error.code() if error.code() in REJECTED_CODES and not shed(error) else grpc.StatusCode.UNAVAILABLE
    details = error.details() or code.name
    field = ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        named, sep, _ = details.partition(": ")
        if sep and named in ("update", "origin"):
            field = f"{prefix}.{named}"
        else:
            field = f"{prefix}.update"
    return rejected(code, field, details, client_update_id)


# The y-protocols awareness encoding (awareness.js: encodeAwarenessUpdate / applyAwarenessUpdate).

def _read_var_uint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise ValueError("ends inside a number")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if value > MAX_VAR_UINT:
            raise ValueError("a number is out of range")
        if byte < 0x80:
            return value, at
        shift += 7


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_awareness(data: bytes) -> list[AwarenessEntry]:
    """The entries of a y-protocols awareness update: ``(client_id, clock, state_json)`` each, ``"null"`` for a removal.

    Raises ``ValueError`` when ``data`` is not one (truncated, trailing bytes, a
    state that is not UTF-8 JSON).
    """
    count, at = _read_var_uint(data, 0)
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client_id, at = _read_var_uint(data, at)
        clock, at = _read_var_uint(data, at)
        length, at = _read_var_uint(data, at)
        if at + length > len(data):
            raise ValueError("ends inside a state")
        try:
            text = data[at:at + length].decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"the state of client {client_id} is not JSON") from None
        at += length
        entries.append((client_id, clock, text))
    if at != len(data):
        raise ValueError(f"{len(data) - at} bytes after the last entry")
    return entries


def is_removal(state_json: str) -> bool:
    """Whether an awareness entry's state removes the client (JSON ``null``)."""
    return state_json.strip() == "null"


def encode_awareness(entries: list[AwarenessEntry], max_bytes: int = MAX_AWARENESS_BYTES) -> list[bytes]:
    """``entries`` as y-protocols awareness updates of at most ``max_bytes`` each (one entry never is split)."""
    chunks: list[bytes] = []
    encoded: list[bytes] = []
    size = 0
    for client_id, clock, state in entries:
        raw = state.encode()
        entry = _var_uint(client_id) + _var_uint(clock) + _var_uint(len(raw)) + raw
        if encoded and size + len(entry) + len(_var_uint(len(encoded) + 1)) > max_bytes:
            chunks.append(_var_uint(len(encoded)) + b"".join(encoded))
            encoded, size = [], 0
        encoded.append(entry)
        size += len(entry)
    if encoded:
        chunks.append(_var_uint(len(encoded)) + b"".join(encoded))
    return chunks


class EditorSession:
    """One editor's session of one document on editor server ``editor_server`` (module docstring).

    ``on_end(session)`` is called once when it ends (the server forgets it,
    the watch lets it go, its awareness is removed).
    """

    def __init__(self, session_id: str, document_id: str, user_id: str, state_vector: bytes, editor_server: str, *,
                 documents: DocumentsClient, settings: EditorSettings, metrics: EditorMetrics,
                 on_end: Callable[[EditorSession], None]) -> None:
        self.session_id = session_id
        self.document_id = document_id
        self.user_id = user_id
        self.state_vector = state_vector
        self.editor_server = editor_server
        self._documents = documents
        self._settings = settings
        self._metrics = metrics
        self._on_end = on_end
        #: How the session ended (``None`` while it lasts).
        self.ended: SessionEnd | None = None
        #: The watch it belongs to (set by the server once subscribed).
        self.watch: DocumentWatch | None = None
        self.last_frame = time.monotonic()
        #: Sequence the joined frame's sync_update brought the client to (``None`` until then).
        self.synced_sequence: int | None = None
        self._outbox: deque[tuple[pb.EditResponse, Batch | None, int]] = deque()
        self._queued_bytes = 0
        self._held: list[tuple[pb.EditResponse, Batch | None, int]] = []
        self._limit = settings.max_session_queue
        self._limit_bytes = settings.max_session_queue_bytes
        self._wake = asyncio.Event()
        self._writing = False
        self._writes = 0
        self._aborted = False
        self._context: grpc.aio.ServicerContext | None = None
        self._tasks: set[asyncio.Task] = set()
        self._updates: asyncio.Queue[pb.LocalUpdate] = asyncio.Queue(settings.max_pending_updates)
        self._applying = False
        self._awareness: dict[int, tuple[int, str]] = {}
        self._awareness_wake = asyncio.Event()
        self._awareness_sending = False
        #: Client ID → the highest clock seen, for each client ID this session announced and did not remove.
        self.announced: dict[int, int] = {}
        self._idle = asyncio.Event()

    # Ending.

    def end(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        """End the session (the first call wins): the writer stops and the stream ends with ``code``."""
        if self.ended is not None:
            return
        self.ended = SessionEnd(code, message, reason)
        self._wake.set()
        self._idle.set()
        try:
            self._on_end(self)
        finally:
            if self._writing and self._context is not None and code != grpc.StatusCode.OK:
                # The writer is in a write: it ends the call itself once the write is done, unless the write is
                # stuck (a client that does not read), which is then ended from here.
                self._spawn(self._abort_if_stuck(self._writes, code, message), "abort")

    async def _abort_if_stuck(self, write: int, code: grpc.StatusCode, message: str) -> None:
        await asyncio.sleep(STUCK_WRITE_S)
        if self._writing and self._writes == write:
            self._aborted = True
            with contextlib.suppress(Exception):
                await self._context.abort(code, message)

    def awareness_removal(self) -> list[bytes]:
        """The y-protocols updates that remove every awareness state this session announced (null state, last clock)."""
        return encode_awareness([(client_id, clock, "null") for client_id, clock in self.announced.items()])

    # The outbound queue.

    def _enqueue(self, frame: pb.EditResponse, batch: Batch | None = None, size: int = 0) -> bool:
        """Queue ``frame`` for the writer (held until ``joined`` when not joined yet); a full queue ends the session."""
        if self.ended is not None:
            return False
        size += FRAME_OVERHEAD_BYTES
        if (len(self._outbox) + len(self._held) >= self._limit
                or self._queued_bytes + size > self._limit_bytes):
            self.end(grpc.StatusCode.RESOURCE_EXHAUSTED,
                     f"slow consumer: {len(self._outbox) + len(self._held):,} frames "
                     f"({self._queued_bytes:,} bytes) waiting to be written to this client", "slow_consumer")
            return False
        self._queued_bytes += size
        if self.synced_sequence is None:
            self._held.append((frame, batch, size))
        else:
            self._outbox.append((frame, batch, size))
            self._wake.set()
        return True

    # The relay (called by the broadcaster): never waits.

    def offer_remote(self, batch: Batch) -> bool:
        """Queue a RemoteUpdate unless it holds only this session's own updates or the client has it already."""
        if self.ended is not None:
            return False
        if len(batch.authors) == 1 and self.session_id in batch.authors:
            self._metrics.echo_skipped.inc()
            return False
        if self.synced_sequence is not None and batch.last_sequence <= self.synced_sequence:
            return False
        return self._enqueue(batch.frame, batch, batch.size_bytes)

    def offer_awareness(self, frame: pb.EditResponse) -> bool:
        """Queue other editors' awareness change."""
        if self._enqueue(frame, None, len(frame.awareness.update)):
            self._metrics.awareness_out.inc()
            return True
        return False

    # The handler's body.

    async def run(self, requests: AsyncIterator[pb.EditRequest], context: grpc.aio.ServicerContext,
                  watch: DocumentWatch) -> AsyncIterator[pb.EditResponse]:
        """Sync, then write frames until the session ends; then end the call with the session's status."""
        self._context = context
        self.watch = watch
        self._spawn(self._start(requests, watch), "start")
        self._spawn(self._watch_heartbeats(), "heartbeats")
        relayed = self._metrics.relayed
        own = self.session_id
        try:
            while True:
                while self._outbox:
                    frame, batch, size = self._outbox.popleft()
                    self._queued_bytes -= size
                    self._writing = True
                    self._writes += 1
                    yield frame
                    self._writing = False
                    if batch is not None:
                        relayed([at for author, at in batch.applied if author != own])
                    if self.ended is not None and self.ended.code != grpc.StatusCode.OK:
                        break
                if self.ended is not None:
                    break
                self._wake.clear()
                await self._wake.wait()
        finally:
            self._writing = False
            if self.ended is None:  # the client went away (the call was cancelled) or the server stopped it
                self.end(grpc.StatusCode.CANCELLED, "the call ended", "cancelled")
            for task in list(self._tasks):
                if self._aborted and task.get_name().endswith("abort"):
                    continue  # it is ending the call
                task.cancel()
        if self.ended.code != grpc.StatusCode.OK and not self._aborted:
            await context.abort(self.ended.code, self.ended.message)

    def _spawn(self, coro, what: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"{self.session_id}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("session %s: %s failed: %r", self.session_id, task.get_name(), error, exc_info=error)
            self.end(grpc.StatusCode.INTERNAL, f"the editor server failed: {error!r}", "error")

    async def _start(self, requests: AsyncIterator[pb.EditRequest], watch: DocumentWatch) -> None:
        try:
            await watch.ready()
        except WatchFailed as failed:  # the watch ended its sessions already; this one too unless it was not there
            self.end(failed.code, failed.message, "not_found" if failed.code == grpc.StatusCode.NOT_FOUND else "watch_lost")
            return
        if self.ended is not None:
            return
        try:
            synced = await self._documents.sync(sync_pb2.SyncRequest(document_id=self.document_id,
                                                                     state_vector=self.state_vector))
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                self.end(code, f"document {self.document_id}: {error.details()}", "not_found")
            elif code == grpc.StatusCode.INVALID_ARGUMENT:
                self.end(code, f"join.state_vector: {error.details()}", "bad_join")
            else:
                self.end(grpc.StatusCode.UNAVAILABLE, f"collab-documents could not sync the document: "
                         f"{code.name} {error.details()}", "sync_failed")
            return
        if self.ended is not None:
            return
        joined = pb.EditResponse(joined=pb.Joined(
            session_id=self.session_id, editor_server=self.editor_server, sync_update=synced.update,
            sequence=synced.sequence, awareness=synced.awareness,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms))
        size = len(synced.update) + len(synced.awareness) + FRAME_OVERHEAD_BYTES
        if self._queued_bytes + size > self._limit_bytes:
            self.end(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow consumer: the joined frame does not fit in the "
                     "session's queue", "slow_consumer")
            return
        # Joined first, then what was held for the session while it synced (updates only past its sequence).
        self.synced_sequence = synced.sequence
        self._queued_bytes += size
        self._outbox.append((joined, None, size))
        held, self._held = self._held, []
        for frame, batch, frame_size in held:
            if batch is not None and batch.last_sequence <= synced.sequence:
                self._queued_bytes -= frame_size
                continue
            self._outbox.append((frame, batch, frame_size))
        self._wake.set()
        self.last_frame = time.monotonic()  # the time spent syncing was not the client's silence
        self._spawn(self._read(requests), "reader")
        self._spawn(self._update_worker(), "updates")
        self._spawn(self._awareness_worker(), "awareness")

    # Client frames.

    async def _read(self, requests: AsyncIterator[pb.EditRequest]) -> None:
        try:
            async for frame in requests:
                self.last_frame = time.monotonic()
                kind = frame.WhichOneof("frame")
                if kind == "update":
                    self._on_update(frame.update)
                elif kind == "awareness":
                    self._on_awareness(frame.awareness.update)
                elif kind == "join":
                    self._enqueue(rejected(grpc.StatusCode.INVALID_ARGUMENT, "join", "the session has joined already"))
                # heartbeat (and frame kinds this server does not know): the time of the frame is all that counts
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as error:  # the request stream broke: the client is gone
            self.end(grpc.StatusCode.CANCELLED, f"the client's stream failed: {error.details()}", "cancelled")
            return
        except Exception as error:  # noqa: BLE001 - an undecodable frame (runtime decoding) ends the session, not the server
            self.end(grpc.StatusCode.INVALID_ARGUMENT, str(error), "bad_frame")
            return
        # The client half-closed: answer what it sent, then end with OK.
        while self.ended is None and (not self._updates.empty() or self._applying or self._awareness
                                      or self._awareness_sending):
            self._idle.clear()
            await self._idle.wait()
        self.end(grpc.StatusCode.OK, "", "client_closed")

    def _on_update(self, update: pb.LocalUpdate) -> None:
        bad = check_update(update)
        if bad is None:
            try:
                self._updates.put_nowait(update)
                return
            except asyncio.QueueFull:
                bad = rejected(grpc.StatusCode.RESOURCE_EXHAUSTED, "",
                               f"{self._settings.max_pending_updates} updates are waiting already; send it again "
                               f"after their acks", update.client_update_id)
        self._metrics.local("rejected")
        self._enqueue(bad)

    def _on_awareness(self, data: bytes) -> None:
        self._metrics.awareness_in.inc()
        if not 1 <= len(data) <= MAX_AWARENESS_BYTES:
            self._enqueue(rejected(grpc.StatusCode.INVALID_ARGUMENT, "awareness.update",
                                   f"is {len(data):,} bytes; must be 1 to {MAX_AWARENESS_BYTES:,}"))
            return
        try:
            entries = parse_awareness(data)
        except ValueError as error:
            self._enqueue(rejected(grpc.StatusCode.INVALID_ARGUMENT, "awareness.update",
                                   f"is not a y-protocols awareness update: {error}"))
            return
        new = {client_id for client_id, _, state in entries if not is_removal(state) and client_id not in self.announced}
        if len(self.announced) + len(new) > self._settings.max_awareness_clients:
            self._enqueue(rejected(grpc.StatusCode.INVALID_ARGUMENT, "awareness.update",
                                   f"a session may announce at most {self._settings.max_awareness_clients} client IDs"))
            return
        for client_id, clock, state in entries:
            if is_removal(state):
                self.announced.pop(client_id, None)
            else:
                self.announced[client_id] = max(clock, self.announced.get(client_id, 0))
            pending = self._awareness.get(client_id)
            if pending is None or clock >= pending[0]:
                self._awareness[client_id] = (clock, state)
        self._awareness_wake.set()

    async def _update_worker(self) -> None:
        """Apply the client's updates one after another (a Yjs update may depend on the one before), answering each."""
        while True:
            update = await self._updates.get()
            self._applying = True
            try:
                try:
                    reply = await self._documents.apply_update(sync_pb2.ApplyUpdateRequest(
                        document_id=self.document_id, update=update.update, origin=update.origin,
                        session_id=self.session_id))
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.NOT_FOUND:
                        self.end(grpc.StatusCode.NOT_FOUND, f"document {self.document_id}: {error.details()}", "not_found")
                        return
                    self._metrics.local("rejected")
                    self._enqueue(rejection(error, "update", update.client_update_id))
                    continue
                self._metrics.local("duplicate" if reply.duplicate else "acked")
                self._enqueue(pb.EditResponse(ack=pb.UpdateAck(client_update_id=update.client_update_id,
                                                               sequence=reply.sequence, duplicate=reply.duplicate)))
            finally:
                self._applying = False
                self._idle.set()

    async def _awareness_worker(self) -> None:
        """Send the client's awareness: the latest pending state of each client ID, in as few calls as fit."""
        while True:
            await self._awareness_wake.wait()
            self._awareness_wake.clear()
            pending, self._awareness = self._awareness, {}
            if not pending:
                continue
            self._awareness_sending = True
            try:
                for chunk in encode_awareness([(c, clock, state) for c, (clock, state) in pending.items()]):
                    try:
                        await self._documents.apply_awareness(sync_pb2.ApplyAwarenessRequest(
                            document_id=self.document_id, update=chunk, session_id=self.session_id))
                    except grpc.aio.AioRpcError as error:
                        if error.code() == grpc.StatusCode.NOT_FOUND:
                            self.end(grpc.StatusCode.NOT_FOUND, f"document {self.document_id}: {error.details()}",
                                     "not_found")
                            return
                        self._enqueue(rejection(error, "awareness"))
            finally:
                self._awareness_sending = False
                self._idle.set()

    async def _watch_heartbeats(self) -> None:
        timeout_s = self._settings.session_timeout_ms / 1000
        while self.ended is None:
            await asyncio.sleep(max(min(timeout_s / 6, 5.0), 0.02))
            if self.synced_sequence is None:
                continue  # still joining: Sync has its own deadline
            silent_s = time.monotonic() - self.last_frame
            if silent_s > timeout_s:
                self.end(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"no frame for {silent_s * 1000:.0f} ms (the limit is {self._settings.session_timeout_ms} ms; "
                         f"send a heartbeat every {self._settings.heartbeat_interval_ms} ms)", "heartbeat_timeout")

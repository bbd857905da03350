"""One DocumentSyncService.Watch per document with sessions here, relayed to those sessions, with coalescing.

Seed 001 #06 ("Collaborative Docs": Operational Transform/CRDT, WebSocket,
1M concurrent editors): an editor server relays every change of a document to
the editors connected to it. Here each editor server opens one
``DocumentSyncService.Watch`` stream per document that has at least one
session on it (on the first join; closed ``watch_linger_ms`` after the last
session left) and fans its events out to the document's local sessions, so a
document with N editors on a server costs collab-documents one stream to that
server, not N (the y-websocket server's ``doc.conns`` broadcast, one level up).

Events and what each session gets (:class:`DocumentWatch`):

- ``started{sequence}``: the watch is live; joins waiting for it go on (they
  call Sync only then, so nothing between the two is missed: the proto's
  "a watcher that then calls Sync misses nothing").
- ``update`` (AppliedUpdate, in sequence order without gaps; a repeated
  sequence is dropped, a skipped one ends the watch as broken):

  - ``broadcast_window_ms`` = 0: each update goes out as it comes, as one
    RemoteUpdate (``sequence`` its own, ``origins`` its one origin), to every
    local session except its author (``session_id``);
  - ``broadcast_window_ms`` > 0: coalescing, a design choice of this
    implementation, not the seed's (Figma sends multiplayer changes batched
    per frame; Liveblocks' client ``throttle`` option, default 100 ms, sends
    at most one batched message per interval). A leading-edge throttle: the
    first update after a quiet window is flushed at once (in the next
    event-loop turn), later ones wait until ``window`` has passed since the
    last flush. A flush merges its updates with ``pycrdt.merge_updates`` into
    one RemoteUpdate (``origins`` in sequence order, ``sequence`` the last
    one's) queued to every local session: one frame per session per window
    instead of one per update per session. A session is skipped only when
    the batch holds its own updates alone; a merged batch may repeat the
    receiver's own updates (applying a Yjs update twice is a no-op, and the
    proto allows a ``remote`` frame to repeat what the session has).

- ``awareness`` (AwarenessChange): relayed at once, never batched, to every
  local session except the one it came from (all of them when the service
  itself removed timed-out states).

When the watch fails or ends (collab-documents restarted or unavailable, the
watcher fell behind, a sequence gap, the stream's deadline
``watch_max_duration_s``), every session of the document here ends with
UNAVAILABLE (NOT_FOUND when there is no such document): their clients rejoin
with their state vector and lose nothing (EditorService.Edit's contract).

Sessions are :class:`Subscriber` objects (:class:`~.session.EditorSession`);
each bounds its own outgoing queue, so the relay never waits on a client.
Everything here runs on the event loop without awaiting a session: the watch
reader never falls behind because one client is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
import pycrdt

from casemesh.collab.v1 import editor_pb2, sync_pb2

from ...runtime.errors import ResourceExhausted
from .metrics import EditorMetrics

log = logging.getLogger("casemesh.collab.editor")

#: Opens the Watch stream of a document (``DocumentSyncService.Watch`` in the service, a fake in unit tests). The
#: result is iterated; when it has a ``cancel()`` (a grpc call), that is called when the watch is closed.
WatchSource = Callable[[str], AsyncIterator[sync_pb2.WatchResponse]]


@dataclass(frozen=True, slots=True)
class Batch:
    """One flush of a document's updates: the RemoteUpdate ``frame`` shared by every session it is queued to.

    ``first_sequence``..``last_sequence`` are the sequences it covers;
    ``authors`` the session IDs that made them (``""`` for none);
    ``applied`` one ``(session_id, applied_at_unix_ns)`` per update, in
    sequence order (the relay delay, :mod:`.metrics`); ``size_bytes`` the
    merged update's size.
    """

    frame: editor_pb2.EditResponse
    first_sequence: int
    last_sequence: int
    authors: frozenset[str]
    applied: tuple[tuple[str, int], ...]
    size_bytes: int

    @property
    def updates(self) -> int:
        return len(self.applied)


class Subscriber(Protocol):
    """What the broadcaster needs of a session (:class:`~.session.EditorSession`)."""

    session_id: str

    def offer_remote(self, batch: Batch) -> bool:
        """Queue ``batch`` (``False`` when not queued: skipped as an echo, already synced, or the session ended)."""

    def offer_awareness(self, frame: editor_pb2.EditResponse) -> bool:
        """Queue an awareness frame (``False`` when not queued)."""

    def end(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        """End the session with ``code``."""


class WatchFailed(Exception):
    """The watch of a document failed before it started: the status its sessions ended with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def merged_batch(updates: list[sync_pb2.AppliedUpdate]) -> Batch:
    """The :class:`Batch` of ``updates`` (in sequence order): one update as is, several merged with pycrdt.

    Raises ``ValueError`` when pycrdt cannot merge them (not Yjs v1 updates).
    """
    last = updates[-1]
    merged = last.update if len(updates) == 1 else pycrdt.merge_updates(*(u.update for u in updates))
    frame = editor_pb2.EditResponse(remote=editor_pb2.RemoteUpdate(
        update=merged, sequence=last.sequence, origins=[u.origin for u in updates]))
    return Batch(frame=frame, first_sequence=updates[0].sequence, last_sequence=last.sequence,
                 authors=frozenset(u.session_id for u in updates),
                 applied=tuple((u.session_id, u.applied_at_unix_ns) for u in updates), size_bytes=len(merged))


class DocumentWatch:
    """The Watch of one document and its local sessions (module docstring). Made by :class:`Broadcaster`."""

    def __init__(self, document_id: str, broadcaster: Broadcaster) -> None:
        self.document_id = document_id
        self._b = broadcaster
        self.sessions: dict[str, Subscriber] = {}
        #: Resolves to the sequence the watch started after, or fails with :class:`WatchFailed`.
        self.started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        #: The last sequence received (``None`` before ``started``).
        self.last_sequence: int | None = None
        self.closed = False
        self._pending: list[sync_pb2.AppliedUpdate] = []
        self._timer: asyncio.Handle | None = None
        self._last_flush = -math.inf
        self._linger: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._stream: AsyncIterator[sync_pb2.WatchResponse] | None = None

    def start(self) -> None:
        # A context of its own: the watch is shared by many sessions, so it must not inherit the first joiner's
        # inbound deadline (services/runtime/deadlines.py) or trace.
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.document_id}", context=contextvars.Context())

    async def ready(self) -> int:
        """Wait until the watch started; its starting sequence (raises :class:`WatchFailed`)."""
        return await asyncio.shield(self.started)

    # Sessions.

    def add(self, session: Subscriber) -> None:
        self.sessions[session.session_id] = session
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def remove(self, session: Subscriber) -> None:
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
        if not self.sessions and not self.closed and self._linger is None:
            linger_s = self._b.linger_s
            if linger_s <= 0:
                self.close("closed")
            else:
                self._linger = asyncio.get_running_loop().call_later(linger_s, self.close, "closed")

    # The stream.

    async def _run(self) -> None:
        try:
            self._stream = self._b.open_watch(self.document_id)
            async for event in self._stream:
                kind = event.WhichOneof("event")
                if kind == "update":
                    self._on_update(event.update)
                elif kind == "awareness":
                    self._on_awareness(event.awareness)
                elif kind == "started":
                    self._on_started(event.started.sequence)
                if self.closed:
                    return
            self._fail(grpc.StatusCode.UNAVAILABLE, "the watch ended", "lost")
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                self._fail(grpc.StatusCode.NOT_FOUND, error.details() or "no such document", "not_found")
            else:
                self._fail(grpc.StatusCode.UNAVAILABLE, f"the watch failed: {error.code().name} {error.details()}", "lost")
        except Exception as error:  # noqa: BLE001 - a broken watch ends its sessions, never the server
            log.exception("%s: the watch of %s failed", self._b.name, self.document_id)
            self._fail(grpc.StatusCode.UNAVAILABLE, f"the watch failed: {error!r}", "lost")
        finally:
            cancel = getattr(self._stream, "cancel", None)
            if cancel is not None:
                cancel()

    def _on_started(self, sequence: int) -> None:
        if self.last_sequence is not None:
            self._fail(grpc.StatusCode.UNAVAILABLE, "the watch started twice", "lost")
            return
        self.last_sequence = sequence
        if not self.started.done():
            self.started.set_result(sequence)

    def _on_update(self, update: sync_pb2.AppliedUpdate) -> None:
        self._b.metrics.applied.inc()
        last = self.last_sequence
        if last is None:
            self._fail(grpc.StatusCode.UNAVAILABLE, "the watch sent an update before `started`", "lost")
            return
        if update.sequence <= last:
            return  # a repeat: every session has it queued or synced already
        if update.sequence != last + 1:
            self._fail(grpc.StatusCode.UNAVAILABLE, f"the watch skipped from sequence {last} to {update.sequence}", "gap")
            return
        self.last_sequence = update.sequence
        if not self.sessions:
            return  # lingering: nobody to tell
        self._pending.append(update)
        window_s = self._b.window_s
        if window_s <= 0:
            self._flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            delay = self._last_flush + window_s - loop.time()
            self._timer = loop.call_soon(self._flush) if delay <= 0 else loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        """Queue the pending updates to every local session, merged into one RemoteUpdate."""
        self._timer = None
        updates, self._pending = self._pending, []
        if not updates or self.closed:
            return
        self._last_flush = asyncio.get_running_loop().time()
        try:
            batches = [merged_batch(updates)]
        except ValueError as error:  # not mergeable: send them one by one rather than not at all
            log.warning("%s: could not merge %d updates of %s (%s); relaying them one by one", self._b.name,
                        len(updates), self.document_id, error)
            batches = [merged_batch([u]) for u in updates]
        metrics = self._b.metrics
        for batch in batches:
            metrics.batch.observe(batch.updates)
            queued = 0
            for session in list(self.sessions.values()):
                if session.offer_remote(batch):
                    queued += 1
            metrics.fanout.observe(queued)

    def _on_awareness(self, change: sync_pb2.AwarenessChange) -> None:
        frame = editor_pb2.EditResponse(awareness=editor_pb2.AwarenessUpdate(update=change.update))
        author = change.session_id
        for session in list(self.sessions.values()):
            if session.session_id != author:
                session.offer_awareness(frame)

    # Ending.

    def _fail(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        """The watch is broken: forget it and end its sessions with ``code`` (clients rejoin and resync)."""
        if self.closed:
            return
        self._closed(reason)
        text = f"{self._b.name} lost its watch of document {self.document_id} ({message}); rejoin with your state vector"
        if code == grpc.StatusCode.NOT_FOUND:
            text = f"document {self.document_id}: {message}"
        if not self.started.done():
            self.started.set_exception(WatchFailed(code, text))
            self.started.exception()  # retrieved: a watch nobody waits on must not log "never retrieved"
        for session in list(self.sessions.values()):
            session.end(code, text, "not_found" if code == grpc.StatusCode.NOT_FOUND else "watch_lost")
        self.sessions.clear()

    def close(self, reason: str) -> None:
        """Stop watching (no session left after the linger, or shutdown); sessions still here end with UNAVAILABLE."""
        if self.closed:
            return
        self._closed(reason)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if not self.started.done():
            self.started.set_exception(WatchFailed(grpc.StatusCode.UNAVAILABLE, f"{self._b.name} stopped watching"))
            self.started.exception()
        for session in list(self.sessions.values()):
            session.end(grpc.StatusCode.UNAVAILABLE, f"{self._b.name} is shutting down; rejoin, to any editor server",
                        "shutdown")
        self.sessions.clear()

    def _closed(self, reason: str) -> None:
        self.closed = True
        for handle in (self._timer, self._linger):
            if handle is not None:
                handle.cancel()
        self._timer = self._linger = None
        self._pending = []
        self._b._forget(self, reason)

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class Broadcaster:
    """The watches of one editor server, by document ID (module docstring).

    ``open_watch(document_id)`` opens a document's Watch stream;
    ``window_ms`` is ``broadcast_window_ms``; ``max_per_document`` the most
    sessions of one document here (the contract's 100 editors per document
    can only be enforced per server: a server does not see the others').
    """

    def __init__(self, name: str, open_watch: WatchSource, *, window_ms: float, linger_ms: float, max_per_document: int,
                 metrics: EditorMetrics) -> None:
        self.name = name
        self.open_watch = open_watch
        self.window_s = window_ms / 1000
        self.linger_s = linger_ms / 1000
        self.max_per_document = max_per_document
        self.metrics = metrics
        self._watches: dict[str, DocumentWatch] = {}
        self._closing: set[DocumentWatch] = set()

    def __len__(self) -> int:
        return len(self._watches)

    def watch_of(self, document_id: str) -> DocumentWatch | None:
        return self._watches.get(document_id)

    def subscribe(self, document_id: str, session: Subscriber) -> DocumentWatch:
        """Add ``session`` to ``document_id``'s watch, opening it if needed (then ``await watch.ready()``).

        Raises :class:`ResourceExhausted` when the document has
        ``max_per_document`` sessions here already.
        """
        watch = self._watches.get(document_id)
        if watch is None:
            watch = self._watches[document_id] = DocumentWatch(document_id, self)
            self.metrics.watches.set(len(self._watches))
            watch.start()
        if len(watch.sessions) >= self.max_per_document:
            raise ResourceExhausted(f"document {document_id} has {self.max_per_document} editors on {self.name} "
                                    f"already (the limit of concurrent editors per document)")
        watch.add(session)
        return watch

    def leave(self, watch: DocumentWatch, session: Subscriber) -> None:
        """``session`` ended: it leaves ``watch`` (closed after the linger when it was the last)."""
        watch.remove(session)

    def _forget(self, watch: DocumentWatch, reason: str) -> None:
        if self._watches.get(watch.document_id) is watch:
            del self._watches[watch.document_id]
            self.metrics.watches.set(len(self._watches))
        self.metrics.watch_ended(reason)
        self._closing.add(watch)
        if watch._task is not None:
            watch._task.add_done_callback(lambda _: self._closing.discard(watch))
        else:
            self._closing.discard(watch)

    async def close(self) -> None:
        """Close every watch (their sessions end with UNAVAILABLE) and wait for their streams to stop."""
        for watch in list(self._watches.values()):
            watch.close("shutdown")
        closing = list(self._closing)
        if closing:
            await asyncio.wait([asyncio.ensure_future(w.wait_closed()) for w in closing], timeout=5)

"""The editors of one load process: a real CRDT replica and an Edit stream each, held open for the run.

A :class:`Clients` is what the collab workload's ``connect`` returns (the
state its journeys get). Each editor of this process's share
(``editors[index::count]``, :attr:`casemesh.harness.streams.Streams.share`)
holds a Yjs replica of its document (``pycrdt.Doc`` with the ``Y.Text``
named :data:`~casemesh.services.collab.contract.TEXT_NAME`) and one
EditorService.Edit stream to the editor server the seeding gave it. Like a
real editor client (y-websocket over a gRPC stream), it:

- joins with its replica's state vector and applies the ``joined`` frame's
  ``sync_update`` (y-protocols sync steps 1 and 2);
- applies every ``remote`` frame to its replica, and every ``awareness``
  frame to its :class:`pycrdt.Awareness`;
- keeps every local update until its ``ack`` (durable) arrives, and resends
  the unacknowledged ones after each join (the server answers a repeat with
  ``duplicate``); an update refused UNAVAILABLE or RESOURCE_EXHAUSTED is
  sent again after a pause (its journey waits on), one refused
  INVALID_ARGUMENT is dropped (its journey fails with that code);
- heartbeats when it has sent nothing for half the interval ``joined`` asked
  for;
- joins again by itself, with its state vector, to the other editor server
  when its stream ends unexpectedly (UNAVAILABLE: a server went away), after
  y-websocket's backoff (100 ms doubling up to 2.5 s, with jitter; a session
  that lasted under 5 s counts as a failure), one recovery at a time.

Text is lower-case ASCII and spaces only (seeded and typed), so positions in
characters and pycrdt's UTF-8 byte offsets are the same.

Measures (recorded for edits intended after the warm-up):

- ``remote_edit``: an edit's intended send (the arrival's intended start) →
  its arrival in each *other* editor of the document. The sender's intended
  time travels in the update's ``origin`` tag (``e<editor>-<id>-<unix ns>``,
  :func:`encode_origin`), which the server relays in the ``remote`` frame's
  ``origins``; the first arrival per (receiver, origin) counts, so the
  receiver may be held by another worker process of the machine;
- ``remote_cursor``: a cursor move's intended send → the new cursor in each
  other editor's awareness (the time travels in the awareness state's ``t``);
- ``convergence``: at ``disconnect``, after the last arrival, each editor's
  wait until its text equals the document's as GetDocument returns it (at
  most :data:`SETTLE_TIMEOUT_S`). A replica that still differs is the CRDT's
  promise broken: DATA_LOSS (DEADLINE_EXCEEDED while it still has updates
  not acknowledged, UNAVAILABLE without a session).

Stream integrity is checked as frames arrive: within one session the
``remote`` frames' sequences never go backwards (the contract: in sequence
order, no gap; repeats allowed). A frame that breaks it is recorded under
``remote_edit`` with status DATA_LOSS (one sample per origin it carries) and
logged; so is a ``remote`` update the replica cannot decode.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import pycrdt

from casemesh.collab.v1 import documents_pb2, editor_pb2
from casemesh.services.collab.contract import HEARTBEAT_INTERVAL_MS, MAX_ORIGIN_CHARS, TEXT_NAME

from ...stats import OK
from ...streams import BidiStream, Streams
from .seeding import ALPHABET, DOCUMENTS, EDITOR_SERVERS, EditorPlan, State

log = logging.getLogger("casemesh.workloads.collab")

#: Measures: an edit's intended send → each other editor's replica has it; a cursor move → each other editor sees it;
#: the end of the run → each replica equals the document (the convergence check).
REMOTE_EDIT = "remote_edit"
REMOTE_CURSOR = "remote_cursor"
CONVERGENCE = "convergence"
#: Seconds an editor waits for ``joined`` before giving up on a join.
JOIN_TIMEOUT_S = 10.0
#: An editor whose stream ended unexpectedly joins again after min(RECONNECT_BASE_S x 2^failures, RECONNECT_MAX_S),
#: times a random 0.5-1 (y-websocket's backoff: 100 ms doubling up to 2,500 ms; the jitter spreads a herd of editors
#: cut off at once), where ``failures`` counts the joins that failed and the sessions shorter than STABLE_SESSION_S
#: since the last session that lasted longer. It keeps trying until the run ends, as y-websocket does.
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.5
STABLE_SESSION_S = 5.0
#: Seconds before an update refused UNAVAILABLE or RESOURCE_EXHAUSTED is sent again on the same session.
RETRY_REFUSED_S = 0.5
#: Refusals of an update that sending it again may cure (collab-documents unavailable, the session's queue of
#: updates full); INVALID_ARGUMENT is final.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
#: Seconds ``disconnect`` waits for acknowledgements and for every replica to equal its document.
SETTLE_TIMEOUT_S = 5.0
#: Seconds between two rounds of the convergence check.
SETTLE_POLL_S = 0.1
#: Origins remembered per editor (first arrival only); the older half is forgotten beyond this.
SEEN_LIMIT = 20_000
#: Characters an edit types: the seeded text's letters and the space.
TYPED = ALPHABET + " "

_ORIGIN = re.compile(r"e(\d{1,9})-(\d{1,20})-(\d{1,20})")


def encode_origin(editor: int, update_id: int, sent_wall_ns: int) -> str:
    """The ``origin`` tag of editor ``editor``'s update ``update_id`` intended at Unix time ``sent_wall_ns``."""
    origin = f"e{editor}-{update_id}-{sent_wall_ns}"
    if len(origin) > MAX_ORIGIN_CHARS:  # pragma: no cover - 9 + 20 + 20 digits and 3 characters fit
        raise ValueError(f"origin {origin!r} is longer than {MAX_ORIGIN_CHARS} characters")
    return origin


def decode_origin(origin: str) -> tuple[int, int, int] | None:
    """``(editor, update_id, sent_wall_ns)`` of a tag made by :func:`encode_origin`; ``None`` for any other tag."""
    match = _ORIGIN.fullmatch(origin)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class EditChoice:
    """One edit of a text: insert ``insert`` at ``position``, or delete ``delete`` characters from it."""

    position: int
    insert: str = ""
    delete: int = 0


def choose_edit(length: int, rng: Any, *, min_chars: int, max_chars: int, delete_share: float, max_delete: int) -> EditChoice:
    """An edit of a text of ``length`` characters: a deletion of 1 to ``max_delete`` characters for ``delete_share``
    of edits (when there is text to delete), else an insertion of ``min_chars`` to ``max_chars`` typed characters;
    at a uniformly random position where it fits."""
    if length > 0 and max_delete > 0 and rng.random() < delete_share:
        count = rng.randint(1, min(max_delete, length))
        return EditChoice(rng.randint(0, length - count), delete=count)
    typed = "".join(rng.choices(TYPED, k=rng.randint(min_chars, max_chars)))
    return EditChoice(rng.randint(0, length), insert=typed)


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A client-side error as a journey raises it (its code becomes the journey's status)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@dataclass(eq=False)
class Editor:
    """One simulated editor: its replica, its stream and session, its unacknowledged updates."""

    plan: EditorPlan
    server: int
    doc: pycrdt.Doc
    text: pycrdt.Text
    awareness: pycrdt.Awareness
    stream: BidiStream | None = None
    reader: asyncio.Task | None = None
    joined: asyncio.Future | None = None
    #: True from ``joined`` until the stream ends: updates go out at once.
    ready: bool = False
    #: A reconnect journey is closing its stream and joining again.
    reconnecting: bool = False
    #: Its stream ended unexpectedly and it is joining again by itself (one recovery at a time).
    recovering: bool = False
    #: Failed joins and short sessions since the last stable one (the reconnection backoff's exponent).
    failures: int = 0
    #: perf_counter instant of the current session's ``joined`` (0 before it).
    joined_at: float = 0.0
    #: The current session's ID and editor server, as ``joined`` gave them (for the logs).
    session: str = ""
    #: client_update_id → the update, until acknowledged (resent after each join).
    unacked: dict[int, editor_pb2.LocalUpdate] = field(default_factory=dict)
    #: client_update_id → the future its journey waits on.
    waiting: dict[int, asyncio.Future] = field(default_factory=dict)
    next_update_id: int = 1
    #: The last ``remote`` frame's sequence in the current session.
    session_last: int = 0
    #: The highest document sequence the replica is known to hold (joined, remote frames, acks).
    sequence: int = 0
    #: Origins of updates that arrived already (first arrival only), oldest first.
    seen: dict[str, None] = field(default_factory=dict)
    #: Awareness client ID → the last cursor time (``t``) measured from it.
    cursor_seen: dict[int, int] = field(default_factory=dict)
    #: Awareness clients whose state changed in the update being applied (filled by the observer).
    changed: list[int] = field(default_factory=list)
    last_frame_at: float = 0.0
    sessions: int = 0
    rejected: int = 0


class Clients:
    """This process's editors (see the module docstring); journeys get it as their state."""

    def __init__(self, streams: Streams, state: State):
        self.streams = streams
        self.state = state
        index, count = streams.share
        self.local = [self._editor(plan) for plan in state.editors[index::count]]
        self.hot_local = [e for e in self.local if e.plan.document == state.hot]
        self.other_local = [e for e in self.local if e.plan.document != state.hot]
        self._closing = False
        self._heartbeat: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.heartbeat_interval_s = HEARTBEAT_INTERVAL_MS / 1000
        self.integrity_errors = 0
        self.reconnects = 0

    @staticmethod
    def _editor(plan: EditorPlan) -> Editor:
        doc = pycrdt.Doc()
        text = doc.get(TEXT_NAME, type=pycrdt.Text)
        awareness = pycrdt.Awareness(doc)  # not started: the editor renews nothing by itself but its heartbeat
        awareness.set_local_state({"user": plan.user})
        editor = Editor(plan=plan, server=plan.server, doc=doc, text=text, awareness=awareness)

        def changed(topic: str, event: tuple[dict[str, list[int]], Any]) -> None:
            if topic == "change":
                editor.changed.extend(event[0]["added"])
                editor.changed.extend(event[0]["updated"])

        awareness.observe(changed)
        return editor

    def pick(self, rng: Any, hot_share: float) -> Editor:
        """An editor of this process: one of the hot document's for ``hot_share`` of picks (when it has any)."""
        if self.hot_local and (not self.other_local or rng.random() < hot_share):
            return rng.choice(self.hot_local)
        return rng.choice(self.other_local)

    # joining ---------------------------------------------------------------------------------------------------

    async def connect_all(self, concurrency: int) -> None:
        """Join every local editor, ``concurrency`` at a time; raises the first failure."""
        limit = asyncio.Semaphore(concurrency)

        async def one(editor: Editor) -> None:
            async with limit:
                await self.join(editor, self.streams.open(EDITOR_SERVERS[editor.server], "Edit"))

        await asyncio.gather(*(one(e) for e in self.local))
        self._heartbeat = asyncio.create_task(self._heartbeats(), name="collab-heartbeats")

    async def join(self, editor: Editor, stream: BidiStream) -> editor_pb2.Joined:
        """Send ``join`` with the replica's state vector on ``stream``, start its reader, wait for ``joined`` (the
        reader applies its sync update and resends the unacknowledged updates)."""
        editor.stream = stream
        editor.ready = False
        editor.joined_at = 0.0
        editor.session_last = 0
        editor.joined = joined = asyncio.get_running_loop().create_future()
        editor.sessions += 1
        stream.send(editor_pb2.EditRequest(join=editor_pb2.Join(
            document_id=editor.plan.document, user_id=editor.plan.user, state_vector=editor.doc.get_state())))
        editor.last_frame_at = time.perf_counter()
        editor.reader = asyncio.create_task(self._read(editor, stream, joined), name=f"collab-reader-{editor.plan.user}")
        try:
            return await asyncio.wait_for(asyncio.shield(joined), JOIN_TIMEOUT_S)
        except TimeoutError:
            joined.cancel()  # nobody waits on it any more
            stream.cancel()
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED,
                            f"{editor.plan.user}: no joined frame within {JOIN_TIMEOUT_S:g} s") from None

    async def reconnect(self, editor: Editor, open_stream: Any) -> editor_pb2.Joined:
        """Half-close the editor's stream, wait for it to end, then join through ``open_stream(server)``; when that join
        fails, the editor joins again by itself (backing off) and the error is raised."""
        editor.reconnecting = True
        try:
            old = editor.stream
            if old is not None and not old.ended:
                editor.stream = None  # its reader must not reconnect by itself
                editor.ready = False
                await old.close()
            self.reconnects += 1
            return await self.join(editor, open_stream(EDITOR_SERVERS[editor.server]))
        except grpc.aio.AioRpcError:
            editor.failures += 1
            if not self._closing:
                self._spawn(self._recover(editor, "join failed"), f"collab-recover-{editor.plan.user}")
            raise
        finally:
            editor.reconnecting = False

    def _on_joined(self, editor: Editor, stream: BidiStream, joined: editor_pb2.Joined) -> None:
        if joined.sync_update:
            editor.doc.apply_update(joined.sync_update)
        if joined.awareness:
            self._apply_awareness(editor, joined.awareness, measure=False)
        editor.sequence = max(editor.sequence, joined.sequence)
        if joined.heartbeat_interval_ms:
            self.heartbeat_interval_s = max(joined.heartbeat_interval_ms, 100) / 1000
        editor.ready = True
        editor.joined_at = time.perf_counter()
        editor.session = f"{joined.session_id}@{joined.editor_server}"
        for update in list(editor.unacked.values()):
            stream.send(editor_pb2.EditRequest(update=update))
        if "cursor" in (editor.awareness.get_local_state() or {}):  # as y-websocket does on connect: its awareness
            stream.send(editor_pb2.EditRequest(awareness=editor_pb2.AwarenessUpdate(
                update=editor.awareness.encode_awareness_update([editor.awareness.client_id]))))
        editor.last_frame_at = time.perf_counter()

    async def _read(self, editor: Editor, stream: BidiStream, joined: asyncio.Future) -> None:
        """Read ``stream`` to its end (``joined``: the future its join waits on); then, for a session that had joined
        and ended unexpectedly, start the editor's recovery."""
        while (frame := await stream.recv()) is not None:
            kind = frame.WhichOneof("frame")
            if kind == "remote":
                self._on_remote(editor, frame.remote)
            elif kind == "ack":
                self._on_ack(editor, frame.ack)
            elif kind == "awareness":
                self._apply_awareness(editor, frame.awareness.update, measure=True)
            elif kind == "rejected":
                self._on_rejected(editor, stream, frame.rejected)
            elif kind == "joined" and not joined.done():
                try:
                    self._on_joined(editor, stream, frame.joined)
                except Exception as error:  # noqa: BLE001 - an undecodable sync update: the session is useless
                    log.warning("%s: joined frame not applicable: %s", editor.plan.user, error)
                    joined.set_exception(rpc_error(grpc.StatusCode.DATA_LOSS, f"{editor.plan.user}: {error}"))
                    stream.cancel()
                    break
                joined.set_result(frame.joined)
        current = editor.stream is stream
        if current:
            editor.ready = False
        if not joined.done():
            joined.set_exception(rpc_error(grpc.StatusCode[stream.code or "CANCELLED"],
                                           f"{editor.plan.user}: the stream ended before joined"))
        elif current and editor.joined_at:  # a session that had joined: stable, or one more failure for the backoff
            editor.failures = 0 if time.perf_counter() - editor.joined_at >= STABLE_SESSION_S else editor.failures + 1
        # A join that fails is its caller's (connect_all, a reconnect journey, a recovery already under way).
        if (not self._closing and current and editor.joined_at and not editor.recovering and not editor.reconnecting
                and stream.code not in (OK, "CANCELLED")):
            self._spawn(self._recover(editor, stream.code), f"collab-recover-{editor.plan.user}")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover(self, editor: Editor, code: str | None) -> None:
        """Join again an editor whose stream ended with ``code`` (e.g. UNAVAILABLE), alternating between the editor
        servers and backing off (see :data:`RECONNECT_BASE_S`), until it has joined or the run ends."""
        if editor.recovering:
            return
        editor.recovering = True
        log.info("%s: stream ended %s, joining again", editor.plan.user, code)
        try:
            while not self._closing:
                cap = min(RECONNECT_BASE_S * 2 ** min(editor.failures, 16), RECONNECT_MAX_S)
                await asyncio.sleep(cap * random.uniform(0.5, 1.0))
                if self._closing:
                    return
                editor.server = (editor.server + 1) % len(EDITOR_SERVERS)
                try:
                    await self.join(editor, self.streams.open(EDITOR_SERVERS[editor.server], "Edit"))
                    self.reconnects += 1
                    return
                except grpc.aio.AioRpcError as error:
                    editor.failures += 1
                    log.info("%s: join attempt to %s failed: %s", editor.plan.user, EDITOR_SERVERS[editor.server],
                             error.code().name)
        finally:
            editor.recovering = False

    # frames from the server ------------------------------------------------------------------------------------

    def _on_remote(self, editor: Editor, remote: editor_pb2.RemoteUpdate) -> None:
        now_ns = time.time_ns()
        code = OK
        try:
            editor.doc.apply_update(remote.update)
        except Exception as error:  # noqa: BLE001 - pycrdt raises ValueError for an undecodable update
            code = "DATA_LOSS"
            log.warning("%s: remote update at sequence %d not applicable: %s", editor.plan.user, remote.sequence, error)
        if remote.sequence < editor.session_last:
            code = "DATA_LOSS"
            log.warning("%s: remote frame of sequence %d after %d in session %s (out of order; origins %s)",
                        editor.plan.user, remote.sequence, editor.session_last, editor.session, list(remote.origins))
        else:
            editor.session_last = remote.sequence
        editor.sequence = max(editor.sequence, remote.sequence)
        streams = self.streams
        if code != OK:
            self.integrity_errors += 1
            if not remote.origins:
                streams.observe(REMOTE_EDIT, 0.0, code, sent_at=time.perf_counter())
        seen = editor.seen
        for origin in remote.origins:
            if code == OK and origin in seen:
                continue
            decoded = decode_origin(origin)
            if decoded is None:
                continue  # not one of this workload's edits (the seeded text, another client)
            author, _, sent_ns = decoded
            if author == editor.plan.index and code == OK:
                continue  # its own edit, relayed back: not a remote arrival
            seen[origin] = None
            streams.observe(REMOTE_EDIT, (now_ns - sent_ns) / 1e9, code, sent_at=streams.perf_at(sent_ns))
        if len(seen) > SEEN_LIMIT:
            for old in list(seen)[: SEEN_LIMIT // 2]:
                del seen[old]

    def _on_ack(self, editor: Editor, ack: editor_pb2.UpdateAck) -> None:
        editor.unacked.pop(ack.client_update_id, None)
        editor.sequence = max(editor.sequence, ack.sequence)
        waiting = editor.waiting.pop(ack.client_update_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(ack)

    def _on_rejected(self, editor: Editor, stream: BidiStream, rejected: editor_pb2.Rejected) -> None:
        code = _status(rejected.code)
        update_id = rejected.client_update_id
        if update_id == 0:  # an awareness frame: nothing waits for it
            log.warning("%s: an awareness update was rejected: %s %s %s", editor.plan.user, code.name, rejected.field,
                        rejected.message)
            return
        if code in RETRY_CODES and update_id in editor.unacked:
            self._spawn(self._resend_later(editor, stream, update_id), f"collab-resend-{editor.plan.user}")
            return  # the journey waits on: the update goes again after a pause
        editor.rejected += 1
        editor.unacked.pop(update_id, None)  # never to be accepted: the replica now holds an edit the document lacks
        log.warning("%s: update %d rejected: %s %s %s", editor.plan.user, update_id, code.name, rejected.field,
                    rejected.message)
        waiting = editor.waiting.pop(update_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_exception(rpc_error(code, f"{rejected.field}: {rejected.message}"))

    async def _resend_later(self, editor: Editor, stream: BidiStream, update_id: int) -> None:
        await asyncio.sleep(RETRY_REFUSED_S)
        update = editor.unacked.get(update_id)
        if update is not None and editor.stream is stream and editor.ready:
            stream.send(editor_pb2.EditRequest(update=update))
            editor.last_frame_at = time.perf_counter()

    def _apply_awareness(self, editor: Editor, update: bytes, *, measure: bool) -> None:
        now_ns = time.time_ns()
        editor.changed.clear()
        try:
            editor.awareness.apply_awareness_update(update, "remote")
        except Exception as error:  # noqa: BLE001 - a malformed awareness update: not the document's data
            log.warning("%s: awareness update not applicable: %s", editor.plan.user, error)
            return
        own = editor.awareness.client_id
        for client in editor.changed:
            state = editor.awareness.states.get(client)
            sent = state.get("t") if client != own and isinstance(state, dict) else None
            if not isinstance(sent, str) or not sent.isdigit():
                continue
            sent_ns = int(sent)
            if sent_ns <= editor.cursor_seen.get(client, 0):
                continue
            editor.cursor_seen[client] = sent_ns
            if measure:
                self.streams.observe(REMOTE_CURSOR, (now_ns - sent_ns) / 1e9, sent_at=self.streams.perf_at(sent_ns))
        editor.changed.clear()

    async def _heartbeats(self) -> None:
        """Send ``heartbeat`` on every editor that sent nothing for half an interval, spreading the sweep over it."""
        while not self._closing:
            editors = self.local
            pause = self.heartbeat_interval_s / 2 / max(len(editors), 1)
            for i, editor in enumerate(editors):
                if self._closing:
                    return
                now = time.perf_counter()
                stream = editor.stream
                if stream is not None and not stream.ended and now - editor.last_frame_at >= self.heartbeat_interval_s / 2:
                    stream.send(editor_pb2.EditRequest(heartbeat=editor_pb2.Heartbeat()))
                    editor.last_frame_at = now
                if i % 50 == 49:
                    await asyncio.sleep(pause * 50)
            await asyncio.sleep(max(pause, 0.01))

    # editing ---------------------------------------------------------------------------------------------------

    @staticmethod
    def apply_edit(editor: Editor, choice: EditChoice) -> bytes:
        """Make ``choice`` on the editor's replica; returns it as one Yjs update (what the replica did not have)."""
        before = editor.doc.get_state()
        if choice.delete:
            del editor.text[choice.position:choice.position + choice.delete]
        else:
            editor.text.insert(choice.position, choice.insert)
        return editor.doc.get_update(before)

    async def send_update(self, editor: Editor, update: bytes, intended_at: float, timeout_s: float) -> editor_pb2.UpdateAck:
        """Send ``update`` (made at the journey's intended start ``intended_at``, perf_counter s) as a LocalUpdate;
        returns its ``ack`` (durable).

        Raises ``AioRpcError``: INVALID_ARGUMENT when a ``rejected`` frame refused it for good, or DEADLINE_EXCEEDED
        when no ack came within ``timeout_s`` (the update stays queued and goes again after a refusal that may be
        cured and after the next join, as a real client's does).
        """
        update_id = editor.next_update_id
        editor.next_update_id += 1
        local = editor_pb2.LocalUpdate(client_update_id=update_id, update=update,
                                       origin=encode_origin(editor.plan.index, update_id, self.streams.wall_ns(intended_at)))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        editor.unacked[update_id] = local
        editor.waiting[update_id] = future
        stream = editor.stream
        if editor.ready and stream is not None and not stream.ended:
            stream.send(editor_pb2.EditRequest(update=local))
            editor.last_frame_at = time.perf_counter()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{editor.plan.user}: update {update_id} not acknowledged "
                                                               f"within {timeout_s:g} s") from None
        finally:
            editor.waiting.pop(update_id, None)

    def move_cursor(self, editor: Editor, position: int, intended_at: float) -> bool:
        """Set the editor's cursor to ``position`` in its awareness and send it; False when it has no session now (its
        next ``joined`` sends it)."""
        editor.awareness.set_local_state({"user": editor.plan.user, "cursor": position,
                                          "t": str(self.streams.wall_ns(intended_at))})
        stream = editor.stream
        if not editor.ready or stream is None or stream.ended:
            return False
        stream.send(editor_pb2.EditRequest(awareness=editor_pb2.AwarenessUpdate(
            update=editor.awareness.encode_awareness_update([editor.awareness.client_id]))))
        editor.last_frame_at = time.perf_counter()
        return True

    # closing ---------------------------------------------------------------------------------------------------

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> int:
        """The convergence check (see the module docstring): wait until no editor has an update unacknowledged,
        then until each replica's text equals its document's (GetDocument), at most ``timeout_s`` in all; records
        ``convergence`` per editor. Returns how many replicas did not converge."""
        started = time.perf_counter()
        deadline = started + timeout_s
        while any(e.unacked for e in self.local) and time.perf_counter() < deadline:
            await asyncio.sleep(SETTLE_POLL_S / 2)
        remaining = list(self.local)
        texts: dict[str, documents_pb2.Document] = {}
        while remaining:
            try:
                texts = await self._documents({e.plan.document for e in remaining}, deadline)
            except grpc.aio.AioRpcError as error:
                log.warning("collab: convergence check: GetDocument failed: %s %s", error.code().name, error.details())
            now = time.perf_counter()
            left = []
            for editor in remaining:
                document = texts.get(editor.plan.document)
                if document is not None and str(editor.text) == document.text:
                    self.streams.observe(CONVERGENCE, now - started, sent_at=started)
                else:
                    left.append(editor)
            remaining = left
            if not remaining or now >= deadline:
                break
            await asyncio.sleep(min(SETTLE_POLL_S, max(deadline - now, 0)))
        now = time.perf_counter()
        for editor in remaining:
            stream = editor.stream
            code = ("DEADLINE_EXCEEDED" if editor.unacked else
                    "UNAVAILABLE" if not editor.ready or stream is None or stream.ended else "DATA_LOSS")
            document = texts.get(editor.plan.document)
            mine = str(editor.text)
            theirs = document.text if document is not None else None
            at = next((i for i, (a, b) in enumerate(zip(mine, theirs or "")) if a != b), min(len(mine), len(theirs or "")))
            log.warning("collab: %s's replica of %s differs from the document after %.1f s (%s): %d characters against "
                        "%s, first difference at %d; replica at sequence %d, document at %s; %d updates unacknowledged, "
                        "%d rejected", editor.plan.user, editor.plan.document, now - started, code, len(mine),
                        len(theirs) if theirs is not None else "unknown", at, editor.sequence,
                        document.sequence if document is not None else "unknown", len(editor.unacked), editor.rejected)
            self.streams.observe(CONVERGENCE, now - started, code, sent_at=started)
        return len(remaining)

    async def _documents(self, documents: set[str], deadline: float) -> dict[str, documents_pb2.Document]:
        limit = asyncio.Semaphore(16)
        timeout_s = max(deadline - time.perf_counter(), 0.5)

        async def get(document: str) -> documents_pb2.Document:
            async with limit:
                response = await self.streams.call(DOCUMENTS, "GetDocument",
                                                   documents_pb2.GetDocumentRequest(document_id=document), timeout_s=timeout_s)
            return response.document

        found = await asyncio.gather(*(get(d) for d in sorted(documents)))
        return {d.document_id: d for d in found}

    async def close(self) -> None:
        """Half-close every stream (they end OK) and stop the readers."""
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in list(self._tasks):
            task.cancel()
        streams = [e.stream for e in self.local if e.stream is not None]
        limit = asyncio.Semaphore(256)

        async def close_one(stream: BidiStream) -> None:
            async with limit:
                await stream.close()

        await asyncio.gather(*(close_one(s) for s in streams), return_exceptions=True)
        readers = [e.reader for e in self.local if e.reader is not None]
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, *self._tasks, return_exceptions=True)
        if self.integrity_errors:
            log.warning("collab: %d remote frames came out of order or could not be applied", self.integrity_errors)


def _status(value: int) -> grpc.StatusCode:
    """A Rejected frame's code number as a ``grpc.StatusCode`` (UNKNOWN for an unknown number)."""
    return next((status for status in grpc.StatusCode if status.value[0] == value), grpc.StatusCode.UNKNOWN)

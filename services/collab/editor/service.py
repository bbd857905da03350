"""``casemesh.collab.v1.EditorService``: an editor server (topology names ``collab-editor-N``).

Seed 001 #06 (shared/seeds/001_58dfc580020147d2.txt), "Collaborative Docs":
"Operational Transform/CRDT, WebSocket, conflict resolution; 1M concurrent
editors, Google Docs". The connection layer of collaborative editing: an
editor holds one bidi ``Edit`` stream per open document (a WebSocket in the
seed; y-websocket's role in the Yjs world); the server syncs it with
collab-documents (DocumentSyncService.Sync: the y-protocols sync steps 1 and
2), forwards its updates and awareness (ApplyUpdate, ApplyAwareness) and
relays what the other editors change from one Watch stream per document
(:mod:`.broadcaster`, with the coalescing window ``broadcast_window_ms``: the
case study's A/B switch). The mesh runs several editor servers, one per
topology name (:func:`definition`: ``collab-editor-1``, ``collab-editor-2``);
an editor may connect to any, and editors of one document on different
servers see each other's edits through collab-documents.

Edit (public): the first frame must be ``join`` within ``session_timeout_ms``
(else DEADLINE_EXCEEDED), and a valid one (else INVALID_ARGUMENT naming
``join.document_id``, ``join.user_id`` or ``join.state_vector``);
RESOURCE_EXHAUSTED beyond ``max_sessions`` on this server or
``max_editors_per_document`` sessions of the document on this server (the
contract's 100 editors per document is enforced per server only: a server
does not see the others' sessions, so N servers admit up to N × 100); then
the session's own statuses (:mod:`.session`). The Edit streams get
:data:`~.settings.EDIT_STREAM_SLOTS` admission slots by default
(``ServiceDefinition.default_limits``), so that open documents do not use up
the slots that bound unary work (services/runtime/admission.py).

On shutdown (component stop) every session ends with UNAVAILABLE (the client
rejoins, to any editor server, with its state vector) and every watch is
closed. Settings: :class:`.settings.EditorSettings` (per editor server).
Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

import grpc

from casemesh.collab.v1 import editor_pb2 as pb
from casemesh.collab.v1 import editor_pb2_grpc as pb_grpc
from casemesh.collab.v1 import sync_pb2, sync_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument, ResourceExhausted
from .broadcaster import Broadcaster
from .metrics import EditorMetrics
from .session import EditorSession, check_join
from .settings import EDIT_STREAM_SLOTS, EditorSettings

log = logging.getLogger("casemesh.collab.editor")

EDITOR_SERVICE = pb.DESCRIPTOR.services_by_name["EditorService"].full_name
DOCUMENTS = "collab-documents"


def editor_name(shard: int) -> str:
    """The topology name of editor server ``shard`` (``collab-editor-1``)."""
    return f"collab-editor-{shard}"


class _Documents:
    """DocumentSyncService calls with the editor server's deadlines (the session's :class:`~.session.DocumentsClient`)."""

    def __init__(self, stub: sync_pb2_grpc.DocumentSyncServiceStub, settings: EditorSettings) -> None:
        self._stub = stub
        self._apply_s = settings.apply_timeout_ms / 1000
        self._sync_s = settings.sync_timeout_ms / 1000

    async def sync(self, request: sync_pb2.SyncRequest) -> sync_pb2.SyncResponse:
        return await self._stub.Sync(request, timeout=self._sync_s)

    async def apply_update(self, request: sync_pb2.ApplyUpdateRequest) -> sync_pb2.ApplyUpdateResponse:
        return await self._stub.ApplyUpdate(request, timeout=self._apply_s)

    async def apply_awareness(self, request: sync_pb2.ApplyAwarenessRequest) -> sync_pb2.ApplyAwarenessResponse:
        return await self._stub.ApplyAwareness(request, timeout=self._apply_s)


class SessionTable:
    """The sessions one editor server holds, by session ID (at most ``max_sessions``)."""

    def __init__(self, max_sessions: int, metrics: EditorMetrics) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[str, EditorSession] = {}
        self._metrics = metrics

    def __len__(self) -> int:
        return len(self._sessions)

    def values(self) -> list[EditorSession]:
        return list(self._sessions.values())

    def add(self, session: EditorSession) -> None:
        if len(self._sessions) >= self.max_sessions:
            raise ResourceExhausted(f"this editor server holds {self.max_sessions:,} sessions already; "
                                    f"connect to another one")
        self._sessions[session.session_id] = session
        self._metrics.open.set(len(self._sessions))

    def remove(self, session: EditorSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
            self._metrics.open.set(len(self._sessions))


class EditorServicer(pb_grpc.EditorServiceServicer):
    """Edit: reads ``join``, then hands the stream to an :class:`~.session.EditorSession`."""

    def __init__(self, component: EditorComponent) -> None:
        self._c = component

    async def Edit(self, request_iterator: AsyncIterator[pb.EditRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.EditResponse]:
        c = self._c
        if c.stopping:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{c.name} is shutting down; connect to another editor server")
        timeout_s = c.settings.session_timeout_ms / 1000
        try:
            first = await asyncio.wait_for(anext(request_iterator, None), timeout_s)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"no join within {timeout_s * 1000:.0f} ms")
        if first is None or first.WhichOneof("frame") != "join":
            raise InvalidArgument("join.document_id", "the first frame must be join (with document_id, user_id and "
                                                      "the replica's state_vector)")
        check_join(first.join)
        if c.stopping:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{c.name} is shutting down; connect to another editor server")
        session = c.open_session(first.join)
        async for frame in session.run(request_iterator, context, session.watch):
            yield frame


class EditorComponent:
    """One editor server: its sessions, its watches (the broadcaster), the stub to collab-documents."""

    def __init__(self, name: str, context: RuntimeContext) -> None:
        self.name = name
        self.settings = context.settings(name, EditorSettings)
        self.metrics = EditorMetrics(name)
        self.table = SessionTable(self.settings.max_sessions, self.metrics)
        self._sync = sync_pb2_grpc.DocumentSyncServiceStub(context.channel(DOCUMENTS))
        self._documents = _Documents(self._sync, self.settings)
        self.broadcaster = Broadcaster(name, self._open_watch, window_ms=self.settings.broadcast_window_ms,
                                       linger_ms=self.settings.watch_linger_ms,
                                       max_per_document=self.settings.max_editors_per_document, metrics=self.metrics)
        self.servicer = EditorServicer(self)
        self.stopping = False
        self._background: set[asyncio.Task] = set()

    def _open_watch(self, document_id: str):
        # An explicit deadline: without one the channel's default (calls.timeout_ms, 500 ms) would end the stream.
        return self._sync.Watch(sync_pb2.WatchRequest(document_id=document_id, watcher=self.name),
                                timeout=self.settings.watch_max_duration_s)

    def open_session(self, join: pb.Join) -> EditorSession:
        """A new session of ``join``'s document, in the table and its document's watch (``ResourceExhausted`` when full)."""
        session_id = f"{self.name}-{secrets.token_hex(8)}"
        session = EditorSession(session_id, join.document_id, join.user_id, join.state_vector, self.name,
                                documents=self._documents, settings=self.settings, metrics=self.metrics,
                                on_end=self._ended)
        self.table.add(session)
        try:
            session.watch = self.broadcaster.subscribe(join.document_id, session)
        except ResourceExhausted:
            self.table.remove(session)
            raise
        return session

    def _ended(self, session: EditorSession) -> None:
        self.table.remove(session)
        if session.watch is not None:
            self.broadcaster.leave(session.watch, session)
        self.metrics.ended(session.ended.reason, session.ended.code)
        removal = session.awareness_removal()
        if removal:
            self._in_background(self._remove_awareness(session.document_id, session.session_id, removal),
                                f"awareness-removal-{session.session_id}")

    async def _remove_awareness(self, document_id: str, session_id: str, updates: list[bytes]) -> None:
        """Tell collab-documents that the session's clients are gone (y-protocols null states)."""
        for update in updates:
            try:
                await self._documents.apply_awareness(sync_pb2.ApplyAwarenessRequest(
                    document_id=document_id, update=update, session_id=session_id))
            except grpc.aio.AioRpcError as error:  # ephemeral: collab-documents times the states out after 30 s anyway
                log.info("%s: could not remove the awareness of session %s: %s %s", self.name, session_id,
                         error.code().name, error.details())
                return

    def _in_background(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_EditorServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """End every session with UNAVAILABLE (they rejoin elsewhere), close the watches, wait for awareness removals."""
        self.stopping = True
        for session in self.table.values():
            session.end(grpc.StatusCode.UNAVAILABLE, f"{self.name} is shutting down; rejoin, to any editor server, "
                        f"with your state vector", "shutdown")
        await self.broadcaster.close()
        await asyncio.sleep(0)  # the handlers write their statuses
        if self._background:
            await asyncio.wait(set(self._background), timeout=self.settings.apply_timeout_ms / 1000)


def definition(shard: int) -> ServiceDefinition:
    """The :class:`ServiceDefinition` of editor server ``shard`` (topology name ``collab-editor-SHARD``)."""
    name = editor_name(shard)

    async def build(context: RuntimeContext) -> EditorComponent:
        return EditorComponent(name, context)

    return ServiceDefinition(
        name=name, grpc_services=(EDITOR_SERVICE,), dependencies=(DOCUMENTS,), build=build,
        settings_model=EditorSettings,
        access=Access(public={"Edit"}),
        # Edit streams last as long as the document is open: their own slots, not the 256 of unary work.
        default_limits={EDITOR_SERVICE: EDIT_STREAM_SLOTS},
    )


EDITOR_1 = definition(1)
EDITOR_2 = definition(2)

"""``casemesh.collab.v1.DocumentService`` and ``DocumentSyncService`` (topology name ``collab-documents``).

Seed 001 #06, "Collaborative Docs" (Google Docs; CRDT, 1M concurrent
editors): the documents service holds the authoritative copy of every
document as a Yjs CRDT (pycrdt), logs each accepted update durably before
acknowledging it, snapshots documents every so many updates, and broadcasts
what it applied to the editor servers watching the document (the seed's
WebSocket servers; here ``collab-editor-N``, EditorService). Awareness
(y-protocols: who is in the document, cursors) is relayed, never stored.

- DocumentService (public): CreateDocument → :meth:`.store.DocumentStore.create`
  (durable before the answer; ``ALREADY_EXISTS`` for a taken ID, so a retried
  create makes no second document); GetDocument → :meth:`~.store.DocumentStore.get`.
- DocumentSyncService (internal: the editor servers only): Sync (y-protocols
  sync step 2 and the awareness states), ApplyUpdate (merged, logged with an
  fsync, then broadcast; ``duplicate`` for an update that adds nothing),
  ApplyAwareness (merged and relayed), Watch (server stream: ``started`` with
  the sequence it starts after, then every committed update in sequence order
  without gaps and every awareness change).

Status codes, as protos/casemesh/collab/v1/documents.proto and sync.proto say:
INVALID_ARGUMENT naming the field (``document_id``, ``title``,
``initial_text``, ``state_vector``, ``update``, ``origin``, ``session_id``,
``watcher``); NOT_FOUND for an unknown document; ALREADY_EXISTS;
RESOURCE_EXHAUSTED when a document's state would pass 3 MiB (services/collab/contract.py), and ending a
Watch whose watcher fell more than 10,000 messages behind; UNAVAILABLE ending
every Watch on shutdown (watch again and Sync) and for a document being
reloaded after a failed write; INTERNAL when the log cannot be written
(nothing of that commit is acknowledged).

``Document.editors`` is the number of distinct editor sessions with a live
awareness state in the document (renewed within the last 30 s; a state sent
without ``session_id`` counts once per awareness client): the editors who
announced themselves, over every editor server. An editor that never sends
awareness is not counted; the open Edit streams are known only to the editor
servers.

Watch streams are long-lived: DocumentSyncService gets its own admission
slots (:data:`WATCH_STREAM_SLOTS` Watch streams plus the runtime's default 256
for its unary calls; ``ServiceDefinition.default_limits``), so that watched
documents do not use up the slots ApplyUpdate needs. Settings:
:class:`.settings.DocumentSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from casemesh.collab.v1 import documents_pb2, documents_pb2_grpc, sync_pb2, sync_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from ..contract import (
    MAX_AWARENESS_BYTES,
    MAX_INITIAL_TEXT_BYTES,
    MAX_ORIGIN_CHARS,
    MAX_TITLE_CHARS,
    MAX_UPDATE_BYTES,
    valid_id,
    valid_origin,
)
from .journal import DocumentJournal, UpdateRecord
from .metrics import DocumentMetrics
from .settings import DocumentSettings
from .store import OVERFLOW, AwarenessEvent, DocumentInfo, DocumentStore, StoreUnavailable, WatchEnded

log = logging.getLogger("casemesh.collab.documents")

NAME = "collab-documents"
DOCUMENT_SERVICE = documents_pb2.DESCRIPTOR.services_by_name["DocumentService"].full_name
SYNC_SERVICE = sync_pb2.DESCRIPTOR.services_by_name["DocumentSyncService"].full_name
#: The editor servers: the only callers of DocumentSyncService.
EDITORS = ("collab-editor-1", "collab-editor-2")
#: Admission slots of Watch streams (and, on top of them, the runtime's default 256 for the unary methods).
WATCH_STREAM_SLOTS = 10_000
UNARY_SLOTS = 256


# -- validation, rule for rule as the protos say --------------------------------------------------------------------

def _required_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required (1 to 64 characters of A-Z, a-z, 0-9, '_' or '-')")
    if not valid_id(value):
        raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


def _optional_id(field: str, value: str) -> str:
    if value and not valid_id(value):
        raise InvalidArgument(field, "must be empty or 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


def _title(value: str) -> str:
    if not value:
        raise InvalidArgument("title", f"is required (1 to {MAX_TITLE_CHARS} characters)")
    if len(value) > MAX_TITLE_CHARS:
        raise InvalidArgument("title", f"is {len(value):,} characters; at most {MAX_TITLE_CHARS}")
    return value


def _initial_text(value: str) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_INITIAL_TEXT_BYTES:
        raise InvalidArgument("initial_text", f"is {size:,} bytes of UTF-8; at most {MAX_INITIAL_TEXT_BYTES:,}")
    return value


def _payload(field: str, value: bytes, most: int, what: str) -> bytes:
    if not value:
        raise InvalidArgument(field, f"is required ({what}: 1 to {most:,} bytes)")
    if len(value) > most:
        raise InvalidArgument(field, f"is {len(value):,} bytes; at most {most:,}")
    return value


def _origin(value: str) -> str:
    if not valid_origin(value):
        raise InvalidArgument("origin", f"must be at most {MAX_ORIGIN_CHARS} printable ASCII characters")
    return value


# -- wire shapes ----------------------------------------------------------------------------------------------------

def _document(info: DocumentInfo) -> documents_pb2.Document:
    return documents_pb2.Document(document_id=info.document_id, title=info.title,
                                  created_at_unix_ms=info.created_at_unix_ms, sequence=info.sequence, text=info.text,
                                  state_bytes=info.state_bytes, editors=info.editors)


def _watch_response(event: UpdateRecord | AwarenessEvent) -> sync_pb2.WatchResponse:
    if isinstance(event, UpdateRecord):
        return sync_pb2.WatchResponse(update=sync_pb2.AppliedUpdate(
            sequence=event.sequence, update=event.update, origin=event.origin, session_id=event.session_id,
            applied_at_unix_ns=event.applied_at_unix_ns))
    return sync_pb2.WatchResponse(awareness=sync_pb2.AwarenessChange(update=event.update, session_id=event.session_id))


async def _write(context: grpc.aio.ServicerContext, write):
    """Await a store write: StoreUnavailable → UNAVAILABLE, a failed commit → INTERNAL (not acknowledged)."""
    try:
        return await write
    except (InvalidArgument, NotFound, AlreadyExists, ResourceExhausted):
        raise  # the interceptor's mapping
    except StoreUnavailable as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
    except Exception as error:  # noqa: BLE001 - OSError, sqlite3.Error: not durable, so not acknowledged
        await context.abort(grpc.StatusCode.INTERNAL, f"the update log could not be written: {error}")


class DocumentServicer(documents_pb2_grpc.DocumentServiceServicer):
    """CreateDocument and GetDocument: validate, call the :class:`DocumentStore`."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def CreateDocument(self, request: documents_pb2.CreateDocumentRequest,
                             context: grpc.aio.ServicerContext) -> documents_pb2.CreateDocumentResponse:
        document_id = _required_id("document_id", request.document_id)
        title = _title(request.title)
        initial_text = _initial_text(request.initial_text)
        info = await _write(context, self._store.create(document_id, title, initial_text))
        return documents_pb2.CreateDocumentResponse(document=_document(info))

    async def GetDocument(self, request: documents_pb2.GetDocumentRequest,
                          context: grpc.aio.ServicerContext) -> documents_pb2.GetDocumentResponse:
        document_id = _required_id("document_id", request.document_id)
        found = self._store.get(document_id, include_state=request.include_state)
        return documents_pb2.GetDocumentResponse(document=_document(found.info), state_update=found.state_update or b"",
                                                 state_vector=found.state_vector)


class SyncServicer(sync_pb2_grpc.DocumentSyncServiceServicer):
    """Sync, ApplyUpdate, ApplyAwareness and Watch: validate, call the :class:`DocumentStore`."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def Sync(self, request: sync_pb2.SyncRequest, context: grpc.aio.ServicerContext) -> sync_pb2.SyncResponse:
        document_id = _required_id("document_id", request.document_id)
        result = self._store.sync(document_id, request.state_vector)
        return sync_pb2.SyncResponse(update=result.update, sequence=result.sequence, awareness=result.awareness)

    async def ApplyUpdate(self, request: sync_pb2.ApplyUpdateRequest,
                          context: grpc.aio.ServicerContext) -> sync_pb2.ApplyUpdateResponse:
        document_id = _required_id("document_id", request.document_id)
        update = _payload("update", request.update, MAX_UPDATE_BYTES, "a Yjs v1 update")
        origin = _origin(request.origin)
        session_id = _optional_id("session_id", request.session_id)
        result = await _write(context, self._store.apply_update(document_id, update, origin, session_id))
        return sync_pb2.ApplyUpdateResponse(sequence=result.sequence, duplicate=result.duplicate)

    async def ApplyAwareness(self, request: sync_pb2.ApplyAwarenessRequest,
                             context: grpc.aio.ServicerContext) -> sync_pb2.ApplyAwarenessResponse:
        document_id = _required_id("document_id", request.document_id)
        update = _payload("update", request.update, MAX_AWARENESS_BYTES, "a y-protocols awareness update")
        session_id = _optional_id("session_id", request.session_id)
        self._store.apply_awareness(document_id, update, session_id)
        return sync_pb2.ApplyAwarenessResponse()

    async def Watch(self, request: sync_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[sync_pb2.WatchResponse]:
        document_id = _required_id("document_id", request.document_id)
        name = _required_id("watcher", request.watcher)
        try:
            watcher = self._store.watch(document_id, name)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        try:
            yield sync_pb2.WatchResponse(started=sync_pb2.WatchStarted(sequence=watcher.started_sequence))
            while True:
                try:
                    events = await watcher.next()
                except WatchEnded as ended:
                    code = grpc.StatusCode.RESOURCE_EXHAUSTED if ended.reason == OVERFLOW else grpc.StatusCode.UNAVAILABLE
                    await context.abort(code, str(ended))
                for event in events:
                    yield _watch_response(event)
        finally:
            self._store.unwatch(watcher)


class DocumentsComponent:
    """The two servicers over one store and its journal."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, DocumentSettings)
        self.journal = DocumentJournal(context.data_dir(NAME)) if settings.durable else None
        self.store = DocumentStore(self.journal, snapshot_every_updates=settings.snapshot_every_updates,
                                   max_commit_batch=settings.max_commit_batch,
                                   awareness_timeout_ms=settings.awareness_timeout_ms, observer=DocumentMetrics())
        self.documents = DocumentServicer(self.store)
        self.sync = SyncServicer(self.store)

    def register(self, server: grpc.aio.Server) -> None:
        documents_pb2_grpc.add_DocumentServiceServicer_to_server(self.documents, server)
        sync_pb2_grpc.add_DocumentSyncServiceServicer_to_server(self.sync, server)

    async def start(self) -> None:
        loaded = await self.store.start()
        if loaded:
            log.info("%s: %d documents loaded from the update log", NAME, loaded)

    async def stop(self) -> None:
        """Commit what is queued, end every Watch with UNAVAILABLE, close the log."""
        await self.store.stop()
        if self.journal is not None:
            self.journal.close()


async def build(context: RuntimeContext) -> DocumentsComponent:
    return DocumentsComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(DOCUMENT_SERVICE, SYNC_SERVICE), dependencies=(), build=build,
    settings_model=DocumentSettings,
    access=Access(public={"CreateDocument", "GetDocument"},
                  # The documents' internal side: only the editor servers sync, write and watch.
                  internal={method: EDITORS for method in ("Sync", "ApplyUpdate", "ApplyAwareness", "Watch")}),
    # Watch streams last as long as an editor server has the document open: their own slots, not the 256 of unary work.
    default_limits={SYNC_SERVICE: WATCH_STREAM_SLOTS + UNARY_SLOTS, f"{SYNC_SERVICE}/Watch": WATCH_STREAM_SLOTS},
)

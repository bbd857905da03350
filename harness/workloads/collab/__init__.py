"""The collab workload (Google Docs; shared/seeds/001 #06 "Collaborative Docs": OT/CRDT, WebSocket, 1M concurrent editors).

Every editor holds a real Yjs replica (pycrdt) of one document and one
EditorService.Edit bidi stream for the whole run: a population of long-lived
streams (casemesh.harness.streams). The open-loop arrivals type into the
replicas (each edit one update, acknowledged once durable), move cursors
(awareness), drop and rejoin streams, and open documents to read. The
document's other editors measure when each edit reaches them
(``remote_edit``), and at the end of the run every replica must equal its
document (``convergence``). The workload speaks only the public contracts
(editor.proto, documents.proto) and casemesh.services.collab.contract.
"""

from __future__ import annotations

import random

from casemesh.collab.v1 import documents_pb2, documents_pb2_grpc, editor_pb2, editor_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .clients import CONVERGENCE, REMOTE_CURSOR, REMOTE_EDIT, Clients
from .journeys import CursorParams, EditParams, NoParams, OpenParams, cursor, edit, open_document, reconnect
from .seeding import DOCUMENTS, EDITOR_SERVERS, SeedParams, State, seed

_SERVICES = {
    **{server: (editor_pb2, "EditorService", editor_pb2_grpc.EditorServiceStub) for server in EDITOR_SERVERS},
    DOCUMENTS: (documents_pb2, "DocumentService", documents_pb2_grpc.DocumentServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Clients:
    """Join this process's share of the editors (one stream each); the journeys get the :class:`Clients`."""
    clients = Clients(streams, state)
    try:
        await clients.connect_all(params.connect_concurrency)
    except BaseException:
        await clients.close()
        raise
    return clients


async def disconnect(clients: Clients) -> None:
    """The convergence check (every replica against GetDocument, ``convergence``), then close every stream."""
    try:
        await clients.settle()
    finally:
        await clients.close()


WORKLOAD = Workload(
    name="collab",
    description="Collaborative documents (shared/seeds/001 #06 'Google Docs'): editors with CRDT replicas on bidi streams, "
                "typing, cursors, rejoins, readers",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("edit", "Type (or delete) a few characters on the editor's replica and send them as one update; "
                    "ends at the durable ack", EditParams, edit),
            Journey("cursor", "Move the editor's cursor: an awareness update on its stream", CursorParams, cursor),
            Journey("reconnect", "Drop the editor's stream and join again with the replica's state vector; ends at joined",
                    NoParams, reconnect),
            Journey("open", "Open a document without editing (GetDocument with its CRDT state)", OpenParams, open_document),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=(REMOTE_EDIT, REMOTE_CURSOR, CONVERGENCE),
    connect=connect,
    disconnect=disconnect,
)

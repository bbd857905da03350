"""The collab workload's journeys: typing into a document, moving the cursor, reconnecting, opening a document to read.

``edit``, ``cursor`` and ``reconnect`` act as one of this process's
connected editors (:class:`.clients.Clients`); ``edit`` and ``cursor`` pick
one of the hot document's editors for ``hot_share`` of arrivals, else one of
the others, uniformly. ``open`` is a reader without a stream.

What one edit is (the seed gives no figure: seed 001 #06 names only "1M
concurrent editors"): an insertion of 1 to 10 typed characters, uniform (mean
5.5: an English word of 4.7 letters on average and its space), at a uniformly
random position, or for one edit in ten a deletion of 1 to 5 characters
(backspacing over a typo or a short word). A run of characters as one update
is what an editor client sends for the keystrokes typed since its last send:
a Yjs editor binding makes one update per transaction, and a client that
sends at most every ~1-2 s while someone types 3-5 keystrokes a second sends
such runs; a single-keystroke client is ``min_chars: 1, max_chars: 1`` at 5.5
times the rate (docs/profiles.md).
"""

from __future__ import annotations

import random

import grpc
import pycrdt
from pydantic import Field, model_validator

from casemesh.collab.v1 import documents_pb2
from casemesh.services.collab.contract import TEXT_NAME

from ..base import Caller, Params
from .clients import Clients, choose_edit, rpc_error
from .seeding import DOCUMENTS


class EditParams(Params):
    """What an edit types or deletes, and where."""

    min_chars: int = Field(default=1, ge=1, le=10_000, description="fewest characters an insertion types")
    max_chars: int = Field(default=10, ge=1, le=10_000, description="most characters an insertion types (uniform in between)")
    delete_share: float = Field(default=0.1, ge=0.0, le=1.0, description="share of edits that delete instead of insert")
    max_delete: int = Field(default=5, ge=1, le=10_000, description="most characters a deletion removes (uniform from 1)")
    hot_share: float = Field(default=0.4, ge=0.0, le=1.0,
                             description="share of edits made by the hot document's editors (when this process holds any)")
    timeout_s: float = Field(default=5.0, gt=0, le=600, description="give up (DEADLINE_EXCEEDED) without the ack by then")

    @model_validator(mode="after")
    def _ordered(self) -> EditParams:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must be at most max_chars ({self.max_chars})")
        return self


class CursorParams(Params):
    """Whose cursor moves."""

    hot_share: float = Field(default=0.4, ge=0.0, le=1.0,
                             description="share of cursor moves made by the hot document's editors (when this process holds any)")


class NoParams(Params):
    """A journey without parameters."""


class OpenParams(Params):
    """How a reader opens a document."""

    include_state: bool = Field(default=True, description="ask for the whole CRDT state too, and check that it holds the text")


async def edit(call: Caller, params: EditParams, clients: Clients, rng: random.Random) -> None:
    """An editor types a few characters (or deletes a few) on its replica and sends the change as one update; the
    journey ends at the update's ``ack`` (durable in collab-documents' log).

    The document's other editors record ``remote_edit`` when it reaches their replicas.
    """
    editor = clients.pick(rng, params.hot_share)
    choice = choose_edit(len(editor.text), rng, min_chars=params.min_chars, max_chars=params.max_chars,
                         delete_share=params.delete_share, max_delete=params.max_delete)
    call.begin()  # the send lag of a frame, as of an RPC
    update = clients.apply_edit(editor, choice)
    await clients.send_update(editor, update, call.intended_at, params.timeout_s)


async def cursor(call: Caller, params: CursorParams, clients: Clients, rng: random.Random) -> None:
    """An editor moves its cursor (a click, arrow keys): its awareness state changes and goes out as one awareness
    update; ends once queued on the stream (awareness has no acknowledgement). The other editors record
    ``remote_cursor`` when it reaches them."""
    editor = clients.pick(rng, params.hot_share)
    call.begin()
    clients.move_cursor(editor, rng.randint(0, len(editor.text)), call.intended_at)


async def reconnect(call: Caller, params: NoParams, clients: Clients, rng: random.Random) -> None:
    """An editor drops its stream (half-close, as a closed tab or a network change does) and joins again with its
    replica's state vector; ends at ``joined`` (its time to first message), which brings what the replica missed."""
    editors = [e for e in clients.local if not e.reconnecting and not e.recovering] or clients.local
    editor = rng.choice(editors)
    await clients.reconnect(editor, lambda server: call.bidi_stream(server, "Edit"))


async def open_document(call: Caller, params: OpenParams, clients: Clients, rng: random.Random) -> None:
    """A reader opens a document without editing (GetDocument: a preview, an export, a viewer); with
    ``include_state``, DATA_LOSS when the returned CRDT state does not hold the returned text."""
    document = rng.choice(clients.state.documents)
    response = await call(DOCUMENTS, "GetDocument", documents_pb2.GetDocumentRequest(
        document_id=document, include_state=params.include_state))
    if params.include_state:
        replica = pycrdt.Doc()
        text = replica.get(TEXT_NAME, type=pycrdt.Text)
        replica.apply_update(response.state_update)
        if str(text) != response.document.text:
            raise rpc_error(grpc.StatusCode.DATA_LOSS, f"{document}: the state holds {len(str(text))} characters, "
                                                       f"the text {len(response.document.text)}")

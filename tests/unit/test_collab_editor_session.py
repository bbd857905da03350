"""An editor session (services/collab/editor/session.py) without gRPC: join validation, the frame rules, the y-protocols
awareness encoding and its null-state removal, and one session driven through fake streams and a fake collab-documents.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pycrdt
import pytest

from casemesh.collab.v1 import editor_pb2 as pb
from casemesh.collab.v1 import sync_pb2
from casemesh.services.collab.contract import MAX_UPDATE_BYTES, TEXT_NAME
from casemesh.services.collab.editor.broadcaster import Batch
from casemesh.services.collab.editor.metrics import EditorMetrics
from casemesh.services.collab.editor.session import (EditorSession, check_join, check_update, encode_awareness,
                                                     parse_awareness)
from casemesh.services.collab.editor.settings import EditorSettings
from casemesh.services.runtime.errors import InvalidArgument

WAIT_S = 30.0


def text_update(text: str, client_id: int = 5) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get(TEXT_NAME, type=pycrdt.Text).insert(0, text)
    return doc.get_update()


@pytest.mark.parametrize(("join", "field"), [
    (pb.Join(document_id="", user_id="u"), "join.document_id"),
    (pb.Join(document_id="bad id", user_id="u"), "join.document_id"),
    (pb.Join(document_id="d" * 65, user_id="u"), "join.document_id"),
    (pb.Join(document_id="d", user_id=""), "join.user_id"),
    (pb.Join(document_id="d", user_id="u/1"), "join.user_id"),
    (pb.Join(document_id="d", user_id="u", state_vector=b"\xff"), "join.state_vector"),
    (pb.Join(document_id="d", user_id="u", state_vector=b"\x05\x01\x02"), "join.state_vector"),
])
def test_a_bad_join_names_its_field(join, field):
    with pytest.raises(InvalidArgument) as error:
        check_join(join)
    assert error.value.field == field


def test_a_good_join_passes_with_an_empty_or_a_real_state_vector():
    doc = pycrdt.Doc()
    doc.get(TEXT_NAME, type=pycrdt.Text).insert(0, "hi")
    check_join(pb.Join(document_id="doc_1-a", user_id="user-1"))
    check_join(pb.Join(document_id="doc_1-a", user_id="user-1", state_vector=doc.get_state()))


@pytest.mark.parametrize(("update", "field"), [
    (pb.LocalUpdate(client_update_id=0, update=text_update("a")), "update.client_update_id"),
    (pb.LocalUpdate(client_update_id=1, update=b""), "update.update"),
    (pb.LocalUpdate(client_update_id=1, update=b"x" * (MAX_UPDATE_BYTES + 1)), "update.update"),
    (pb.LocalUpdate(client_update_id=1, update=b"garbage!"), "update.update"),
    (pb.LocalUpdate(client_update_id=1, update=text_update("a"), origin="tab\t"), "update.origin"),
    (pb.LocalUpdate(client_update_id=1, update=text_update("a"), origin="o" * 65), "update.origin"),
])
def test_a_bad_update_is_rejected_naming_its_field(update, field):
    frame = check_update(update)
    assert frame is not None and frame.rejected.field == field
    assert frame.rejected.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert check_update(pb.LocalUpdate(client_update_id=3, update=text_update("a"), origin="alice@12:00")) is None


def test_awareness_updates_round_trip_with_pycrdt_and_the_null_state_removal_follows_y_protocols():
    alice_doc, observer_doc = pycrdt.Doc(client_id=11), pycrdt.Doc(client_id=99)
    alice = pycrdt.Awareness(alice_doc)
    observer = pycrdt.Awareness(observer_doc)
    alice.set_local_state({"user": {"name": "Alice"}, "cursor": 3})
    alice.set_local_state({"user": {"name": "Alice"}, "cursor": 4})
    update = alice.encode_awareness_update([11])
    entries = parse_awareness(update)
    assert [(c, clock, json.loads(state)) for c, clock, state in entries] == [
        (11, 2, {"user": {"name": "Alice"}, "cursor": 4})]
    assert encode_awareness(entries) == [update]  # re-encoded byte for byte
    observer.apply_awareness_update(update, "remote")
    assert observer.states[11]["cursor"] == 4

    # What a session sends when it ends: (client, last clock seen, "null"): the observer drops the state.
    observer.apply_awareness_update(encode_awareness([(11, 2, "null")])[0], "remote")
    assert 11 not in observer.states
    # A client that re-announced itself (a newer clock, e.g. on another session) keeps its state.
    alice.set_local_state({"user": {"name": "Alice"}, "cursor": 9})
    observer.apply_awareness_update(alice.encode_awareness_update([11]), "remote")
    observer.apply_awareness_update(encode_awareness([(11, 2, "null")])[0], "remote")
    assert observer.states[11]["cursor"] == 9


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x0b\x02\x05{\"a\":", b"\x01\x0b\x02\x03abc", b"\x01\x0b\x02\x02{}x",
                                  b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x04null"])
def test_malformed_awareness_updates_are_refused(data):
    with pytest.raises(ValueError):
        parse_awareness(data)


def test_awareness_entries_are_chunked_to_the_size_limit():
    entries = [(i, 1, json.dumps({"name": "x" * 1_000})) for i in range(10)]
    chunks = encode_awareness(entries)
    assert len(chunks) > 1 and all(len(c) <= 4_096 for c in chunks)
    assert [e for c in chunks for e in parse_awareness(c)] == entries


class FakeDocuments:
    """collab-documents as a session sees it: Sync at a fixed sequence, updates numbered from there, awareness kept."""

    def __init__(self, sequence: int = 3) -> None:
        self.sequence = sequence
        self.applied: list[sync_pb2.ApplyUpdateRequest] = []
        self.awareness: list[sync_pb2.ApplyAwarenessRequest] = []
        self.sync_requests: list[sync_pb2.SyncRequest] = []

    async def sync(self, request: sync_pb2.SyncRequest) -> sync_pb2.SyncResponse:
        self.sync_requests.append(request)
        return sync_pb2.SyncResponse(update=text_update("abc", 1), sequence=self.sequence, awareness=b"")

    async def apply_update(self, request: sync_pb2.ApplyUpdateRequest) -> sync_pb2.ApplyUpdateResponse:
        if any(r.update == request.update for r in self.applied):
            return sync_pb2.ApplyUpdateResponse(sequence=self.sequence, duplicate=True)
        self.applied.append(request)
        self.sequence += 1
        return sync_pb2.ApplyUpdateResponse(sequence=self.sequence)

    async def apply_awareness(self, request: sync_pb2.ApplyAwarenessRequest) -> sync_pb2.ApplyAwarenessResponse:
        self.awareness.append(request)
        return sync_pb2.ApplyAwarenessResponse()


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.code = code
        raise grpc.aio.AbortError(details)


class ReadyWatch:
    async def ready(self) -> int:
        return 0


async def requests_from(queue: asyncio.Queue):
    while (item := await queue.get()) is not None:
        yield item


async def test_a_session_joins_first_then_acks_rejects_relays_and_ends_ok_removing_its_awareness():
    documents = FakeDocuments(sequence=3)
    ended: list[EditorSession] = []
    session = EditorSession("s-1", "doc-1", "user-1", b"", "collab-editor-t", documents=documents,
                            settings=EditorSettings(), metrics=EditorMetrics("collab-editor-t"), on_end=ended.append)
    # Held while syncing: an update the sync covers (sequence 3, dropped) and one past it (4, relayed after joined).
    frame = pb.EditResponse(remote=pb.RemoteUpdate(update=b"\x00\x00", sequence=3))
    assert session.offer_remote(Batch(frame, 3, 3, frozenset({"s-x"}), (("s-x", 0),), 2))
    later = pb.EditResponse(remote=pb.RemoteUpdate(update=b"\x00\x00", sequence=4))
    assert session.offer_remote(Batch(later, 4, 4, frozenset({"s-x"}), (("s-x", 0),), 2))
    assert not session.offer_remote(Batch(later, 4, 4, frozenset({"s-1"}), (("s-1", 0),), 2))  # its own: not echoed

    queue: asyncio.Queue = asyncio.Queue()
    context = FakeContext()
    frames: list[pb.EditResponse] = []

    async def drive() -> None:
        async for out in session.run(requests_from(queue), context, ReadyWatch()):
            frames.append(out)

    runner = asyncio.create_task(drive())
    good = text_update("hello", client_id=7)
    awareness = encode_awareness([(7, 1, json.dumps({"user": "u1", "cursor": 0}))])[0]
    for request in (pb.EditRequest(update=pb.LocalUpdate(client_update_id=1, update=good, origin="u1")),
                    pb.EditRequest(update=pb.LocalUpdate(client_update_id=2, update=b"not yjs", origin="u1")),
                    pb.EditRequest(heartbeat=pb.Heartbeat()),
                    pb.EditRequest(awareness=pb.AwarenessUpdate(update=awareness)),
                    pb.EditRequest(update=pb.LocalUpdate(client_update_id=3, update=good, origin="u1")),
                    None):  # half-close
        queue.put_nowait(request)
    await asyncio.wait_for(runner, WAIT_S)

    kinds = [f.WhichOneof("frame") for f in frames]
    assert kinds[0] == "joined" and frames[0].joined.sequence == 3 and frames[0].joined.session_id == "s-1"
    assert frames[0].joined.editor_server == "collab-editor-t" and frames[0].joined.heartbeat_interval_ms == 15_000
    assert [f.remote.sequence for f in frames if f.WhichOneof("frame") == "remote"] == [4]
    acks = {f.ack.client_update_id: f.ack for f in frames if f.WhichOneof("frame") == "ack"}
    assert acks[1].sequence == 4 and not acks[1].duplicate and acks[3].duplicate
    rejections = [f.rejected for f in frames if f.WhichOneof("frame") == "rejected"]
    assert [(r.client_update_id, r.field) for r in rejections] == [(2, "update.update")]
    assert documents.applied[0].session_id == "s-1" and documents.applied[0].origin == "u1"
    assert [parse_awareness(r.update) for r in documents.awareness] == [parse_awareness(awareness)]
    assert session.ended.code == grpc.StatusCode.OK and context.code is None and ended == [session]
    assert parse_awareness(session.awareness_removal()[0]) == [(7, 1, "null")]


async def test_a_silent_session_ends_with_deadline_exceeded():
    session = EditorSession("s-2", "doc-1", "user-1", b"", "collab-editor-t", documents=FakeDocuments(),
                            settings=EditorSettings(heartbeat_interval_ms=50, session_timeout_ms=200),
                            metrics=EditorMetrics("collab-editor-t"), on_end=lambda s: None)
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        async for _ in session.run(requests_from(asyncio.Queue()), context, ReadyWatch()):
            pass
    assert context.code == grpc.StatusCode.DEADLINE_EXCEEDED and session.ended.reason == "heartbeat_timeout"

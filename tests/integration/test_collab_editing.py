"""Collaborative editing through real gRPC on 127.0.0.1: editors on both editor servers, sync, bad frames, awareness,
and the invariant (CRDT convergence) under concurrent typing.

One in-process mesh (collab-documents, collab-editor-1, collab-editor-2) for the module; each test uses documents of
its own. collab-editor-1 coalesces (broadcast_window_ms 20, the default) and asks for a heartbeat every second;
collab-editor-2 relays every update alone (broadcast_window_ms 0) and holds at most 4 editors per document.
"""

from __future__ import annotations

import asyncio
import json
import random

import grpc
import pycrdt
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from casemesh.collab.v1 import editor_pb2, editor_pb2_grpc
from casemesh.services.collab.contract import TEXT_NAME

from .collab import (Editor, collab_mesh, contains_all, create_document, encode_awareness, eventually,
                     get_document)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = {"collab-editor-1": {"heartbeat_interval_ms": 1_000, "session_timeout_ms": 3_000},
            "collab-editor-2": {"broadcast_window_ms": 0, "max_editors_per_document": 4}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    async with collab_mesh(tmp_path_factory.mktemp("collab-data"), SETTINGS) as running:
        yield running


def editor(mesh, server: str, document_id: str, user: str, **kwargs) -> Editor:
    return Editor(mesh.anonymous_channel(server), document_id, user, **kwargs)


async def edit_status(mesh, server: str, *requests: editor_pb2.EditRequest) -> grpc.aio.AioRpcError:
    """Open an Edit stream, write ``requests``, and return the error it ends with."""
    call = editor_pb2_grpc.EditorServiceStub(mesh.anonymous_channel(server)).Edit()
    for request in requests:
        await call.write(request)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call:
            pass
    return error.value


async def test_two_editors_on_different_servers_see_each_others_edits(mesh):
    await create_document(mesh.channel("collab-documents"), "two-servers", initial_text="Hi")
    alice = editor(mesh, "collab-editor-1", "two-servers", "alice")
    bob = editor(mesh, "collab-editor-2", "two-servers", "bob")
    joined = await alice.join()
    assert joined.editor_server == "collab-editor-1" and joined.session_id and joined.heartbeat_interval_ms == 1_000
    assert joined.sequence == 1 and str(alice.text) == "Hi"
    joined_bob = await bob.join()
    assert joined_bob.editor_server == "collab-editor-2" and joined_bob.session_id != joined.session_id
    assert joined_bob.heartbeat_interval_ms == 15_000  # collab-editor-2 keeps the contract's default

    alice.insert(2, " there")
    await bob.wait_text("Hi there")
    bob.insert(0, ">> ")
    await alice.wait_text(">> Hi there")
    await alice.wait_acked()
    await bob.wait_acked()
    assert [ack.sequence for _, ack in alice.acked.values()] == [2] and [a.sequence for _, a in bob.acked.values()] == [3]
    assert alice.current.remote_sequences == [3] and bob.current.remote_sequences == [2]  # no echo of one's own
    assert (await get_document(mesh.channel("collab-documents"), "two-servers")).document.text == ">> Hi there"
    assert not alice.violations and not bob.violations and not alice.rejected and not bob.rejected
    assert await alice.close() == grpc.StatusCode.OK
    assert await bob.close() == grpc.StatusCode.OK


async def test_a_join_with_a_stale_state_vector_gets_exactly_the_missing_part(mesh):
    await create_document(mesh.channel("collab-documents"), "stale")
    writer = editor(mesh, "collab-editor-1", "stale", "writer")
    await writer.join()
    writer.insert(0, "hello")
    await writer.wait_acked()
    stale_state, stale_vector = writer.doc.get_update(), writer.doc.get_state()
    writer.insert(5, " world")
    writer.delete(0, 1)
    await writer.wait_acked()

    late = editor(mesh, "collab-editor-2", "stale", "late")
    late.doc.apply_update(stale_state)  # a replica that saw "hello" and then went offline
    joined = await late.join(state_vector=stale_vector)
    assert str(late.text) == "ello world" and joined.sequence == 3
    missing = joined.sync_update
    assert pycrdt.get_update(missing, stale_vector) == missing  # nothing the replica had
    alone = pycrdt.Doc()
    alone.apply_update(missing)
    assert "hello" not in str(alone.get(TEXT_NAME, type=pycrdt.Text))  # the old part is not in it
    full = await get_document(mesh.channel("collab-documents"), "stale", include_state=True)
    assert full.document.text == "ello world" and len(missing) < len(full.state_update)
    fresh = editor(mesh, "collab-editor-1", "stale", "fresh")
    await fresh.join(state_vector=b"")  # a new replica: everything
    assert str(fresh.text) == "ello world"
    for e in (writer, late, fresh):
        await e.close()


@pytest.mark.parametrize(("join", "field"), [
    (editor_pb2.Join(document_id="bad id!", user_id="u1"), "join.document_id"),
    (editor_pb2.Join(document_id="", user_id="u1"), "join.document_id"),
    (editor_pb2.Join(document_id="doc", user_id="x" * 65), "join.user_id"),
    (editor_pb2.Join(document_id="doc", user_id="u1", state_vector=b"\x03\x01"), "join.state_vector"),
])
async def test_a_bad_join_ends_the_stream_with_invalid_argument_naming_the_field(mesh, join, field):
    error = await edit_status(mesh, "collab-editor-2", editor_pb2.EditRequest(join=join))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith(f"{field}:"), error.details()


async def test_a_first_frame_that_is_not_join_and_an_unknown_document(mesh):
    error = await edit_status(mesh, "collab-editor-1", editor_pb2.EditRequest(heartbeat=editor_pb2.Heartbeat()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("join.")
    error = await edit_status(mesh, "collab-editor-1", editor_pb2.EditRequest(
        join=editor_pb2.Join(document_id="no-such-doc", user_id="u1")))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()


async def test_a_bad_update_is_rejected_naming_its_field_and_the_stream_goes_on(mesh):
    await create_document(mesh.channel("collab-documents"), "bad-updates", initial_text="ok")
    e = editor(mesh, "collab-editor-1", "bad-updates", "carol")
    await e.join()
    good = pycrdt.Doc()
    good.get(TEXT_NAME, type=pycrdt.Text).insert(0, "zz")
    for cid, update, origin in ((101, b"\x07not a yjs update", "carol"), (102, b"", "carol"), (103, good.get_update(), "bad\norigin"),
                                (0, good.get_update(), "carol")):
        await e.send(editor_pb2.EditRequest(update=editor_pb2.LocalUpdate(client_update_id=cid, update=update, origin=origin)))
    await e.send(editor_pb2.EditRequest(awareness=editor_pb2.AwarenessUpdate(update=b"\x05\x01")))
    await e.send(editor_pb2.EditRequest(join=editor_pb2.Join(document_id="bad-updates", user_id="carol")))
    await eventually(lambda: len(e.rejected) == 6, lambda: f"six rejections (got {e.rejected})")
    assert [(r.client_update_id, r.field) for r in e.rejected] == [
        (101, "update.update"), (102, "update.update"), (103, "update.origin"), (0, "update.client_update_id"),
        (0, "awareness.update"), (0, "join")]
    assert all(r.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and r.message for r in e.rejected)
    e.insert(2, "!")  # the stream goes on
    await e.wait_acked()
    assert e.alive and (await get_document(mesh.channel("collab-documents"), "bad-updates")).document.text == "ok!"
    assert await e.close() == grpc.StatusCode.OK


async def test_awareness_is_relayed_to_the_others_and_removed_when_a_session_ends(mesh):
    await create_document(mesh.channel("collab-documents"), "aware")
    ann = editor(mesh, "collab-editor-1", "aware", "ann", client_id=501)
    ben = editor(mesh, "collab-editor-2", "aware", "ben", client_id=502)  # another server
    cat = editor(mesh, "collab-editor-1", "aware", "cat", client_id=503)  # the same server as ann
    for e in (ann, ben, cat):
        await e.join()
    cursor = encode_awareness(501, 1, json.dumps({"user": {"name": "Ann"}, "cursor": {"anchor": 0}}))
    await ann.send(editor_pb2.EditRequest(awareness=editor_pb2.AwarenessUpdate(update=cursor)))
    await eventually(lambda: cursor in ben.awareness and cursor in cat.awareness, "ann's cursor at ben and cat")
    dan = editor(mesh, "collab-editor-2", "aware", "dan")
    joined = await dan.join()
    assert b'"Ann"' in joined.awareness  # a new editor gets the current states in joined
    await asyncio.sleep(0.2)
    assert cursor not in ann.awareness  # never echoed to its author
    assert await ann.close() == grpc.StatusCode.OK
    removal = encode_awareness(501, 1, "null")  # y-protocols: same clock, null state
    await eventually(lambda: removal in ben.awareness and removal in cat.awareness, "ann's removal")
    for e in (ben, cat, dan):
        await e.close()


async def test_the_editors_per_document_bound_of_one_server_and_a_silent_session(mesh):
    await create_document(mesh.channel("collab-documents"), "crowded")
    editors = [editor(mesh, "collab-editor-2", "crowded", f"crowd-{i}") for i in range(4)]
    for e in editors:
        await e.join()
    fifth = editor(mesh, "collab-editor-2", "crowded", "crowd-5")
    assert await fifth.join(must=False) is None and fifth.current.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    other_server = editor(mesh, "collab-editor-1", "crowded", "crowd-6")  # the bound is per server
    await other_server.join()
    silent = editor(mesh, "collab-editor-1", "crowded", "silent", heartbeat=False)
    await silent.join()
    assert await silent.ended() == grpc.StatusCode.DEADLINE_EXCEEDED  # 3,000 ms without a frame
    assert other_server.alive  # its heartbeats keep it
    for e in (*editors, other_server):
        assert await e.close() == grpc.StatusCode.OK


async def test_six_editors_typing_concurrently_on_both_servers_converge_to_the_documents_text(mesh):
    documents = mesh.channel("collab-documents")
    await create_document(documents, "invariant", initial_text="start")
    editors = [editor(mesh, "collab-editor-1" if i % 2 == 0 else "collab-editor-2", "invariant", f"typist-{i}",
                      client_id=1_000 + i) for i in range(6)]
    for e in editors:
        await e.join()

    async def type_for(e: Editor, seconds: float, seed: int) -> None:
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            e.random_edit(rng)
            await asyncio.sleep(rng.uniform(0.005, 0.03))

    before = {s: REGISTRY.get_sample_value("casemesh_collab_relay_delay_seconds_count", {"editor_server": s}) or 0
              for s in ("collab-editor-1", "collab-editor-2")}
    await asyncio.gather(*(type_for(e, 2.0, seed) for seed, e in enumerate(editors)))
    for e in editors:
        await e.wait_acked()
    final = await get_document(documents, "invariant", include_state=True)
    for e in editors:
        await e.wait_text(final.document.text)
    final = await get_document(documents, "invariant", include_state=True)  # nothing changed meanwhile
    assert {str(e.text) for e in editors} == {final.document.text}
    made = sum(e.next_id - 1 for e in editors)
    assert made > 60 and final.document.sequence == 1 + sum(
        1 for e in editors for _, ack in e.acked.values() if not ack.duplicate)
    assert contains_all(final.state_update, [u for e in editors for u, _ in e.acked.values()])
    for e in editors:
        assert not e.violations, e.violations
        assert not e.rejected, e.rejected
    for server, count in before.items():  # the relay delay is measured on both servers
        assert (REGISTRY.get_sample_value("casemesh_collab_relay_delay_seconds_count", {"editor_server": server}) or 0) > count
    for e in editors:
        assert await e.close() == grpc.StatusCode.OK


async def test_a_stopping_editor_server_ends_its_sessions_with_unavailable(tmp_path):
    """A mesh of its own: stopping it (SIGTERM's path) ends the open sessions with UNAVAILABLE, to rejoin elsewhere."""
    async with collab_mesh(tmp_path, SETTINGS) as own:
        await create_document(own.channel("collab-documents"), "shutdown", initial_text="bye")
        channel = grpc.aio.insecure_channel(own.address("collab-editor-2"))  # outlives the mesh's own channels
        e = Editor(channel, "shutdown", "leaver", heartbeat=False)
        await e.join()
        assert str(e.text) == "bye"
    try:
        assert await e.ended() == grpc.StatusCode.UNAVAILABLE and "shutting down" in e.current.details
    finally:
        await e.close()
        await channel.close()

"""The collab workload's pure logic: origin tags, the choice of edits, replicas, the seeding plan, frames as they arrive."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pycrdt
import pytest
from pydantic import ValidationError

from casemesh.collab.v1 import editor_pb2
from casemesh.harness.workloads.collab.clients import (
    CONVERGENCE,
    REMOTE_CURSOR,
    REMOTE_EDIT,
    TYPED,
    Clients,
    EditChoice,
    choose_edit,
    decode_origin,
    encode_origin,
)
from casemesh.harness.workloads.collab.journeys import EditParams
from casemesh.harness.workloads.collab.seeding import EDITOR_SERVERS, SeedParams, initial_text, plan
from casemesh.services.collab.contract import MAX_EDITORS_PER_DOCUMENT, TEXT_NAME, valid_origin

EDIT = dict(min_chars=1, max_chars=10, delete_share=0.1, max_delete=5)


# origin tags ----------------------------------------------------------------------------------------------------------

def test_an_origin_carries_editor_update_and_intended_time_and_fits_the_contract():
    now = time.time_ns()
    for editor, update in ((0, 1), (199, 12_345), (999_999_999, 2**64 - 1)):
        origin = encode_origin(editor, update, now)
        assert valid_origin(origin) and len(origin) <= 64
        assert decode_origin(origin) == (editor, update, now)


@pytest.mark.parametrize("origin", ["", "seed", "e1-2", "e1-2-x", "x1-2-3", "e1-2-3-4", " e1-2-3", "e-1-2"])
def test_other_origins_are_not_this_workloads_edits(origin):
    assert decode_origin(origin) is None


# the choice of edits --------------------------------------------------------------------------------------------------

def test_insertions_type_1_to_10_characters_where_they_fit():
    rng = random.Random(1)
    sizes = Counter()
    for _ in range(5000):
        length = rng.randint(0, 50)
        choice = choose_edit(length, rng, **EDIT)
        if choice.delete:
            assert 1 <= choice.delete <= min(5, length) and 0 <= choice.position <= length - choice.delete
            assert choice.insert == ""
        else:
            assert 1 <= len(choice.insert) <= 10 and set(choice.insert) <= set(TYPED)
            assert 0 <= choice.position <= length
            sizes[len(choice.insert)] += 1
    assert set(sizes) == set(range(1, 11))  # uniform over 1-10: every size comes up
    mean = sum(size * count for size, count in sizes.items()) / sum(sizes.values())
    assert 5.2 < mean < 5.8  # 5.5: a word and its space


def test_about_a_tenth_of_edits_delete_and_an_empty_text_is_only_typed_into():
    rng = random.Random(2)
    deletes = sum(bool(choose_edit(100, rng, **EDIT).delete) for _ in range(10_000))
    assert 800 < deletes < 1200
    assert not any(choose_edit(0, rng, **EDIT).delete for _ in range(1000))
    assert not any(choose_edit(100, rng, **{**EDIT, "delete_share": 0.0}).delete for _ in range(1000))


def test_edit_params_refuse_an_empty_range():
    with pytest.raises(ValidationError, match="min_chars"):
        EditParams(min_chars=5, max_chars=4)


# replicas -------------------------------------------------------------------------------------------------------------

def replica(text: str = "") -> tuple[pycrdt.Doc, pycrdt.Text]:
    doc = pycrdt.Doc()
    shared = doc.get(TEXT_NAME, type=pycrdt.Text)
    if text:
        shared.insert(0, text)
    return doc, shared


def test_an_edit_is_one_update_that_brings_another_replica_to_the_same_text():
    state = plan(SeedParams(editors=4, documents=1, hot_editors=0), "t")
    origin_doc, _ = replica("hello world")
    a, b = Clients._editor(state.editors[0]), Clients._editor(state.editors[1])
    for editor in (a, b):
        editor.doc.apply_update(origin_doc.get_update())
    updates = [Clients.apply_edit(a, EditChoice(5, insert=" there")), Clients.apply_edit(a, EditChoice(0, delete=1))]
    assert str(a.text) == "ello there world"
    for update in updates:
        b.doc.apply_update(update)
    assert str(b.text) == str(a.text)
    # Concurrent edits on both, exchanged in either order: the same text (the CRDT).
    ua, ub = Clients.apply_edit(a, EditChoice(0, insert="A")), Clients.apply_edit(b, EditChoice(0, insert="B"))
    a.doc.apply_update(ub)
    b.doc.apply_update(ua)
    assert str(a.text) == str(b.text) and len(str(a.text)) == 18


# the seeding plan -----------------------------------------------------------------------------------------------------

def test_the_default_plan_puts_editors_of_every_document_on_both_servers():
    params = SeedParams()
    state = plan(params, "abc")
    assert len(state.editors) == 200 and [e.index for e in state.editors] == list(range(200))
    assert state.hot == state.documents[0] and len(state.members[state.hot]) == 24
    assert len(state.documents) == 45
    sizes = Counter(len(state.members[d]) for d in state.documents[1:])
    assert sizes == {4: 44}
    for document in state.documents:
        servers = [e.server for e in state.editors if e.document == document]
        assert set(servers) == {0, 1} and abs(servers.count(0) - servers.count(1)) <= 1
    assert all(0 <= e.server < len(EDITOR_SERVERS) for e in state.editors)
    assert len({e.user for e in state.editors}) == 200


def test_seed_params_refuse_documents_without_an_editor_on_each_server():
    with pytest.raises(ValidationError, match="twice"):
        SeedParams(editors=10, documents=5, hot_editors=2)
    with pytest.raises(ValidationError, match="hot_editors"):
        SeedParams(hot_editors=1)
    with pytest.raises(ValidationError, match=str(MAX_EDITORS_PER_DOCUMENT)):
        SeedParams(editors=500, documents=2, hot_editors=0)
    SeedParams(editors=10, documents=5, hot_editors=0)  # two each


def test_initial_text_is_word_like_and_as_long_as_asked():
    text = initial_text(3000, random.Random(1))
    assert len(text) == 3000 and set(text) <= set(TYPED) and "  " not in text
    assert initial_text(0, random.Random(1)) == ""


# frames as they arrive ------------------------------------------------------------------------------------------------

class FakeStreams:
    """What Clients needs of casemesh.harness.streams.Streams, recording what it observes."""

    share = (0, 1)

    def __init__(self) -> None:
        self.observed: list[tuple[str, float, str]] = []

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def wall_ns(self, at: float) -> int:
        return int(at * 1e9)

    def perf_at(self, wall_ns: int) -> float:
        return wall_ns / 1e9


def two_editors() -> tuple[Clients, FakeStreams]:
    streams = FakeStreams()
    return Clients(streams, plan(SeedParams(editors=4, documents=2, hot_editors=0), "t")), streams  # type: ignore[arg-type]


def remote(update: bytes, sequence: int, *origins: str) -> editor_pb2.RemoteUpdate:
    return editor_pb2.RemoteUpdate(update=update, sequence=sequence, origins=list(origins))


def test_a_remote_edit_is_measured_once_per_receiver_from_its_intended_time():
    clients, streams = two_editors()
    author, receiver = clients.local[0], clients.local[2]  # editors 0 and 2 share the first document
    assert author.plan.document == receiver.plan.document
    update = Clients.apply_edit(author, EditChoice(0, insert="hi"))
    sent_ns = time.time_ns() - 50_000_000
    origin = encode_origin(author.plan.index, 1, sent_ns)
    clients._on_remote(receiver, remote(update, 1, origin))
    clients._on_remote(receiver, remote(update, 1, origin))  # a repeat (allowed): not measured again
    clients._on_remote(receiver, remote(b"\x00\x00", 1, "not-ours"))  # another client's tag: not measured
    clients._on_remote(author, remote(update, 1, origin))  # its own edit relayed back: not a remote arrival
    assert str(receiver.text) == "hi"
    [(name, latency_s, code)] = streams.observed
    assert (name, code) == (REMOTE_EDIT, "OK") and 0.05 <= latency_s < 5


def test_a_remote_frame_whose_sequence_goes_backwards_is_data_loss():
    clients, streams = two_editors()
    author, receiver = clients.local[0], clients.local[2]
    first = Clients.apply_edit(author, EditChoice(0, insert="a"))
    second = Clients.apply_edit(author, EditChoice(1, insert="b"))
    now = time.time_ns()
    clients._on_remote(receiver, remote(second, 5, encode_origin(0, 2, now)))
    clients._on_remote(receiver, remote(first, 4, encode_origin(0, 1, now)))
    assert [code for _, _, code in streams.observed] == ["OK", "DATA_LOSS"]
    assert clients.integrity_errors == 1 and receiver.session_last == 5
    assert str(receiver.text) == "ab"  # applied all the same: Yjs orders by its own clocks


def test_an_undecodable_remote_update_is_data_loss():
    clients, streams = two_editors()
    clients._on_remote(clients.local[2], remote(b"garbage", 1))
    assert streams.observed == [(REMOTE_EDIT, 0.0, "DATA_LOSS")]


def test_a_cursor_move_is_measured_when_it_reaches_another_editors_awareness():
    clients, streams = two_editors()
    author, receiver = clients.local[0], clients.local[2]
    clients.move_cursor(author, 3, time.time_ns() / 1e9 - 0.02)  # no session: kept for the next join
    update = author.awareness.encode_awareness_update([author.awareness.client_id])
    clients._apply_awareness(receiver, update, measure=True)
    clients._apply_awareness(receiver, update, measure=True)  # the same state again: not measured twice
    [(name, latency_s, code)] = streams.observed
    assert (name, code) == (REMOTE_CURSOR, "OK") and 0.02 <= latency_s < 5
    assert receiver.awareness.states[author.awareness.client_id]["cursor"] == 3


async def test_a_refused_update_is_sent_again_unless_refused_for_good():
    clients, _ = two_editors()
    editor = clients.local[0]
    loop = asyncio.get_running_loop()
    for update_id in (1, 2, 3):
        editor.unacked[update_id] = editor_pb2.LocalUpdate(client_update_id=update_id, update=b"x")
        editor.waiting[update_id] = loop.create_future()
    waiting = dict(editor.waiting)
    clients._on_rejected(editor, None, editor_pb2.Rejected(client_update_id=1, code=14))  # UNAVAILABLE
    clients._on_rejected(editor, None, editor_pb2.Rejected(client_update_id=2, code=8))  # RESOURCE_EXHAUSTED
    clients._on_rejected(editor, None, editor_pb2.Rejected(client_update_id=3, code=3, field="update.update"))
    assert set(editor.unacked) == {1, 2} and len(clients._tasks) == 2  # kept, and sent again after a pause
    assert not waiting[1].done() and not waiting[2].done()  # their journeys wait on
    assert waiting[3].exception().code().name == "INVALID_ARGUMENT" and editor.rejected == 1
    clients._on_ack(editor, editor_pb2.UpdateAck(client_update_id=1, sequence=7))
    assert set(editor.unacked) == {2} and waiting[1].result().sequence == 7 and editor.sequence == 7
    for task in list(clients._tasks):
        task.cancel()
    await asyncio.gather(*clients._tasks, return_exceptions=True)


def test_the_measures_are_the_workloads():
    from casemesh.harness.workloads import get_workload

    workload = get_workload("collab")
    assert workload.measures == (REMOTE_EDIT, REMOTE_CURSOR, CONVERGENCE)
    assert set(workload.journeys) == {"edit", "cursor", "reconnect", "open"}
    assert "casemesh.collab.v1.EditorService/Edit" in workload.rpcs
    assert not any("DocumentSync" in rpc for rpc in workload.rpcs)  # the internal contract is not the workload's

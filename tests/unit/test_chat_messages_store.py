"""chat-messages' domain: gapless per-conversation sequences, idempotent sends, membership, forward-only cursors, the
offline queue (SyncInbox), groups, the durable log (replay after reopen) and the ordered fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
from pathlib import Path

import grpc
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from casemesh.chat.v1 import message_pb2, router_pb2
from casemesh.services.chat.contract import MAX_GROUP_MEMBERS, dm_conversation_id
from casemesh.services.chat.messages.fanout import Fanout
from casemesh.services.chat.messages.journal import FILE_NAME, MessageJournal
from casemesh.services.chat.messages.store import DELIVERED, READ, Cursor, MessageStore, NotAMember
from casemesh.services.chat.messages.wire import chat_message
from casemesh.services.runtime.errors import InvalidArgument, NotFound

WAIT_S = 10.0  # generous: only a hang would reach it
AB = dm_conversation_id("alice", "bob")
AC = dm_conversation_id("alice", "carol")


class FailingJournal:
    """A journal whose disk refuses every commit while ``failing``."""

    def __init__(self) -> None:
        self.failing = True
        self.commits = 0

    def load(self):
        return [], [], []

    def append(self, messages, groups, cursors):
        if self.failing:
            raise OSError(28, "No space left on device")
        self.commits += 1


@contextlib.asynccontextmanager
async def running(journal=None, **kwargs):
    store = MessageStore(journal, **kwargs)
    await store.start()
    try:
        yield store
    finally:
        async with asyncio.timeout(WAIT_S):
            await store.stop()


@contextlib.asynccontextmanager
async def on_disk(folder: Path, **kwargs):
    journal = MessageJournal(folder)
    try:
        async with running(journal, **kwargs) as store:
            yield store
    finally:
        journal.close()


def sequences(store: MessageStore, user: str, conversation_id: str) -> list[int]:
    return [m.sequence for m in store.list_messages(user, conversation_id, 0, 10_000)[0]]


# -- sequences and idempotency ---------------------------------------------------------------------------------------

async def test_concurrent_sends_get_gapless_sequences_per_conversation_in_commit_order(tmp_path):
    async with on_disk(tmp_path, max_commit_batch=7) as store:
        group = await store.create_group("alice", ("alice", "bob", "carol"), "trip")
        gid = f"group:{group.group_id}"
        plan = [(random.Random(i).choice(["alice", "bob"]), AB) if i % 3 == 0 else
                ("alice", AC) if i % 3 == 1 else (["alice", "bob", "carol"][i % 3], gid) for i in range(240)]
        results = await asyncio.gather(*(store.send(sender, f"m{i}", cid, f"body {i}".encode())
                                         for i, (sender, cid) in enumerate(plan)))
        assert all(not duplicate for _, duplicate in results)
        for cid in (AB, AC, gid):
            mine = sorted((m for m, _ in results if m.conversation_id == cid), key=lambda m: m.sequence)
            assert [m.sequence for m in mine] == list(range(1, 81))
            assert [m.position for m in mine] == sorted(m.position for m in mine)  # sequence order is log order
            assert sequences(store, "alice", cid) == list(range(1, 81))
        positions = sorted(m.position for m, _ in results)
        assert positions == list(range(1, 241)) and len({m.message_id for m, _ in results}) == 240
        assert all(len(m.message_id) == 16 for m, _ in results)
        assert store.commits > 240 // 7  # the batch bound held


async def test_a_retry_returns_the_stored_message_even_while_the_first_is_being_committed():
    async with running() as store:
        first, again = await asyncio.gather(store.send("alice", "k1", AB, b"hi"), store.send("alice", "k1", AB, b"hi"))
        assert first == (first[0], False) and again == (first[0], True)
        later, duplicate = await store.send("alice", "k1", AC, b"other")  # the first stored message of a key wins
        assert duplicate and later == first[0]
        other, duplicate = await store.send("bob", "k1", AB, b"bob's own k1")  # keys are per sender
        assert not duplicate and other.sequence == 2
        assert store.message_count == 2


async def test_a_refused_commit_stores_nothing_and_leaves_no_gap():
    journal = FailingJournal()
    async with running(journal) as store:
        results = await asyncio.gather(*(store.send("alice", f"k{i}", AB, b"x") for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        assert store.message_count == 0 and store.conversations_of("alice") == []
        journal.failing = False
        message, duplicate = await store.send("alice", "k0", AB, b"x")  # the retry is a first send
        assert (message.sequence, message.position, duplicate) == (1, 1, False)


# -- membership ----------------------------------------------------------------------------------------------------

async def test_membership_is_checked_and_unknown_groups_are_not_found():
    async with running() as store:
        with pytest.raises(NotAMember):
            await store.send("mallory", "k", AB, b"x")
        with pytest.raises(NotFound):
            await store.send("alice", "k", "group:nope", b"x")
        group = await store.create_group("alice", ("alice", "bob"), "")
        gid = f"group:{group.group_id}"
        with pytest.raises(NotAMember):
            await store.send("carol", "k", gid, b"x")
        await store.send("bob", "k", gid, b"x")
        with pytest.raises(NotAMember):
            store.list_messages("carol", gid, 0, 10)
        with pytest.raises(NotAMember):
            await store.acknowledge("carol", gid, 1, DELIVERED)
        with pytest.raises(NotFound):
            await store.acknowledge("alice", "group:nope", 1, DELIVERED)
        with pytest.raises(NotFound):
            store.conversation("group:nope")
        assert store.conversation(AC).members == ("alice", "carol") and store.conversation(AC).last_sequence == 0
        assert store.message_count == 1


async def test_groups_hold_at_most_500_members_the_creator_first():
    async with running() as store:
        members = ("alice", *(f"u{i}" for i in range(MAX_GROUP_MEMBERS - 1)))
        group = await store.create_group("alice", members, "big")
        assert store.conversation(f"group:{group.group_id}").members == members
        assert f"group:{group.group_id}" in store.conversations_of("u498")
        with pytest.raises(InvalidArgument) as error:
            await store.create_group("alice", (*members, "one-too-many"), "")
        assert error.value.field == "member_ids"
        with pytest.raises(ValueError):
            await store.create_group("alice", ("bob", "alice"), "")  # the creator first


# -- cursors and receipts ------------------------------------------------------------------------------------------

async def test_cursors_move_forward_only_and_read_implies_delivered():
    events = []
    async with running(on_commit=lambda messages, receipts: events.extend(receipts)) as store:
        for i in range(5):
            await store.send("alice", f"k{i}", AB, b"x")
        assert store.cursor("alice", AB) == Cursor(5, 5)  # the sender has their own messages
        assert store.cursor("bob", AB) == Cursor(0, 0)
        assert await store.acknowledge("bob", AB, 3, DELIVERED) == Cursor(3, 0)
        assert await store.acknowledge("bob", AB, 2, DELIVERED) == Cursor(3, 0)  # older: nothing changes
        assert await store.acknowledge("bob", AB, 4, READ) == Cursor(4, 4)  # READ implies DELIVERED
        assert await store.acknowledge("bob", AB, 1, READ) == Cursor(4, 4)
        with pytest.raises(InvalidArgument) as error:
            await store.acknowledge("bob", AB, 6, DELIVERED)
        assert error.value.field == "up_to_sequence"
        assert [(e.user_id, e.state, e.up_to_sequence, e.notify) for e in events] == [
            ("bob", DELIVERED, 3, ("alice",)), ("bob", READ, 4, ("alice",))]
        # bob writes while behind: his cursor stays (messages 5 is still undelivered to him).
        await store.send("bob", "b1", AB, b"y")
        assert store.cursor("bob", AB) == Cursor(4, 4)
        assert store.cursor("alice", AB) == Cursor(5, 5)


async def test_a_group_receipt_goes_to_the_senders_it_covers():
    events = []
    async with running(on_commit=lambda messages, receipts: events.extend(receipts)) as store:
        group = await store.create_group("alice", ("alice", "bob", "carol", "dave"), "")
        gid = f"group:{group.group_id}"
        for i, sender in enumerate(["alice", "bob", "alice", "dave"]):
            await store.send(sender, f"k{i}", gid, b"x")
        await store.acknowledge("bob", gid, 3, READ)
        await store.acknowledge("bob", gid, 4, DELIVERED)
        assert [(e.state, e.up_to_sequence, e.notify) for e in events] == [(READ, 3, ("alice",)), (DELIVERED, 4, ("dave",))]


# -- the offline queue ---------------------------------------------------------------------------------------------

async def test_sync_inbox_returns_the_oldest_undelivered_first_per_conversation_and_says_when_it_truncated():
    async with running() as store:
        group = await store.create_group("carol", ("carol", "bob"), "")
        gid = f"group:{group.group_id}"
        order = [("alice", AB), ("carol", gid), ("alice", AB), ("alice", AB), ("carol", gid)]
        for i, (sender, cid) in enumerate(order):
            await store.send(sender, f"k{i}", cid, f"{i}".encode())
        page = store.sync_inbox("bob", 100)
        assert [(m.conversation_id, m.sequence) for m in page.messages] == [(AB, 1), (gid, 1), (AB, 2), (AB, 3), (gid, 2)]
        assert not page.truncated
        assert sorted((cid, c, last) for cid, c, last in page.cursors) == sorted([(AB, Cursor(0, 0), 3), (gid, Cursor(0, 0), 2)])
        page = store.sync_inbox("bob", 3)
        assert [(m.conversation_id, m.sequence) for m in page.messages] == [(AB, 1), (gid, 1), (AB, 2)] and page.truncated
        await store.acknowledge("bob", AB, 2, DELIVERED)
        page = store.sync_inbox("bob", 2)
        assert [(m.conversation_id, m.sequence) for m in page.messages] == [(gid, 1), (AB, 3)] and page.truncated
        assert store.sync_inbox("alice", 10).messages == []  # her own messages are delivered to her
        assert store.sync_inbox("nobody", 10) == store.sync_inbox("nobody", 10) and not store.sync_inbox("nobody", 10).cursors


async def test_list_messages_pages_in_sequence_order():
    async with running() as store:
        for i in range(25):
            await store.send("alice", f"k{i}", AB, f"{i}".encode())
        seen, after = [], 0
        while True:
            page, last = store.list_messages("bob", AB, after, 10)
            if not page:
                break
            seen += [m.sequence for m in page]
            after = page[-1].sequence
        assert seen == list(range(1, 26)) and last == 25
        assert store.list_messages("bob", AB, 10**9, 10) == ([], 25)


# -- durability ----------------------------------------------------------------------------------------------------

async def test_a_reopened_store_has_every_message_group_cursor_and_idempotency_key(tmp_path):
    async with on_disk(tmp_path, max_commit_batch=3) as store:
        group = await store.create_group("alice", ("alice", "bob"), "the group")
        gid = f"group:{group.group_id}"
        await asyncio.gather(*(store.send("alice" if i % 2 else "bob", f"k{i}", AB if i % 3 else gid, b"%d" % i)
                               for i in range(30)))
        await store.acknowledge("bob", AB, 5, READ)
        await store.acknowledge("alice", gid, 4, DELIVERED)
        before = {cid: store.list_messages("alice", cid, 0, 1000)[0] for cid in (AB, gid)}
        cursors = {(u, c): store.cursor(u, c) for u in ("alice", "bob") for c in (AB, gid)}
    assert (tmp_path / FILE_NAME).exists()
    async with on_disk(tmp_path) as store:
        assert {cid: store.list_messages("alice", cid, 0, 1000)[0] for cid in (AB, gid)} == before
        assert {(u, c): store.cursor(u, c) for u in ("alice", "bob") for c in (AB, gid)} == cursors
        conversation = store.conversation(gid)
        assert (conversation.title, conversation.members) == ("the group", ("alice", "bob"))
        message, duplicate = await store.send("alice", "k1", AB, b"1")
        assert duplicate and message == next(m for m in before[AB] if m.client_message_id == "k1")  # the keys too
        message, duplicate = await store.send("alice", "new", AB, b"n")
        assert not duplicate and message.sequence == len(before[AB]) + 1 and message.position == 31


async def test_an_unclosed_store_loses_nothing_acknowledged(tmp_path):
    """The process dies after the answers (no stop, no close): what was answered is on disk."""
    journal = MessageJournal(tmp_path)
    store = MessageStore(journal)
    await store.start()
    answered = await asyncio.gather(*(store.send("alice", f"k{i}", AB, b"x") for i in range(20)))
    await store.acknowledge("bob", AB, 7, DELIVERED)
    async with on_disk(tmp_path) as reopened:
        assert [m for m, _ in answered] == reopened.list_messages("bob", AB, 0, 100)[0]
        assert reopened.cursor("bob", AB) == Cursor(7, 0)
    await store.stop()
    journal.close()


# -- validation: bad input stores nothing ------------------------------------------------------------------------

async def test_bad_requests_name_the_field_and_store_nothing():
    from casemesh.chat.v1 import messages_pb2 as pb
    from casemesh.services.chat.messages.service import MessageServicer

    async with running() as store:
        servicer = MessageServicer(store)
        ok = dict(sender_id="alice", client_message_id="k1", conversation_id=AB, body=b"hi")
        for change, field in [({"sender_id": ""}, "sender_id"), ({"sender_id": "a b"}, "sender_id"),
                              ({"client_message_id": "x" * 65}, "client_message_id"),
                              ({"conversation_id": "dm:bob:alice"}, "conversation_id"),
                              ({"conversation_id": "dm:alice:alice"}, "conversation_id"),
                              ({"conversation_id": "chan:1"}, "conversation_id"), ({"conversation_id": ""}, "conversation_id"),
                              ({"body": b""}, "body"), ({"body": b"x" * 65_537}, "body")]:
            with pytest.raises(InvalidArgument) as error:
                await servicer.SendMessage(pb.SendMessageRequest(**{**ok, **change}), None)
            assert error.value.field == field, change
        assert store.message_count == 0
        await servicer.SendMessage(pb.SendMessageRequest(**ok), None)
        for request, field in [
            (pb.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=0, state=message_pb2.RECEIPT_STATE_READ), "up_to_sequence"),
            (pb.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=1), "state"),
            (pb.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=1, state=message_pb2.RECEIPT_STATE_SENT), "state"),
            (pb.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=2, state=message_pb2.RECEIPT_STATE_READ), "up_to_sequence"),
            (pb.AcknowledgeRequest(user_id="", conversation_id=AB, up_to_sequence=1, state=message_pb2.RECEIPT_STATE_READ), "user_id"),
        ]:
            with pytest.raises(InvalidArgument) as error:
                await servicer.Acknowledge(request, None)
            assert error.value.field == field, request
        assert store.cursor("bob", AB) == Cursor(0, 0)
        for request, method, field in [
            (pb.SyncInboxRequest(user_id="bob", max_messages=0), "SyncInbox", "max_messages"),
            (pb.SyncInboxRequest(user_id="bob", max_messages=10_001), "SyncInbox", "max_messages"),
            (pb.ListMessagesRequest(user_id="bob", conversation_id=AB, page_size=1001), "ListMessages", "page_size"),
            (pb.ListMessagesRequest(user_id="bob", conversation_id="group:"), "ListMessages", "conversation_id"),
            (pb.CreateGroupRequest(creator_id="alice", member_ids=[f"u{i}" for i in range(500)]), "CreateGroup", "member_ids"),
            (pb.CreateGroupRequest(creator_id="alice", member_ids=["bob", "c,d"]), "CreateGroup", "member_ids[1]"),
            (pb.CreateGroupRequest(creator_id="alice", title="t" * 101), "CreateGroup", "title"),
            (pb.CreateGroupRequest(creator_id=""), "CreateGroup", "creator_id"),
            (pb.GetConversationRequest(conversation_id="dm:b:a"), "GetConversation", "conversation_id"),
        ]:
            with pytest.raises(InvalidArgument) as error:
                await getattr(servicer, method)(request, None)
            assert error.value.field == field, request
        assert store.message_count == 1 and store.conversations_of("u1") == []
        # 499 others, the creator and duplicates ignored: allowed.
        members = [f"u{i}" for i in range(499)] + ["alice", "u1"]
        response = await servicer.CreateGroup(pb.CreateGroupRequest(creator_id="alice", member_ids=members), None)
        assert len(response.member_ids) == 500 and response.member_ids[0] == "alice"


# -- the fan-out -----------------------------------------------------------------------------------------------------

class FakeRouter:
    """Records Route calls; ``offline`` users are reported offline; ``failing`` makes every call fail UNAVAILABLE."""

    def __init__(self, offline=(), failing=False, rng: random.Random | None = None) -> None:
        self.calls: list[router_pb2.RouteRequest] = []
        self.offline = set(offline)
        self.failing = failing
        self.rng = rng or random.Random(0)
        self.in_flight: dict[str, int] = {}
        self.overlap = False

    async def Route(self, request, *, timeout=None):  # noqa: N802
        item = request.message if request.HasField("message") else request.receipt
        cid = item.conversation_id
        self.in_flight[cid] = self.in_flight.get(cid, 0) + 1
        self.overlap |= self.in_flight[cid] > 1
        try:
            await asyncio.sleep(self.rng.random() * 0.002)  # calls of different conversations interleave
            self.calls.append(request)
            if self.failing:
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "router down")
            return router_pb2.RouteResponse(delivered_sessions=1,
                                            offline_user_ids=[u for u in request.user_ids if u in self.offline])
        finally:
            self.in_flight[cid] -= 1


async def test_the_fanout_routes_each_conversation_in_sequence_order_and_conversations_concurrently():
    router = FakeRouter(offline={"carol"})
    fanout = Fanout(router, concurrency=8)
    await fanout.start()
    try:
        async with running(on_commit=lambda messages, receipts: [
                fanout.submit_message(m.conversation_id, ("alice", "bob", "carol"), chat_message(m)) for m in messages],
                max_commit_batch=5) as store:
            conversations = [dm_conversation_id("alice", f"b{i}") for i in range(6)]
            await asyncio.gather(*(store.send("alice", f"k{i}", conversations[i % 6], b"x") for i in range(120)))
            async with asyncio.timeout(WAIT_S):
                await fanout.wait_idle()
    finally:
        await fanout.stop()
    assert not router.overlap  # never two calls of one conversation at once
    by_conversation: dict[str, list[int]] = {}
    for call in router.calls:
        by_conversation.setdefault(call.message.conversation_id, []).append(call.message.sequence)
    assert by_conversation == {cid: list(range(1, 21)) for cid in conversations}
    assert (fanout.stats.routed, fanout.stats.offline, fanout.stats.failed, fanout.pending) == (240, 120, 0, 0)


async def test_a_down_router_is_counted_and_skipped_and_the_queue_is_bounded():
    router = FakeRouter(failing=True)
    fanout = Fanout(router, concurrency=1, max_pending=10)
    message = message_pb2.ChatMessage(conversation_id=AB, sequence=1)
    for _ in range(12):  # two over the bound: dropped before any worker runs
        fanout.submit_message(AB, ("alice", "bob"), message)
    fanout.submit_receipt(AB, (), message_pb2.Receipt(conversation_id=AB))  # nobody to tell: nothing queued
    assert fanout.pending == 10 and fanout.stats.dropped == 4
    await fanout.start()
    try:
        async with asyncio.timeout(WAIT_S):
            await fanout.wait_idle()
        assert (fanout.stats.failed_calls, fanout.stats.failed, fanout.pending) == (10, 20, 0)
        router.failing = False  # back: routing goes on
        fanout.submit_receipt(AB, ("alice",), message_pb2.Receipt(conversation_id=AB, user_id="bob", up_to_sequence=1))
        async with asyncio.timeout(WAIT_S):
            await fanout.wait_idle()
        assert fanout.stats.routed == 1 and router.calls[-1].HasField("receipt")
    finally:
        await fanout.stop()


# -- a model of sends, acknowledgements and restarts -----------------------------------------------------------------

USERS = ("alice", "bob", "carol")
DMS = (AB, AC, dm_conversation_id("bob", "carol"))


class MessageStoreMachine(RuleBasedStateMachine):
    """Any sequence of sends (retries included), acknowledgements and restarts: the store, and every store reopened on
    its folder, equals a model of per-conversation lists and max-cursors."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="chat-store-"))
        self.journal: MessageJournal | None = None
        self.store: MessageStore | None = None
        self.reopen()
        self.messages: dict[str, list[tuple[str, str, bytes]]] = {cid: [] for cid in DMS}  # (sender, key, body)
        self.keys: dict[tuple[str, str], tuple[str, int]] = {}
        self.cursors: dict[tuple[str, str], Cursor] = {}

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def reopen(self) -> None:
        if self.store is not None:
            self.run(self.store.stop())
            self.journal.close()
        self.journal = MessageJournal(self.folder)
        self.store = MessageStore(self.journal, max_commit_batch=2)
        self.run(self.store.start())

    def model_cursor(self, user: str, cid: str) -> Cursor:
        return self.cursors.setdefault((user, cid), Cursor())

    @rule(cid=st.sampled_from(DMS), pick=st.integers(0, 1), key=st.integers(0, 6), body=st.binary(min_size=1, max_size=8),
          copies=st.integers(1, 3))
    def send(self, cid, pick, key, body, copies):
        sender = cid.split(":")[1 + pick]
        client_key = f"k{key}"

        async def concurrently():
            return await asyncio.gather(*(self.store.send(sender, client_key, cid, body) for _ in range(copies)))

        results = self.run(concurrently())
        known = self.keys.get((sender, client_key))
        if known is None:
            self.messages[cid].append((sender, client_key, body))
            known = self.keys[(sender, client_key)] = (cid, len(self.messages[cid]))
            cursor = self.model_cursor(sender, cid)
            if cursor.delivered_up_to == known[1] - 1:
                cursor.delivered_up_to = known[1]
                if cursor.read_up_to == known[1] - 1:
                    cursor.read_up_to = known[1]
            assert [d for _, d in results] == [False] + [True] * (copies - 1)
        else:
            assert all(d for _, d in results)
        assert {(m.conversation_id, m.sequence) for m, _ in results} == {known}

    @precondition(lambda self: any(self.messages.values()))
    @rule(data=st.data(), state=st.sampled_from([DELIVERED, READ]))
    def acknowledge(self, data, state):
        cid = data.draw(st.sampled_from([c for c in DMS if self.messages[c]]))
        user = cid.split(":")[1 + data.draw(st.integers(0, 1))]
        up_to = data.draw(st.integers(1, len(self.messages[cid])))
        after = self.run(self.store.acknowledge(user, cid, up_to, state))
        cursor = self.model_cursor(user, cid)
        if state == READ:
            cursor.read_up_to = max(cursor.read_up_to, up_to)
        cursor.delivered_up_to = max(cursor.delivered_up_to, up_to)
        assert after == cursor

    @rule()
    def restart(self):
        self.reopen()

    @invariant()
    def store_equals_model(self):
        for cid, expected in self.messages.items():
            stored = self.store.list_messages(cid.split(":")[1], cid, 0, 1000)[0]
            assert [(m.sender_id, m.client_message_id, m.body) for m in stored] == expected
            assert [m.sequence for m in stored] == list(range(1, len(expected) + 1))
        for user in USERS:
            page = self.store.sync_inbox(user, 1000)
            undelivered = sorted((cid, s) for cid in DMS if user in cid.split(":")[1:]
                                 for s in range(self.model_cursor(user, cid).delivered_up_to + 1, len(self.messages[cid]) + 1))
            assert sorted((m.conversation_id, m.sequence) for m in page.messages) == undelivered
            for cid in DMS:
                if user in cid.split(":")[1:]:
                    assert self.store.cursor(user, cid) == self.model_cursor(user, cid)

    def teardown(self):
        if self.store is not None:
            self.run(self.store.stop())
            self.journal.close()
        self.run(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestMessageStoreModel = MessageStoreMachine.TestCase
TestMessageStoreModel.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)

"""The chat mesh through real gRPC on 127.0.0.1: delivery with receipts across gateways, groups, the offline queue,
presence, replaced sessions, bad frames, and the invariant under many concurrent senders.

One in-process mesh (chat-messages, chat-router, chat-gateway-1, chat-gateway-2) for the module; each test uses
users of its own.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
import pytest_asyncio

from casemesh.chat.v1 import messages_pb2, messages_pb2_grpc, router_pb2, router_pb2_grpc
from casemesh.services.catalog import definitions
from casemesh.services.chat.contract import dm_conversation_id
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .chat import DELIVERED, READ, SERVICES, Device, eventually, per_conversation
from .conftest import free_port, start_mesh

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: gateway-1 asks for a heartbeat every second (3 s without a frame ends a session); gateway-2 keeps the default.
SETTINGS = {"chat-gateway-1": {"heartbeat_interval_ms": 1_000, "refresh_interval_ms": 500},
            "chat-gateway-2": {"refresh_interval_ms": 500},
            "chat-router": {"session_timeout_ms": 5_000}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    topology = Topology(services={name: Endpoint(address=f"127.0.0.1:{free_port()}") for name in SERVICES},
                        data_dir=str(tmp_path_factory.mktemp("chat-data")), settings=SETTINGS,
                        server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(definitions(SERVICES), topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def device(mesh, gateway: str, user: str, name: str = "phone", **kwargs) -> Device:
    return Device(mesh.anonymous_channel(gateway), user, name, **kwargs)


async def test_a_message_reaches_the_recipient_on_another_gateway_with_sent_delivered_and_read_receipts(mesh):
    alice = device(mesh, "chat-gateway-1", "api-alice")
    bob = device(mesh, "chat-gateway-2", "api-bob", auto_ack=False)
    connected = await alice.connect()
    assert connected.gateway == "chat-gateway-1" and connected.session_id and connected.heartbeat_interval_ms == 1_000
    assert (await bob.connect()).gateway == "chat-gateway-2"
    dm = dm_conversation_id("api-alice", "api-bob")
    await alice.send(dm, b"hello bob", "m1")
    await eventually(lambda: "m1" in alice.sent, "alice's sent receipt")
    sent = alice.sent["m1"]
    assert sent.conversation_id == dm and sent.sequence == 1 and sent.message_id and sent.stored_at_unix_ms > 0
    await eventually(lambda: bob.seqs(dm) == [1], "bob's message")
    assert bob.messages[0].body == b"hello bob" and bob.messages[0].sender_id == "api-alice"
    await eventually(lambda: alice.seqs(dm) == [1], "alice's own message on her device (sync across devices)")

    await bob.ack(dm, 1, DELIVERED)
    await eventually(lambda: any(r.state == DELIVERED and r.user_id == "api-bob" and r.up_to_sequence == 1
                                 for r in alice.receipts), "the delivered receipt")
    await bob.ack(dm, 1, READ)
    await eventually(lambda: any(r.state == READ and r.user_id == "api-bob" for r in alice.receipts), "the read receipt")
    assert not alice.violations and not bob.violations and not alice.rejected
    assert await alice.close() == grpc.StatusCode.OK
    assert await bob.close() == grpc.StatusCode.OK


async def test_a_group_message_fans_out_to_online_members_and_waits_in_the_offline_queue_of_the_others(mesh):
    messages = messages_pb2_grpc.MessageServiceStub(mesh.channel("chat-messages"))
    group = await messages.CreateGroup(messages_pb2.CreateGroupRequest(
        creator_id="grp-ann", member_ids=["grp-bob", "grp-cat", "grp-dan"], title="team"), timeout=10)
    conversation = group.conversation_id
    ann, bob = device(mesh, "chat-gateway-1", "grp-ann"), device(mesh, "chat-gateway-2", "grp-bob")
    cat_phone, cat_laptop = device(mesh, "chat-gateway-1", "grp-cat"), device(mesh, "chat-gateway-2", "grp-cat", "laptop")
    online = [ann, bob, cat_phone, cat_laptop]
    for d in online:
        await d.connect()
    for i in range(5):
        await ann.send(conversation, f"msg {i}".encode(), f"g{i}")
    for d in online:  # every device of every online member, the sender's own included
        await eventually(lambda d=d: d.seqs(conversation) == [1, 2, 3, 4, 5], f"{d.user}/{d.device}'s group messages")
    # dan was offline: the five messages wait for him, and arrive in order when he connects.
    dan = device(mesh, "chat-gateway-2", "grp-dan")
    assert (await dan.connect()).pending_messages == 5
    await eventually(lambda: dan.seqs(conversation) == [1, 2, 3, 4, 5], "dan's offline queue")
    await eventually(lambda: any(r.user_id == "grp-dan" and r.up_to_sequence == 5 for r in ann.receipts),
                     "ann's delivered receipt from dan")
    assert await dan.close() == grpc.StatusCode.OK
    # Acknowledged: a new session of dan's has nothing waiting.
    again = device(mesh, "chat-gateway-1", "grp-dan")
    assert (await again.connect()).pending_messages == 0
    for d in [*online, again]:
        assert not d.violations
        await d.close()


async def test_a_long_offline_queue_is_paged_in_order(mesh):
    sender = device(mesh, "chat-gateway-1", "pg-sender")
    await sender.connect()
    dm = dm_conversation_id("pg-sender", "pg-reader")
    for i in range(600):  # more than sync_batch (256) and than one fill page (200)
        await sender.send(dm, f"{i}".encode(), f"p{i}")
        if i % 100 == 99:  # at most max_pending_sends (256) waiting at the gateway
            await eventually(lambda i=i: len(sender.sent) == i + 1, f"{i + 1} sent receipts")
    assert not sender.rejected
    reader = device(mesh, "chat-gateway-2", "pg-reader")
    assert (await reader.connect()).pending_messages == 600
    await eventually(lambda: len(reader.messages) >= 600, "the paged offline queue")
    assert reader.seqs(dm) == list(range(1, 601)) and not reader.violations
    assert [m.body for m in reader.messages[:3]] == [b"0", b"1", b"2"]
    await sender.close()
    await reader.close()


async def test_presence_online_offline_and_last_seen(mesh):
    presence = router_pb2_grpc.PresenceServiceStub(mesh.anonymous_channel("chat-router"))

    async def look(user: str) -> router_pb2.Presence:
        return (await presence.GetPresence(router_pb2.GetPresenceRequest(user_ids=[user]), timeout=10)).presences[0]

    never = await look("pr-nobody")
    assert not never.online and never.devices == 0 and never.last_seen_unix_ms == 0
    phone, laptop = device(mesh, "chat-gateway-1", "pr-eve"), device(mesh, "chat-gateway-2", "pr-eve", "laptop")
    await phone.connect()
    await laptop.connect()
    seen = await look("pr-eve")
    assert seen.online and seen.devices == 2 and seen.last_seen_unix_ms > 0
    await phone.close()
    await laptop.close()

    async def offline() -> router_pb2.Presence:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            p = await look("pr-eve")
            if not p.online or asyncio.get_running_loop().time() > deadline:
                return p
            await asyncio.sleep(0.05)

    gone = await offline()
    assert not gone.online and gone.devices == 0 and gone.last_seen_unix_ms >= seen.last_seen_unix_ms
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await presence.GetPresence(router_pb2.GetPresenceRequest(user_ids=["not ok"]), timeout=10)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_ids[0]" in bad.value.details()


async def test_the_same_device_connecting_again_replaces_its_older_session_with_aborted(mesh):
    old = device(mesh, "chat-gateway-1", "rp-fay")
    await old.connect()
    new = device(mesh, "chat-gateway-2", "rp-fay")
    connected = await new.connect()
    assert await old.ended() == grpc.StatusCode.ABORTED and connected.session_id in old.details
    # The new session is the one that gets messages.
    friend = device(mesh, "chat-gateway-1", "rp-gus")
    await friend.connect()
    dm = dm_conversation_id("rp-fay", "rp-gus")
    await friend.send(dm, b"still there?", "r1")
    await eventually(lambda: new.seqs(dm) == [1], "the message on the new session")
    assert new.alive
    await new.close()
    await friend.close()


async def test_bad_frames_are_rejected_without_ending_the_stream_and_a_bad_hello_ends_it(mesh):
    d = device(mesh, "chat-gateway-2", "bad-hal")
    await d.connect()
    await d.send("dm:bad-hal:bad-hal", b"x", "b1")  # not a valid dm (same user twice)
    await d.send(dm_conversation_id("bad-hal", "bad-ida"), b"", "b2")  # empty body
    await d.send("group:nope", b"hi", "b3")  # unknown group
    await d.ack(dm_conversation_id("bad-hal", "bad-ida"), 0, DELIVERED)
    await eventually(lambda: len(d.rejected) == 4, "four rejections")
    by_id = {r.client_message_id: r for r in d.rejected}
    assert by_id["b1"].field == "send.conversation_id" and by_id["b1"].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert by_id["b2"].field == "send.body"
    assert by_id["b3"].code == grpc.StatusCode.NOT_FOUND.value[0]
    assert by_id[""].field == "ack.up_to_sequence"
    await d.send(dm_conversation_id("bad-hal", "bad-ida"), b"fine", "b4")
    await eventually(lambda: "b4" in d.sent, "a good send after bad ones")
    assert d.alive and await d.close() == grpc.StatusCode.OK

    for hello_user, hello_device, field in (("", "phone", "hello.user_id"), ("ok", "bad device", "hello.device_id")):
        bad = device(mesh, "chat-gateway-1", hello_user, hello_device)
        with pytest.raises(AssertionError):
            await bad.connect()
        assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and field in bad.details
        await bad.close()


async def test_a_silent_session_ends_with_deadline_exceeded(mesh):
    quiet = device(mesh, "chat-gateway-1", "hb-quiet", heartbeat=False)
    await quiet.connect()
    assert await quiet.ended() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_many_concurrent_senders_every_stream_in_order_without_gaps_or_duplicates(mesh):
    """20 users (one device each, on both gateways) send at once in DMs and two groups; every stream is checked."""
    rng = random.Random(7)
    users = [f"inv-{i:02d}" for i in range(20)]
    messages = messages_pb2_grpc.MessageServiceStub(mesh.channel("chat-messages"))
    groups = []
    for members in (users[:12], users[6:]):
        created = await messages.CreateGroup(messages_pb2.CreateGroupRequest(creator_id=members[0], member_ids=members[1:]), timeout=10)
        groups.append((created.conversation_id, members))
    dms = [(dm_conversation_id(a, b), [a, b]) for a, b in {tuple(sorted(rng.sample(users, 2))) for _ in range(12)}]
    conversations = groups + dms
    devices = {u: device(mesh, "chat-gateway-1" if i % 2 else "chat-gateway-2", u) for i, u in enumerate(users)}
    await asyncio.gather(*(d.connect() for d in devices.values()))
    per_user = 15

    async def sender(user: str) -> None:
        mine = [c for c, members in conversations if user in members]
        for i in range(per_user):
            await devices[user].send(rng.choice(mine), f"{user}:{i}".encode(), f"{user}-{i}")
            await asyncio.sleep(rng.random() * 0.01)

    await asyncio.gather(*(sender(u) for u in users))
    await eventually(lambda: sum(len(d.sent) for d in devices.values()) == len(users) * per_user, "every sent receipt")
    last = {}
    for conversation, _ in conversations:
        last[conversation] = (await messages.GetConversation(messages_pb2.GetConversationRequest(
            conversation_id=conversation), timeout=10)).last_sequence
    assert sum(last.values()) == len(users) * per_user
    for conversation, members in conversations:
        for user in members:
            d = devices[user]
            await eventually(lambda d=d, c=conversation: len(d.seqs(c)) >= last[c], f"{user}'s {conversation}")
    for user, d in devices.items():
        got = per_conversation(d.messages)
        for conversation, members in conversations:
            expected = list(range(1, last[conversation] + 1)) if user in members else []
            assert got.get(conversation, []) == expected, (user, conversation)
        assert not d.violations and not d.rejected
    await asyncio.gather(*(d.close() for d in devices.values()))

"""chat-messages through real gRPC on 127.0.0.1, with a fake chat-router that records every Route call.

- Concurrent senders in one conversation: every message gets a distinct
  sequence, 1..N without gaps, and the Route calls of each conversation
  arrive in sequence order, each once, with every member as a recipient (a
  group in one call).
- Receipts: an acknowledgement is routed to the sender of the messages it covers.
- Restart (a new server in-process on the same data dir, and a SIGKILLed
  ``casemesh serve`` process): every acknowledged message and cursor is back.
- The router down: sends are still acknowledged; the messages wait in SyncInbox.
- Bad requests: INVALID_ARGUMENT naming the field; PERMISSION_DENIED / NOT_FOUND as messages.proto says.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from casemesh.chat.v1 import message_pb2, messages_pb2, messages_pb2_grpc, router_pb2, router_pb2_grpc
from casemesh.harness.mesh import free_port
from casemesh.services.catalog import definitions
from casemesh.services.chat.contract import dm_conversation_id
from casemesh.services.runtime.topology import Endpoint, Topology

from ..caller_identity import serve_environment
from .conftest import start_mesh

WAIT_S = 60.0  # only a hang would reach it (a loaded 2-core machine)
AB = dm_conversation_id("alice", "bob")
READ = message_pb2.RECEIPT_STATE_READ
DELIVERED = message_pb2.RECEIPT_STATE_DELIVERED


class FakeRouter(router_pb2_grpc.PresenceServiceServicer):
    """chat-router's PresenceService reduced to Route: records each call; ``offline`` users; ``down`` answers UNAVAILABLE."""

    def __init__(self) -> None:
        self.calls: list[router_pb2.RouteRequest] = []
        self.down = False
        self.offline: set[str] = set()

    async def Route(self, request, context):  # noqa: N802
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "router down (test)")
        self.calls.append(request)
        return router_pb2.RouteResponse(delivered_sessions=len(request.user_ids),
                                        offline_user_ids=[u for u in request.user_ids if u in self.offline])

    def messages(self, conversation_id: str) -> list[router_pb2.RouteRequest]:
        return [c for c in self.calls if c.HasField("message") and c.message.conversation_id == conversation_id]

    def receipts(self) -> list[router_pb2.RouteRequest]:
        return [c for c in self.calls if c.HasField("receipt")]


@pytest.fixture
async def router():
    fake = FakeRouter()
    server = grpc.aio.server()
    router_pb2_grpc.add_PresenceServiceServicer_to_server(fake, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    fake.address = f"127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await server.stop(0)


def topology(router: FakeRouter, data_dir: Path, settings: dict | None = None) -> Topology:
    return Topology(services={"chat-messages": Endpoint(address=f"127.0.0.1:{free_port()}"),
                              "chat-router": Endpoint(address=router.address)},
                    data_dir=str(data_dir), settings=settings or {})


class Running:
    """chat-messages served in this process; ``stub`` carries the test identity (allowed on every method)."""

    def __init__(self, mesh, stop, task):
        self.mesh, self._stop, self._task = mesh, stop, task
        self.stub = messages_pb2_grpc.MessageServiceStub(mesh.channel("chat-messages"))
        self.anonymous = messages_pb2_grpc.MessageServiceStub(mesh.anonymous_channel("chat-messages"))

    @classmethod
    async def start(cls, topo: Topology) -> Running:
        return cls(*await start_mesh(definitions(["chat-messages"]), topo))

    async def stop(self) -> None:
        await self.mesh.close()
        self._stop.set()
        await asyncio.wait_for(self._task, WAIT_S)


async def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {WAIT_S:g} s"
        await asyncio.sleep(0.02)


async def send(stub, sender: str, key: str, conversation_id: str, body: bytes = b"hi") -> messages_pb2.SendMessageResponse:
    return await stub.SendMessage(messages_pb2.SendMessageRequest(
        sender_id=sender, client_message_id=key, conversation_id=conversation_id, body=body), timeout=WAIT_S)


async def test_concurrent_senders_are_routed_in_sequence_order_without_gaps_or_duplicates(router, tmp_path):
    running = await Running.start(topology(router, tmp_path))
    try:
        stub = running.stub
        members = [f"m{i:02d}" for i in range(50)]
        group = await stub.CreateGroup(messages_pb2.CreateGroupRequest(creator_id="m00", member_ids=members[1:] + ["m03"],
                                                                       title="fifty"), timeout=WAIT_S)
        assert list(group.member_ids) == members
        gid = group.conversation_id
        router.offline = {"m07", "bob"}

        async def sender(user: str, conversation_id: str, n: int) -> list[messages_pb2.SendMessageResponse]:
            return [await send(stub, user, f"{conversation_id[:5]}-{i}", conversation_id, f"{user} {i}".encode())
                    for i in range(n)]

        # 8 concurrent senders per conversation (in the dm, alice and bob, 4 streams each with distinct keys).
        jobs = [sender(members[i], gid, 25) for i in range(8)]
        jobs += [send_many(stub, "alice" if i % 2 else "bob", AB, i, 25) for i in range(8)]
        responses = [r for batch in await asyncio.gather(*jobs) for r in batch]
        for conversation_id, count in ((gid, 200), (AB, 200)):
            mine = [r.message for r in responses if r.message.conversation_id == conversation_id]
            assert sorted(m.sequence for m in mine) == list(range(1, count + 1))
            assert not any(r.duplicate for r in responses)
            await wait_until(lambda: len(router.messages(conversation_id)) >= count, f"{count} routed in {conversation_id}")
            routed = router.messages(conversation_id)
            assert [c.message.sequence for c in routed] == list(range(1, count + 1))  # in order, no gap, no duplicate
            assert {c.message.message_id for c in routed} == {m.message_id for m in mine}
        assert all(list(c.user_ids) == members for c in router.messages(gid))  # one call, every member
        assert all(sorted(c.user_ids) == ["alice", "bob"] for c in router.messages(AB))

        # A retried send is the stored message, not a second one (and is not routed again).
        again = await send(stub, members[0], f"{gid[:5]}-0", gid, b"retry")
        assert again.duplicate and again.message.sequence in range(1, 201)
        conversation = await stub.GetConversation(messages_pb2.GetConversationRequest(conversation_id=gid), timeout=WAIT_S)
        assert (conversation.last_sequence, conversation.title, list(conversation.member_ids)) == (200, "fifty", members)

        # bob reads alice's messages up to 10: the receipt goes to alice only.
        before = len(router.receipts())
        ack = await stub.Acknowledge(messages_pb2.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=10,
                                                                     state=READ), timeout=WAIT_S)
        assert (ack.delivered_up_to, ack.read_up_to) == (10, 10)
        await wait_until(lambda: len(router.receipts()) > before, "the receipt routed")
        last = router.receipts()[-1]
        assert list(last.user_ids) == ["alice"]
        assert (last.receipt.user_id, last.receipt.state, last.receipt.up_to_sequence) == ("bob", READ, 10)
    finally:
        await running.stop()


async def send_many(stub, user: str, conversation_id: str, stream: int, n: int) -> list[messages_pb2.SendMessageResponse]:
    return [await send(stub, user, f"s{stream}-{i}", conversation_id, b"x") for i in range(n)]


async def test_a_restarted_service_keeps_every_acknowledged_message_and_cursor_and_survives_a_router_outage(router, tmp_path):
    running = await Running.start(topology(router, tmp_path, {"chat-messages": {"max_commit_batch": 4}}))
    try:
        sent = await asyncio.gather(*(send_many(running.stub, "alice", AB, s, 15) for s in range(4)))
        acked = {r.message.message_id: r.message for batch in sent for r in batch}
        router.down = True  # sends are still acknowledged; the messages wait in the offline queue
        acked.update({r.message.message_id: r.message for r in await send_many(running.stub, "bob", AB, 9, 5)})
        await running.stub.Acknowledge(messages_pb2.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=20,
                                                                       state=DELIVERED), timeout=WAIT_S)
        await running.stub.Acknowledge(messages_pb2.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=7,
                                                                       state=READ), timeout=WAIT_S)
    finally:
        await running.stop()
    router.down = False

    running = await Running.start(topology(router, tmp_path))  # a new server on the same data dir
    try:
        listed = (await running.stub.ListMessages(messages_pb2.ListMessagesRequest(
            user_id="bob", conversation_id=AB, page_size=1000), timeout=WAIT_S)).messages
        assert [m.sequence for m in listed] == list(range(1, 66))
        assert {m.message_id: m for m in listed} == acked
        inbox = await running.stub.SyncInbox(messages_pb2.SyncInboxRequest(user_id="bob", max_messages=10), timeout=WAIT_S)
        assert [m.sequence for m in inbox.messages] == list(range(21, 31)) and inbox.truncated
        assert [(c.conversation_id, c.delivered_up_to, c.read_up_to, c.last_sequence) for c in inbox.cursors] == [(AB, 20, 7, 65)]
        inbox = await running.stub.SyncInbox(messages_pb2.SyncInboxRequest(user_id="alice", max_messages=100), timeout=WAIT_S)
        assert [m.sender_id for m in inbox.messages] == ["bob"] * 5  # alice has her own 60
        retry = await send(running.stub, "alice", "s0-0", AB, b"again")
        assert retry.duplicate and retry.message == acked[retry.message.message_id]
        fresh = await send(running.stub, "alice", "fresh", AB)
        assert not fresh.duplicate and fresh.message.sequence == 66
    finally:
        await running.stop()


async def test_bad_requests_name_the_field_and_the_statuses_match_the_contract(router, tmp_path):
    running = await Running.start(topology(router, tmp_path))
    try:
        stub = running.stub

        async def code(call) -> tuple[grpc.StatusCode, str]:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            return error.value.code(), error.value.details()

        invalid = grpc.StatusCode.INVALID_ARGUMENT
        for request, field in [
            (messages_pb2.SendMessageRequest(client_message_id="k", conversation_id=AB, body=b"x"), "sender_id"),
            (messages_pb2.SendMessageRequest(sender_id="alice", client_message_id="k!", conversation_id=AB, body=b"x"), "client_message_id"),
            (messages_pb2.SendMessageRequest(sender_id="alice", client_message_id="k", conversation_id="dm:bob:alice", body=b"x"), "conversation_id"),
            (messages_pb2.SendMessageRequest(sender_id="alice", client_message_id="k", conversation_id=AB), "body"),
        ]:
            status, details = await code(stub.SendMessage(request, timeout=WAIT_S))
            assert status == invalid and details.startswith(f"{field}: "), (status, details)
        status, details = await code(stub.Acknowledge(messages_pb2.AcknowledgeRequest(
            user_id="bob", conversation_id=AB, up_to_sequence=1, state=READ), timeout=WAIT_S))
        assert status == invalid and details.startswith("up_to_sequence: ")  # beyond the last message (none yet)
        status, details = await code(stub.SyncInbox(messages_pb2.SyncInboxRequest(user_id="bob"), timeout=WAIT_S))
        assert status == invalid and details.startswith("max_messages: ")
        status, details = await code(stub.CreateGroup(messages_pb2.CreateGroupRequest(
            creator_id="alice", member_ids=[f"u{i}" for i in range(500)]), timeout=WAIT_S))
        assert status == invalid and details.startswith("member_ids: ")

        status, _ = await code(send(stub, "mallory", "k", AB))
        assert status == grpc.StatusCode.PERMISSION_DENIED
        status, _ = await code(send(stub, "alice", "k", "group:nosuchgroup"))
        assert status == grpc.StatusCode.NOT_FOUND
        status, _ = await code(stub.GetConversation(messages_pb2.GetConversationRequest(conversation_id="group:nope"), timeout=WAIT_S))
        assert status == grpc.StatusCode.NOT_FOUND
        status, _ = await code(stub.ListMessages(messages_pb2.ListMessagesRequest(user_id="mallory", conversation_id=AB), timeout=WAIT_S))
        assert status == grpc.StatusCode.PERMISSION_DENIED
        # SendMessage is the gateways' (internal): an anonymous client is refused before anything is stored.
        status, _ = await code(send(running.anonymous, "alice", "k", AB))
        assert status == grpc.StatusCode.PERMISSION_DENIED
        listed = await running.anonymous.ListMessages(messages_pb2.ListMessagesRequest(user_id="alice", conversation_id=AB),
                                                      timeout=WAIT_S)
        assert list(listed.messages) == [] and listed.last_sequence == 0  # the bad requests stored nothing
    finally:
        await running.stop()


# -- a SIGKILLed process ---------------------------------------------------------------------------------------------

class Process:
    """``casemesh serve chat-messages`` in a process of its own (no supervisor), holding the tests' secret."""

    def __init__(self, topo: Topology, folder: Path) -> None:
        self.topology = topo
        self.file = folder / "topology.yaml"
        self.file.write_text(topo.dump())
        self.log = folder / "serve.log"
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "casemesh.harness.cli", "serve", "chat-messages", "--topology", str(self.file),
                 "--no-supervise"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **serve_environment()})
        address = self.topology.endpoint("chat-messages").address
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + WAIT_S
            while True:
                assert self.process.poll() is None, f"chat-messages exited:\n{self.log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"chat-messages not SERVING:\n{self.log.read_text()[-3000:]}"
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


async def test_a_sigkill_mid_sending_loses_no_acknowledged_message_or_cursor(router, tmp_path):
    from ..caller_identity import identified_channel

    process = Process(topology(router, tmp_path / "data"), tmp_path)
    address = process.topology.endpoint("chat-messages").address
    acked: dict[str, message_pb2.ChatMessage] = {}
    await process.start()
    try:
        async with identified_channel(address) as channel:
            stub = messages_pb2_grpc.MessageServiceStub(channel)
            for r in await send_many(stub, "alice", AB, 0, 20):
                acked[r.message.message_id] = r.message
            await stub.Acknowledge(messages_pb2.AcknowledgeRequest(user_id="bob", conversation_id=AB, up_to_sequence=12,
                                                                   state=READ), timeout=WAIT_S)

            async def keep_sending(stream: int) -> None:
                for i in range(10_000):  # until the kill ends it
                    try:
                        r = await send(stub, "bob" if stream % 2 else "alice", f"k{stream}-{i}", AB, b"y")
                    except grpc.aio.AioRpcError:
                        return
                    acked[r.message.message_id] = r.message

            senders = [asyncio.create_task(keep_sending(s)) for s in range(6)]
            await wait_until(lambda: len(acked) >= 120, "100 more messages acknowledged")  # mid-sending
            process.kill()
            await asyncio.wait_for(asyncio.gather(*senders), WAIT_S)
        await process.start()
        async with identified_channel(address) as channel:
            stub = messages_pb2_grpc.MessageServiceStub(channel)
            listed, after = [], 0
            while True:
                page = await stub.ListMessages(messages_pb2.ListMessagesRequest(
                    user_id="alice", conversation_id=AB, after_sequence=after, page_size=1000), timeout=WAIT_S)
                listed += page.messages
                if not page.messages:
                    break
                after = page.messages[-1].sequence
            assert [m.sequence for m in listed] == list(range(1, len(listed) + 1))  # no gap
            by_id = {m.message_id: m for m in listed}
            assert all(by_id.get(mid) == m for mid, m in acked.items())  # every acknowledged one, unchanged
            inbox = await stub.SyncInbox(messages_pb2.SyncInboxRequest(user_id="bob", max_messages=1), timeout=WAIT_S)
            assert (inbox.cursors[0].delivered_up_to, inbox.cursors[0].read_up_to) == (12, 12)
    finally:
        process.terminate()

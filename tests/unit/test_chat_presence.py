"""chat-router's presence registry and routing, without gRPC: replace, refresh, timeout sweep (injected clock), Route."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.chat.v1 import gateway_pb2, message_pb2
from casemesh.services.chat.router.presence import PresenceRegistry
from casemesh.services.chat.router.routing import MAX_PUSHES_PER_DELIVER, Router


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_a_session_of_the_same_device_replaces_the_older_one_on_any_gateway():
    clock = Clock()
    registry = PresenceRegistry(10_000, clock)
    assert registry.register("ann", "phone", "s1", "chat-gateway-1") is None
    assert registry.register("ann", "laptop", "s2", "chat-gateway-1") is None
    replaced = registry.register("ann", "phone", "s3", "chat-gateway-2")
    assert replaced is not None and replaced.session_id == "s1" and replaced.gateway == "chat-gateway-1"
    assert registry.get("s1") is None and len(registry) == 2
    assert registry.presence("ann").devices == 2 and registry.presence("ann").online
    by_gateway = registry.sessions_of(["ann"])
    assert sorted(s.session_id for s in by_gateway["chat-gateway-2"]) == ["s3"]
    assert sorted(s.session_id for s in by_gateway["chat-gateway-1"]) == ["s2"]
    # The replaced session's own unregister (its gateway ended it) changes nothing.
    assert registry.unregister("s1") is None and len(registry) == 2


def test_presence_online_offline_and_last_seen():
    clock = Clock()
    registry = PresenceRegistry(10_000, clock)
    assert registry.presence("bob") == registry.presence("bob")
    assert not registry.presence("bob").online and registry.presence("bob").last_seen_unix_ms == 0
    registry.register("bob", "phone", "s1", "chat-gateway-1")
    clock.now += 500
    registry.refresh("chat-gateway-1", [("s1", "bob", "phone")])
    assert registry.presence("bob").last_seen_unix_ms == clock.now and registry.presence("bob").devices == 1
    clock.now += 700
    registry.unregister("s1")
    presence = registry.presence("bob")
    assert not presence.online and presence.devices == 0 and presence.last_seen_unix_ms == clock.now


def test_refresh_drops_unlisted_sessions_of_that_gateway_only_and_registers_unknown_ones_again():
    clock = Clock()
    registry = PresenceRegistry(10_000, clock)
    registry.register("ann", "phone", "a1", "chat-gateway-1")
    registry.register("bob", "phone", "b1", "chat-gateway-1")
    registry.register("cat", "phone", "c1", "chat-gateway-2")
    clock.now += 100
    outcome = registry.refresh("chat-gateway-1", [("a1", "ann", "phone"), ("d1", "dan", "tablet")])
    assert outcome.registered == 1 and [e.session_id for e in outcome.dropped] == ["b1"] and not outcome.superseded
    assert registry.get("d1") is not None and registry.get("b1") is None and registry.get("c1") is not None
    assert registry.presence("bob").last_seen_unix_ms == clock.now - 100  # last seen at its last refresh (registration)


def test_after_a_router_restart_refreshes_rebuild_the_registry_and_never_displace_a_registered_session():
    registry = PresenceRegistry(10_000, Clock())  # the restarted router: empty
    registry.register("ann", "phone", "new", "chat-gateway-2")  # the device reconnected elsewhere meanwhile
    outcome = registry.refresh("chat-gateway-1", [("old", "ann", "phone"), ("b1", "bob", "phone")])
    assert outcome.registered == 1
    assert [(e.session_id, kept) for e, kept in outcome.superseded] == [("old", "new")]
    assert registry.get("old") is None and registry.get("new") is not None and registry.get("b1") is not None


def test_the_timeout_sweep_drops_sessions_of_a_gateway_that_stopped_refreshing():
    clock = Clock()
    registry = PresenceRegistry(10_000, clock)
    registry.register("ann", "phone", "a1", "chat-gateway-1")
    registry.register("bob", "phone", "b1", "chat-gateway-2")
    for _ in range(3):  # gateway 2 keeps refreshing, gateway 1 died
        clock.now += 4_000
        registry.refresh("chat-gateway-2", [("b1", "bob", "phone")])
        registry.expire()
    assert registry.get("a1") is None and registry.get("b1") is not None
    ann = registry.presence("ann")
    assert not ann.online and ann.last_seen_unix_ms == 1_000_000  # its last refresh: the registration
    assert registry.presence("bob").online
    assert registry.expire() == []
    with pytest.raises(ValueError):
        PresenceRegistry(0)


def _message(sequence: int = 1) -> message_pb2.ChatMessage:
    return message_pb2.ChatMessage(conversation_id="dm:ann:bob", sequence=sequence, message_id="00000000000000aa",
                                   sender_id="ann", body=b"hi")


async def test_route_makes_one_deliver_call_per_gateway_and_reports_offline_users():
    registry = PresenceRegistry(10_000, Clock())
    registry.register("ann", "phone", "a1", "chat-gateway-1")
    registry.register("ann", "laptop", "a2", "chat-gateway-2")
    registry.register("bob", "phone", "b1", "chat-gateway-1")
    registry.register("cat", "phone", "c1", "chat-gateway-2")
    calls: list[tuple[str, list[str]]] = []

    async def deliver(gateway: str, request: gateway_pb2.DeliverRequest) -> gateway_pb2.DeliverResponse:
        calls.append((gateway, sorted(p.session_id for p in request.pushes)))
        if gateway == "chat-gateway-2":
            raise ConnectionError("gateway 2 is down")
        return gateway_pb2.DeliverResponse(missing_session_ids=["b1"])

    outcome = await Router(registry, deliver).route(["ann", "bob", "cat", "dan", "ann"], message=_message())
    assert sorted(calls) == [("chat-gateway-1", ["a1", "b1"]), ("chat-gateway-2", ["a2", "c1"])]
    assert outcome.delivered_sessions == 1  # a1
    assert outcome.offline_user_ids == ["bob", "cat", "dan"]  # b1 missing, c1 on a failed gateway, dan never connected
    assert registry.get("b1") is None  # a missing session is dropped
    assert registry.get("c1") is not None  # a failed gateway's sessions stay until their refreshes stop


async def test_route_splits_large_fan_outs_into_deliver_calls_of_at_most_1000_pushes():
    registry = PresenceRegistry(10_000, Clock())
    users = [f"u{i}" for i in range(500)]
    for u in users:
        for d in range(3):
            registry.register(u, f"d{d}", f"{u}-d{d}", "chat-gateway-1")
    sizes = []

    async def deliver(gateway, request):
        sizes.append(len(request.pushes))
        await asyncio.sleep(0)
        return gateway_pb2.DeliverResponse()

    receipt = message_pb2.Receipt(conversation_id="group:g", user_id="u1", state=message_pb2.RECEIPT_STATE_READ, up_to_sequence=3)
    outcome = await Router(registry, deliver).route(users, receipt=receipt)
    assert sorted(sizes) == [500, MAX_PUSHES_PER_DELIVER] and outcome.delivered_sessions == 1500 and not outcome.offline_user_ids


async def test_a_replaced_notice_names_the_new_session():
    seen = []

    async def deliver(gateway, request):
        seen.append((gateway, request.pushes[0].session_id, request.pushes[0].replaced.by_session_id))
        return gateway_pb2.DeliverResponse()

    registry = PresenceRegistry(10_000, Clock())
    registry.register("ann", "phone", "s1", "chat-gateway-1")
    old = registry.register("ann", "phone", "s2", "chat-gateway-2")
    assert await Router(registry, deliver).replaced(old, "s2")
    assert seen == [("chat-gateway-1", "s1", "s2")]

"""The hotel room inventory's servicer through real gRPC: served by the runtime (DEFINITION, its settings and data
folder), called as ``hotel-booking`` for the internal RPCs and anonymously for the public ones; every status code of
protos/casemesh/hotel/v1/inventory.proto; many concurrent clients racing for the last rooms of popular nights in each
lock mode never oversell (ABORTED only in the optimistic mode) and the audit finds nothing; an inventory whose file is
gone answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import grpc
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.services.hotel.inventory.inventory import RoomInventory
from casemesh.services.hotel.inventory.service import DEFINITION, NAME, RoomInventoryServicer
from casemesh.services.hotel.inventory.store import FILE_NAME, InventoryStore
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
BOOKING = "hotel-booking"


def _hold_id(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "hold_" + "".join(alphabet[(n >> (5 * i)) % 32] for i in reversed(range(24)))


def _room_type(room_type_id: str = "double", rooms: int = 3, name: str = "Double") -> inventory_pb2.AddRoomTypeRequest:
    return inventory_pb2.AddRoomTypeRequest(room_type=hotel_pb2.RoomType(
        hotel_id="grand", room_type_id=room_type_id, name=name, rooms=rooms,
        nightly_rate=money_pb2.Money(currency_code="EUR", amount_minor=15_000)))


def _hold(n: int, check_in: str = "2030-06-01", nights: int = 2, rooms: int = 1, ttl_ms: int = 0,
          room_type_id: str = "double") -> inventory_pb2.HoldRoomsRequest:
    return inventory_pb2.HoldRoomsRequest(hold_id=_hold_id(n), hotel_id="grand", room_type_id=room_type_id,
                                          check_in=check_in, nights=nights, rooms=rooms, ttl_ms=ttl_ms)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "hotel-inventory" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.hotel.v1.RoomInventoryService",)
    assert DEFINITION.access.public == {"AddRoomType", "GetAvailability", "GetHold", "Audit"}
    assert dict(DEFINITION.access.internal) == {"HoldRooms": (BOOKING,), "ConfirmHold": (BOOKING,),
                                                "ReleaseHold": (BOOKING,)}


async def test_the_inventory_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"hold_ttl_s": 300}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    booking = RuntimeContext(topology, secret=TEST_SECRET).for_service(BOOKING)
    try:
        inventory = inventory_pb2_grpc.RoomInventoryServiceStub(booking.channel(NAME))
        public = inventory_pb2_grpc.RoomInventoryServiceStub(running.anonymous_channel(NAME))
        assert (tmp_path / NAME / FILE_NAME).exists()
        added = (await public.AddRoomType(_room_type(), timeout=WAIT_S)).room_type
        assert added == _room_type().room_type
        assert (await public.AddRoomType(_room_type(), timeout=WAIT_S)).room_type == added
        code, _ = await _code(public.AddRoomType(_room_type(rooms=4), timeout=WAIT_S))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        for request, field in ((_room_type(room_type_id=""), "room_type.room_type_id"),
                               (_room_type(name=""), "room_type.name"), (_room_type(rooms=0), "room_type.rooms"),
                               (inventory_pb2.AddRoomTypeRequest(), "room_type.hotel_id")):
            code, details = await _code(public.AddRoomType(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details

        availability = await public.GetAvailability(inventory_pb2.GetAvailabilityRequest(
            hotel_id="grand", room_type_id="double", check_in="2030-06-01", nights=2), timeout=WAIT_S)
        assert availability.room_type == added
        assert [(n.night, n.sellable, n.booked, n.held, n.available, n.version) for n in availability.nights] == [
            ("2030-06-01", 3, 0, 0, 3, 0), ("2030-06-02", 3, 0, 0, 3, 0)]
        code, _ = await _code(public.GetAvailability(inventory_pb2.GetAvailabilityRequest(
            hotel_id="grand", room_type_id="suite", check_in="2030-06-01", nights=2), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(public.GetAvailability(inventory_pb2.GetAvailabilityRequest(
            hotel_id="grand", room_type_id="double", check_in="2030-13-01", nights=2), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("check_in:")

        hold = (await inventory.HoldRooms(_hold(1, rooms=2), timeout=WAIT_S)).hold
        assert (hold.hold_id, hold.check_in, hold.nights, hold.rooms, hold.status) == (
            _hold_id(1), "2030-06-01", 2, 2, hotel_pb2.HOLD_STATUS_HELD)
        assert hold.expires_at_unix_ms > 0
        assert (await inventory.HoldRooms(_hold(1, rooms=2), timeout=WAIT_S)).hold == hold
        code, details = await _code(inventory.HoldRooms(_hold(1, rooms=1), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("key_reused:")
        code, details = await _code(inventory.HoldRooms(_hold(2, rooms=2), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details == (
            "no_availability: 2030-06-01 has 1 available, 2 asked")
        code, _ = await _code(inventory.HoldRooms(_hold(2, room_type_id="suite"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        for request, field in ((_hold(2, ttl_ms=5), "ttl_ms"), (_hold(2, rooms=11), "rooms"),
                               (_hold(2, nights=31), "nights"), (_hold(2, check_in="x"), "check_in"),
                               (inventory_pb2.HoldRoomsRequest(), "hold_id")):
            code, details = await _code(inventory.HoldRooms(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        assert (await public.GetHold(inventory_pb2.GetHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S)).hold == hold

        confirmed = (await inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(1)),
                                                 timeout=WAIT_S)).hold
        assert (confirmed.status, confirmed.expires_at_unix_ms) == (hotel_pb2.HOLD_STATUS_CONFIRMED, 0)
        assert (await inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(1)),
                                            timeout=WAIT_S)).hold == confirmed
        await inventory.HoldRooms(_hold(3), timeout=WAIT_S)
        released = (await inventory.ReleaseHold(inventory_pb2.ReleaseHoldRequest(hold_id=_hold_id(3)),
                                                timeout=WAIT_S)).hold
        assert released.status == hotel_pb2.HOLD_STATUS_RELEASED
        assert (await inventory.ReleaseHold(inventory_pb2.ReleaseHoldRequest(hold_id=_hold_id(3)),
                                            timeout=WAIT_S)).hold == released
        code, details = await _code(inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(3)),
                                                          timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("hold_released:")
        for call in (inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(9)), timeout=WAIT_S),
                     inventory.ReleaseHold(inventory_pb2.ReleaseHoldRequest(hold_id=_hold_id(9)), timeout=WAIT_S),
                     public.GetHold(inventory_pb2.GetHoldRequest(hold_id=_hold_id(9)), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.NOT_FOUND
        for call in (inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id="x"), timeout=WAIT_S),
                     inventory.ReleaseHold(inventory_pb2.ReleaseHoldRequest(), timeout=WAIT_S),
                     public.GetHold(inventory_pb2.GetHoldRequest(hold_id="hold_"), timeout=WAIT_S)):
            code, details = await _code(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("hold_id:")

        # A hold of one second expires: the sweeper (every second by default) gives its room back.
        await inventory.HoldRooms(_hold(4, check_in="2030-07-01", nights=1, ttl_ms=1_000), timeout=WAIT_S)
        for _ in range(200):
            if (await public.GetHold(inventory_pb2.GetHoldRequest(hold_id=_hold_id(4)), timeout=WAIT_S)
                    ).hold.status == hotel_pb2.HOLD_STATUS_EXPIRED:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the hold of one second never expired")
        code, details = await _code(inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(4)),
                                                          timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("hold_expired:")

        report = await public.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert (report.room_types, report.room_nights, report.booked_room_nights, report.held_room_nights,
                report.overbooked_room_nights, list(report.violations)) == (1, 2, 4, 0, 0, [])

        for call in (public.HoldRooms(_hold(5), timeout=WAIT_S),
                     public.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S),
                     public.ReleaseHold(inventory_pb2.ReleaseHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED
        assert REGISTRY.get_sample_value("casemesh_hotel_inventory_lock_mode", {"lock_mode": "pessimistic"}) == 1
    finally:
        await booking.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
async def test_concurrent_clients_racing_for_popular_nights_never_oversell(tmp_path, mode):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"lock_mode": mode}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    booking = RuntimeContext(topology, secret=TEST_SECRET).for_service(BOOKING)
    try:
        inventory = inventory_pb2_grpc.RoomInventoryServiceStub(booking.channel(NAME))
        await inventory.AddRoomType(_room_type(rooms=4), timeout=WAIT_S)
        rng = random.Random(3)
        codes: list[grpc.StatusCode] = []

        async def guest(n: int) -> hotel_pb2.Hold | None:
            request = _hold(n, check_in=f"2030-06-{rng.randint(1, 5):02d}", nights=rng.randint(1, 3),
                            rooms=rng.randint(1, 2))
            for _ in range(100):
                try:
                    return (await inventory.HoldRooms(request, timeout=WAIT_S)).hold
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        assert error.details().startswith("no_availability:"), error.details()
                        return None
                    assert error.code() == grpc.StatusCode.ABORTED, error
            raise AssertionError(f"hold {n} was ABORTED 100 times")

        holds = [h for h in await asyncio.gather(*(guest(n) for n in range(60))) if h is not None]
        assert holds
        confirms = await asyncio.gather(*(inventory.ConfirmHold(inventory_pb2.ConfirmHoldRequest(
            hold_id=h.hold_id), timeout=WAIT_S) for h in holds[::2]))
        assert all(c.hold.status == hotel_pb2.HOLD_STATUS_CONFIRMED for c in confirms)
        if mode == "pessimistic":
            assert grpc.StatusCode.ABORTED not in codes
        availability = await inventory.GetAvailability(inventory_pb2.GetAvailabilityRequest(
            hotel_id="grand", room_type_id="double", check_in="2030-06-01", nights=7), timeout=WAIT_S)
        assert all(n.booked + n.held <= n.sellable == 4 for n in availability.nights)
        assert sum(n.booked + n.held for n in availability.nights) == sum(h.rooms * h.nights for h in holds)
        report = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not report.violations and report.overbooked_room_nights == 0
    finally:
        await booking.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_an_inventory_whose_file_is_gone_answers_unavailable(tmp_path):
    inventory = RoomInventory(InventoryStore(tmp_path / FILE_NAME))
    await inventory.start()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    inventory_pb2_grpc.add_RoomInventoryServiceServicer_to_server(RoomInventoryServicer(inventory), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = inventory_pb2_grpc.RoomInventoryServiceStub(channel)
    try:
        await stub.AddRoomType(_room_type(), timeout=WAIT_S)
        await stub.HoldRooms(_hold(1), timeout=WAIT_S)
        await inventory.close()  # the disk is gone
        for call in (stub.AddRoomType(_room_type("suite"), timeout=WAIT_S),
                     stub.HoldRooms(_hold(2), timeout=WAIT_S),
                     stub.ConfirmHold(inventory_pb2.ConfirmHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S),
                     stub.ReleaseHold(inventory_pb2.ReleaseHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S),
                     stub.GetHold(inventory_pb2.GetHoldRequest(hold_id=_hold_id(7)), timeout=WAIT_S),
                     stub.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE
        nights = (await stub.GetAvailability(inventory_pb2.GetAvailabilityRequest(
            hotel_id="grand", room_type_id="double", check_in="2030-06-01", nights=2), timeout=WAIT_S)).nights
        assert [(n.held, n.version) for n in nights] == [(1, 1), (1, 1)]  # nothing applied
        assert (await stub.GetHold(inventory_pb2.GetHoldRequest(hold_id=_hold_id(1)), timeout=WAIT_S)
                ).hold.status == hotel_pb2.HOLD_STATUS_HELD
    finally:
        await channel.close()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await inventory.close()

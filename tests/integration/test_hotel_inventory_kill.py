"""The hotel room inventory through real gRPC while it is SIGKILLed mid-run and restarted, in each lock mode: twenty
guests (as the booking service, the inventory's internal caller) hold overlapping stays of a few popular nights in a
hotel of few rooms, confirm most holds, release some, cancel some bookings, and retry every ABORTED, UNAVAILABLE or
timed-out call with the same hold ID; afterwards nothing is oversold and nothing acknowledged was lost.

CASE-STUDY.md point 5 for the hotel reservation (seed 001 #20, shared/seeds/001_58dfc580020147d2.txt line 23:
"Pessimistic locking, overbooking prevention"). Afterwards, read through the public API only: Audit finds no
violation (every night's counts are the sums of its holds, none beyond its sellable rooms); no room-night has more
rooms booked and held than it sells; every hold a guest saw CONFIRMED (and did not cancel) is CONFIRMED, every one a
guest saw RELEASED is RELEASED; nothing is left held; and the rooms booked are exactly those of the confirmed holds.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter

import grpc
import pytest

from casemesh.common.v1 import money_pb2
from casemesh.harness.mesh import Mesh
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.services.runtime.identity import service_identity

from ..caller_identity import identified_channel
from .waiting import eventually

NAME = "hotel-inventory"
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
ROOM_TYPES = {"double": 6, "twin": 4, "suite": 2}
CLIENTS, STAYS_EACH = 20, 12
POPULAR = [f"2030-07-{day:02d}" for day in range(10, 17)]


def _hold_id(client: int, n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return f"hold_{alphabet[client]}{alphabet[n]}" + "a" * 22


async def _retried(call, request, rng: random.Random, retried: Counter[grpc.StatusCode]):
    """Send ``request`` until it has a final answer, the same request (the same hold ID) each time; the retries are
    counted by status code in ``retried``."""
    for attempt in range(300):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            retried[error.code()] += 1
            await asyncio.sleep(rng.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))
    raise AssertionError(f"no final answer for {request}")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
async def test_no_room_night_is_oversold_or_lost_across_an_inventory_kill(tmp_path, mode):
    async with Mesh([NAME], tmp_path, restart=None, settings={NAME: {"lock_mode": mode}}) as mesh:
        channel = identified_channel(mesh.topology.endpoint(NAME).address, mesh.secret,
                                     identity=service_identity("hotel-booking"), options=FAST_RECONNECT)
        inventory = inventory_pb2_grpc.RoomInventoryServiceStub(channel)
        confirmed: set[str] = set()
        released: set[str] = set()
        refused: list[str] = []
        retried: Counter[grpc.StatusCode] = Counter()
        answered: list[int] = []
        try:
            for room_type, rooms in ROOM_TYPES.items():
                await inventory.AddRoomType(inventory_pb2.AddRoomTypeRequest(room_type=hotel_pb2.RoomType(
                    hotel_id="seaside", room_type_id=room_type, name=room_type.title(), rooms=rooms,
                    nightly_rate=money_pb2.Money(currency_code="EUR", amount_minor=20_000))), timeout=10)

            async def guest(client: int) -> None:
                rng = random.Random(client)
                for n in range(STAYS_EACH):
                    hold_id = _hold_id(client, n)
                    request = inventory_pb2.HoldRoomsRequest(
                        hold_id=hold_id, hotel_id="seaside", room_type_id=rng.choice(sorted(ROOM_TYPES)),
                        check_in=rng.choice(POPULAR), nights=rng.randint(1, 3), rooms=rng.randint(1, 2))
                    try:
                        hold = (await _retried(inventory.HoldRooms, request, rng, retried)).hold
                    except grpc.aio.AioRpcError as error:
                        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                        assert error.details().startswith("no_availability:"), error.details()
                        refused.append(hold_id)
                        answered.append(1)
                        continue
                    assert hold.status == hotel_pb2.HOLD_STATUS_HELD, hold
                    if rng.random() < 0.8:
                        answer = await _retried(inventory.ConfirmHold, inventory_pb2.ConfirmHoldRequest(
                            hold_id=hold_id), rng, retried)
                        assert answer.hold.status == hotel_pb2.HOLD_STATUS_CONFIRMED, answer
                        confirmed.add(hold_id)
                        if rng.random() < 0.5:  # a cancellation
                            answer = await _retried(inventory.ReleaseHold, inventory_pb2.ReleaseHoldRequest(
                                hold_id=hold_id), rng, retried)
                            assert answer.hold.status == hotel_pb2.HOLD_STATUS_RELEASED, answer
                            confirmed.discard(hold_id)
                            released.add(hold_id)
                    else:  # a failed payment
                        answer = await _retried(inventory.ReleaseHold, inventory_pb2.ReleaseHoldRequest(
                            hold_id=hold_id), rng, retried)
                        assert answer.hold.status == hotel_pb2.HOLD_STATUS_RELEASED, answer
                        released.add(hold_id)
                    answered.append(1)
                    await asyncio.sleep(rng.uniform(0, 0.02))

            clients = [asyncio.create_task(guest(client)) for client in range(CLIENTS)]
            await eventually(lambda: len(answered) >= 80, "80 stays answered before the kill", 60)
            assert mesh.kill(NAME, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.2)
            await mesh.start_services([NAME])
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            assert len(answered) == CLIENTS * STAYS_EACH
            assert len(confirmed) > 20 and refused, (len(confirmed), len(refused))

            report = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=30)
            assert not report.violations, list(report.violations)
            assert report.room_types == len(ROOM_TYPES) and report.held_room_nights == 0
            assert report.overbooked_room_nights == 0  # no overbooking allowance: never more than the rooms
            booked = 0
            for room_type, rooms in ROOM_TYPES.items():
                nights = (await inventory.GetAvailability(inventory_pb2.GetAvailabilityRequest(
                    hotel_id="seaside", room_type_id=room_type, check_in=POPULAR[0], nights=len(POPULAR) + 2),
                    timeout=10)).nights
                assert all(n.sellable == rooms and 0 <= n.booked + n.held <= n.sellable for n in nights), nights
                booked += sum(n.booked for n in nights)
            holds = {hold_id: (await inventory.GetHold(inventory_pb2.GetHoldRequest(hold_id=hold_id),
                                                       timeout=10)).hold for hold_id in confirmed | released}
            assert all(holds[h].status == hotel_pb2.HOLD_STATUS_CONFIRMED for h in confirmed)
            assert all(holds[h].status == hotel_pb2.HOLD_STATUS_RELEASED for h in released)
            assert booked == report.booked_room_nights == sum(holds[h].rooms * holds[h].nights for h in confirmed)
            for hold_id in refused:  # a refused hold holds nothing, and was never stored
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await inventory.GetHold(inventory_pb2.GetHoldRequest(hold_id=hold_id), timeout=10)
                assert error.value.code() == grpc.StatusCode.NOT_FOUND
            if mode == "pessimistic":
                assert not retried[grpc.StatusCode.ABORTED], retried
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            await channel.close()

"""hotel-booking's calls to ``casemesh.hotel.v1.RoomInventoryService`` (``hotel-inventory``), as the saga sees them.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | Pessimistic locking, overbooking
prevention"). :class:`InventoryClient` wraps ``inventory_pb2_grpc.RoomInventoryServiceStub`` over the runtime's
channel to ``hotel-inventory`` (which carries this service's identity: HoldRooms, ConfirmHold and ReleaseHold are
internal to ``hotel-booking``); every call has the deadline ``inventory_timeout_s`` (:func:`.calls.call`). Its
answers, as protos/casemesh/hotel/v1/inventory.proto defines them, become:

- GetAvailability: NOT_FOUND → :class:`~services.runtime.errors.NotFound` naming ``room_type_id``;
- HoldRooms: ABORTED → :class:`VersionConflict` (the optimistic lock mode lost a version race: nothing held, retry);
  FAILED_PRECONDITION ``no_availability`` → :class:`NoAvailability`; NOT_FOUND → ``NotFound``;
- ConfirmHold: FAILED_PRECONDITION ``hold_expired`` or ``hold_released``, or NOT_FOUND → :class:`HoldLost` (nothing is
  held for the booking any more);
- ReleaseHold: NOT_FOUND → ``None`` (nothing was held: released already, as far as the booking is concerned);
- any other refusal → :meth:`.calls.Refused.domain_error` (ABORTED outside HoldRooms:
  :class:`.calls.DependencyUnavailable`); no answer → ``DependencyUnavailable``.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2, inventory_pb2_grpc

from ...runtime.errors import NotFound
from ..contract import HOLD_EXPIRED, HOLD_RELEASED, NO_AVAILABILITY, failed_precondition_reason
from .calls import Refused, call


class VersionConflict(Exception):
    """HoldRooms was ABORTED: another hold changed one of the nights between this hold's check and its write (the
    optimistic lock mode); nothing was held."""


class NoAvailability(Exception):
    """HoldRooms found a night with fewer rooms available than asked for; nothing was held."""


class HoldLost(Exception):
    """ConfirmHold found the hold expired, released or unknown: nothing is held for the booking."""


class Inventory(Protocol):
    """The RoomInventoryService calls the saga makes (errors as the module docstring says)."""

    async def availability(self, hotel_id: str, room_type_id: str, check_in: str,
                           nights: int) -> inventory_pb2.GetAvailabilityResponse: ...

    async def hold(self, hold_id: str, hotel_id: str, room_type_id: str, check_in: str, nights: int, rooms: int,
                   ttl_ms: int) -> hotel_pb2.Hold: ...

    async def confirm(self, hold_id: str) -> hotel_pb2.Hold: ...

    async def release(self, hold_id: str) -> hotel_pb2.Hold | None: ...


class InventoryClient:
    """:class:`Inventory` over ``inventory_pb2_grpc.RoomInventoryServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: inventory_pb2_grpc.RoomInventoryServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def availability(self, hotel_id: str, room_type_id: str, check_in: str,
                           nights: int) -> inventory_pb2.GetAvailabilityResponse:
        try:
            return await call("GetAvailability", self._stub.GetAvailability, inventory_pb2.GetAvailabilityRequest(
                hotel_id=hotel_id, room_type_id=room_type_id, check_in=check_in, nights=nights), self._timeout_s)
        except Refused as refusal:
            if refusal.code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"room_type_id: no room type {room_type_id} in hotel {hotel_id}") from None
            raise refusal.domain_error() from None

    async def hold(self, hold_id: str, hotel_id: str, room_type_id: str, check_in: str, nights: int, rooms: int,
                   ttl_ms: int) -> hotel_pb2.Hold:
        try:
            return (await call("HoldRooms", self._stub.HoldRooms, inventory_pb2.HoldRoomsRequest(
                hold_id=hold_id, hotel_id=hotel_id, room_type_id=room_type_id, check_in=check_in, nights=nights,
                rooms=rooms, ttl_ms=ttl_ms), self._timeout_s)).hold
        except Refused as refusal:
            if refusal.code == grpc.StatusCode.ABORTED:
                raise VersionConflict(refusal.details) from None
            if refusal.code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"room_type_id: no room type {room_type_id} in hotel {hotel_id}") from None
            if (refusal.code == grpc.StatusCode.FAILED_PRECONDITION
                    and failed_precondition_reason(refusal.details) == NO_AVAILABILITY):
                raise NoAvailability(refusal.details) from None
            raise refusal.domain_error() from None

    async def confirm(self, hold_id: str) -> hotel_pb2.Hold:
        try:
            return (await call("ConfirmHold", self._stub.ConfirmHold,
                               inventory_pb2.ConfirmHoldRequest(hold_id=hold_id), self._timeout_s)).hold
        except Refused as refusal:
            if refusal.code == grpc.StatusCode.NOT_FOUND or (
                    refusal.code == grpc.StatusCode.FAILED_PRECONDITION
                    and failed_precondition_reason(refusal.details) in (HOLD_EXPIRED, HOLD_RELEASED)):
                raise HoldLost(refusal.details) from None
            raise refusal.domain_error() from None

    async def release(self, hold_id: str) -> hotel_pb2.Hold | None:
        try:
            return (await call("ReleaseHold", self._stub.ReleaseHold,
                               inventory_pb2.ReleaseHoldRequest(hold_id=hold_id), self._timeout_s)).hold
        except Refused as refusal:
            if refusal.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise refusal.domain_error() from None

"""``casemesh.hotel.v1.RoomInventoryService`` (topology name ``hotel-inventory``): rooms per night and holds on them.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). A thin servicer over
:class:`.inventory.RoomInventory` (isolation :mod:`.locking`, the durable log :mod:`.store`, hold expiry
:mod:`.expiry`, :mod:`.audit`); input rules in :mod:`.validation`. Calls no other service.

RPCs and status codes (protos/casemesh/hotel/v1/inventory.proto):

- AddRoomType (public: the hotel's): INVALID_ARGUMENT naming ``room_type.hotel_id``, ``room_type.room_type_id``,
  ``room_type.name``, ``room_type.rooms``, ``room_type.nightly_rate.currency_code`` or
  ``room_type.nightly_rate.amount_minor``; ALREADY_EXISTS when it exists with other fields; UNAVAILABLE when the log
  cannot be written.
- GetAvailability (public): INVALID_ARGUMENT naming ``hotel_id``, ``room_type_id``, ``check_in`` or ``nights``;
  NOT_FOUND for an unknown room type.
- HoldRooms (internal, caller ``hotel-booking``): INVALID_ARGUMENT naming ``hold_id``, ``hotel_id``,
  ``room_type_id``, ``check_in``, ``nights``, ``rooms`` or ``ttl_ms``; NOT_FOUND for an unknown room type;
  FAILED_PRECONDITION ``no_availability: <night> has N available, M asked`` or ``key_reused: ...`` (the ID was used for
  another stay); ABORTED (optimistic lock mode: a night's version moved between the check and the write; nothing held,
  retry); UNAVAILABLE when the log cannot be written (nothing held).
- ConfirmHold (internal, caller ``hotel-booking``): INVALID_ARGUMENT naming ``hold_id``; NOT_FOUND;
  FAILED_PRECONDITION ``hold_expired: ...`` or ``hold_released: ...``; UNAVAILABLE.
- ReleaseHold (internal, caller ``hotel-booking``): INVALID_ARGUMENT naming ``hold_id``; NOT_FOUND; UNAVAILABLE.
- GetHold (public): INVALID_ARGUMENT naming ``hold_id``; NOT_FOUND.
- Audit (public): none (UNAVAILABLE only when the file cannot be read).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.InventorySettings` (A/B switch ``lock_mode``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars

import grpc
from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2, inventory_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .expiry import run_sweeper
from .inventory import NightView, RoomInventory
from .records import HoldRecord, RoomTypeRecord
from .settings import InventorySettings
from .store import FILE_NAME, InventoryStore

NAME = "hotel-inventory"
BOOKING = "hotel-booking"
INVENTORY_FULL_NAME = inventory_pb2.DESCRIPTOR.services_by_name["RoomInventoryService"].full_name
#: Methods anyone may call (the hotels' extranet, the harness, guests browsing).
PUBLIC_METHODS = frozenset({"AddRoomType", "GetAvailability", "GetHold", "Audit"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"HoldRooms": (BOOKING,), "ConfirmHold": (BOOKING,), "ReleaseHold": (BOOKING,)}


def room_type_message(record: RoomTypeRecord) -> hotel_pb2.RoomType:
    return hotel_pb2.RoomType(hotel_id=record.hotel_id, room_type_id=record.room_type_id, name=record.name,
                              rooms=record.rooms, nightly_rate=money_pb2.Money(currency_code=record.currency_code,
                                                                               amount_minor=record.rate_minor))


def night_message(view: NightView) -> hotel_pb2.NightAvailability:
    return hotel_pb2.NightAvailability(night=view.night.isoformat(), sellable=view.sellable, booked=view.booked,
                                       held=view.held, available=view.available, version=view.version)


def hold_message(hold: HoldRecord) -> hotel_pb2.Hold:
    stay = hold.stay
    return hotel_pb2.Hold(hold_id=hold.hold_id, hotel_id=stay.hotel_id, room_type_id=stay.room_type_id,
                          check_in=stay.check_in.isoformat(), nights=stay.nights, rooms=stay.rooms,
                          status=hold.status, expires_at_unix_ms=hold.expires_at_unix_ms)


class RoomInventoryServicer(inventory_pb2_grpc.RoomInventoryServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.inventory.RoomInventory`."""

    def __init__(self, inventory: RoomInventory) -> None:
        self._inventory = inventory

    async def AddRoomType(self, request: inventory_pb2.AddRoomTypeRequest,
                          context: grpc.aio.ServicerContext) -> inventory_pb2.AddRoomTypeResponse:
        record = await self._inventory.add_room_type(validation.add_room_type(request))
        return inventory_pb2.AddRoomTypeResponse(room_type=room_type_message(record))

    async def GetAvailability(self, request: inventory_pb2.GetAvailabilityRequest,
                              context: grpc.aio.ServicerContext) -> inventory_pb2.GetAvailabilityResponse:
        query = validation.availability(request)
        record, nights = self._inventory.availability(query.hotel_id, query.room_type_id, query.check_in,
                                                      query.nights)
        return inventory_pb2.GetAvailabilityResponse(room_type=room_type_message(record),
                                                     nights=[night_message(n) for n in nights])

    async def HoldRooms(self, request: inventory_pb2.HoldRoomsRequest,
                        context: grpc.aio.ServicerContext) -> inventory_pb2.HoldRoomsResponse:
        hold = await self._inventory.hold(validation.hold_rooms(request))
        return inventory_pb2.HoldRoomsResponse(hold=hold_message(hold))

    async def ConfirmHold(self, request: inventory_pb2.ConfirmHoldRequest,
                          context: grpc.aio.ServicerContext) -> inventory_pb2.ConfirmHoldResponse:
        hold = await self._inventory.confirm(validation.hold_id(request.hold_id))
        return inventory_pb2.ConfirmHoldResponse(hold=hold_message(hold))

    async def ReleaseHold(self, request: inventory_pb2.ReleaseHoldRequest,
                          context: grpc.aio.ServicerContext) -> inventory_pb2.ReleaseHoldResponse:
        hold = await self._inventory.release(validation.hold_id(request.hold_id))
        return inventory_pb2.ReleaseHoldResponse(hold=hold_message(hold))

    async def GetHold(self, request: inventory_pb2.GetHoldRequest,
                      context: grpc.aio.ServicerContext) -> inventory_pb2.GetHoldResponse:
        hold = await self._inventory.get_hold(validation.hold_id(request.hold_id))
        return inventory_pb2.GetHoldResponse(hold=hold_message(hold))

    async def Audit(self, request: inventory_pb2.AuditRequest,
                    context: grpc.aio.ServicerContext) -> inventory_pb2.AuditResponse:
        report = await self._inventory.audit()
        return inventory_pb2.AuditResponse(
            room_types=report.room_types, room_nights=report.room_nights,
            booked_room_nights=report.booked_room_nights, held_room_nights=report.held_room_nights,
            overbooked_room_nights=report.overbooked_room_nights, violations=report.violations)


class InventoryComponent:
    """The servicer over the inventory and its file (``DATA_DIR/hotel-inventory/inventory.sqlite3``), and the hold
    expiry sweeper."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, InventorySettings)
        store = InventoryStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes)
        self.inventory = RoomInventory(store, self.settings)
        self._sweeper: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        inventory_pb2_grpc.add_RoomInventoryServiceServicer_to_server(RoomInventoryServicer(self.inventory), server)

    async def start(self) -> None:
        await self.inventory.start()
        self._sweeper = asyncio.create_task(run_sweeper(self.inventory.expire_due, self.settings.sweep_interval_ms),
                                            name=f"{NAME}-sweeper", context=contextvars.Context())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.inventory.close()


async def build(context: RuntimeContext) -> InventoryComponent:
    return InventoryComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(INVENTORY_FULL_NAME,), dependencies=(), build=build, settings_model=InventorySettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)

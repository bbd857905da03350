"""``casemesh.hotel.v1.BookingService`` (topology name ``hotel-booking``).

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). A thin servicer over the domain,
:class:`.saga.BookingSaga` (idempotency keys and the saga, each step written durably before the next, its
compensations; the durable records :mod:`.store`; the background recovery :mod:`.recovery`). Calls out to
``hotel-inventory`` (GetAvailability, and HoldRooms, ConfirmHold, ReleaseHold, internal to this service's identity,
which the runtime's channel carries; :mod:`.inventory`, deadline ``inventory_timeout_s``) and ``payments-gateway``
(Authorize without capture, Capture, Void, as merchant ``contract.MERCHANT_ID``; :mod:`.payments`, deadline
``gateway_timeout_s``).

RPCs and status codes (protos/casemesh/hotel/v1/booking.proto), all public:

- CreateBooking: INVALID_ARGUMENT naming ``idempotency_key``, ``guest_id``, ``hotel_id``, ``room_type_id``,
  ``check_in``, ``nights``, ``rooms`` or ``card_token``; NOT_FOUND (the room type); FAILED_PRECONDITION
  ``key_reused: ...``; ABORTED while a call with the key is in flight; UNAVAILABLE when a step could not reach its
  service (the booking stays PENDING: retry with the same key). A refusal is an answer: FAILED with its reason.
- GetBooking: INVALID_ARGUMENT naming ``booking_id``; NOT_FOUND; UNAVAILABLE (the store).
- CancelBooking: INVALID_ARGUMENT naming ``booking_id``; NOT_FOUND; FAILED_PRECONDITION (not CONFIRMED);
  UNAVAILABLE (retry).
- CheckIn: INVALID_ARGUMENT naming ``booking_id``; NOT_FOUND; FAILED_PRECONDITION (not CONFIRMED, or the capture
  refused); UNAVAILABLE (retry).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.BookingSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc
from casemesh.hotel.v1 import booking_pb2, booking_pb2_grpc, inventory_pb2_grpc
from casemesh.payments.v1 import gateway_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .ids import ID_KEY_PURPOSE
from .inventory import InventoryClient
from .payments import GatewayClient
from .recovery import Recovery
from .saga import BookingSaga
from .settings import BookingSettings
from .store import BookingStore

log = logging.getLogger("casemesh.hotel.booking.service")

NAME = "hotel-booking"
INVENTORY = "hotel-inventory"
GATEWAY = "payments-gateway"
FULL_NAME = booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name
#: The service's SQLite file, under DATA_DIR/hotel-booking/.
DB_FILE = "bookings.sqlite3"
#: Every method: guests (their apps, the hotel's front desk) call them.
PUBLIC_METHODS = frozenset({"CreateBooking", "GetBooking", "CancelBooking", "CheckIn"})


class BookingServicer(booking_pb2_grpc.BookingServiceServicer):
    """Calls :class:`.saga.BookingSaga` (which validates each request: :mod:`.validation`)."""

    def __init__(self, saga: BookingSaga) -> None:
        self._saga = saga

    async def CreateBooking(self, request: booking_pb2.CreateBookingRequest,
                            context: grpc.aio.ServicerContext) -> booking_pb2.CreateBookingResponse:
        return await self._saga.create(request)

    async def GetBooking(self, request: booking_pb2.GetBookingRequest,
                         context: grpc.aio.ServicerContext) -> booking_pb2.GetBookingResponse:
        return await self._saga.get(request)

    async def CancelBooking(self, request: booking_pb2.CancelBookingRequest,
                            context: grpc.aio.ServicerContext) -> booking_pb2.CancelBookingResponse:
        return await self._saga.cancel(request)

    async def CheckIn(self, request: booking_pb2.CheckInRequest,
                      context: grpc.aio.ServicerContext) -> booking_pb2.CheckInResponse:
        return await self._saga.check_in(request)


class BookingComponent:
    """The servicer over the store (``DATA_DIR/hotel-booking/bookings.sqlite3``), the stubs of the inventory and the
    gateway, and the background recovery."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, BookingSettings)
        store = BookingStore(context.data_dir(NAME) / DB_FILE)
        inventory = InventoryClient(inventory_pb2_grpc.RoomInventoryServiceStub(context.channel(INVENTORY)),
                                    settings.inventory_timeout_s)
        gateway = GatewayClient(gateway_pb2_grpc.PaymentGatewayServiceStub(context.channel(GATEWAY)),
                                settings.gateway_timeout_s)
        self.saga = BookingSaga(settings, store, inventory, gateway,
                                id_key=context.secret.keyring(ID_KEY_PURPOSE).current_key)
        self.recovery = Recovery(self.saga)

    def register(self, server: grpc.aio.Server) -> None:
        booking_pb2_grpc.add_BookingServiceServicer_to_server(BookingServicer(self.saga), server)

    async def start(self) -> None:
        pending = await self.saga.start()
        if pending:
            log.info("%s: %d bookings PENDING; the recovery finishes them", NAME, pending)
        self.recovery.start()

    async def stop(self) -> None:
        await self.recovery.stop()
        await self.saga.close()


async def build(context: RuntimeContext) -> BookingComponent:
    return BookingComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(INVENTORY, GATEWAY), build=build,
    settings_model=BookingSettings, access=Access(public=PUBLIC_METHODS),
)

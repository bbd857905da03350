"""The hotel reservation workload (Booking.com; seed 001 #20 "Hotel Reservation", shared/seeds/001_58dfc580020147d2.txt
line 23: "| 20 | Hotel Reservation | Pessimistic locking, overbooking prevention, payment auth/capture | 1M
bookings/day, Booking.com |").

Seeding (:mod:`.seeding`) puts the hotels' room types on sale through RoomInventoryService.AddRoomType (a few hundred
hotels of 2 to 4 room types, 5 to 200 rooms each, and, for the ``hotel-peak-dates`` profile, the festival city's
hotels) and tokenizes each guest's card for the hotels' merchant through CardVaultService.TokenizeCard (a few percent
of them cards that always decline). Open-loop arrivals are guests' journeys (:mod:`.journeys`): ``search`` (a hotel's
page: the read path, most of the traffic), ``book`` (a look at the stay, then CreateBooking with an idempotency key,
retried with the same key; crowds of guests booking the same offer at once for the festival), ``cancel`` and
``check_in`` (a confirmed booking cancelled, or captured at check-in). Stays (:mod:`.stays`): hotels by popularity,
weeks ahead, one to a few nights; festival stays all overlap the festival's weekend. At the end of the run every
booking a guest holds a confirmation for must read back as the guest was told, no room-night may hold more
confirmations than rooms, and RoomInventoryService.Audit must find no new violation (:mod:`.end_checks`).

Measures: ``booking_time`` (the book button: CreateBooking's first send to its final answer), ``booking_outcome``
(confirmed, the failure reason, or sold out), ``booking_conflicts`` (the version conflicts a booking retried
through: the lock-mode A/B), and the invariants ``bookings_consistent`` and ``no_double_booking``; the driver records
every RPC and the ``search`` journey (the results page). The workload speaks only the contracts
(protos/casemesh/hotel/v1, the payment vault's protos/casemesh/payments/v1/vault.proto, casemesh.common.v1) and
casemesh.services.hotel.contract, with the payments workload's card numbers (:mod:`..payments.cards`).
"""

from __future__ import annotations

import logging
import random

from casemesh.hotel.v1 import booking_pb2, booking_pb2_grpc, inventory_pb2, inventory_pb2_grpc
from casemesh.payments.v1 import vault_pb2, vault_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .end_checks import BOOKINGS_CONSISTENT, NO_DOUBLE_BOOKING, check
from .journeys import (
    BOOKING_CONFLICTS,
    BOOKING_OUTCOME,
    BOOKING_TIME,
    BookParams,
    ChangeParams,
    SearchParams,
    book,
    cancel,
    check_in,
    search,
)
from .live import Hotels
from .seeding import BOOKING, INVENTORY, VAULT, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.hotel")

_ENTRYPOINTS = entrypoints({
    BOOKING: (booking_pb2, "BookingService", booking_pb2_grpc.BookingServiceStub),
    INVENTORY: (inventory_pb2, "RoomInventoryService", inventory_pb2_grpc.RoomInventoryServiceStub),
    VAULT: (vault_pb2, "CardVaultService", vault_pb2_grpc.CardVaultServiceStub),
})

MEASURES = (BOOKING_TIME, BOOKING_OUTCOME, BOOKING_CONFLICTS, BOOKINGS_CONSISTENT, NO_DOUBLE_BOOKING)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Hotels:
    """This process's :class:`~.live.Hotels`, after the baseline Audit (``baseline_audit``: load process 0 only) and
    the choice of the festival's weekend (unrecorded); ``rng`` is not used."""
    hotels = Hotels(streams, state, params)
    await hotels.take_baseline()
    await hotels.choose_festival()
    return hotels


async def disconnect(hotels: Hotels) -> None:
    """The end-of-run checks (``bookings_consistent``, ``no_double_booking``), after this process's last journey."""
    try:
        await check(hotels)
    except Exception:  # a bug here must not lose the run's other results
        log.exception("hotel: the end-of-run checks failed")
        for measure in (BOOKINGS_CONSISTENT, NO_DOUBLE_BOOKING):
            hotels.streams.observe(measure, 0.0, "UNKNOWN", sent_at=hotels.clock())


WORKLOAD = Workload(
    name="hotel",
    description="Hotel reservation (shared/seeds/001 #20 'Hotel Reservation', Booking.com): guests searching hotel "
                "pages, booking with idempotent retries and double clicks (crowds on a festival's popular dates), "
                "cancelling and checking in (the capture), with no room-night sold twice and every confirmed "
                "booking read back at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("search", "A guest opens a hotel's page for a stay: GetAvailability of each of its room types "
                    "at once", SearchParams, search),
            Journey("book", "Guests (a crowd of them for a festival) look at a stay (GetAvailability, then "
                    "alternatives) and book it (CreateBooking with a fresh idempotency key, retried with the same "
                    "key; a few double clicks)", BookParams, book),
            Journey("cancel", "A guest cancels a confirmed booking (CancelBooking: rooms released, authorisation "
                    "voided)", ChangeParams, cancel),
            Journey("check_in", "The next guest to arrive checks in (CheckIn: the payment captured)", ChangeParams,
                    check_in),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)

"""The end-of-run checks: no room-night is sold twice, and every booking a guest holds a confirmation for is still
there.

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "Pessimistic locking, overbooking
prevention"). The workload's ``disconnect`` runs :func:`check` after the process's last journey has ended, as a
hotel's night audit does. Every load process checks the bookings it saw; load process 0 also audits the inventory.
All calls are unrecorded; reads are retried (3 attempts within 5 s), ``check_concurrency`` in flight.

**bookings_consistent** (one sample per process): GetBooking of every booking the process saw CONFIRMED. Each must
read back as the client's answers make it (:class:`~.bookings.Booked`: CONFIRMED, CANCELLED after an answered
cancellation, CHECKED_IN after an answered check-in, either while a change's outcome is unknown) and be the stay that
was booked; NOT_FOUND is a confirmed booking lost. The problems the answers themselves showed during the run (a key
answered with two bookings, a malformed decision, a total that is not nights x rooms x rate: :mod:`.bookings`) count
here too.

**no_double_booking** (one sample per process): per (hotel, room type, night), the rooms of the bookings the process
holds confirmations for (:meth:`~.bookings.Ledger.rooms_by_night`) are compared with GetAvailability's night (read
over each room type's booked nights, 30 nights a call at most):

- they must fit in the night's rooms: the seeded room count, plus the overbooking allowance only as far as the
  inventory states one (``sellable`` above the room count: with ``hotel-inventory.overbooking_allowance_pct`` 0, the
  default, none). A night where the clients hold more confirmations than that was sold twice;
- the inventory must count at least them as booked (``booked``): fewer means it lost a confirmed booking's rooms and
  can sell them again;
- ``booked + held <= sellable`` on every night read (the inventory's own invariant, as it answers it).

Load process 0 adds RoomInventoryService.Audit: each violation not in the baseline taken at connect is a problem
(with ``--workers N`` it waits ``audit_delay_s`` after its own drain for the others' last journeys). With several
load processes each compares its own bookings only, a subset of all: the fit and the count still hold for it, and
the Audit covers the rest.

Each sample's latency is its check's time; its code ``OK``, ``DATA_LOSS`` for any problem (each logged), or, when
nothing is wrong but a call failed for good, that call's status code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

import grpc

from casemesh.hotel.v1 import booking_pb2, hotel_pb2
from casemesh.services.hotel.contract import MAX_NIGHTS

from ..idempotent_retry import send
from .bookings import check_read_back, status_name
from .live import READ_RETRY, Hotels
from .seeding import BOOKING

log = logging.getLogger("casemesh.workloads.hotel")

NO_DOUBLE_BOOKING = "no_double_booking"
BOOKINGS_CONSISTENT = "bookings_consistent"
OK = "OK"
DATA_LOSS = "DATA_LOSS"

Night = tuple[str, str, str]


def verdict(problems: list[str], failed: list[str]) -> str:
    """``DATA_LOSS`` for any problem, else the first failed call's code, else ``OK``."""
    return DATA_LOSS if problems else failed[0] if failed else OK


async def read_back(hotels: Hotels) -> tuple[dict[str, hotel_pb2.Booking], list[str], list[str]]:
    """GetBooking of every booking the process saw CONFIRMED: the bookings read, the problems (a booking gone), the
    codes of the reads that failed for good."""
    limit = asyncio.Semaphore(hotels.params.check_concurrency)
    rng = random.Random(hotels.state.run)
    stored: dict[str, hotel_pb2.Booking] = {}
    problems: list[str] = []
    failed: list[str] = []

    async def one(booking_id: str) -> None:
        async with limit:
            outcome = await send(hotels.streams.call, BOOKING, "GetBooking",
                                 booking_pb2.GetBookingRequest(booking_id=booking_id), READ_RETRY, rng,
                                 clock=hotels.clock, sleep=hotels.sleep)
        if outcome.answered:
            stored[booking_id] = outcome.response.booking
        elif outcome.code == grpc.StatusCode.NOT_FOUND.name:
            problems.append(f"{booking_id}: answered CONFIRMED, GetBooking finds no such booking")
        else:
            log.warning("hotel: GetBooking %s failed: %s", booking_id, outcome.code)
            failed.append(outcome.code)

    await asyncio.gather(*(one(b) for b in hotels.ledger.booked))
    return stored, problems, failed


def windows(nights: Iterable[str]) -> list[tuple[date, int]]:
    """(first night, nights) reads of at most :data:`MAX_NIGHTS` nights covering every one of ``nights``."""
    days = sorted({date.fromisoformat(n) for n in nights})
    reads: list[tuple[date, int]] = []
    for day in days:
        if reads and day < reads[-1][0] + timedelta(days=MAX_NIGHTS):
            start = reads[-1][0]
            reads[-1] = (start, (day - start).days + 1)
        else:
            reads.append((day, 1))
    return reads


async def read_nights(hotels: Hotels, wanted: Iterable[Night]) -> tuple[dict[Night, hotel_pb2.NightAvailability],
                                                                         list[str]]:
    """GetAvailability over the ``wanted`` nights of each room type: the nights read, and the codes of the reads that
    failed for good."""
    by_type: dict[tuple[str, str], set[str]] = defaultdict(set)
    for hotel_id, room_type_id, night in wanted:
        by_type[(hotel_id, room_type_id)].add(night)
    limit = asyncio.Semaphore(hotels.params.check_concurrency)
    rng = random.Random(hotels.state.run)
    read: dict[Night, hotel_pb2.NightAvailability] = {}
    failed: list[str] = []

    async def one(hotel_id: str, room_type_id: str, first: date, nights: int) -> None:
        async with limit:
            outcome = await hotels.availability(hotel_id, room_type_id, first, nights, rng)
        if not outcome.answered:
            failed.append(outcome.code)
            return
        for night in outcome.response.nights:
            read[(hotel_id, room_type_id, night.night)] = night

    await asyncio.gather(*(one(h, r, first, n) for (h, r), nights in by_type.items() for first, n in windows(nights)))
    return read, failed


def judge_nights(hotels: Hotels, held: dict[Night, int], read: dict[Night, hotel_pb2.NightAvailability]) -> list[str]:
    """Problems of the room-nights (module docstring): the clients' confirmations against the rooms and the
    inventory's counts."""
    problems: list[str] = []
    for (hotel_id, room_type_id, night), rooms in sorted(held.items()):
        room_type = hotels.room_types[(hotel_id, room_type_id)]
        limit = room_type.rooms
        stored = read.get((hotel_id, room_type_id, night))
        where = f"{hotel_id}/{room_type_id} on {night}"
        if stored is not None:
            limit += max(0, stored.sellable - room_type.rooms)
            if rooms > stored.booked:
                problems.append(f"{where}: the clients hold confirmations for {rooms} rooms, the inventory counts "
                                f"{stored.booked} booked")
        if rooms > limit:
            problems.append(f"{where}: double booking: {rooms} rooms confirmed, {room_type.rooms} rooms and "
                            f"{limit - room_type.rooms} allowed above them")
    for (hotel_id, room_type_id, night), stored in sorted(read.items()):
        if stored.booked + stored.held > stored.sellable:
            problems.append(f"{hotel_id}/{room_type_id} on {night}: {stored.booked} booked and {stored.held} held, "
                            f"{stored.sellable} sellable")
    return problems


def judge_audit(hotels: Hotels, violations: Iterable[str]) -> list[str]:
    """Audit's violations not in the baseline."""
    known = hotels.baseline or set()
    return [f"Audit: {line}" for line in violations if line not in known]


async def check_consistency(hotels: Hotels) -> dict[str, hotel_pb2.Booking]:
    """The ``bookings_consistent`` sample (module docstring); returns the bookings read back."""
    started = hotels.clock()
    stored, problems, failed = await read_back(hotels)
    problems = hotels.ledger.problems + problems
    for booking_id, booking in stored.items():
        problems += [f"{booking_id}: {p}" for p in check_read_back(booking_id, hotels.ledger.booked[booking_id],
                                                                    booking)]
    for problem in problems:
        log.warning("hotel: a booking is not as the guest was told: %s", problem)
    statuses: dict[str, int] = defaultdict(int)
    for booking in stored.values():
        statuses[status_name(booking.status)] += 1
    log.info("hotel: %d confirmed bookings read back: %s", len(stored), dict(statuses))
    hotels.streams.observe(BOOKINGS_CONSISTENT, hotels.clock() - started, verdict(problems, failed), sent_at=started)
    return stored


async def check_double_booking(hotels: Hotels, stored: dict[str, hotel_pb2.Booking]) -> None:
    """The ``no_double_booking`` sample (module docstring)."""
    started = hotels.clock()
    held = hotels.ledger.rooms_by_night({booking_id: b.status for booking_id, b in stored.items()})
    read, failed = await read_nights(hotels, held)
    problems = judge_nights(hotels, held, read)
    if hotels.checker:
        try:
            audit = await hotels.audit()
        except grpc.aio.AioRpcError as error:
            log.warning("hotel: Audit failed: %s %s", error.code().name, error.details())
            failed.append(error.code().name)
        else:
            log.info("hotel: Audit: %d room types, %d room-nights in use, %d booked and %d held room-nights, %d "
                     "overbooked, %d violations", audit.room_types, audit.room_nights, audit.booked_room_nights,
                     audit.held_room_nights, audit.overbooked_room_nights, len(audit.violations))
            problems += judge_audit(hotels, audit.violations)
    for problem in problems:
        log.warning("hotel: a room-night is oversold: %s", problem)
    log.info("hotel: %d room-nights of confirmed bookings compared with the inventory", len(held))
    hotels.streams.observe(NO_DOUBLE_BOOKING, hotels.clock() - started, verdict(problems, failed), sent_at=started)


async def check(hotels: Hotels) -> None:
    """Both end-of-run checks (module docstring), after the process's last journey."""
    if hotels.checker and hotels.streams.share[1] > 1 and hotels.params.audit_delay_s > 0:
        await hotels.sleep(hotels.params.audit_delay_s)
    stored = await check_consistency(hotels)
    await check_double_booking(hotels, stored)

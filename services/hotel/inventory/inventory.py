"""The room inventory: each room type's rooms per night, and the holds on them, never sold beyond the sellable rooms.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"); protos/casemesh/hotel/v1/
inventory.proto. The inventory:

- keeps every room type and every room-night written (``booked``, ``held``, ``version``) in memory, exactly as the
  file has them as of its last commit (:mod:`.store` applies each committed write before any writer resumes); a night
  never written has 0 booked, 0 held, version 0. A night sells ``rooms + floor(rooms * overbooking_allowance_pct /
  100)`` rooms (:meth:`.settings.InventorySettings.sellable`; 0 % by default: overbooking prevention);
- **holds** rooms on every night of a stay, all or none, only while ``booked + held + rooms <= sellable`` on each
  night, isolated by the lock mode (:mod:`.locking`: per room-night locks, or the version check), durably (fsync
  before the answer), then applied; a hold's ID makes it idempotent (the same stay: the hold as it is; another stay:
  FAILED_PRECONDITION ``key_reused``);
- **confirms** a HELD hold (its held rooms become booked), **releases** a HELD or CONFIRMED one (its rooms given
  back), and **expires** a HELD hold whose time is up (:mod:`.expiry`): each a durable write that bumps the versions
  of the hold's nights, under their locks in pessimistic mode;
- **audits** (:mod:`.audit`) its memory and its file, each in one consistent state.

HELD and CONFIRMED holds live in memory; RELEASED and EXPIRED ones in a bounded LRU (``recent_final_holds``) and in
the file, read back on a miss. A new hold's ID missing from memory is taken for new: the write's primary key finds an
older hold of that ID (nothing written), and a refused hold looks its ID up in the file before the refusal stands.

Status codes come from the errors raised: InvalidArgument, NotFound, AlreadyExists, FailedPrecondition (reasons of
services/hotel/contract.py), Aborted (the optimistic mode's :class:`.store.VersionConflict`), and
:class:`.store.StoreUnavailable` (UNAVAILABLE) when the file cannot be written, in which case nothing was applied.
Times are Unix milliseconds from ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

from cachetools import LRUCache

from ...runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from ...runtime.keyed_locks import KeyedLocks
from .. import contract
from . import metrics
from .audit import AuditReport, audit
from .expiry import ExpiryQueue
from .locking import NightLocks
from .records import (
    ACTIVE,
    CONFIRMED,
    EXPIRED,
    HELD,
    RELEASED,
    Change,
    HoldRecord,
    NightChange,
    NightKey,
    RoomTypeRecord,
    Stay,
)
from .settings import InventorySettings, LockMode
from .store import InventoryStore, KnownHold, StatusConflict, VersionConflict

#: Most holds expired at once by one sweep (each a write of the same group commits).
SWEEP_BATCH = 256
_OUTCOMES = {CONFIRMED: "confirmed", RELEASED: "released", EXPIRED: "expired"}


class NoAvailability(FailedPrecondition):
    """A night of the stay has fewer rooms available than asked: FAILED_PRECONDITION ``no_availability: ...``."""


@dataclass(slots=True)
class _Night:
    booked: int = 0
    held: int = 0
    version: int = 0
    holding: set[str] = field(default_factory=set)  # the HELD holds on this night (for their lazy expiry)


@dataclass(frozen=True, slots=True)
class NightView:
    """One room-night as GetAvailability shows it: ``available = sellable - booked - held``."""

    night: date
    sellable: int
    booked: int
    held: int
    available: int
    version: int


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A valid HoldRoomsRequest (:func:`.validation.hold_rooms`): ``ttl_ms`` 0 for the ``hold_ttl_s`` default."""

    hold_id: str
    stay: Stay
    ttl_ms: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _stay_name(stay: Stay) -> str:
    return (f"{stay.rooms} rooms of {stay.hotel_id}/{stay.room_type_id} for {stay.nights} nights from "
            f"{stay.check_in.isoformat()}")


class RoomInventory:
    """The inventory over ``store``; call :meth:`start` (loads the file) before anything else, :meth:`close` at the
    end. ``clock`` gives Unix time in milliseconds (tests pass their own)."""

    def __init__(self, store: InventoryStore, settings: InventorySettings | None = None,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.settings = settings or InventorySettings()
        self.locks = NightLocks(self.settings.lock_mode)
        self._clock = clock
        self._types: dict[tuple[str, str], RoomTypeRecord] = {}
        self._nights: dict[NightKey, _Night] = {}
        self._active: dict[str, HoldRecord] = {}
        self._final: LRUCache[str, HoldRecord] | None = (
            LRUCache(self.settings.recent_final_holds) if self.settings.recent_final_holds else None)
        self._expiries = ExpiryQueue()
        self._hold_ids = KeyedLocks()
        self._type_ids = KeyedLocks()
        self._booked = self._held = 0

    async def start(self) -> None:
        """Load the room types, room-nights and HELD and CONFIRMED holds from the file."""
        snapshot = await self.store.snapshot()
        self._types = {(t.hotel_id, t.room_type_id): t for t in snapshot.room_types}
        self._nights = {key: _Night(booked, held, version) for key, (booked, held, version) in snapshot.nights.items()}
        for hold in snapshot.holds:
            self._active[hold.hold_id] = hold
            if hold.status == HELD:
                self._expiries.push(hold.expires_at_unix_ms, hold.hold_id)
                for key in hold.stay.night_keys():
                    self._nights.setdefault(key, _Night()).holding.add(hold.hold_id)
        self._booked = sum(n.booked for n in self._nights.values())
        self._held = sum(n.held for n in self._nights.values())
        metrics.started(self.settings.lock_mode.value, tuple(m.value for m in LockMode), len(self._types),
                        self._held, self._booked)

    async def close(self) -> None:
        """Finish the writes queued and close the file."""
        await self.store.close()

    # -- room types ----------------------------------------------------------------------------------------------------

    def room_type(self, hotel_id: str, room_type_id: str) -> RoomTypeRecord:
        """The room type; NotFound when it is not on sale."""
        record = self._types.get((hotel_id, room_type_id))
        if record is None:
            raise NotFound(f"room type {hotel_id}/{room_type_id} is not on sale")
        return record

    def sellable(self, record: RoomTypeRecord) -> int:
        """Rooms of ``record`` sold per night: its room count plus the overbooking allowance."""
        return self.settings.sellable(record.rooms)

    async def add_room_type(self, record: RoomTypeRecord) -> RoomTypeRecord:
        """Put ``record`` on sale; the stored room type when it exists with the same fields, AlreadyExists when with
        others; StoreUnavailable when the file cannot be written (nothing added)."""
        return await asyncio.shield(asyncio.create_task(self._add_room_type(record)))

    async def _add_room_type(self, record: RoomTypeRecord) -> RoomTypeRecord:
        key = (record.hotel_id, record.room_type_id)
        async with self._type_ids.hold(f"{key[0]}/{key[1]}"):
            existing = self._types.get(key)
            if existing is not None:
                if existing != record:
                    raise AlreadyExists(f"room type {key[0]}/{key[1]} exists with other fields ({existing.rooms} "
                                        f"rooms of {existing.name!r} at {existing.rate_minor} "
                                        f"{existing.currency_code})")
                return existing

            def apply() -> None:
                self._types[key] = record
                metrics.ROOM_TYPES.set(len(self._types))

            await self.store.add_room_type(record, apply)
            return record

    def availability(self, hotel_id: str, room_type_id: str, check_in: date, nights: int
                     ) -> tuple[RoomTypeRecord, list[NightView]]:
        """The room type and each night of the stay, in date order; NotFound for a room type not on sale. Rooms of
        holds past their time count as held until the sweeper or a hold of the night expires them."""
        record = self.room_type(hotel_id, room_type_id)
        sellable = self.sellable(record)
        views = []
        for key in Stay(hotel_id, room_type_id, check_in, nights, 1).night_keys():
            night = self._nights.get(key) or _Night()
            views.append(NightView(key[2], sellable, night.booked, night.held, sellable - night.booked - night.held,
                                   night.version))
        return record, views

    # -- holds ---------------------------------------------------------------------------------------------------------

    async def hold(self, request: HoldRequest) -> HoldRecord:
        """Hold ``request.stay`` for ``request.ttl_ms`` (0: ``hold_ttl_s``) and return the HELD hold; for an ID held
        before, that hold as it is (expired first if its time is up).

        FailedPrecondition ``key_reused`` when the ID was used for another stay; NotFound for a room type not on sale;
        :class:`NoAvailability` when a night has fewer rooms available; Aborted (:class:`.store.VersionConflict`,
        optimistic mode) when another write moved one of the nights between the check and the write; StoreUnavailable.
        In every error case nothing was held. A cancelled caller does not stop a hold once started.
        """
        return await asyncio.shield(asyncio.create_task(self._hold(request)))

    async def _hold(self, request: HoldRequest) -> HoldRecord:
        async with self._hold_ids.hold(request.hold_id):  # a retry racing its original waits for it
            known = self._remembered(request.hold_id)
            if known is not None:
                return await self._replay(request, known)
            record = self.room_type(request.stay.hotel_id, request.stay.room_type_id)
            keys = request.stay.night_keys()
            await self._expire_due_on(keys)
            try:
                return await self._take(request, record, keys)
            except KnownHold as known_hold:
                return await self._replay(request, known_hold.stored)
            except (NoAvailability, VersionConflict) as refusal:
                stored = await self.store.hold(request.hold_id)  # a retry of a hold made long ago?
                if stored is not None:
                    return await self._replay(request, stored)
                metrics.HOLDS.labels("no_availability" if isinstance(refusal, NoAvailability) else "conflict").inc()
                raise

    async def _take(self, request: HoldRequest, record: RoomTypeRecord, keys: list[NightKey]) -> HoldRecord:
        stay, sellable = request.stay, self.sellable(record)
        async with self.locks.nights(keys):
            versions = []
            for key in keys:  # no await from here to the write: one consistent read of the committed nights
                night = self._nights.get(key)
                booked, held, version = (night.booked, night.held, night.version) if night else (0, 0, 0)
                if sellable - booked - held < stay.rooms:
                    raise NoAvailability(f"{contract.NO_AVAILABILITY}: {key[2].isoformat()} has "
                                         f"{sellable - booked - held} available, {stay.rooms} asked")
                versions.append(version)
            ttl_ms = request.ttl_ms or self.settings.hold_ttl_s * 1000
            hold = HoldRecord(request.hold_id, stay, HELD, self._clock() + ttl_ms)
            change = Change(hold, None, tuple(NightChange(key, 0, stay.rooms, self.locks.expected_version(version))
                                              for key, version in zip(keys, versions, strict=True)))
            try:
                await self.store.commit(change, lambda: self._apply(change))
            except VersionConflict:
                metrics.VERSION_CONFLICTS.inc()
                raise
        metrics.HOLDS.labels("held").inc()
        return hold

    async def _replay(self, request: HoldRequest, stored: HoldRecord) -> HoldRecord:
        """``stored``, the hold of ``request``'s ID, when it is of the same stay (expired first if its time is up);
        else FailedPrecondition ``key_reused``."""
        if stored.stay != request.stay:
            raise FailedPrecondition(f"{contract.KEY_REUSED}: hold {stored.hold_id} was made for "
                                     f"{_stay_name(stored.stay)}, not {_stay_name(request.stay)}")
        if stored.due(self._clock()):
            await self._expire(stored.hold_id)
            return await self._find(stored.hold_id)
        self._remember(stored)
        return stored

    async def confirm(self, hold_id: str) -> HoldRecord:
        """Book a HELD hold's rooms and return it CONFIRMED (a CONFIRMED hold: as it is); NotFound; FailedPrecondition
        ``hold_expired`` (also when its time is up: it is expired now) or ``hold_released``; StoreUnavailable."""
        return await asyncio.shield(asyncio.create_task(self._confirm(hold_id)))

    async def _confirm(self, hold_id: str) -> HoldRecord:
        async with self._hold_ids.hold(hold_id):
            while True:  # again only after the hold moved to a final status meanwhile: at most twice
                hold = await self._find(hold_id)
                if hold.status == CONFIRMED:
                    return hold
                if hold.status == RELEASED:
                    raise FailedPrecondition(f"{contract.HOLD_RELEASED}: hold {hold_id} was released")
                if hold.status == EXPIRED:
                    raise FailedPrecondition(f"{contract.HOLD_EXPIRED}: hold {hold_id} expired before it was "
                                             "confirmed")
                async with self.locks.nights(hold.stay.night_keys()):
                    current = self._active.get(hold_id)
                    if current is None or current.status != HELD:
                        continue  # expired meanwhile
                    with contextlib.suppress(StatusConflict):  # optimistic mode: an expiry won the race
                        if current.due(self._clock()):
                            await self._move(current, EXPIRED)
                            continue
                        return await self._move(current, CONFIRMED)

    async def release(self, hold_id: str) -> HoldRecord:
        """Give a HELD or CONFIRMED hold's rooms back and return it RELEASED (a HELD hold whose time is up: EXPIRED; a
        RELEASED or EXPIRED hold: as it is); NotFound; StoreUnavailable."""
        return await asyncio.shield(asyncio.create_task(self._release(hold_id)))

    async def _release(self, hold_id: str) -> HoldRecord:
        async with self._hold_ids.hold(hold_id):
            while True:  # again only after the hold expired meanwhile: at most twice
                hold = await self._find(hold_id)
                if hold.status not in ACTIVE:
                    return hold
                async with self.locks.nights(hold.stay.night_keys()):
                    current = self._active.get(hold_id)
                    if current is None:
                        continue  # expired meanwhile
                    with contextlib.suppress(StatusConflict):  # optimistic mode: an expiry won the race
                        return await self._move(current, EXPIRED if current.due(self._clock()) else RELEASED)

    async def get_hold(self, hold_id: str) -> HoldRecord:
        """The hold as stored; NotFound."""
        return await self._find(hold_id)

    async def _move(self, hold: HoldRecord, status: int) -> HoldRecord:
        """Write ``hold`` (as it is in memory, HELD or CONFIRMED) in ``status`` and its nights' counts, bumping their
        versions; the caller holds the nights' locks. StatusConflict when its status in the file moved meanwhile."""
        rooms = hold.stay.rooms
        booked, held = ((rooms, -rooms) if status == CONFIRMED else (0, -rooms)) if hold.status == HELD else (-rooms, 0)
        moved = hold.moved_to(status)
        change = Change(moved, hold.status,
                        tuple(NightChange(key, booked, held) for key in hold.stay.night_keys()))
        await self.store.commit(change, lambda: self._apply(change))
        metrics.HOLDS.labels(_OUTCOMES[status]).inc()
        return moved

    def _apply(self, change: Change) -> None:
        """Apply a committed ``change`` to memory (run by the store in commit order)."""
        hold = change.hold
        for night_change in change.nights:
            night = self._nights.get(night_change.key)
            if night is None:
                night = self._nights[night_change.key] = _Night()
            night.booked += night_change.booked_delta
            night.held += night_change.held_delta
            night.version += 1
            if hold.status == HELD:
                night.holding.add(hold.hold_id)
            else:
                night.holding.discard(hold.hold_id)
            self._booked += night_change.booked_delta
            self._held += night_change.held_delta
        if hold.status in ACTIVE:
            self._active[hold.hold_id] = hold
        else:
            self._active.pop(hold.hold_id, None)
            self._remember(hold)
        if hold.status == HELD:
            self._expiries.push(hold.expires_at_unix_ms, hold.hold_id)
        metrics.BOOKED_ROOM_NIGHTS.set(self._booked)
        metrics.HELD_ROOM_NIGHTS.set(self._held)

    def _remembered(self, hold_id: str) -> HoldRecord | None:
        hold = self._active.get(hold_id)
        if hold is None and self._final is not None:
            hold = self._final.get(hold_id)
        return hold

    def _remember(self, hold: HoldRecord) -> None:
        if hold.status not in ACTIVE and self._final is not None:
            self._final[hold.hold_id] = hold

    async def _find(self, hold_id: str) -> HoldRecord:
        """The hold from memory, else from the file; NotFound."""
        hold = self._remembered(hold_id)
        if hold is None:
            hold = await self.store.hold(hold_id)
            if hold is None:
                raise NotFound(f"hold {hold_id} is not known")
            hold = self._remembered(hold_id) or hold  # memory wins: it may have moved while the file was read
            self._remember(hold)
        return hold

    # -- expiry --------------------------------------------------------------------------------------------------------

    async def _expire(self, hold_id: str) -> bool:
        """Expire hold ``hold_id`` if it is HELD and its time is up (under its nights' locks in pessimistic mode);
        True when this call expired it."""
        hold = self._active.get(hold_id)
        if hold is None or not hold.due(self._clock()):
            return False
        async with self.locks.nights(hold.stay.night_keys()):
            hold = self._active.get(hold_id)
            if hold is None or not hold.due(self._clock()):
                return False
            try:
                await self._move(hold, EXPIRED)
            except StatusConflict:  # optimistic mode: a confirmation, release or other expiry won the race
                return False
        return True

    async def _expire_due_on(self, keys: list[NightKey]) -> None:
        """Expire the holds on the nights ``keys`` whose time is up (a hold of those nights is about to check them)."""
        now = self._clock()
        due = {hold_id for key in keys if key in self._nights for hold_id in self._nights[key].holding
               if self._active[hold_id].due(now)}
        if due:
            await asyncio.gather(*(self._expire(hold_id) for hold_id in sorted(due)))

    async def expire_due(self) -> int:
        """Expire every HELD hold whose time is up (the sweeper's pass, :mod:`.expiry`); how many this call expired.
        StoreUnavailable when the file cannot be written (the holds stay due for the next pass)."""
        due = [hold_id for hold_id in self._expiries.pop_due(self._clock())
               if (hold := self._active.get(hold_id)) is not None and hold.status == HELD]
        expired = 0
        try:
            for start in range(0, len(due), SWEEP_BATCH):
                chunk = due[start:start + SWEEP_BATCH]
                expired += sum(await asyncio.gather(*(self._expire(hold_id) for hold_id in chunk)))
        except BaseException:
            for hold_id in due:  # put them back: a later pass tries again
                if (hold := self._active.get(hold_id)) is not None and hold.status == HELD:
                    self._expiries.push(hold.expires_at_unix_ms, hold_id)
            raise
        return expired

    # -- audit ---------------------------------------------------------------------------------------------------------

    async def audit(self) -> AuditReport:
        """Check memory (copied in one step of the event loop) and the file (read in one transaction) (:mod:`.audit`);
        the counts are memory's, the violations both's. StoreUnavailable when the file cannot be read."""
        memory = audit(self._types.values(), {key: (n.booked, n.held) for key, n in self._nights.items()},
                       list(self._active.values()), self.settings.sellable, "memory")
        snapshot = await self.store.snapshot()
        stored = audit(snapshot.room_types, {key: (b, h) for key, (b, h, _) in snapshot.nights.items()},
                       snapshot.holds, self.settings.sellable, "file")
        return replace(memory, violations=memory.violations + stored.violations)

"""The shop's inventory: stock levels and reservations with a TTL, never overselling, durable before every answer.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: line 512
"Consistency: Inventory counts must be accurate (no overselling)", line 529 "Inventory reservation: Optimistic
locking with TTL", line 541 ``reserve_stock(product_id, quantity, user_id, ttl=600)``, whose Lua script takes the
units only ``if stock >= quantity`` in one atomic step, line 573 ``confirm_reservation``, line 584
``release_reservation``). The rules are protos/casemesh/ecommerce/v1/inventory.proto's:

- **atomic check-and-take**: as the seed's Lua script runs whole inside Redis, Reserve checks availability and takes
  the units in one synchronous step of the event loop (no ``await`` between them), so two concurrent reservations
  can never both take the last units; the write to the log is awaited afterwards;
- **durable before the answer**: every change is written to :mod:`.store` and fsynced (group-committed) before the
  call returns. Units are *taken* in memory before their write (Reserve, the extension of a hold, Commit) and put
  back if the write fails; units are *given back* (Release) and stock *added* (Restock) only once written. So memory
  never shows more units available than the file would after a crash (GetStock and Audit may count units taken by a
  write still under way, never units given back early), and a failed write (UNAVAILABLE) leaves nothing changed;
- **one operation per reservation at a time**: Reserve, Commit, Release and GetReservation of one ``reservation_id``
  run one after the other (``services/runtime/keyed_locks.KeyedLocks``), Restocks of one ``restock_id`` likewise;
- **TTL**: a HELD reservation expires once its TTL has run out (:mod:`.expiry`: monotonic deadlines). Every request
  that reads availability (Reserve, Commit, Release, GetStock, GetReservation, Restock's answer, Audit) first expires
  the due HELD reservations, so availability is exact; the background sweeper expires the rest. An expiry is a fact
  of time, applied in memory at once; its record is queued at the same moment, so any write that reuses the freed
  units commits after it (the store commits in queue order), and the request waits for it before answering. An expiry
  whose record fails is kept and written again by the next sweep; after a restart a HELD reservation whose stored
  ``expires_at_unix_ms`` has passed is expired on start either way (so even an expiry record lost in a crash cannot
  give its units twice, unless the wall clock went back by more than the time since). A reservation whose change is
  being written is left to the next round;
- **idempotent**: a ``reservation_id`` names one product and quantity forever (another: FAILED_PRECONDITION
  ``key_reused``); Reserve of a HELD reservation extends it to now + TTL, of an EXPIRED one holds the units anew if
  they are available (else ``out_of_stock``), of a COMMITTED one returns it, of a RELEASED one is
  ``reservation_released``; a ``restock_id`` adds its units once.

Stock levels (stocked, held, committed per product) live in memory, derived from the file at start (sums of the
restocks and reservations, never stored) and changed with every reservation change; :meth:`Inventory.audit`
recomputes them from the reservations and restocks. Every reservation and restock is kept in memory (about 200
bytes each) for idempotency; the file holds them all.

Status codes come from the errors raised: NotFound, FailedPrecondition (with the contract's reasons:
``out_of_stock``, ``reservation_expired``, ``reservation_released``, ``reservation_committed``, ``key_reused``)
mapped by the runtime's interceptor, :class:`.store.StoreUnavailable` (UNAVAILABLE: retry) when the file cannot be
written.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ...runtime.errors import FailedPrecondition, NotFound
from ...runtime.keyed_locks import KeyedLocks
from .. import contract
from . import metrics
from .expiry import Clock, Deadlines
from .records import COMMITTED, EXPIRED, HELD, RELEASED, Reservation, Restock, StockLevel
from .settings import InventorySettings
from .store import InventoryStore, StoreUnavailable
from .validation import Reserve

log = logging.getLogger("casemesh.ecommerce.inventory")
T = TypeVar("T")

#: Who expired a reservation (the ``trigger`` label of the expiry counter).
REQUEST, SWEEP, START = "request", "sweep", "start"


@dataclass(slots=True)
class _Level:
    stocked: int = 0
    held: int = 0
    committed: int = 0


@dataclass(slots=True)
class _Expiry:
    """Reservations just expired in memory and the wait for their record (``None`` when it could not be queued)."""

    records: list[Reservation]
    written: Coroutine[Any, Any, None] | None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Audit's findings: every product's stock level (by product ID), the HELD reservations now, the expiries since
    the inventory started, and the breaches of the invariants (empty when they hold)."""

    stock: list[StockLevel]
    held_reservations: int
    expired_reservations: int
    violations: list[str]


class Inventory:
    """The inventory over ``store``; call :meth:`start` (loads the file) before anything else, :meth:`close` at the
    end. Times come from ``clock`` (:class:`.expiry.Clock`)."""

    def __init__(self, store: InventoryStore, settings: InventorySettings | None = None,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings or InventorySettings()
        self.clock = clock or Clock()
        self._levels: dict[str, _Level] = {}
        self._reservations: dict[str, Reservation] = {}
        self._restocks: dict[str, Restock] = {}
        self._deadlines = Deadlines()
        self._units_held = 0
        self._expired = 0
        #: Reservations whose change is being written: expiry leaves them to its next round.
        self._writing: set[str] = set()
        #: Expired reservations whose EXPIRED record could not be written (the next sweep writes it again).
        self._unrecorded: dict[str, Reservation] = {}
        self._reservation_ids = KeyedLocks()
        self._restock_ids = KeyedLocks()

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Derive the stock levels from the file and expire the HELD reservations whose TTL ran out while the service
        was down (recorded before it returns, unless the file fails: then the first sweep records them)."""
        loaded = await self.store.load()
        for restock in loaded.restocks:
            self._restocks[restock.restock_id] = restock
            self._level(restock.product_id).stocked += restock.quantity
        wall, monotonic = self.clock.wall_ms(), self.clock.monotonic_ms()
        for reservation in loaded.reservations:
            self._change(None, reservation, monotonic + reservation.expires_at_unix_ms - wall)
        metrics.held(self._units_held, len(self._deadlines))
        await self._recorded(self._expire_due(START))

    async def close(self) -> None:
        """Finish the writes queued and close the file."""
        await self.store.close()

    # -- RPCs ---------------------------------------------------------------------------------------------------------

    async def restock(self, restock: Restock) -> StockLevel:
        """Add ``restock.quantity`` units to the product's stock, once per ``restock_id``; the stock level after it.

        A ``restock_id`` applied before returns the stock level and adds nothing (FailedPrecondition ``key_reused``
        when it was for another product or quantity); StoreUnavailable when the file cannot be written (nothing
        added). A cancelled caller does not stop a restock once started.
        """
        return await _unstoppable(self._restock(restock))

    async def stock(self, product_id: str) -> StockLevel:
        """``product_id``'s stock level now (all zeros for a product never restocked)."""
        return await _unstoppable(self._level_now(product_id))

    async def reserve(self, request: Reserve) -> Reservation:
        """Hold ``request.quantity`` units of ``request.product_id`` for ``request.ttl_ms`` (0: the setting
        ``reservation_ttl_s``): HELD, expiring at now + TTL; taken only if all of them are available.

        Reserving again: a HELD reservation is extended to now + TTL, an EXPIRED one held anew if the units are
        available, a COMMITTED one returned as it is. FailedPrecondition ``out_of_stock`` (fewer units available),
        ``reservation_released`` (a RELEASED reservation) or ``key_reused`` (the ID holds another product or
        quantity); StoreUnavailable when the file cannot be written (nothing held or extended).
        """
        return await _unstoppable(self._locked(request.reservation_id, self._reserve(request)))

    async def commit(self, reservation_id: str) -> Reservation:
        """Sell a HELD reservation's units: COMMITTED (``expires_at_unix_ms`` 0); a COMMITTED one is returned.

        NotFound for an unknown reservation; FailedPrecondition ``reservation_expired`` or ``reservation_released``;
        StoreUnavailable when the file cannot be written (still HELD).
        """
        return await _unstoppable(self._locked(reservation_id, self._commit(reservation_id)))

    async def release(self, reservation_id: str) -> Reservation:
        """Give a HELD reservation's units back: RELEASED; a RELEASED or EXPIRED one is returned as it is.

        NotFound for an unknown reservation; FailedPrecondition ``reservation_committed``; StoreUnavailable when the
        file cannot be written (still HELD).
        """
        return await _unstoppable(self._locked(reservation_id, self._release(reservation_id)))

    async def reservation(self, reservation_id: str) -> Reservation:
        """The reservation as stored (after any change of it being written); NotFound when unknown."""
        return await _unstoppable(self._locked(reservation_id, self._found_now(reservation_id)))

    async def audit(self) -> AuditReport:
        """Check every product in one state (no ``await`` while reading): its held units equal the sum of its HELD
        reservations, its committed units the sum of its COMMITTED ones, its stocked units the sum of its restocks,
        and ``committed + held <= stocked``; also the units-held total and the TTL deadlines against the HELD
        reservations. The report lists any breach in words."""
        return await _unstoppable(self._audit())

    async def sweep(self) -> None:
        """Expire every due HELD reservation and write again the expiries whose record failed (the sweeper's job,
        every ``sweep_interval_ms``)."""
        await self._recorded(self._expire_due(SWEEP))
        again = [record for reservation_id, record in self._unrecorded.items()
                 if self._reservations.get(reservation_id) is record]
        if not again:
            return
        try:
            await self.store.write_reservations(again)
        except StoreUnavailable as error:
            log.warning("%d expired reservations still not recorded: %s", len(again), error)
            return
        for record in again:
            if self._unrecorded.get(record.reservation_id) is record:
                del self._unrecorded[record.reservation_id]

    # -- the operations (each runs its checks and in-memory change in one step, then awaits the file) ----------------

    async def _restock(self, restock: Restock) -> StockLevel:
        async with self._restock_ids.hold(restock.restock_id):
            done = self._restocks.get(restock.restock_id)
            if done is not None:
                if (done.product_id, done.quantity) != (restock.product_id, restock.quantity):
                    raise FailedPrecondition(
                        f"{contract.KEY_REUSED}: restock {restock.restock_id} put {done.quantity} units of "
                        f"{done.product_id} into stock, not {restock.quantity} of {restock.product_id}")
                return await self._level_now(restock.product_id)
            await self.store.add_restock(restock)  # stock is added only once it is durable
            self._restocks[restock.restock_id] = restock
            self._level(restock.product_id).stocked += restock.quantity
            metrics.UNITS_RESTOCKED.inc(restock.quantity)
        return await self._level_now(restock.product_id)

    async def _level_now(self, product_id: str) -> StockLevel:
        expiry = self._expire_due(REQUEST)
        level = self._snapshot(product_id)
        await self._recorded(expiry)
        return level

    async def _locked(self, reservation_id: str, operation: Awaitable[T]) -> T:
        """Run ``operation`` under ``reservation_id``'s lock, right after expiring the due reservations (in the same
        step as its checks), and wait for the expiries' record before answering."""
        async with self._reservation_ids.hold(reservation_id):
            expiry = self._expire_due(REQUEST)
            try:
                return await operation
            finally:
                await self._recorded(expiry)

    async def _reserve(self, request: Reserve) -> Reservation:
        reservation_id, product_id, quantity = request.reservation_id, request.product_id, request.quantity
        old = self._reservations.get(reservation_id)
        if old is not None:
            if (old.product_id, old.quantity) != (product_id, quantity):
                raise FailedPrecondition(
                    f"{contract.KEY_REUSED}: reservation {reservation_id} is for {old.quantity} units of "
                    f"{old.product_id}, not {quantity} of {product_id}")
            if old.status == COMMITTED:
                return old
            if old.status == RELEASED:
                raise FailedPrecondition(f"{contract.RESERVATION_RELEASED}: reservation {reservation_id} was released")
        ttl_ms = request.ttl_ms or self.settings.reservation_ttl_s * 1_000
        if old is not None and old.status == HELD:
            outcome = "extended"
        else:  # new, or EXPIRED: the units must be there
            available = self._snapshot(product_id).available
            if available < quantity:
                metrics.RESERVATIONS.labels("out_of_stock").inc()
                raise FailedPrecondition(f"{contract.OUT_OF_STOCK}: product {product_id} has {available} units "
                                         f"available, {quantity} asked")
            outcome = "held"
        new = Reservation(reservation_id, product_id, quantity, HELD, self.clock.wall_ms() + ttl_ms)
        await self._apply_then_write(old, new, self.clock.monotonic_ms() + ttl_ms)
        metrics.RESERVATIONS.labels(outcome).inc()
        return new

    async def _commit(self, reservation_id: str) -> Reservation:
        old = self._found(reservation_id)
        if old.status == COMMITTED:
            return old
        if old.status == RELEASED:
            raise FailedPrecondition(f"{contract.RESERVATION_RELEASED}: reservation {reservation_id} was released")
        if old.status == EXPIRED:
            raise FailedPrecondition(f"{contract.RESERVATION_EXPIRED}: reservation {reservation_id} expired at "
                                     f"{old.expires_at_unix_ms} (Unix ms); reserve it again")
        new = replace(old, status=COMMITTED, expires_at_unix_ms=0)
        await self._apply_then_write(old, new, None)
        metrics.RESERVATIONS.labels("committed").inc()
        return new

    async def _release(self, reservation_id: str) -> Reservation:
        old = self._found(reservation_id)
        if old.status in (RELEASED, EXPIRED):
            return old
        if old.status == COMMITTED:
            raise FailedPrecondition(f"{contract.RESERVATION_COMMITTED}: reservation {reservation_id} was committed "
                                     "(sold units are not given back)")
        new = replace(old, status=RELEASED)
        self._writing.add(reservation_id)  # units are given back only once the release is durable
        try:
            await self.store.write_reservations([new])
        finally:
            self._writing.discard(reservation_id)
        self._change(old, new, None)
        self._unrecorded.pop(reservation_id, None)
        metrics.RESERVATIONS.labels("released").inc()
        return new

    async def _found_now(self, reservation_id: str) -> Reservation:
        return self._found(reservation_id)

    async def _audit(self) -> AuditReport:
        expiry = self._expire_due(REQUEST)
        report = self._audited()
        await self._recorded(expiry)
        return report

    # -- state --------------------------------------------------------------------------------------------------------

    def _found(self, reservation_id: str) -> Reservation:
        reservation = self._reservations.get(reservation_id)
        if reservation is None:
            raise NotFound(f"reservation {reservation_id} does not exist")
        return reservation

    def _level(self, product_id: str) -> _Level:
        level = self._levels.get(product_id)
        if level is None:
            level = self._levels[product_id] = _Level()
        return level

    def _snapshot(self, product_id: str) -> StockLevel:
        level = self._levels.get(product_id) or _Level()
        return StockLevel(product_id, level.stocked, level.held, level.committed)

    def _change(self, old: Reservation | None, new: Reservation | None, deadline_ms: int | None) -> None:
        """Replace reservation ``old`` (``None``: none) by ``new`` (``None``: forget ``old``) in memory: the stock
        levels, the units-held total and the deadlines follow; ``deadline_ms`` is ``new``'s monotonic deadline when it
        is HELD."""
        for reservation, sign in ((old, -1), (new, 1)):
            if reservation is None:
                continue
            if reservation.status == HELD:
                self._level(reservation.product_id).held += sign * reservation.quantity
                self._units_held += sign * reservation.quantity
            elif reservation.status == COMMITTED:
                self._level(reservation.product_id).committed += sign * reservation.quantity
        if new is None:
            if old is not None:
                del self._reservations[old.reservation_id]
                self._deadlines.discard(old.reservation_id)
        else:
            self._reservations[new.reservation_id] = new
            if new.status == HELD and deadline_ms is not None:
                self._deadlines.set(new.reservation_id, deadline_ms)
            else:
                self._deadlines.discard(new.reservation_id)
        metrics.held(self._units_held, len(self._deadlines))

    async def _apply_then_write(self, old: Reservation | None, new: Reservation, deadline_ms: int | None) -> None:
        """Change ``old`` into ``new`` in memory now (taking units, or moving none), then write ``new``; when the
        write fails, change it back and raise StoreUnavailable."""
        reservation_id = new.reservation_id
        previous_deadline = self._deadlines.get(reservation_id)
        self._change(old, new, deadline_ms)
        self._writing.add(reservation_id)
        try:
            await self.store.write_reservations([new])
        except StoreUnavailable:
            self._change(new, old, previous_deadline)
            raise
        finally:
            self._writing.discard(reservation_id)
        self._unrecorded.pop(reservation_id, None)

    def _expire_due(self, trigger: str) -> _Expiry | None:
        """Expire, in memory and at once, every HELD reservation whose deadline has passed (but those being written)
        and queue their record; ``None`` when none was due."""
        due = [reservation_id for reservation_id in self._deadlines.due(self.clock.monotonic_ms())
               if reservation_id not in self._writing]
        if not due:
            return None
        expired = []
        for reservation_id in due:
            old = self._reservations[reservation_id]
            new = replace(old, status=EXPIRED)
            self._change(old, new, None)
            expired.append(new)
        self._expired += len(expired)
        metrics.EXPIRIES.labels(trigger).inc(len(expired))
        metrics.RESERVATIONS.labels("expired").inc(len(expired))
        try:
            return _Expiry(expired, self.store.write_reservations(expired))
        except StoreUnavailable:
            self._unrecorded.update((record.reservation_id, record) for record in expired)
            return _Expiry(expired, None)

    async def _recorded(self, expiry: _Expiry | None) -> None:
        """Wait for ``expiry``'s record; when it fails, keep the records for the next sweep (the expiry stands)."""
        if expiry is None or expiry.written is None:
            return
        try:
            await expiry.written
        except StoreUnavailable as error:
            log.warning("%d expired reservations not recorded (the next sweep retries): %s", len(expiry.records),
                        error)
            self._unrecorded.update((record.reservation_id, record) for record in expiry.records)

    def _audited(self) -> AuditReport:
        held: defaultdict[str, int] = defaultdict(int)
        committed: defaultdict[str, int] = defaultdict(int)
        stocked: defaultdict[str, int] = defaultdict(int)
        held_reservations = 0
        for reservation in self._reservations.values():
            if reservation.status == HELD:
                held[reservation.product_id] += reservation.quantity
                held_reservations += 1
            elif reservation.status == COMMITTED:
                committed[reservation.product_id] += reservation.quantity
        for restock in self._restocks.values():
            stocked[restock.product_id] += restock.quantity
        violations = []
        products = sorted({*self._levels, *held, *committed, *stocked})
        levels = [self._snapshot(product_id) for product_id in products]
        for level in levels:
            product_id = level.product_id
            for what, counted, summed, source in (
                    ("held", level.held, held[product_id], "its HELD reservations"),
                    ("committed", level.committed, committed[product_id], "its COMMITTED reservations"),
                    ("stocked", level.stocked, stocked[product_id], "its restocks")):
                if counted != summed:
                    violations.append(f"product {product_id}: {what} is {counted} units but {source} sum to {summed}")
            if level.committed + level.held > level.stocked:
                violations.append(f"product {product_id}: oversold: committed {level.committed} + held {level.held} "
                                  f"> stocked {level.stocked}")
        if self._units_held != sum(held.values()):
            violations.append(f"units held total is {self._units_held} but the HELD reservations hold "
                              f"{sum(held.values())}")
        if len(self._deadlines) != held_reservations:
            violations.append(f"{len(self._deadlines)} expiry deadlines for {held_reservations} HELD reservations")
        return AuditReport(levels, held_reservations, self._expired, violations)


def _unstoppable(operation: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """``operation`` in a task of its own: a cancelled caller (a deadline, a client gone) does not stop it halfway
    between its change in memory and its write."""
    return asyncio.shield(asyncio.create_task(operation))

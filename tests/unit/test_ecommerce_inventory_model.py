"""A hypothesis state machine of the e-commerce inventory against a dictionary model: any sequence of restocks (retried,
or reusing a restock ID for something else), reservations (new, extended, held anew after an expiry, reusing an ID for
another product or quantity, several side by side), commits, releases, reads, time passing, sweeps, a disk that fails
and comes back, and restarts from the file in a process whose monotonic clock has another origin: every answer and
every error is the model's (with the contract's FAILED_PRECONDITION reasons and the statuses of ecommerce.proto), and
after every step the audit finds nothing wrong, no product's available units are negative, ``committed + held <=
stocked``, the expiries since start are the model's, and each reservation reads back as the model has it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.inventory.inventory import Inventory
from casemesh.services.ecommerce.inventory.records import COMMITTED, EXPIRED, HELD, RELEASED, Restock, StockLevel
from casemesh.services.ecommerce.inventory.settings import InventorySettings
from casemesh.services.ecommerce.inventory.store import FILE_NAME, StoreUnavailable
from casemesh.services.ecommerce.inventory.validation import Reserve
from casemesh.services.runtime.errors import FailedPrecondition, NotFound

from .test_ecommerce_inventory import FlakyStore, ManualClock, rid

PRODUCTS = ("p1", "p2")
IDS_COUNT = 6
IDS = st.integers(min_value=0, max_value=IDS_COUNT - 1)
RESTOCK_IDS = st.sampled_from(["r1", "r2", "r3", "r4"])
TTLS = st.sampled_from([0, 1_000, 1_000, 2_000])
DEFAULT_TTL_MS = 600_000


def line(n: int) -> tuple[str, int]:
    """Reservation ``n``'s product and quantity (so that retries of the same reservation are frequent)."""
    return PRODUCTS[n % 2], 1 + n % 3


@dataclass
class Held:
    """The model's reservation."""

    product_id: str
    quantity: int
    status: int
    expires_at: int


class InventoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="ecommerce-inventory-"))
        self.clock = ManualClock()
        self.inventory = self._open()
        self.restocks: dict[str, tuple[str, int]] = {}
        self.reservations: dict[str, Held] = {}
        self.stored: dict[str, tuple[int, int]] = {}  # what the file says: reservation → (status, expires_at)
        self.unrecorded: set[str] = set()  # expired in memory, still HELD in the file
        self.expired = 0
        self.failing = False

    def _open(self) -> Inventory:
        inventory = Inventory(FlakyStore(self.folder / FILE_NAME), InventorySettings(), self.clock)
        self.run(inventory.start())
        return inventory

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    # -- the model ----------------------------------------------------------------------------------------------------

    def expire(self) -> None:
        """What every request does first: expire the HELD reservations whose TTL has run out, and record that."""
        for reservation_id, held in sorted(self.reservations.items()):
            if held.status == HELD and held.expires_at <= self.clock.wall:
                held.status = EXPIRED
                self.expired += 1
                if self.failing:
                    self.unrecorded.add(reservation_id)
                else:
                    self.stored[reservation_id] = (EXPIRED, held.expires_at)

    def written(self, reservation_id: str) -> None:
        held = self.reservations[reservation_id]
        self.stored[reservation_id] = (held.status, held.expires_at)
        self.unrecorded.discard(reservation_id)

    def level(self, product_id: str) -> StockLevel:
        def units(status: int) -> int:
            return sum(h.quantity for h in self.reservations.values()
                       if h.product_id == product_id and h.status == status)

        stocked = sum(q for p, q in self.restocks.values() if p == product_id)
        return StockLevel(product_id, stocked, units(HELD), units(COMMITTED))

    def expect_reason(self, call, reason: str) -> None:
        with pytest.raises(FailedPrecondition) as error:
            self.run(call)
        assert contract.failed_precondition_reason(str(error.value)) == reason, error.value

    def expect_unavailable(self, call) -> None:
        with pytest.raises(StoreUnavailable):
            self.run(call)

    def reserve_one(self, n: int, product_id: str, quantity: int, ttl_ms: int):
        """The model's answer to Reserve: ``(reason or None, True when it writes)``, changing the model when it does."""
        reservation_id = rid(n)
        old = self.reservations.get(reservation_id)
        if old is not None:
            if (old.product_id, old.quantity) != (product_id, quantity):
                return contract.KEY_REUSED, False
            if old.status == COMMITTED:
                return None, False
            if old.status == RELEASED:
                return contract.RESERVATION_RELEASED, False
        if (old is None or old.status == EXPIRED) and self.level(product_id).available < quantity:
            return contract.OUT_OF_STOCK, False
        if self.failing:
            return "unavailable", False
        self.reservations[reservation_id] = Held(product_id, quantity, HELD,
                                                 self.clock.wall + (ttl_ms or DEFAULT_TTL_MS))
        self.written(reservation_id)
        return None, True

    # -- rules --------------------------------------------------------------------------------------------------------

    @initialize(units=st.integers(1, 4))
    def stock_both(self, units: int) -> None:
        for product_id in PRODUCTS:
            self.restock(f"r0-{product_id}", product_id, units)

    @rule(restock_id=RESTOCK_IDS, product_id=st.sampled_from(PRODUCTS), quantity=st.integers(1, 5))
    def restock(self, restock_id: str, product_id: str, quantity: int) -> None:
        call = self.inventory.restock(Restock(restock_id, product_id, quantity))
        done = self.restocks.get(restock_id)
        if done is not None and done != (product_id, quantity):
            self.expect_reason(call, contract.KEY_REUSED)
            return
        if done is None and self.failing:
            self.expect_unavailable(call)
            return
        self.restocks[restock_id] = (product_id, quantity)
        level = self.run(call)
        self.expire()
        assert level == self.level(product_id)

    @rule(n=IDS, ttl_ms=TTLS, other=st.sampled_from([None] * 6 + ["product", "quantity"]))
    def reserve(self, n: int, ttl_ms: int, other: str | None) -> None:
        product_id, quantity = line(n)
        if other == "product":
            product_id = PRODUCTS[(n + 1) % 2]
        elif other == "quantity":
            quantity += 1
        call = self.inventory.reserve(Reserve(rid(n), product_id, quantity, ttl_ms))
        self.expire()
        reason, _ = self.reserve_one(n, product_id, quantity, ttl_ms)
        if reason == "unavailable":
            self.expect_unavailable(call)
        elif reason is not None:
            self.expect_reason(call, reason)
        else:
            reservation = self.run(call)
            held = self.reservations[rid(n)]
            assert (reservation.product_id, reservation.quantity, reservation.status,
                    reservation.expires_at_unix_ms) == (held.product_id, held.quantity, held.status, held.expires_at)

    @precondition(lambda self: not self.failing)
    @rule(ids=st.lists(IDS, min_size=2, max_size=5, unique=True))
    def reserve_side_by_side(self, ids: list[int]) -> None:
        requests = [(n, *line(n)) for n in ids]

        async def together():
            return await asyncio.gather(*(self.inventory.reserve(Reserve(rid(n), p, q, 1_000)) for n, p, q in requests),
                                        return_exceptions=True)

        answers = self.run(together())
        self.expire()
        for (n, product_id, quantity), answer in zip(requests, answers, strict=True):
            reason, _ = self.reserve_one(n, product_id, quantity, 1_000)
            if reason is None:
                assert answer.status in (HELD, COMMITTED), answer
            else:
                assert contract.failed_precondition_reason(str(answer)) == reason, (answer, reason)

    @rule(n=IDS)
    def commit(self, n: int) -> None:
        call = self.inventory.commit(rid(n))
        self.expire()
        held = self.reservations.get(rid(n))
        if held is None:
            with pytest.raises(NotFound):
                self.run(call)
        elif held.status in (RELEASED, EXPIRED):
            self.expect_reason(call, contract.RESERVATION_RELEASED if held.status == RELEASED
                               else contract.RESERVATION_EXPIRED)
        elif held.status == HELD and self.failing:
            self.expect_unavailable(call)
        else:
            if held.status == HELD:
                held.status, held.expires_at = COMMITTED, 0
                self.written(rid(n))
            reservation = self.run(call)
            assert (reservation.status, reservation.expires_at_unix_ms) == (COMMITTED, 0)

    @rule(n=IDS)
    def release(self, n: int) -> None:
        call = self.inventory.release(rid(n))
        self.expire()
        held = self.reservations.get(rid(n))
        if held is None:
            with pytest.raises(NotFound):
                self.run(call)
        elif held.status == COMMITTED:
            self.expect_reason(call, contract.RESERVATION_COMMITTED)
        elif held.status == HELD and self.failing:
            self.expect_unavailable(call)
        else:
            if held.status == HELD:
                held.status = RELEASED
                self.written(rid(n))
            reservation = self.run(call)
            assert (reservation.status, reservation.expires_at_unix_ms) == (held.status, held.expires_at)

    def existing(self, pick: int) -> int:
        """One of the reservations made so far (its number)."""
        made = [n for n in range(IDS_COUNT) if rid(n) in self.reservations]
        return made[pick % len(made)]

    @precondition(lambda self: self.reservations)
    @rule(pick=st.integers(0, 100), ttl_ms=TTLS)
    def reserve_again(self, pick: int, ttl_ms: int) -> None:
        self.reserve(self.existing(pick), ttl_ms, None)

    @precondition(lambda self: self.reservations)
    @rule(pick=st.integers(0, 100))
    def commit_one_made(self, pick: int) -> None:
        self.commit(self.existing(pick))

    @precondition(lambda self: self.reservations)
    @rule(pick=st.integers(0, 100))
    def release_one_made(self, pick: int) -> None:
        self.release(self.existing(pick))

    @rule(product_id=st.sampled_from(PRODUCTS))
    def get_stock(self, product_id: str) -> None:
        level = self.run(self.inventory.stock(product_id))
        self.expire()
        assert level == self.level(product_id)

    @rule(ms=st.sampled_from([400, 1_000, 2_500]))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def sweep(self) -> None:
        self.run(self.inventory.sweep())
        self.expire()
        if not self.failing:
            for reservation_id in self.unrecorded:
                self.stored[reservation_id] = (EXPIRED, self.reservations[reservation_id].expires_at)
            self.unrecorded.clear()

    @rule(failing=st.booleans())
    def disk(self, failing: bool) -> None:
        self.failing = self.inventory.store.failing = failing

    @rule(origin=st.integers(min_value=0, max_value=10**9))
    def restart(self, origin: int) -> None:
        self.run(self.inventory.close())
        self.clock.monotonic = origin  # another process, another monotonic origin
        self.failing = False
        self.inventory = self._open()
        for reservation_id, (status, expires_at) in self.stored.items():
            held = self.reservations[reservation_id]
            held.status, held.expires_at = status, expires_at
        self.unrecorded.clear()
        self.expired = 0
        self.expire()  # what expired while the service was down

    # -- invariants ---------------------------------------------------------------------------------------------------

    @invariant()
    def the_inventory_is_the_model(self) -> None:
        report = self.run(self.inventory.audit())
        self.expire()
        assert report.violations == []
        products = sorted({p for p, _ in self.restocks.values()} | {h.product_id for h in self.reservations.values()})
        assert report.stock == [self.level(p) for p in products]
        for level in report.stock:
            assert level.available >= 0 and level.committed + level.held <= level.stocked
        assert report.held_reservations == sum(h.status == HELD for h in self.reservations.values())
        assert report.expired_reservations == self.expired
        for reservation_id, held in self.reservations.items():
            reservation = self.run(self.inventory.reservation(reservation_id))
            assert (reservation.product_id, reservation.quantity, reservation.status,
                    reservation.expires_at_unix_ms) == (held.product_id, held.quantity, held.status, held.expires_at)

    def teardown(self) -> None:
        self.run(self.inventory.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestInventoryModel = InventoryMachine.TestCase
TestInventoryModel.settings = hypothesis_settings(max_examples=50, stateful_step_count=50, deadline=None)

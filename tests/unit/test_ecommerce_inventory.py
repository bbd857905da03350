"""The e-commerce inventory's domain without gRPC (services/ecommerce/inventory): Reserve takes units only when they
are all available, even for concurrent callers; every idempotent path of Reserve, Commit, Release and Restock with the
contract's FAILED_PRECONDITION reasons; the TTL (the service's default, exact expiry before availability is read, the
sweeper, expiry on restart, a monotonic clock that differs across restarts); a file that fails leaves nothing changed
and expiries whose record failed are written by the next sweep; a cancelled caller does not stop a change halfway;
the input rules name the proto's fields.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from casemesh.ecommerce.v1 import inventory_pb2
from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.inventory import validation
from casemesh.services.ecommerce.inventory.expiry import Clock, Deadlines, Sweeper
from casemesh.services.ecommerce.inventory.inventory import Inventory
from casemesh.services.ecommerce.inventory.records import COMMITTED, EXPIRED, HELD, RELEASED, Restock, StockLevel
from casemesh.services.ecommerce.inventory.settings import InventorySettings
from casemesh.services.ecommerce.inventory.store import FILE_NAME, InventoryStore, StoreUnavailable
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

WALL_START_MS = 1_700_000_000_000


class ManualClock(Clock):
    """A clock the test moves: wall and monotonic time advance together; ``monotonic_origin`` differs per process."""

    def __init__(self, wall_ms: int = WALL_START_MS, monotonic_origin_ms: int = 5_000) -> None:
        self.wall = wall_ms
        self.monotonic = monotonic_origin_ms

    def wall_ms(self) -> int:
        return self.wall

    def monotonic_ms(self) -> int:
        return self.monotonic

    def advance(self, ms: int) -> None:
        self.wall += ms
        self.monotonic += ms


class FlakyStore(InventoryStore):
    """A store whose disk fails while ``failing`` is set (every commit raises a disk I/O error) and whose commits can
    be held back by clearing ``gate``."""

    failing = False

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.gate.set()

    async def _commit_queued(self) -> None:
        await self.gate.wait()
        await super()._commit_queued()

    def _commit(self, writes) -> None:
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        super()._commit(writes)


def rid(n: int) -> str:
    """A valid reservation ID numbered ``n``."""
    return "rsv_" + "".join("abcdefghijklmnopqrstuvwxyz234567"[(n >> (5 * i)) & 31] for i in range(24))


async def opened(folder: Path, clock: ManualClock, **settings) -> Inventory:
    inventory = Inventory(FlakyStore(folder / FILE_NAME), InventorySettings(**settings), clock)
    await inventory.start()
    return inventory


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def inventory(tmp_path, clock):
    inventory = await opened(tmp_path, clock)
    yield inventory
    await inventory.close()


def reserve(n: int, product: str = "p1", quantity: int = 1, ttl_ms: int = 0) -> validation.Reserve:
    return validation.Reserve(rid(n), product, quantity, ttl_ms)


async def reason(call) -> str:
    with pytest.raises(FailedPrecondition) as error:
        await call
    return contract.failed_precondition_reason(str(error.value))


async def test_reserve_takes_units_only_when_all_are_available(inventory, clock):
    assert await inventory.stock("p1") == StockLevel("p1", 0, 0, 0)
    assert await reason(inventory.reserve(reserve(1))) == contract.OUT_OF_STOCK
    assert await inventory.restock(Restock("r1", "p1", 5)) == StockLevel("p1", 5, 0, 0)
    held = await inventory.reserve(reserve(1, quantity=3, ttl_ms=2_000))
    assert (held.status, held.expires_at_unix_ms, held.quantity) == (HELD, clock.wall + 2_000, 3)
    assert await reason(inventory.reserve(reserve(2, quantity=3))) == contract.OUT_OF_STOCK
    await inventory.reserve(reserve(2, quantity=2))
    level = await inventory.stock("p1")
    assert (level.held, level.available) == (5, 0)
    await inventory.commit(rid(1))
    await inventory.release(rid(2))
    assert await inventory.stock("p1") == StockLevel("p1", 5, 0, 3)
    report = await inventory.audit()
    assert report.violations == [] and report.stock == [StockLevel("p1", 5, 0, 3)]


async def test_concurrent_reservations_never_oversell(inventory):
    await inventory.restock(Restock("r1", "hot", 10))
    answers = await asyncio.gather(*(inventory.reserve(reserve(n, "hot", quantity=1 + n % 3)) for n in range(40)),
                                   return_exceptions=True)
    held = [a for a in answers if not isinstance(a, BaseException)]
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert all(contract.failed_precondition_reason(str(e)) == contract.OUT_OF_STOCK for e in refused)
    level = await inventory.stock("hot")
    assert level.held == sum(r.quantity for r in held) and level.held + level.committed <= 10
    assert level.available == 0  # a one-unit request came after every other
    assert (await inventory.audit()).violations == []


async def test_reserve_is_idempotent_on_its_id(inventory, clock):
    await inventory.restock(Restock("r1", "p1", 4))
    first = await inventory.reserve(reserve(1, quantity=2, ttl_ms=5_000))
    clock.advance(1_000)
    extended = await inventory.reserve(reserve(1, quantity=2, ttl_ms=5_000))
    assert extended.expires_at_unix_ms == first.expires_at_unix_ms + 1_000 and extended.status == HELD
    assert (await inventory.stock("p1")).held == 2  # extending holds nothing more
    assert await reason(inventory.reserve(reserve(1, quantity=3))) == contract.KEY_REUSED
    assert await reason(inventory.reserve(reserve(1, "p2", quantity=2))) == contract.KEY_REUSED
    committed = await inventory.commit(rid(1))
    assert (committed.status, committed.expires_at_unix_ms) == (COMMITTED, 0)
    assert await inventory.reserve(reserve(1, quantity=2)) == committed
    await inventory.reserve(reserve(2, quantity=1))
    await inventory.release(rid(2))
    assert await reason(inventory.reserve(reserve(2, quantity=1))) == contract.RESERVATION_RELEASED


async def test_an_expired_reservation_is_held_anew_only_if_the_units_are_there(inventory, clock):
    await inventory.restock(Restock("r1", "p1", 3))
    await inventory.reserve(reserve(1, quantity=2, ttl_ms=1_000))
    clock.advance(1_000)  # its deadline: expired from now on
    assert (await inventory.reservation(rid(1))).status == EXPIRED
    await inventory.reserve(reserve(2, quantity=2))
    assert await reason(inventory.reserve(reserve(1, quantity=2))) == contract.OUT_OF_STOCK
    await inventory.release(rid(2))
    again = await inventory.reserve(reserve(1, quantity=2, ttl_ms=1_000))
    assert (again.status, again.expires_at_unix_ms) == (HELD, clock.wall + 1_000)
    assert (await inventory.stock("p1")).held == 2


async def test_commit_and_release_answers(inventory, clock):
    await inventory.restock(Restock("r1", "p1", 10))
    with pytest.raises(NotFound):
        await inventory.commit(rid(9))
    with pytest.raises(NotFound):
        await inventory.release(rid(9))
    with pytest.raises(NotFound):
        await inventory.reservation(rid(9))
    await inventory.reserve(reserve(1, ttl_ms=1_000))
    clock.advance(1_500)
    assert await reason(inventory.commit(rid(1))) == contract.RESERVATION_EXPIRED
    assert (await inventory.release(rid(1))).status == EXPIRED  # returned as it is
    await inventory.reserve(reserve(2))
    released = await inventory.release(rid(2))
    assert released.status == RELEASED and await inventory.release(rid(2)) == released
    assert await reason(inventory.commit(rid(2))) == contract.RESERVATION_RELEASED
    await inventory.reserve(reserve(3))
    committed = await inventory.commit(rid(3))
    assert await inventory.commit(rid(3)) == committed
    assert await reason(inventory.release(rid(3))) == contract.RESERVATION_COMMITTED
    assert await inventory.reservation(rid(3)) == committed


async def test_restock_is_idempotent_on_its_id(inventory):
    assert (await inventory.restock(Restock("r1", "p1", 5))).stocked == 5
    assert (await inventory.restock(Restock("r1", "p1", 5))).stocked == 5
    assert await reason(inventory.restock(Restock("r1", "p1", 6))) == contract.KEY_REUSED
    assert await reason(inventory.restock(Restock("r1", "p2", 5))) == contract.KEY_REUSED
    assert (await inventory.restock(Restock("r2", "p1", 1))).stocked == 6


async def test_the_default_ttl_is_the_setting(tmp_path, clock):
    inventory = await opened(tmp_path, clock)
    try:
        await inventory.restock(Restock("r1", "p1", 5))
        held = await inventory.reserve(reserve(1))
        assert held.expires_at_unix_ms == clock.wall + contract.DEFAULT_RESERVATION_TTL_S * 1_000
    finally:
        await inventory.close()
    inventory = await opened(tmp_path, clock, reservation_ttl_s=30)
    try:
        assert (await inventory.reserve(reserve(2))).expires_at_unix_ms == clock.wall + 30_000
        clock.advance(30_000)
        assert (await inventory.stock("p1")).held == 1  # the first one still has its 600 s
    finally:
        await inventory.close()


async def test_expiry_is_exact_the_sweeper_records_it_and_a_restart_keeps_it(tmp_path, clock):
    inventory = await opened(tmp_path, clock)
    try:
        await inventory.restock(Restock("r1", "p1", 10))
        for n, ttl in ((1, 1_000), (2, 2_000), (3, 60_000)):
            await inventory.reserve(reserve(n, quantity=2, ttl_ms=ttl))
        clock.advance(999)
        assert (await inventory.stock("p1")).held == 6
        clock.advance(1)
        assert (await inventory.stock("p1")).held == 4  # no sweep needed: the read expired it
        clock.advance(1_000)
        await inventory.sweep()
        report = await inventory.audit()
        assert (report.held_reservations, report.expired_reservations, report.violations) == (1, 2, [])
    finally:
        await inventory.close()
    clock.monotonic = 123  # another process: another monotonic origin
    inventory = await opened(tmp_path, clock)
    try:
        assert [(await inventory.reservation(rid(n))).status for n in (1, 2, 3)] == [EXPIRED, EXPIRED, HELD]
        assert (await inventory.audit()).expired_reservations == 0  # recorded before the restart
        clock.advance(57_999)
        assert (await inventory.reservation(rid(3))).status == HELD
    finally:
        await inventory.close()
    clock.advance(1)  # reservation 3 runs out while the service is down
    clock.monotonic = 10_000_000
    inventory = await opened(tmp_path, clock)
    try:
        report = await inventory.audit()
        assert (report.held_reservations, report.expired_reservations, report.violations) == (0, 1, [])
        assert (await inventory.reservation(rid(3))).status == EXPIRED
        assert await inventory.stock("p1") == StockLevel("p1", 10, 0, 0)
    finally:
        await inventory.close()


async def test_a_failed_write_changes_nothing(inventory, clock):
    await inventory.restock(Restock("r1", "p1", 5))
    await inventory.reserve(reserve(1, quantity=2, ttl_ms=10_000))
    await inventory.reserve(reserve(2, quantity=1, ttl_ms=10_000))
    await inventory.commit(rid(2))
    before = await inventory.stock("p1")
    inventory.store.failing = True
    for call in (inventory.reserve(reserve(3)), inventory.reserve(reserve(1, quantity=2)),
                 inventory.commit(rid(1)), inventory.release(rid(1)), inventory.restock(Restock("r2", "p1", 3))):
        with pytest.raises(StoreUnavailable):
            await call
    assert await inventory.stock("p1") == before
    one = await inventory.reservation(rid(1))
    assert (one.status, one.expires_at_unix_ms) == (HELD, WALL_START_MS + 10_000)
    with pytest.raises(NotFound):
        await inventory.reservation(rid(3))
    assert await inventory.commit(rid(2)) == await inventory.reservation(rid(2))  # replays need no write
    assert (await inventory.audit()).violations == []
    inventory.store.failing = False
    assert (await inventory.reserve(reserve(3))).status == HELD
    assert (await inventory.restock(Restock("r2", "p1", 3))).stocked == 8


async def test_an_expiry_whose_record_failed_is_written_by_the_next_sweep(tmp_path, clock):
    inventory = await opened(tmp_path, clock)
    try:
        await inventory.restock(Restock("r1", "p1", 5))
        await inventory.reserve(reserve(1, quantity=5, ttl_ms=1_000))
        clock.advance(1_000)
        inventory.store.failing = True
        assert (await inventory.stock("p1")).available == 5  # expired all the same: a fact of time
        await inventory.sweep()  # the disk still fails: kept for later
        inventory.store.failing = False
        await inventory.sweep()
    finally:
        await inventory.close()
    clock.wall -= 3_600_000  # the wall clock jumps back an hour: the recorded expiry stands
    inventory = await opened(tmp_path, clock)
    try:
        assert (await inventory.reservation(rid(1))).status == EXPIRED
        assert (await inventory.audit()).expired_reservations == 0
    finally:
        await inventory.close()


async def test_a_reservation_being_written_is_not_expired_under_it(inventory, clock):
    await inventory.restock(Restock("r1", "p1", 5))
    inventory.store.gate.clear()  # the disk is slow
    call = asyncio.create_task(inventory.reserve(reserve(1, quantity=5, ttl_ms=1_000)))
    await asyncio.sleep(0.05)
    clock.advance(5_000)  # its TTL runs out while it is being written
    report = await inventory.audit()
    assert (report.held_reservations, report.expired_reservations, report.violations) == (1, 0, [])
    inventory.store.gate.set()
    assert (await call).status == HELD
    assert await inventory.stock("p1") == StockLevel("p1", 5, 0, 0)  # expired by the next request
    assert (await inventory.reservation(rid(1))).status == EXPIRED


async def test_a_release_gives_units_back_only_once_written(inventory):
    await inventory.restock(Restock("r1", "p1", 2))
    await inventory.reserve(reserve(1, quantity=2))
    inventory.store.gate.clear()
    release = asyncio.create_task(inventory.release(rid(1)))
    await asyncio.sleep(0.05)
    assert (await inventory.stock("p1")).available == 0  # not yet durable: not yet available
    inventory.store.gate.set()
    assert (await release).status == RELEASED
    assert (await inventory.stock("p1")).available == 2


async def test_a_cancelled_caller_does_not_stop_a_change(inventory):
    await inventory.restock(Restock("r1", "p1", 2))
    inventory.store.gate.clear()
    call = asyncio.create_task(inventory.reserve(reserve(1, quantity=2)))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    inventory.store.gate.set()
    assert (await inventory.reservation(rid(1))).status == HELD  # waits for the write, which went on
    assert (await inventory.stock("p1")).held == 2


async def test_the_sweeper_sweeps_until_stopped():
    swept = asyncio.Event()
    runs = []

    async def sweep() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("a failed sweep is logged; the next one runs")
        swept.set()

    sweeper = Sweeper(sweep, 10)
    sweeper.start()
    await asyncio.wait_for(swept.wait(), 10)
    await sweeper.stop()
    count = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == count >= 2


def test_deadlines_are_found_in_order():
    deadlines = Deadlines()
    deadlines.set("b", 20)
    deadlines.set("a", 10)
    deadlines.set("c", 30)
    deadlines.set("a", 25)  # moved
    assert deadlines.due(24) == ["b"] and deadlines.due(30) == ["b", "a", "c"]
    deadlines.discard("b")
    deadlines.discard("b")
    assert (deadlines.due(100), deadlines.get("a"), deadlines.get("b"), len(deadlines)) == (["a", "c"], 25, None, 2)


def _invalid(check, request) -> str:
    with pytest.raises(InvalidArgument) as error:
        check(request)
    return error.value.field


def test_the_input_rules_name_the_fields():
    good = {"reservation_id": rid(1), "product_id": "p-1_A", "quantity": 1000, "ttl_ms": 3_600_000}
    assert validation.reserve(inventory_pb2.ReserveRequest(**good)) == validation.Reserve(rid(1), "p-1_A", 1000,
                                                                                          3_600_000)
    assert validation.reserve(inventory_pb2.ReserveRequest(**{**good, "ttl_ms": 0})).ttl_ms == 0
    for change, field in (({"reservation_id": ""}, "reservation_id"), ({"reservation_id": "rsv_abc"}, "reservation_id"),
                          ({"reservation_id": rid(1).upper()}, "reservation_id"), ({"product_id": ""}, "product_id"),
                          ({"product_id": "p 1"}, "product_id"), ({"product_id": "p" * 65}, "product_id"),
                          ({"quantity": 0}, "quantity"), ({"quantity": 1001}, "quantity"),
                          ({"ttl_ms": 999}, "ttl_ms"), ({"ttl_ms": -1}, "ttl_ms"), ({"ttl_ms": 3_600_001}, "ttl_ms"),
                          ({"reservation_id": "", "quantity": 0}, "reservation_id")):
        assert _invalid(validation.reserve, inventory_pb2.ReserveRequest(**{**good, **change})) == field
    restock = {"restock_id": "r-1", "product_id": "p1", "quantity": 1_000_000}
    assert validation.restock(inventory_pb2.RestockRequest(**restock)) == Restock("r-1", "p1", 1_000_000)
    for change, field in (({"restock_id": ""}, "restock_id"), ({"restock_id": "r/1"}, "restock_id"),
                          ({"product_id": ""}, "product_id"), ({"quantity": 0}, "quantity"),
                          ({"quantity": 1_000_001}, "quantity")):
        assert _invalid(validation.restock, inventory_pb2.RestockRequest(**{**restock, **change})) == field
    assert _invalid(validation.reservation_id, "") == "reservation_id"
    assert _invalid(validation.product_id, "ü") == "product_id"


def test_the_settings_refuse_unknown_keys_and_bad_values():
    assert InventorySettings() == InventorySettings(reservation_ttl_s=600, sweep_interval_ms=500, max_commit_writes=256)
    for bad in ({"ttl": 5}, {"reservation_ttl_s": 0}, {"reservation_ttl_s": 3_601}, {"sweep_interval_ms": 0}):
        with pytest.raises(ValueError):
            InventorySettings(**bad)


async def test_a_closed_store_answers_unavailable(tmp_path):
    store = InventoryStore(tmp_path / FILE_NAME)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.load()
    with pytest.raises(StoreUnavailable):
        await store.add_restock(Restock("r1", "p1", 1))

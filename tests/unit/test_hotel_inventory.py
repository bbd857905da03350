"""The hotel room inventory's domain (services/hotel/inventory) without gRPC: settings, validation naming the field,
room types, lazily made room-nights, holds all or none over a stay, idempotent hold IDs (from memory and from the
file), confirmation, release, hold expiry (lazy and by the sweeper, with a clock of the test's own), the overbooking
allowance, durability (a new inventory on the same file has the same state), the store's group commit and version
check, the audit (a clean inventory, and rows corrupted behind its back), and isolation under concurrency: N holds
racing for the last rooms of the same nights never oversell in either lock mode; the optimistic mode ABORTs the losers
of each race, the pessimistic mode queues them.

No test depends on how fast the machine is: concurrent holds all read before the first group commit returns because
none of them awaits before its write, not because of sleeps.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2
from casemesh.services.hotel import contract
from casemesh.services.hotel.inventory import validation
from casemesh.services.hotel.inventory.expiry import ExpiryQueue, run_sweeper
from casemesh.services.hotel.inventory.inventory import HoldRequest, NoAvailability, RoomInventory
from casemesh.services.hotel.inventory.records import (
    CONFIRMED,
    EXPIRED,
    HELD,
    RELEASED,
    Change,
    HoldRecord,
    NightChange,
    RoomTypeRecord,
    Stay,
)
from casemesh.services.hotel.inventory.settings import InventorySettings, LockMode
from casemesh.services.hotel.inventory.store import FILE_NAME, InventoryStore, StoreUnavailable, VersionConflict
from casemesh.services.runtime.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

T0 = 1_800_000_000_000  # the tests' clock starts here (Unix ms)
JUNE = date(2030, 6, 1)
MODES = (LockMode.PESSIMISTIC, LockMode.OPTIMISTIC)


class Clock:
    """A clock the test moves (Unix ms)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def hold_id(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    digits = []
    for _ in range(24):
        n, digit = divmod(n, 32)
        digits.append(alphabet[digit])
    return "hold_" + "".join(reversed(digits))


def stay(check_in: date = JUNE, nights: int = 2, rooms: int = 1, room_type: str = "double") -> Stay:
    return Stay("grand", room_type, check_in, nights, rooms)


def request(n: int, check_in: date = JUNE, nights: int = 2, rooms: int = 1, ttl_ms: int = 0,
            room_type: str = "double") -> HoldRequest:
    return HoldRequest(hold_id(n), stay(check_in, nights, rooms, room_type), ttl_ms)


ROOM_TYPE = RoomTypeRecord("grand", "double", "Double, sea view", 3, "EUR", 12_000)


async def make(folder: Path, clock: Clock | None = None, **settings) -> RoomInventory:
    inventory = RoomInventory(InventoryStore(folder / FILE_NAME), InventorySettings(**settings), clock or Clock())
    await inventory.start()
    return inventory


@pytest.fixture
async def inventory(tmp_path):
    inventory = await make(tmp_path)
    await inventory.add_room_type(ROOM_TYPE)
    yield inventory
    await inventory.close()


def counts(inventory: RoomInventory, check_in: date = JUNE, nights: int = 2) -> list[tuple[int, int, int]]:
    """(booked, held, version) of each night of the stay."""
    _, views = inventory.availability("grand", "double", check_in, nights)
    return [(v.booked, v.held, v.version) for v in views]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ----------------------------------------------------------------------------- contract, settings, validation


def test_the_contract_rules_the_inventory_uses():
    assert contract.is_hold_id(hold_id(7)) and not contract.is_hold_id("hold_" + "1" * 24)
    assert contract.parse_night("2030-02-28") == date(2030, 2, 28) and contract.parse_night("2030-02-30") is None
    assert contract.stay_nights(date(2030, 12, 31), 2) == [date(2030, 12, 31), date(2031, 1, 1)]
    assert contract.failed_precondition_reason("no_availability: 2030-06-01 has 0 available") == "no_availability"


def test_settings_defaults_refusals_and_the_sellable_rooms():
    settings = InventorySettings()
    assert (settings.lock_mode, settings.overbooking_allowance_pct, settings.hold_ttl_s, settings.sweep_interval_ms,
            settings.max_commit_writes, settings.recent_final_holds) == (LockMode.PESSIMISTIC, 0, 600, 1_000, 256,
                                                                        100_000)
    assert InventorySettings(lock_mode="optimistic").lock_mode is LockMode.OPTIMISTIC
    for bad in ({"lock_mode": "none"}, {"overbooking_allowance_pct": 51}, {"overbooking_allowance_pct": -1},
                {"hold_ttl_s": 0}, {"sweep_interval_ms": 10}, {"max_commit_writes": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            InventorySettings(**bad)
    with pytest.raises(ValidationError):
        settings.hold_ttl_s = 5  # frozen
    assert [settings.sellable(rooms) for rooms in (1, 10, 100)] == [1, 10, 100]
    ten = InventorySettings(overbooking_allowance_pct=10)
    assert [ten.sellable(rooms) for rooms in (1, 9, 10, 25, 100)] == [1, 9, 11, 27, 110]


def _room_type(**changes) -> inventory_pb2.AddRoomTypeRequest:
    fields = {"hotel_id": "grand", "room_type_id": "double", "name": "Double", "rooms": 3,
              "nightly_rate": money_pb2.Money(currency_code="EUR", amount_minor=12_000)}
    fields.update(changes)
    return inventory_pb2.AddRoomTypeRequest(room_type=hotel_pb2.RoomType(**fields))


@pytest.mark.parametrize(("changes", "field"), [
    ({"hotel_id": ""}, "room_type.hotel_id"),
    ({"hotel_id": "a b"}, "room_type.hotel_id"),
    ({"room_type_id": "r" * 65}, "room_type.room_type_id"),
    ({"name": ""}, "room_type.name"),
    ({"name": "n" * 101}, "room_type.name"),
    ({"rooms": 0}, "room_type.rooms"),
    ({"rooms": 10_001}, "room_type.rooms"),
    ({"nightly_rate": None}, "room_type.nightly_rate.currency_code"),
    ({"nightly_rate": money_pb2.Money(currency_code="eur", amount_minor=1)}, "room_type.nightly_rate.currency_code"),
    ({"nightly_rate": money_pb2.Money(currency_code="EUR", amount_minor=0)}, "room_type.nightly_rate.amount_minor"),
    ({"nightly_rate": money_pb2.Money(currency_code="EUR", amount_minor=10_000_001)},
     "room_type.nightly_rate.amount_minor"),
])
def test_add_room_type_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.add_room_type(_room_type(**changes))
    assert error.value.field == field


def test_add_room_type_validation_accepts_the_limits():
    record = validation.add_room_type(_room_type(name="n" * 100, rooms=10_000, nightly_rate=money_pb2.Money(
        currency_code="EUR", amount_minor=10_000_000)))
    assert (record.rooms, record.rate_minor, record.currency_code) == (10_000, 10_000_000, "EUR")


def _hold(**changes) -> inventory_pb2.HoldRoomsRequest:
    fields = {"hold_id": hold_id(1), "hotel_id": "grand", "room_type_id": "double", "check_in": "2030-06-01",
              "nights": 2, "rooms": 1, "ttl_ms": 0}
    fields.update(changes)
    return inventory_pb2.HoldRoomsRequest(**fields)


@pytest.mark.parametrize(("changes", "field"), [
    ({"hold_id": ""}, "hold_id"),
    ({"hold_id": "hold_" + "A" * 24}, "hold_id"),
    ({"hold_id": "bk_" + "a" * 24}, "hold_id"),
    ({"hotel_id": ""}, "hotel_id"),
    ({"room_type_id": "x/y"}, "room_type_id"),
    ({"check_in": ""}, "check_in"),
    ({"check_in": "2030-6-1"}, "check_in"),
    ({"check_in": "2030-02-30"}, "check_in"),
    ({"check_in": "1999-12-31"}, "check_in"),
    ({"check_in": "2100-01-01"}, "check_in"),
    ({"nights": 0}, "nights"),
    ({"nights": 31}, "nights"),
    ({"check_in": "2099-12-31", "nights": 2}, "nights"),
    ({"rooms": 0}, "rooms"),
    ({"rooms": 11}, "rooms"),
    ({"ttl_ms": 999}, "ttl_ms"),
    ({"ttl_ms": 3_600_001}, "ttl_ms"),
    ({"ttl_ms": -1}, "ttl_ms"),
])
def test_hold_rooms_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.hold_rooms(_hold(**changes))
    assert error.value.field == field


def test_valid_requests():
    held = validation.hold_rooms(_hold(ttl_ms=1_000, rooms=10, nights=30, check_in="2099-12-02"))
    assert held == HoldRequest(hold_id(1), Stay("grand", "double", date(2099, 12, 2), 30, 10), 1_000)
    assert validation.hold_rooms(_hold(ttl_ms=3_600_000)).ttl_ms == 3_600_000
    query = validation.availability(inventory_pb2.GetAvailabilityRequest(
        hotel_id="grand", room_type_id="double", check_in="2099-12-31", nights=1))
    assert (query.check_in, query.nights) == (date(2099, 12, 31), 1)
    with pytest.raises(InvalidArgument) as error:
        validation.availability(inventory_pb2.GetAvailabilityRequest(hotel_id="grand", room_type_id="double",
                                                                     check_in="2030-01-01", nights=0))
    assert error.value.field == "nights"
    assert validation.hold_id(hold_id(5)) == hold_id(5)


# ----------------------------------------------------------------------------- room types and availability


async def test_room_types_are_idempotent_and_refuse_other_fields(inventory):
    assert await inventory.add_room_type(ROOM_TYPE) == ROOM_TYPE
    with pytest.raises(AlreadyExists):
        await inventory.add_room_type(RoomTypeRecord("grand", "double", "Double", 4, "EUR", 12_000))
    with pytest.raises(NotFound):
        inventory.room_type("grand", "suite")
    with pytest.raises(NotFound):
        inventory.availability("grand", "suite", JUNE, 1)


async def test_untouched_nights_are_free_at_version_zero(inventory):
    record, views = inventory.availability("grand", "double", JUNE, 3)
    assert record == ROOM_TYPE
    assert [(v.night, v.sellable, v.booked, v.held, v.available, v.version) for v in views] == [
        (date(2030, 6, d), 3, 0, 0, 3, 0) for d in (1, 2, 3)]
    assert inventory._nights == {}  # nothing made by a read


# ----------------------------------------------------------------------------- holds


async def test_a_hold_takes_rooms_on_every_night_and_bumps_versions(inventory):
    held = await inventory.hold(request(1, rooms=2))
    assert (held.status, held.stay, held.expires_at_unix_ms) == (HELD, stay(rooms=2), T0 + 600_000)
    assert counts(inventory, nights=3) == [(0, 2, 1), (0, 2, 1), (0, 0, 0)]
    _, views = inventory.availability("grand", "double", JUNE, 2)
    assert [v.available for v in views] == [1, 1]
    assert await inventory.get_hold(hold_id(1)) == held


async def test_a_hold_is_all_or_none(inventory):
    await inventory.hold(request(1, check_in=date(2030, 6, 2), nights=1, rooms=3))  # the 2nd is full
    before = counts(inventory, nights=3)
    with pytest.raises(NoAvailability) as error:
        await inventory.hold(request(2, nights=3))
    assert str(error.value) == "no_availability: 2030-06-02 has 0 available, 1 asked"
    assert contract.failed_precondition_reason(str(error.value)) == contract.NO_AVAILABILITY
    assert counts(inventory, nights=3) == before  # the 1st and 3rd untouched (not even their versions)
    with pytest.raises(NotFound):
        await inventory.get_hold(hold_id(2))


async def test_hold_ids_are_idempotent(inventory):
    first = await inventory.hold(request(1, rooms=2))
    assert await inventory.hold(request(1, rooms=2, ttl_ms=5_000)) == first  # the ttl is not part of the stay
    assert counts(inventory) == [(0, 2, 1), (0, 2, 1)]
    for other in (request(1, rooms=1), request(1, nights=1, rooms=2), request(1, check_in=date(2030, 6, 2), rooms=2)):
        with pytest.raises(FailedPrecondition) as error:
            await inventory.hold(other)
        assert contract.failed_precondition_reason(str(error.value)) == contract.KEY_REUSED
    confirmed = await inventory.confirm(hold_id(1))
    assert await inventory.hold(request(1, rooms=2)) == confirmed  # as it is
    # Double taps: the same ID twice at once holds once.
    results = await asyncio.gather(inventory.hold(request(2)), inventory.hold(request(2)))
    assert results[0] == results[1] and counts(inventory) == [(2, 1, 3), (2, 1, 3)]


async def test_a_hold_of_an_unknown_room_type(inventory):
    with pytest.raises(NotFound):
        await inventory.hold(request(1, room_type="suite"))


async def test_confirm_and_release(inventory):
    await inventory.hold(request(1))
    confirmed = await inventory.confirm(hold_id(1))
    assert (confirmed.status, confirmed.expires_at_unix_ms) == (CONFIRMED, 0)
    assert counts(inventory) == [(1, 0, 2), (1, 0, 2)]
    assert await inventory.confirm(hold_id(1)) == confirmed  # a retry
    released = await inventory.release(hold_id(1))
    assert released.status == RELEASED and counts(inventory) == [(0, 0, 3), (0, 0, 3)]
    assert await inventory.release(hold_id(1)) == released
    with pytest.raises(FailedPrecondition) as error:
        await inventory.confirm(hold_id(1))
    assert contract.failed_precondition_reason(str(error.value)) == contract.HOLD_RELEASED
    await inventory.hold(request(2, rooms=3))
    assert (await inventory.release(hold_id(2))).status == RELEASED  # HELD → RELEASED
    assert counts(inventory) == [(0, 0, 5), (0, 0, 5)]
    for call in (inventory.confirm, inventory.release, inventory.get_hold):
        with pytest.raises(NotFound):
            await call(hold_id(99))


@pytest.mark.parametrize("mode", MODES)
async def test_holds_expire_lazily_and_by_the_sweeper(tmp_path, mode):
    clock = Clock()
    inventory = await make(tmp_path, clock, lock_mode=mode, hold_ttl_s=60)
    await inventory.add_room_type(ROOM_TYPE)
    expired_before = sample("casemesh_hotel_inventory_holds_total", outcome="expired")
    try:
        assert (await inventory.hold(request(1, rooms=3))).expires_at_unix_ms == T0 + 60_000
        await inventory.hold(request(2, check_in=date(2030, 7, 1), ttl_ms=1_000))
        await inventory.hold(request(3, check_in=date(2030, 8, 1), ttl_ms=1_000))
        await inventory.hold(request(4, check_in=date(2030, 9, 1), ttl_ms=120_000))
        with pytest.raises(NoAvailability):
            await inventory.hold(request(5))
        clock.now += 1_000
        # Confirming a hold whose time is up expires it; releasing one returns it EXPIRED.
        with pytest.raises(FailedPrecondition) as error:
            await inventory.confirm(hold_id(2))
        assert contract.failed_precondition_reason(str(error.value)) == contract.HOLD_EXPIRED
        assert (await inventory.release(hold_id(3))).status == EXPIRED
        assert (await inventory.get_hold(hold_id(2))).status == EXPIRED
        clock.now += 59_000
        # Hold 1 is due: still HELD until something touches it ...
        assert (await inventory.get_hold(hold_id(1))).status == HELD
        # ... a hold of its nights expires it first, and takes the rooms.
        assert (await inventory.hold(request(5))).status == HELD
        assert (await inventory.get_hold(hold_id(1))) == HoldRecord(hold_id(1), stay(rooms=3), EXPIRED, 0)
        assert counts(inventory) == [(0, 1, 3), (0, 1, 3)]
        clock.now += 120_000
        assert await inventory.expire_due() == 2  # holds 4 and 5
        assert await inventory.expire_due() == 0
        assert counts(inventory) == [(0, 0, 4), (0, 0, 4)]
        assert (await inventory.get_hold(hold_id(4))).status == EXPIRED
        assert sample("casemesh_hotel_inventory_holds_total", outcome="expired") - expired_before == 5
        report = await inventory.audit()
        assert not report.violations and report.held_room_nights == 0
    finally:
        await inventory.close()


async def test_a_retry_of_a_hold_whose_time_is_up_gets_it_expired(inventory):
    held = await inventory.hold(request(1, ttl_ms=1_000))
    inventory._clock.now += 1_000
    replay = await inventory.hold(request(1))
    assert replay == HoldRecord(held.hold_id, held.stay, EXPIRED, 0) and counts(inventory) == [(0, 0, 2)] * 2


async def test_the_sweeper_runs_until_cancelled():
    calls = []

    async def expire_due() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise StoreUnavailable("disk gone")  # logged; the sweeper goes on
        return 0

    task = asyncio.create_task(run_sweeper(expire_due, 50))
    while len(calls) < 4:
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_expiry_queue():
    queue = ExpiryQueue()
    for at, name in ((30, "c"), (10, "a"), (20, "b"), (40, "d")):
        queue.push(at, name)
    assert queue.pop_due(5) == [] and queue.pop_due(30) == ["a", "b", "c"] and len(queue) == 1


# ----------------------------------------------------------------------------- overbooking and the audit


async def test_the_overbooking_allowance(tmp_path):
    inventory = await make(tmp_path, overbooking_allowance_pct=50)
    try:
        await inventory.add_room_type(RoomTypeRecord("grand", "double", "Double", 4, "EUR", 10_000))
        for n in range(6):
            await inventory.hold(request(n, nights=1))
        with pytest.raises(NoAvailability):
            await inventory.hold(request(9, nights=1))
        _, views = inventory.availability("grand", "double", JUNE, 1)
        assert (views[0].sellable, views[0].held, views[0].available) == (6, 6, 0)
        report = await inventory.audit()
        assert (report.room_types, report.room_nights, report.held_room_nights, report.overbooked_room_nights,
                report.violations) == (1, 1, 6, 1, [])
    finally:
        await inventory.close()
    # The allowance taken away: the night is sold beyond its sellable rooms, which the audit reports.
    inventory = await make(tmp_path)
    try:
        report = await inventory.audit()
        assert report.overbooked_room_nights == 1
        assert any("6 held > 4 sellable" in v for v in report.violations) and len(report.violations) == 2
    finally:
        await inventory.close()


async def test_the_audit_finds_rows_changed_behind_its_back(inventory, tmp_path):
    await inventory.hold(request(1))
    await inventory.hold(request(2, rooms=2))
    await inventory.confirm(hold_id(2))
    report = await inventory.audit()
    assert (report.room_types, report.room_nights, report.booked_room_nights, report.held_room_nights,
            report.overbooked_room_nights, report.violations) == (1, 2, 4, 2, 0, [])
    db = sqlite3.connect(tmp_path / FILE_NAME)
    with db:
        db.execute("UPDATE nights SET held = 3 WHERE night = '2030-06-02'")
        db.execute("UPDATE holds SET status = 1 WHERE hold_id = ?", (hold_id(2),))
    db.close()
    violations = (await inventory.audit()).violations
    assert all(v.startswith("file: ") for v in violations) and len(violations) == 3, violations
    assert any("2030-06-02 has 2 booked + 3 held > 3 sellable" in v for v in violations)


# ----------------------------------------------------------------------------- durability and the store


async def test_a_new_inventory_on_the_file_has_the_same_state(tmp_path):
    clock = Clock()
    inventory = await make(tmp_path, clock)
    await inventory.add_room_type(ROOM_TYPE)
    await inventory.hold(request(1))
    await inventory.hold(request(2, ttl_ms=1_000))
    await inventory.hold(request(3))
    await inventory.confirm(hold_id(1))
    await inventory.release(hold_id(3))
    before = counts(inventory)
    await inventory.close()

    clock.now += 1_000
    inventory = await make(tmp_path, clock, recent_final_holds=0)
    try:
        assert counts(inventory) == before
        assert [(await inventory.get_hold(hold_id(n))).status for n in (1, 2, 3)] == [CONFIRMED, HELD, RELEASED]
        assert await inventory.expire_due() == 1  # due while the inventory was down
        assert (await inventory.get_hold(hold_id(2))).status == EXPIRED
        # IDs known only to the file: the same stay gets the hold, another stay key_reused, all from the file.
        assert (await inventory.hold(request(3))).status == RELEASED
        with pytest.raises(FailedPrecondition) as error:
            await inventory.hold(request(3, rooms=2))
        assert contract.failed_precondition_reason(str(error.value)) == contract.KEY_REUSED
        await inventory.hold(request(4, rooms=2))
        assert (await inventory.hold(request(2))).status == EXPIRED  # refused for rooms, found in the file
        assert not (await inventory.audit()).violations
    finally:
        await inventory.close()


async def test_the_version_check_of_the_store(tmp_path):
    store = InventoryStore(tmp_path / FILE_NAME)
    try:
        await store.add_room_type(ROOM_TYPE, lambda: None)
        key = ("grand", "double", JUNE)
        hold = HoldRecord(hold_id(1), stay(nights=1), HELD, T0)
        applied = []
        await store.commit(Change(hold, None, (NightChange(key, 0, 1, 0),)), lambda: applied.append(1))
        for stale in (0, 2):  # the row exists at version 1
            with pytest.raises(VersionConflict) as error:
                await store.commit(Change(HoldRecord(hold_id(2), stay(nights=1), HELD, T0), None,
                                          (NightChange(key, 0, 1, stale),)), lambda: applied.append(2))
            assert isinstance(error.value, Aborted)
        await store.commit(Change(HoldRecord(hold_id(2), stay(nights=1), HELD, T0), None,
                                  (NightChange(key, 0, 1, 1),)), lambda: applied.append(3))
        assert applied == [1, 3]
        snapshot = await store.snapshot()
        assert snapshot.nights == {key: (0, 2, 2)} and {h.hold_id for h in snapshot.holds} == {hold_id(1), hold_id(2)}
        assert await store.hold(hold_id(9)) is None
        # A negative count is refused by the schema: the write fails alone, UNAVAILABLE.
        with pytest.raises(StoreUnavailable):
            await store.commit(Change(hold.moved_to(RELEASED), HELD, (NightChange(key, 0, -5),)), lambda: None)
        assert (await store.snapshot()).nights == {key: (0, 2, 2)}
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.hold(hold_id(1))


async def test_a_write_refused_in_a_group_commit_fails_alone(tmp_path):
    """Three holds of one night at version 0 in one group commit: the first wins, the second's version check rolls
    back only its own savepoint (its hold row too), the third (another night) commits."""
    store = InventoryStore(tmp_path / FILE_NAME)
    try:
        await store.add_room_type(ROOM_TYPE, lambda: None)
        writes = [Change(HoldRecord(hold_id(n), stay(check_in=night, nights=1), HELD, T0), None,
                         (NightChange(("grand", "double", night), 0, 1, 0),))
                  for n, night in ((1, JUNE), (2, JUNE), (3, date(2030, 6, 2)))]
        results = await asyncio.gather(*(store.commit(w, lambda: None) for w in writes), return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["NoneType", "VersionConflict", "NoneType"]
        assert await store.hold(hold_id(2)) is None and (await store.hold(hold_id(3))).status == HELD
    finally:
        await store.close()


async def test_a_store_that_cannot_write_changes_nothing(inventory, tmp_path):
    await inventory.hold(request(1))
    before = counts(inventory)
    inventory.store._db.execute("PRAGMA query_only=ON")  # every write now fails
    with pytest.raises(StoreUnavailable):
        await inventory.hold(request(2))
    with pytest.raises(StoreUnavailable):
        await inventory.confirm(hold_id(1))
    assert counts(inventory) == before and (await inventory.get_hold(hold_id(1))).status == HELD
    inventory.store._db.execute("PRAGMA query_only=OFF")
    assert (await inventory.confirm(hold_id(1))).status == CONFIRMED


# ----------------------------------------------------------------------------- isolation under concurrency


async def _race(inventory: RoomInventory, holds: list[HoldRequest]) -> tuple[int, int, int]:
    """Send every hold at once; retry those ABORTED (the same request) until each has a final answer. Returns (held,
    refused for availability, ABORTED answers seen)."""
    aborted = 0
    pending = holds
    held = refused = 0
    while pending:
        results = await asyncio.gather(*(inventory.hold(h) for h in pending), return_exceptions=True)
        retry = []
        for hold, result in zip(pending, results, strict=True):
            if isinstance(result, Aborted):
                aborted += 1
                retry.append(hold)
            elif isinstance(result, NoAvailability):
                refused += 1
            elif isinstance(result, HoldRecord):
                held += 1
            else:
                raise result
        pending = retry
    return held, refused, aborted


@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_holds_for_the_last_rooms_never_oversell(tmp_path, mode):
    inventory = await make(tmp_path, lock_mode=mode)
    try:
        await inventory.add_room_type(RoomTypeRecord("grand", "double", "Double", 5, "EUR", 10_000))
        await inventory.hold(request(0, nights=3, rooms=2))  # 3 rooms left on each night
        conflicts = sample("casemesh_hotel_inventory_version_conflicts_total")
        # Twenty guests, overlapping stays of the same nights, one room each.
        held, refused, aborted = await _race(inventory, [request(n, check_in=JUNE, nights=1 + n % 3)
                                                         for n in range(1, 21)])
        assert held == 3 and refused == 17
        if mode is LockMode.OPTIMISTIC:
            assert aborted > 0 and sample("casemesh_hotel_inventory_version_conflicts_total") - conflicts == aborted
        else:
            assert aborted == 0
        _, views = inventory.availability("grand", "double", JUNE, 3)
        assert all(v.booked + v.held <= v.sellable for v in views) and views[0].available == 0
        assert not (await inventory.audit()).violations
    finally:
        await inventory.close()


@pytest.mark.parametrize("mode", MODES)
async def test_many_concurrent_holds_confirms_and_releases_keep_the_invariant(tmp_path, mode):
    """Holds of random stays over two weeks of a 4-room type, confirmations and releases, all at once, round after
    round: the audit always finds every night within its sellable rooms and equal to its holds."""
    import random

    rng = random.Random(20)
    inventory = await make(tmp_path, lock_mode=mode)
    try:
        await inventory.add_room_type(RoomTypeRecord("grand", "double", "Double", 4, "EUR", 10_000))
        known: list[str] = []
        for round_ in range(8):
            calls = []
            for n in range(round_ * 40, round_ * 40 + 40):
                roll = rng.random()
                if roll < 0.6 or not known:
                    calls.append(inventory.hold(request(n, check_in=date(2030, 6, rng.randint(1, 14)),
                                                        nights=rng.randint(1, 4), rooms=rng.randint(1, 2))))
                elif roll < 0.85:
                    calls.append(inventory.confirm(rng.choice(known)))
                else:
                    calls.append(inventory.release(rng.choice(known)))
            for result in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(result, HoldRecord):
                    known.append(result.hold_id)
                elif not isinstance(result, (FailedPrecondition, Aborted)):
                    raise result
                if mode is LockMode.PESSIMISTIC:
                    assert not isinstance(result, Aborted)
            report = await inventory.audit()
            assert not report.violations, report.violations
        _, views = inventory.availability("grand", "double", date(2030, 6, 1), 17)
        assert all(0 <= v.booked + v.held <= v.sellable for v in views)
    finally:
        await inventory.close()


async def test_pessimistic_holds_of_the_same_nights_queue_behind_each_others_write(tmp_path):
    """While one hold's write waits for its fsync, a hold of an overlapping stay waits for the lock; one of another
    room-night does not."""
    inventory = await make(tmp_path)
    try:
        await inventory.add_room_type(ROOM_TYPE)
        gate = asyncio.Event()
        commit = inventory.store.commit

        async def slow_commit(change, apply):
            if change.hold.hold_id == hold_id(1):
                await gate.wait()
            await commit(change, apply)

        inventory.store.commit = slow_commit
        first = asyncio.create_task(inventory.hold(request(1, rooms=3)))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(inventory.hold(request(2, check_in=date(2030, 6, 2))))
        other = asyncio.create_task(inventory.hold(request(3, check_in=date(2030, 6, 10))))
        assert (await other).status == HELD
        assert not second.done() and len(inventory.locks) == 2
        gate.set()
        assert (await first).status == HELD
        with pytest.raises(NoAvailability):
            await second  # it checked after the first was applied
    finally:
        await inventory.close()

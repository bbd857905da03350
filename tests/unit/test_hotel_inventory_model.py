"""A hypothesis state machine of the hotel room inventory against a model of its holds, in each lock mode: any
sequence of holds (new IDs, retries of the same stay, other stays under a known ID, short and default TTLs), holds sent
side by side, confirmations, releases, the clock moving on, sweeps, and restarts from the file (with a tiny memory of
final holds, so IDs are also found in the file): every answer is the model's, every hold's status and expiry time is
the model's as the proto says (HELD until confirmed, released or expired; CONFIRMED, RELEASED, EXPIRED; a HELD hold
whose time is up is expired whenever something touches it, never before its time), a hold takes every night of its
stay or none, every room-night's booked and held rooms are the sums of its CONFIRMED and HELD holds, its version
counts the writes that changed it, ``booked + held <= sellable`` on every night, and the audit finds nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from casemesh.services.hotel import contract
from casemesh.services.hotel.inventory.inventory import HoldRequest, NoAvailability, RoomInventory
from casemesh.services.hotel.inventory.records import (
    CONFIRMED,
    EXPIRED,
    HELD,
    RELEASED,
    HoldRecord,
    RoomTypeRecord,
    Stay,
)
from casemesh.services.hotel.inventory.settings import InventorySettings, LockMode
from casemesh.services.hotel.inventory.store import FILE_NAME, InventoryStore
from casemesh.services.runtime.errors import Aborted, FailedPrecondition, NotFound

T0 = 1_900_000_000_000
FIRST = date(2031, 3, 1)
DAYS = 6  # stays start on the first four days and last up to three nights
ROOM_TYPES = (RoomTypeRecord("inn", "double", "Double", 3, "EUR", 9_000),
              RoomTypeRecord("inn", "single", "Single", 1, "EUR", 6_000))
HOLD_IDS = tuple("hold_" + chr(ord("a") + i) * 24 for i in range(10))
DEFAULT_TTL_S = 10
STAYS = st.builds(lambda room_type, day, nights, rooms: Stay("inn", room_type, FIRST + timedelta(days=day), nights,
                                                               rooms),
                  st.sampled_from(["double", "single"]), st.integers(0, 3), st.integers(1, 3), st.integers(1, 2))
TTLS = st.sampled_from([0, 1_000, 3_000])


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


class InventoryMachine(RuleBasedStateMachine):
    MODE = LockMode.PESSIMISTIC
    ALLOWANCE_PCT = 0

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="hotel-inventory-"))
        self.clock = Clock()
        self.settings = InventorySettings(lock_mode=self.MODE, overbooking_allowance_pct=self.ALLOWANCE_PCT,
                                          hold_ttl_s=DEFAULT_TTL_S, recent_final_holds=2)
        self.inventory = self._open()
        for record in ROOM_TYPES:
            self.run(self.inventory.add_room_type(record))
        self.holds: dict[str, HoldRecord] = {}
        self.versions: dict[tuple[str, date], int] = {}

    def _open(self) -> RoomInventory:
        inventory = RoomInventory(InventoryStore(self.folder / FILE_NAME), self.settings, self.clock)
        self.run(inventory.start())
        return inventory

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    # -- the model ------------------------------------------------------------------------------------------------

    def sellable(self, room_type: str) -> int:
        return self.settings.sellable(next(r.rooms for r in ROOM_TYPES if r.room_type_id == room_type))

    def counts(self, room_type: str, night: date) -> tuple[int, int]:
        """(booked, held) of a night: the sums of its CONFIRMED and HELD holds."""
        booked = held = 0
        for hold in self.holds.values():
            if hold.stay.room_type_id == room_type and night in contract.stay_nights(hold.stay.check_in,
                                                                                     hold.stay.nights):
                booked += hold.stay.rooms if hold.status == CONFIRMED else 0
                held += hold.stay.rooms if hold.status == HELD else 0
        return booked, held

    def move(self, hold_id: str, status: int) -> HoldRecord:
        """A write of ``hold_id`` in ``status`` (a new hold: ``self.holds`` has it already): its nights' versions
        bumped."""
        hold = self.holds[hold_id]
        if status != HELD:
            hold = self.holds[hold_id] = hold.moved_to(status)
        for night in contract.stay_nights(hold.stay.check_in, hold.stay.nights):
            key = (hold.stay.room_type_id, night)
            self.versions[key] = self.versions.get(key, 0) + 1
        return hold

    def due(self, hold_id: str) -> bool:
        return self.holds[hold_id].due(self.clock.now)

    def expected_new_hold(self, hold_id: str, stay: Stay, ttl_ms: int) -> HoldRecord | None:
        """The hold a new ID gets (after the due holds of its nights expire), or ``None`` for no_availability."""
        nights = set(contract.stay_nights(stay.check_in, stay.nights))
        for other in list(self.holds):
            held = self.holds[other]
            if (self.due(other) and held.stay.room_type_id == stay.room_type_id
                    and nights & set(contract.stay_nights(held.stay.check_in, held.stay.nights))):
                self.move(other, EXPIRED)
        if any(sum(self.counts(stay.room_type_id, night)) + stay.rooms > self.sellable(stay.room_type_id)
               for night in nights):
            return None
        return HoldRecord(hold_id, stay, HELD, self.clock.now + (ttl_ms or DEFAULT_TTL_S * 1000))

    # -- rules ----------------------------------------------------------------------------------------------------

    def outcome(self, action: str, hold_id: str) -> int | str | type[Exception]:
        """What ``action`` ("confirm", "release") of a hold does: the status it answers (and writes, if another), a
        FAILED_PRECONDITION reason, or NotFound. A HELD hold whose time is up is expired by the call (or was by
        something else that touched it)."""
        hold = self.holds.get(hold_id)
        if hold is None:
            return NotFound
        status = EXPIRED if self.due(hold_id) else hold.status
        if action == "confirm":
            return {HELD: CONFIRMED, CONFIRMED: CONFIRMED, RELEASED: contract.HOLD_RELEASED}.get(
                status, contract.HOLD_EXPIRED)
        return RELEASED if status in (HELD, CONFIRMED) else status

    def check(self, action: str, hold_id: str, expected: int | str | type[Exception], result) -> None:
        """Check ``result`` (a hold or an exception) against ``expected`` and apply it to the model."""
        if expected is NotFound:
            assert isinstance(result, NotFound), result
            return
        if self.due(hold_id):
            self.move(hold_id, EXPIRED)
        if isinstance(expected, str):
            assert isinstance(result, FailedPrecondition), result
            assert contract.failed_precondition_reason(str(result)) == expected
            return
        if expected != self.holds[hold_id].status:
            self.move(hold_id, expected)
        assert result == self.holds[hold_id], (action, result, self.holds[hold_id])

    async def _answer(self, call):
        try:
            return await call
        except Exception as error:  # noqa: BLE001 - the answer to check
            return error

    @rule(hold_id=st.sampled_from(HOLD_IDS), stay=STAYS, ttl_ms=TTLS)
    def hold(self, hold_id: str, stay: Stay, ttl_ms: int) -> None:
        call = self.inventory.hold(HoldRequest(hold_id, stay, ttl_ms))
        known = self.holds.get(hold_id)
        if known is not None:
            if known.stay != stay:
                with pytest.raises(FailedPrecondition) as error:
                    self.run(call)
                assert contract.failed_precondition_reason(str(error.value)) == contract.KEY_REUSED
                return
            if self.due(hold_id):
                self.move(hold_id, EXPIRED)
            assert self.run(call) == self.holds[hold_id]
            return
        expected = self.expected_new_hold(hold_id, stay, ttl_ms)
        if expected is None:
            with pytest.raises(NoAvailability):
                self.run(call)
            return
        assert self.run(call) == expected
        self.holds[hold_id] = expected
        self.move(hold_id, HELD)

    @precondition(lambda self: len(self.holds) < len(HOLD_IDS))
    @rule(stays=st.lists(STAYS, min_size=2, max_size=6), ttl_ms=TTLS, data=st.data())
    def holds_side_by_side(self, stays: list[Stay], ttl_ms: int, data) -> None:
        """New holds sent at once, with confirmations or releases of known holds among them: which new holds win
        depends on the order they take (in optimistic mode some are ABORTED), so their answers are taken as they
        come and the invariants check every night against them; the confirmations and releases are the model's."""
        free = [h for h in HOLD_IDS if h not in self.holds][:len(stays)]
        others = data.draw(st.lists(st.sampled_from(sorted(self.holds)), max_size=3, unique=True)
                           if self.holds else st.just([]))
        actions = [data.draw(st.sampled_from(["confirm", "release"])) for _ in others]
        expected = [self.outcome(action, hold_id) for action, hold_id in zip(actions, others, strict=True)]

        async def together():
            return await asyncio.gather(
                *(self.inventory.hold(HoldRequest(h, s, ttl_ms)) for h, s in zip(free, stays, strict=False)),
                *(getattr(self.inventory, action)(h) for h, action in zip(others, actions, strict=True)),
                return_exceptions=True)

        results = self.run(together())
        for hold_id, result in zip(free, results, strict=False):
            if isinstance(result, HoldRecord):
                assert result.status == HELD and result.hold_id == hold_id
                self.holds[hold_id] = result
                self.move(hold_id, HELD)
            elif isinstance(result, Aborted):
                assert self.MODE is LockMode.OPTIMISTIC
            else:
                assert isinstance(result, NoAvailability), result
        for action, hold_id, want, result in zip(actions, others, expected, results[len(free):], strict=True):
            self.check(action, hold_id, want, result)

    @rule(hold_id=st.sampled_from(HOLD_IDS))
    def confirm(self, hold_id: str) -> None:
        expected = self.outcome("confirm", hold_id)
        self.check("confirm", hold_id, expected, self.run(self._answer(self.inventory.confirm(hold_id))))

    @rule(hold_id=st.sampled_from(HOLD_IDS))
    def release(self, hold_id: str) -> None:
        expected = self.outcome("release", hold_id)
        self.check("release", hold_id, expected, self.run(self._answer(self.inventory.release(hold_id))))

    @rule(ms=st.sampled_from([0, 500, 1_000, 2_500, 10_000]))
    def time_passes(self, ms: int) -> None:
        self.clock.now += ms

    @rule()
    def sweep(self) -> None:
        due = [hold_id for hold_id in self.holds if self.due(hold_id)]
        assert self.run(self.inventory.expire_due()) == len(due)
        for hold_id in due:
            self.move(hold_id, EXPIRED)

    @rule()
    def restart(self) -> None:
        self.run(self.inventory.close())
        self.inventory = self._open()

    # -- invariants -----------------------------------------------------------------------------------------------

    @invariant()
    def the_inventory_is_the_model(self) -> None:
        for hold_id, hold in list(self.holds.items()):
            stored = self.run(self.inventory.get_hold(hold_id))
            if stored != hold:  # only a HELD hold whose time is up may have been expired by something that touched it
                assert hold.status == HELD and self.due(hold_id) and stored == hold.moved_to(EXPIRED), (
                    stored, hold)
                self.move(hold_id, EXPIRED)
        for record in ROOM_TYPES:
            _, views = self.inventory.availability("inn", record.room_type_id, FIRST, DAYS)
            for view in views:
                booked, held = self.counts(record.room_type_id, view.night)
                assert (view.booked, view.held, view.version) == (
                    booked, held, self.versions.get((record.room_type_id, view.night), 0)), view
                assert view.sellable == self.sellable(record.room_type_id)
                assert 0 <= view.booked + view.held <= view.sellable and view.available >= 0
        for hold_id in HOLD_IDS:
            if hold_id not in self.holds:
                with pytest.raises(NotFound):
                    self.run(self.inventory.get_hold(hold_id))
        report = self.run(self.inventory.audit())
        assert not report.violations, report.violations
        assert report.booked_room_nights == sum(h.stay.rooms * h.stay.nights for h in self.holds.values()
                                                if h.status == CONFIRMED)

    def teardown(self) -> None:
        self.run(self.inventory.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class OptimisticMachine(InventoryMachine):
    MODE = LockMode.OPTIMISTIC
    ALLOWANCE_PCT = 50  # 3 rooms sell 4, 1 room sells 1


MODEL_SETTINGS = hypothesis_settings(max_examples=30, stateful_step_count=30, deadline=None)
TestPessimisticInventoryModel = InventoryMachine.TestCase
TestPessimisticInventoryModel.settings = MODEL_SETTINGS
TestOptimisticInventoryModel = OptimisticMachine.TestCase
TestOptimisticInventoryModel.settings = MODEL_SETTINGS

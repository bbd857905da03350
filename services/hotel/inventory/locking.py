"""How concurrent holds of the same room-nights are isolated: pessimistic locks or an optimistic version check (the
case study's A/B switch, setting ``lock_mode``).

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | Pessimistic locking, overbooking
prevention"); seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1243-1265, "Amazon E-commerce": "Optimistic
locking" ... "Attempt update with version check"). A hold checks that every night of its stay has the rooms
(``booked + held + rooms <= sellable``), writes durably, then applies. Without isolation two holds of the last room
both pass the check before either writes, and the night is sold twice (the lost update). The modes:

- ``pessimistic`` (default): one ``asyncio.Lock`` per room-night (services/runtime/keyed_locks.py), taken in date
  order (sorted keys: two stays that overlap never wait for each other in a cycle, so holds never deadlock) before the
  check and released only after the write is durable and applied: strict two-phase locking (Eswaran, Gray, Lorie,
  Traiger, "The Notions of Consistency and Predicate Locks in a Database System", CACM 1976). Confirmations, releases
  and expiries take the same locks. Holds of the same nights queue, one fsync each; holds of other nights share
  group commits.
- ``optimistic``: no lock; the check reads the nights' committed state and versions, and the write commits only if
  every night is still at the version read (optimistic concurrency control: Kung, Robinson, "On Optimistic Methods
  for Concurrency Control", ACM TODS 1981; the store's ``UPDATE ... WHERE version = ?``, :mod:`.store`). Holds of the
  same nights that read the same versions race in the group commit: the first in commit order wins, the others roll
  back (nothing held) and are answered ABORTED; their callers retry. Confirmations, releases and expiries write
  unconditionally (they never add rooms, so they cannot oversell) but bump the versions, so a hold that read before
  them loses its check.

Either way a night's ``booked + held`` never exceeds its sellable rooms: in pessimistic mode nothing changes a night
between a hold's check and its apply; in optimistic mode the file refuses a write whose nights moved since the check.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable

from ...runtime.keyed_locks import KeyedLocks
from . import metrics
from .records import NightKey
from .settings import LockMode


def _lock_name(key: NightKey) -> str:
    """``hotel/room_type/YYYY-MM-DD``: IDs hold no "/", so names sort by room type, then date."""
    hotel_id, room_type_id, night = key
    return f"{hotel_id}/{room_type_id}/{night.isoformat()}"


class NightLocks:
    """The isolation of one inventory in mode ``mode``."""

    def __init__(self, mode: LockMode) -> None:
        self.mode = LockMode(mode)
        self._locks = KeyedLocks()

    @contextlib.asynccontextmanager
    async def nights(self, keys: Iterable[NightKey]) -> AsyncIterator[None]:
        """Hold the room-nights ``keys`` for the ``async with`` block: in pessimistic mode their locks, in date order
        (the wait observed in ``casemesh_hotel_inventory_lock_wait_seconds``); in optimistic mode nothing."""
        if self.mode is not LockMode.PESSIMISTIC:
            yield
            return
        started = time.perf_counter()
        async with self._locks.hold_all(_lock_name(key) for key in keys):
            metrics.LOCK_WAIT_SECONDS.observe(time.perf_counter() - started)
            yield

    def expected_version(self, version: int) -> int | None:
        """The version a hold's write of a night read at ``version`` must find in the file: ``version`` in optimistic
        mode (the check), ``None`` in pessimistic mode (the locks keep the night as read)."""
        return version if self.mode is LockMode.OPTIMISTIC else None

    def __len__(self) -> int:
        """Room-nights locked or waited for now."""
        return len(self._locks)

"""When reservations run out of time: the clock, the deadlines of the HELD reservations, and the background sweeper.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 529: "Inventory
reservation: Optimistic locking with TTL"; line 541: ``reserve_stock(..., ttl=600)`` "Reserve stock with TTL
(prevents cart abandonment lock-up)", where Redis ``SETEX`` drops the key after ``ttl`` seconds). Here a HELD
reservation expires once its TTL has run out: its units go back to what is available.

- :class:`Clock`: the contract reports ``expires_at_unix_ms`` in wall-clock Unix milliseconds, but a wall clock may
  jump (NTP, a manual change); the inventory decides expiry on the monotonic clock instead, the deadline being
  ``monotonic now + TTL``, and maps a stored wall-clock expiry to a monotonic deadline once, when it starts
  (``monotonic now + (expires_at - wall now)``);
- :class:`Deadlines`: the HELD reservations ordered by monotonic deadline (a ``sortedcontainers.SortedKeyList``), so
  the due ones are found in O(log n + due) and nothing due is ever missed;
- :class:`Sweeper`: calls the inventory's sweep every ``sweep_interval_ms`` in a background task (in a fresh
  context), so that reservations nobody asks about expire too and the held-units gauge and the expiry counter stay
  live. Requests do not depend on it: before reading availability they expire the due reservations themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

from sortedcontainers import SortedKeyList

log = logging.getLogger("casemesh.ecommerce.inventory.expiry")


class Clock:
    """Wall-clock and monotonic time in integer milliseconds (tests substitute a clock they move by hand)."""

    def wall_ms(self) -> int:
        """Unix time in milliseconds (may jump)."""
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        """Milliseconds of a clock that never goes back (its origin is arbitrary, and differs per process)."""
        return time.monotonic_ns() // 1_000_000


class Deadlines:
    """The monotonic deadline (ms) of each HELD reservation, ordered."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}
        self._order: SortedKeyList = SortedKeyList(key=lambda item: item[0])  # (deadline, reservation_id)

    def get(self, reservation_id: str) -> int | None:
        """``reservation_id``'s deadline, ``None`` when it has none (it is not HELD)."""
        return self._at.get(reservation_id)

    def set(self, reservation_id: str, deadline_ms: int) -> None:
        """Give ``reservation_id`` the deadline ``deadline_ms`` (replacing any it had)."""
        self.discard(reservation_id)
        self._at[reservation_id] = deadline_ms
        self._order.add((deadline_ms, reservation_id))

    def discard(self, reservation_id: str) -> None:
        """Forget ``reservation_id``'s deadline, if it has one."""
        deadline = self._at.pop(reservation_id, None)
        if deadline is not None:
            self._order.remove((deadline, reservation_id))

    def due(self, now_ms: int) -> list[str]:
        """The reservations whose deadline is ``now_ms`` or earlier, earliest first."""
        return [reservation_id for _, reservation_id in self._order.irange_key(max_key=now_ms)]

    def __len__(self) -> int:
        return len(self._at)


class Sweeper:
    """Runs ``sweep`` every ``interval_ms`` milliseconds between :meth:`start` and :meth:`stop`; a sweep that fails is
    logged and the next one runs all the same."""

    def __init__(self, sweep: Callable[[], Awaitable[object]], interval_ms: int) -> None:
        self._sweep = sweep
        self.interval_ms = interval_ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # A fresh context: the sweeps are the service's own work, not part of whichever request started the service.
        self._task = asyncio.create_task(self._run(), name="ecommerce-inventory-sweeper",
                                         context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_ms / 1_000)
            try:
                await self._sweep()
            except Exception:
                log.exception("the reservation sweep failed; the next runs in %d ms", self.interval_ms)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

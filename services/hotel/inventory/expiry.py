"""Hold expiry: the queue of HELD holds by expiry time and the sweeper that expires them (a hold's TTL).

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt, "E-commerce Platform": "Inventory reservation: Optimistic locking
with TTL", ``reserve_stock(..., ttl=600)``) for the TTL; seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23,
"Hotel Reservation") for the rooms it gives back. A HELD hold whose ``expires_at_unix_ms`` has passed takes no rooms
any more: it is written EXPIRED (durably, its held rooms given back) either lazily, when a hold of one of its nights,
its confirmation, its release or a retry of it touches it, or by the sweeper, which every ``sweep_interval_ms`` pops the
holds due from :class:`ExpiryQueue` and expires those still HELD (:meth:`.inventory.RoomInventory.expire_due`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("casemesh.hotel.inventory.expiry")


class ExpiryQueue:
    """HELD holds by expiry time (a binary heap, Python's ``heapq``). Entries of holds confirmed or released since are
    left in and skipped by the caller when they come due (each hold is pushed once, when it is held)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []

    def push(self, expires_at_unix_ms: int, hold_id: str) -> None:
        """Add a hold that expires at ``expires_at_unix_ms``."""
        heapq.heappush(self._heap, (expires_at_unix_ms, hold_id))

    def pop_due(self, now_ms: int) -> list[str]:
        """Remove and return the holds due at ``now_ms`` (expiry time at or before it), soonest first."""
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            due.append(heapq.heappop(self._heap)[1])
        return due

    def __len__(self) -> int:
        return len(self._heap)


async def run_sweeper(expire_due: Callable[[], Awaitable[int]], interval_ms: int) -> None:
    """Call ``expire_due`` every ``interval_ms`` milliseconds until cancelled; a failed sweep (the file unavailable) is
    logged and the next one tries again."""
    failing = False
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await expire_due()
        except Exception as error:  # noqa: BLE001 - the sweeper must go on; the holds stay due for the next sweep
            if not failing:
                log.warning("hotel-inventory: a hold expiry sweep failed (%s: %s); retrying every %d ms",
                            type(error).__name__, error, interval_ms)
            failing = True
        else:
            failing = False

"""One ``asyncio.Lock`` per key (a ride, an order, a courier, a payment, an acquirer's reference): calls about the same
key run one after the other, calls about different keys side by side.

Used wherever a service serialises work per record in a single event loop: rides-trips (per ride and per rider),
food-orders (per order and per courier), payments-gateway (per payment), the payments acquirers (per reference).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable


class KeyedLocks:
    """An ``asyncio.Lock`` per key, made on first use and dropped once no task holds or waits for it.

    ``max_keys`` bounds how many keys are locked or waited for at once (``None``: no bound); one more key raises
    ``too_many(count)`` before waiting (an exception instance, e.g. a ``ResourceExhausted`` or an UNAVAILABLE of the
    service's own), so that a flood of distinct keys cannot grow the table without limit.
    """

    def __init__(self, max_keys: int | None = None,
                 too_many: Callable[[int], Exception] | None = None) -> None:
        self.max_keys = max_keys
        self._too_many = too_many or (lambda count: RuntimeError(f"{count} keys locked; at most {max_keys}"))
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block (after the tasks already waiting for it)."""
        entry = self._locks.get(key)
        if entry is None:
            if self.max_keys is not None and len(self._locks) >= self.max_keys:
                raise self._too_many(len(self._locks))
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    @contextlib.asynccontextmanager
    async def hold_all(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of every key, taken in sorted order (so two holders of overlapping keys never deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self.hold(key))
            yield

    def __len__(self) -> int:
        """Keys locked or waited for now."""
        return len(self._locks)

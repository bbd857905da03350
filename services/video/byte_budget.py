"""A per-service byte budget: a weighted FIFO semaphore over bytes held in memory.

Flow control for segment bytes (issue 11, "bounded memory in streams"): a
service holds at most ``capacity_bytes`` of segment data outside its bounded
caches at once. A holder asks for all the bytes it needs in one
:meth:`ByteBudget.hold` (never grows a hold), so holders never wait while
holding, and the budget cannot deadlock. Waiters are served first come,
first served: a large request is not starved by a stream of small ones
(the same rule as Go's ``x/sync/semaphore.Weighted``; the standard library
has no weighted semaphore, and aiolimiter and friends limit rates, not
amounts).

Single event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable


class ByteBudget:
    """At most ``capacity_bytes`` (> 0) held at once by :meth:`hold`.

    ``in_use`` is the bytes held now, ``waits`` how many holds had to wait,
    ``on_wait()`` (optional) is called for each of them (e.g. a Prometheus
    counter).
    """

    def __init__(self, capacity_bytes: int, on_wait: Callable[[], None] | None = None) -> None:
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be > 0 (got {capacity_bytes})")
        self.capacity_bytes = capacity_bytes
        self.in_use = 0
        self.waits = 0
        self._on_wait = on_wait
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size_bytes: int) -> None:
        """Wait until ``size_bytes`` (0 to ``capacity_bytes``) fit, then hold them; ``ValueError`` outside that range."""
        if not 0 <= size_bytes <= self.capacity_bytes:
            raise ValueError(f"size_bytes must be 0 to {self.capacity_bytes} (got {size_bytes})")
        if not self._waiters and self.in_use + size_bytes <= self.capacity_bytes:
            self.in_use += size_bytes
            return
        self.waits += 1
        if self._on_wait is not None:
            self._on_wait()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size_bytes, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():  # granted as we were cancelled: give it back
                self.release(size_bytes)
            else:
                self._waiters.remove(entry)
                self._wake()  # a large waiter leaving may let smaller ones behind it in
            raise

    def release(self, size_bytes: int) -> None:
        """Give back ``size_bytes`` taken by :meth:`acquire`, waking waiters that now fit (in order)."""
        self.in_use -= size_bytes
        if self.in_use < 0:
            raise RuntimeError("released more bytes than were held")
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if self.in_use + size > self.capacity_bytes:
                return
            self._waiters.popleft()
            self.in_use += size
            future.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, size_bytes: int) -> AsyncIterator[None]:
        """``async with budget.hold(n):`` holds ``n`` bytes for the block (released on exit, error or cancel)."""
        await self.acquire(size_bytes)
        try:
            yield
        finally:
            self.release(size_bytes)

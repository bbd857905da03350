"""Hand out unique IDs from blocks leased from the ID service: the client side of casemesh.idgen.v1, for its callers.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt,
"Short URL Generation"): "Use distributed counter service for unique IDs". The
case study calls ``counter.get_next()`` per URL, one network hop per Shorten.
Here IDs are leased in blocks (casemesh.idgen.v1 LeaseIds) and handed out
locally, so a Shorten is usually not a network hop; the next block is fetched
in the background before the current one runs out. The social feed's
TweetService leases Snowflake IDs the same way (shared/seeds/003, "Snowflake
ID for Tweet IDs").

Single event loop; :meth:`IdBlockLease.next_id` is safe to call from many tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import grpc


class NoIdsLeased(RuntimeError):
    """A lease call succeeded but returned no IDs (a broken ID service)."""


def no_id_status(error: grpc.aio.AioRpcError | NoIdsLeased) -> tuple[grpc.StatusCode, str]:
    """What a caller answers when :meth:`IdBlockLease.next_id` failed: the status code and why.

    DEADLINE_EXCEEDED when the lease ran out of time, UNAVAILABLE otherwise
    (the block is used up and the ID service is unreachable, its ID space
    exhausted, or its answer empty): never UNKNOWN.
    """
    if isinstance(error, NoIdsLeased):
        return grpc.StatusCode.UNAVAILABLE, str(error)
    code = grpc.StatusCode.DEADLINE_EXCEEDED if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED else grpc.StatusCode.UNAVAILABLE
    return code, f"the leased block is used up and the ID service failed to lease another ({error.code().name}: {error.details()})"


class IdBlockLease:
    """Local supply of IDs refilled by ``lease(count)``.

    ``lease(count)`` returns runs ``[(start, count), ...]`` of consecutive IDs
    (``start .. start + count - 1``), as in LeaseIdsResponse.ranges; it is
    asked for ``block_size`` IDs at a time (keep it within the service's limit,
    1..10000). When fewer than ``low_water`` IDs remain, one background refill
    starts; at most one refill is ever in flight. When the supply is empty,
    callers wait for that refill (starting it if needed). A failed refill
    raises its exception (``lease``'s own, or :class:`NoIdsLeased` for an
    empty answer) in every caller waiting on it; the next call starts a new one. IDs are handed out in the order the lease returned them.

    ``leases`` counts calls of ``lease``; ``last_error`` is the exception of
    the latest failed refill (None after a successful one).
    """

    def __init__(
        self,
        lease: Callable[[int], Awaitable[list[tuple[int, int]]]],
        block_size: int = 256,
        low_water: int = 64,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1 (got {block_size})")
        if low_water < 0:
            raise ValueError(f"low_water must be at least 0 (got {low_water})")
        self._lease = lease
        self.block_size = block_size
        self.low_water = low_water
        self._ranges: deque[tuple[int, int]] = deque()  # (next id, end exclusive)
        self._available = 0
        self._refill: asyncio.Task[None] | None = None
        self.leases = 0
        self.last_error: BaseException | None = None

    @property
    def available(self) -> int:
        """IDs held locally and not yet handed out."""
        return self._available

    @property
    def refilling(self) -> bool:
        """True while a lease call is in flight."""
        return self._refill is not None

    async def next_id(self) -> int:
        """The next unique ID; awaits a refill only when the local supply is empty."""
        while True:
            if self._available:
                start, end = self._ranges[0]
                if start + 1 == end:
                    self._ranges.popleft()
                else:
                    self._ranges[0] = (start + 1, end)
                self._available -= 1
                if self._available < self.low_water:
                    self._start_refill()
                return start
            # Shielded: a caller giving up (deadline, cancel) must not cancel
            # the refill that other callers are waiting on.
            await asyncio.shield(self._start_refill())

    def _start_refill(self) -> asyncio.Task[None]:
        if self._refill is None:
            self.leases += 1
            self._refill = asyncio.get_running_loop().create_task(self._do_refill())
            self._refill.add_done_callback(self._refill_done)
        return self._refill

    async def _do_refill(self) -> None:
        ranges = await self._lease(self.block_size)
        got = 0
        for start, count in ranges:
            if count > 0:
                self._ranges.append((start, start + count))
                got += count
        if got == 0:
            raise NoIdsLeased(f"the ID service answered a lease of {self.block_size} IDs with none")
        self._available += got

    def _refill_done(self, task: asyncio.Task[None]) -> None:
        self._refill = None
        if task.cancelled():
            return
        # Retrieving the exception also stops asyncio from logging "Task
        # exception was never retrieved" for a background refill nobody awaited.
        self.last_error = task.exception()

    async def aclose(self) -> None:
        """Cancel an in-flight refill (shutdown). IDs held locally are abandoned."""
        task = self._refill
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - the refill's own error, already recorded
                pass

"""Per (user, campaign) impression timestamps in a sliding window, and the cap check (seed 001 #15, frequency caps).

:class:`FrequencyCounter` keeps, for each ``(user_key, campaign_id)`` seen, the sorted times of its reservations, and
a map impression ID → reservation (idempotency and Release). An impression counts against a cap of window ``W``
seconds while ``now - reserved_at < W`` (milliseconds).

**Check and record in one step.** :meth:`FrequencyCounter.reserve` counts, compares with the cap and inserts the
reservation into memory with no ``await`` in between, so two concurrent reservations of one user and campaign cannot
both see the last free slot (the event loop runs one of them to its insertion first). Only then is the row written
(the group commit, fsynced) and the caller answered; while the write is in flight the reservation already counts
(GetCounts and other Reserves see it: never under-counted). A failed write removes it from memory and answers
UNAVAILABLE; the write runs in its own task, so a caller that is cancelled meanwhile leaves memory and the file in
agreement. A Reserve of an ID whose write is in flight waits for that write and answers what it answered. Release
deletes the row and drops the reservation from memory once the delete committed (until then it still counts).

**Memory bound.** Memory holds only reservations inside a window: each key remembers the longest window any call
used for it (caps are fixed per campaign), and its timestamps older than that window are dropped whenever a call
touches the key and by the sweeper (:meth:`FrequencyCounter.sweep`) for the keys nobody touches; keys left empty are
dropped. Memory is therefore proportional to the impressions reserved within their campaigns' windows (at most
``max_window_s``), about 150 bytes each. At start only rows within ``max_window_s`` are loaded (the key windows are
learnt again on first touch, so a key is pruned to ``max_window_s`` until then); rows older than ``max_window_s`` are
deleted from the file by the sweeper.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from ...runtime.errors import FailedPrecondition, Unavailable
from ..contract import FREQUENCY_CAPPED
from . import metrics
from .store import FrequencyStore, Row

log = logging.getLogger("casemesh.ads.frequency.counter")

#: FAILED_PRECONDITION reason of a Reserve whose impression ID holds another user's or campaign's reservation.
KEY_REUSED = "key_reused"
Key = tuple[str, str]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Cap(NamedTuple):
    """A frequency cap: at most ``max_impressions`` within ``window_s`` seconds."""

    max_impressions: int
    window_s: int


@dataclass(slots=True, eq=False)
class Reservation:
    """One reserved impression; ``pending`` is the future of its write while it is in flight (``None`` once durable).
    """

    impression_id: str
    key: Key
    at_ms: int
    count: int
    pending: asyncio.Future[None] | None = None


@dataclass(slots=True)
class _Seen:
    """One (user, campaign)'s reservation times, sorted (time, impression ID), and the longest window asked of it (0:
    not known since the start)."""

    times: list[tuple[int, str]] = field(default_factory=list)
    window_ms: int = 0


class FrequencyCounter:
    """Impression counts over ``store`` (see the module docstring); ``clock`` gives Unix milliseconds."""

    def __init__(self, store: FrequencyStore, max_window_s: int, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._store = store
        self.max_window_ms = max_window_s * 1000
        self._clock = clock
        self._seen: dict[Key, _Seen] = {}
        self._by_id: dict[str, Reservation] = {}
        self._keys_per_user: dict[str, int] = {}
        self._writes: set[asyncio.Task[None]] = set()

    # -- memory --------------------------------------------------------------------------------------------------------

    @property
    def users(self) -> int:
        """Users with at least one reservation in memory."""
        return len(self._keys_per_user)

    @property
    def reservations(self) -> int:
        """Reservations in memory."""
        return len(self._by_id)

    def _gauges(self) -> None:
        metrics.USERS.set(len(self._keys_per_user))
        metrics.RESERVATIONS.set(len(self._by_id))

    def _add(self, reservation: Reservation) -> None:
        seen = self._seen.get(reservation.key)
        if seen is None:
            seen = self._seen[reservation.key] = _Seen()
            user = reservation.key[0]
            self._keys_per_user[user] = self._keys_per_user.get(user, 0) + 1
        bisect.insort(seen.times, (reservation.at_ms, reservation.impression_id))
        self._by_id[reservation.impression_id] = reservation

    def _remove(self, reservation: Reservation) -> None:
        if self._by_id.get(reservation.impression_id) is not reservation:
            return  # removed already
        del self._by_id[reservation.impression_id]
        seen = self._seen.get(reservation.key)
        if seen is not None:
            entry = (reservation.at_ms, reservation.impression_id)
            index = bisect.bisect_left(seen.times, entry)
            if index < len(seen.times) and seen.times[index] == entry:
                del seen.times[index]
            self._drop_if_empty(reservation.key, seen)

    def _drop_if_empty(self, key: Key, seen: _Seen) -> None:
        if seen.times or self._seen.get(key) is not seen:
            return
        del self._seen[key]
        user = key[0]
        left = self._keys_per_user[user] - 1
        if left:
            self._keys_per_user[user] = left
        else:
            del self._keys_per_user[user]

    def _prune(self, seen: _Seen, now_ms: int) -> None:
        """Drop ``seen``'s times that left its longest window (``max_window_s`` while it is unknown)."""
        horizon = now_ms - (seen.window_ms or self.max_window_ms)
        cut = bisect.bisect_right(seen.times, (horizon, "\U0010ffff"))
        if cut:
            for _, impression_id in seen.times[:cut]:
                reservation = self._by_id.get(impression_id)
                if reservation is not None and reservation.pending is None:
                    del self._by_id[impression_id]
            del seen.times[:cut]

    @staticmethod
    def _count(seen: _Seen, now_ms: int, window_ms: int) -> int:
        """Times within ``window_ms`` before ``now_ms``: those with ``now - t < window``."""
        return len(seen.times) - bisect.bisect_right(seen.times, (now_ms - window_ms, "\U0010ffff"))

    # -- the RPCs ------------------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Load the reservations within ``max_window_s`` from the file; how many."""
        rows = await self._store.load(self._clock() - self.max_window_ms + 1)
        for row in rows:
            self._add(Reservation(row.impression_id, (row.user_key, row.campaign_id), row.reserved_at_unix_ms,
                                  row.count))
        self._gauges()
        return len(rows)

    def counts(self, user_key: str, caps: list[tuple[str, Cap]]) -> list[int]:
        """How many impressions ``user_key`` saw of each campaign within its cap's window."""
        now = self._clock()
        counts = []
        for campaign_id, cap in caps:
            key = (user_key, campaign_id)
            seen = self._seen.get(key)
            if seen is None:
                counts.append(0)
                continue
            window_ms = cap.window_s * 1000
            seen.window_ms = max(seen.window_ms, window_ms)
            self._prune(seen, now)
            counts.append(self._count(seen, now, window_ms))
            self._drop_if_empty(key, seen)
        self._gauges()
        return counts

    async def reserve(self, impression_id: str, user_key: str, campaign_id: str, cap: Cap) -> int:
        """Record an impression if the user saw fewer than ``cap.max_impressions`` within ``cap.window_s``; the
        user's count with it. Raises ``FailedPrecondition`` (``frequency_capped: ...`` or ``key_reused: ...``),
        ``Unavailable`` (the write failed: nothing reserved)."""
        key = (user_key, campaign_id)
        while (existing := self._by_id.get(impression_id)) is not None:
            if existing.key != key:
                metrics.RESERVES.labels("key_reused").inc()
                raise FailedPrecondition(f"{KEY_REUSED}: impression {impression_id} is reserved for another user or "
                                         "campaign; release it first or use another ID")
            if existing.pending is None:
                metrics.RESERVES.labels("repeated").inc()
                return existing.count
            with contextlib.suppress(Unavailable):
                await asyncio.shield(existing.pending)
            # written (the loop answers its count) or failed (removed: this call reserves afresh)

        # From here to the insertion into memory: no await (check and record in one step of the event loop).
        now = self._clock()
        window_ms = cap.window_s * 1000
        seen = self._seen.get(key)
        if seen is not None:
            seen.window_ms = max(seen.window_ms, window_ms)
            self._prune(seen, now)
            count = self._count(seen, now, window_ms)
            self._drop_if_empty(key, seen)
        else:
            count = 0
        if count >= cap.max_impressions:
            metrics.RESERVES.labels("capped").inc()
            raise FailedPrecondition(f"{FREQUENCY_CAPPED}: user {user_key} saw campaign {campaign_id} {count} "
                                     f"times within {cap.window_s} s; the cap is {cap.max_impressions}")
        reservation = Reservation(impression_id, key, now, count + 1,
                                  asyncio.get_running_loop().create_future())
        self._add(reservation)
        self._seen[key].window_ms = max(self._seen[key].window_ms, window_ms)
        self._gauges()
        task = asyncio.create_task(self._persist(reservation), name=f"ads-frequency-reserve-{impression_id}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        assert reservation.pending is not None
        await asyncio.shield(reservation.pending)
        return reservation.count

    async def _persist(self, reservation: Reservation) -> None:
        pending = reservation.pending
        assert pending is not None
        try:
            await self._store.insert(Row(reservation.impression_id, *reservation.key, reservation.at_ms,
                                         reservation.count))
        except BaseException as error:  # every failure (a cancellation too) removes the reservation
            self._remove(reservation)
            self._gauges()
            metrics.RESERVES.labels("unavailable").inc()
            answer = error
            if not isinstance(error, Unavailable):
                log.error("ads-frequency: writing reservation %s failed: %r", reservation.impression_id, error)
                answer = Unavailable(f"the frequency log could not be written: {error!r}")
            pending.set_exception(answer)
            pending.exception()  # retrieved: nobody may be waiting any more
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            reservation.pending = None
            metrics.RESERVES.labels("reserved").inc()
            pending.set_result(None)

    async def release(self, impression_id: str) -> bool:
        """Remove the reservation ``impression_id`` (durably); False when there is none (unknown or released)."""
        reservation = self._by_id.get(impression_id)
        if reservation is None:
            return False
        if reservation.pending is not None:
            try:
                await asyncio.shield(reservation.pending)
            except Unavailable:
                return False  # its write failed: nothing was reserved
        if self._by_id.get(impression_id) is not reservation:
            return False

        def removed(_: None) -> None:
            self._remove(reservation)
            self._gauges()

        await self._store.delete(impression_id, removed)
        metrics.RELEASES.inc()
        return True

    async def sweep(self, chunk: int = 10_000) -> int:
        """Drop the timestamps that left their window from memory (yielding to the loop every ``chunk`` keys) and
        delete the rows older than ``max_window_s`` from the file; how many rows were deleted."""
        now = self._clock()
        for n, key in enumerate(list(self._seen)):
            seen = self._seen.get(key)
            if seen is not None:
                self._prune(seen, now)
                self._drop_if_empty(key, seen)
            if n % chunk == chunk - 1:
                await asyncio.sleep(0)
        self._gauges()
        pruned = await self._store.prune(now - self.max_window_ms + 1)
        metrics.PRUNED.inc(pruned)
        return pruned

    async def close(self) -> None:
        """Let the writes in flight finish, then close the file."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._store.close()

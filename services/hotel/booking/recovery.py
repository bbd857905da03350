"""The background recovery: bookings, cancellations and check-ins that nobody retries are finished or compensated.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | ... overbooking prevention,
payment auth/capture"). A booking stays PENDING when this service died between two saga steps, or when a dependency
did not answer (the guest got UNAVAILABLE); a CONFIRMED booking keeps its ``cancel`` or ``check_in`` intent in the
same cases. The guest's retry finishes it; when none comes, :class:`Recovery` does, ``recovery_grace_s`` after the
booking's last write (so it does not race the guest's own retry), exactly as the retry would
(:meth:`.saga.BookingSaga.resume`: the same step again, with the same hold id and payment keys, which the inventory
and the gateway each do at most once). Bookings a call of this process holds are skipped.

:meth:`Recovery.start` runs a look at once and then every ``recovery_interval_s``, in a task of its own with a fresh
``contextvars.Context`` (no request's deadline leaks into its calls; each call has its client's explicit deadline). A
look stops at the first UNAVAILABLE (a dependency is down: every other booking would wait for the same timeout) and
the wait before the next one doubles, with jitter, up to ``recovery_max_backoff_s``; a look that gets through resets
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random

from ...runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from . import metrics
from .calls import Unavailable
from .saga import BookingSaga

log = logging.getLogger("casemesh.hotel.booking.recovery")


class Recovery:
    """Finishes ``saga``'s unfinished bookings older than ``recovery_grace_s`` (see the module docstring)."""

    def __init__(self, saga: BookingSaga) -> None:
        self._saga = saga
        settings = saga.settings
        self._grace_ms = int(settings.recovery_grace_s * 1000)
        self._interval_s = settings.recovery_interval_s
        self._max_backoff_s = settings.recovery_max_backoff_s
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> bool:
        """One look (see the module docstring); ``False`` when it stopped at an UNAVAILABLE. A booking a dependency
        refuses is logged, counted ``refused`` and left as it is; the look goes on."""
        saga = self._saga
        for row in await saga.store.unfinished(saga.now_ms() - self._grace_ms):
            try:
                finished = await saga.resume(row)
            except Unavailable as error:
                metrics.RECOVERED.labels("unavailable").inc()
                log.info("recovering booking %s (%s %s): %s", row.booking_id, row.status, row.step, error)
                return False
            except (NotFound, FailedPrecondition, InvalidArgument, Aborted) as error:
                metrics.RECOVERED.labels("refused").inc()
                log.error("recovering booking %s (%s %s): refused (%s); left as it is", row.booking_id, row.status,
                          row.step, error)
                continue
            if finished is not None:
                metrics.RECOVERED.labels(finished.status.lower()).inc()
        return True

    async def run(self) -> None:
        """:meth:`sweep` at once, then every ``recovery_interval_s``, backing off while a dependency fails; for ever
        (a failure is logged; the loop goes on)."""
        delay_s = self._interval_s
        while True:
            try:
                reached = await self.sweep()
            except Exception:
                log.exception("hotel-booking recovery failed")
                reached = False
            if reached:
                delay_s = self._interval_s
                await asyncio.sleep(delay_s)
            else:
                delay_s = min(delay_s * 2, self._max_backoff_s)
                await asyncio.sleep(random.uniform(delay_s / 2, delay_s))

    def start(self) -> None:
        """Run :meth:`run` in a task of its own, in a fresh context."""
        self._task = asyncio.create_task(self.run(), name="hotel-booking-recovery", context=contextvars.Context())

    async def stop(self) -> None:
        """Stop the task (a booking being finished stays where its last write left it; the next start resumes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

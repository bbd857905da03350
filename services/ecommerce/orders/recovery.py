"""The background recovery: PENDING orders that nobody retries are finished, or compensated, exactly once.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions") and seed 003 "Amazon E-commerce" (shared/seeds/003_1dfe16d8ccfde9ed.txt
lines 1270-1290, processOrder's compensating transactions). An order stays PENDING when this service died between two
steps of its saga, or when a dependency did not answer (the buyer got UNAVAILABLE). The buyer's retry with the same
key resumes it; when none comes, :class:`Recovery` does, exactly as the retry would (:meth:`.orders.Orders.resume`:
the saga goes on from its recorded step; every call it makes is idempotent, so a step that had been done before the
crash is done once). An order being compensated is compensated to the end, never resumed forward. Orders a call of
this process holds are skipped.

:meth:`Recovery.start` runs a look at once over every PENDING order (they were all left by an earlier process: no call
of this one holds them), then every ``recovery_interval_s`` over the orders PENDING for ``recovery_grace_s`` (so it
does not race the buyer's own retry), in a task of its own with a fresh ``contextvars.Context`` (no request's deadline
leaks into its calls; each call has its client's explicit deadline). A look stops at the first UNAVAILABLE (a
dependency is down: every other order would wait for the same timeout) and the wait before the next one doubles, with
jitter, up to ``recovery_max_backoff_s``; a look that goes through resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random

from . import metrics
from .calls import Unavailable
from .orders import Orders
from .store import CONFIRMED

log = logging.getLogger("casemesh.ecommerce.orders.recovery")


class Recovery:
    """Finishes ``orders``' PENDING orders (see the module docstring)."""

    def __init__(self, orders: Orders) -> None:
        self._orders = orders
        settings = orders.settings
        self._grace_ms = int(settings.recovery_grace_s * 1000)
        self._interval_s = settings.recovery_interval_s
        self._max_backoff_s = settings.recovery_max_backoff_s
        self._task: asyncio.Task[None] | None = None

    async def sweep(self, grace_ms: int | None = None) -> bool:
        """One look at the orders PENDING for ``grace_ms`` (``None``: ``recovery_grace_s``); ``False`` when it stopped
        at an UNAVAILABLE. An order whose saga fails otherwise (a bug) is logged, counted ``error`` and left PENDING;
        the look goes on."""
        orders = self._orders
        grace_ms = self._grace_ms if grace_ms is None else grace_ms
        for row in await orders.store.pending(orders.now_ms() - grace_ms):
            try:
                decided = await orders.resume(row)
            except Unavailable as error:
                metrics.RECOVERED.labels("unavailable").inc()
                log.info("recovering order %s: %s", row.order_id, error)
                return False
            except Exception:
                metrics.RECOVERED.labels("error").inc()
                log.exception("recovering order %s failed; left PENDING", row.order_id)
                continue
            if decided is not None:
                metrics.RECOVERED.labels("confirmed" if decided.state == CONFIRMED else "failed").inc()
        return True

    async def run(self) -> None:
        """A look at every PENDING order at once, then :meth:`sweep` every ``recovery_interval_s``, backing off while
        a dependency fails; for ever (a failure is logged; the loop goes on)."""
        delay_s = self._interval_s
        grace_ms: int | None = 0
        while True:
            try:
                reached = await self.sweep(grace_ms)
            except Exception:
                log.exception("ecommerce-orders recovery failed")
                reached = False
            if reached:
                grace_ms = None
                delay_s = self._interval_s
                await asyncio.sleep(delay_s)
            else:
                delay_s = min(delay_s * 2, self._max_backoff_s)
                await asyncio.sleep(random.uniform(delay_s / 2, delay_s))

    def start(self) -> None:
        """Run :meth:`run` in a task of its own, in a fresh context."""
        self._task = asyncio.create_task(self.run(), name="ecommerce-orders-recovery", context=contextvars.Context())

    async def stop(self) -> None:
        """Stop the task (an order being finished stays PENDING where it got to; the next start resumes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

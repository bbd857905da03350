"""The background recovery: PENDING transfers and deposits that nobody retries are finished exactly once.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "Online Banking | Double-entry ledger, ACID
transactions"). A row stays PENDING when this service died between its PENDING write and its decision, or when the
ledger did not answer (the customer got UNAVAILABLE). The customer's retry with the same key resumes it; when none
comes, :class:`Recovery` does, ``recovery_grace_s`` after the row was written (so it does not race the customer's
own retry), exactly as the retry would (:meth:`.transfers.Transfers.resume`: PostEntry again with the same entry id,
which the ledger posts at most once; the fraud rules are not asked again). Rows a call of this process holds are
skipped.

:meth:`Recovery.start` runs a look at once and then every ``recovery_interval_s``, in a task of its own with a fresh
``contextvars.Context`` (no request's deadline leaks into its ledger calls; each call has the ledger client's explicit
``ledger_timeout_s``). A look stops at the first UNAVAILABLE (the ledger is down: every other row would wait for the
same timeout) and the wait before the next one doubles, with jitter, up to ``recovery_max_backoff_s``; a look that
reaches the ledger resets it. Each look also prunes the fraud rules' windows of what is older than 24 h.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random

from ...runtime.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from . import metrics
from .ledger import Unavailable
from .transfers import Transfers

log = logging.getLogger("casemesh.banking.transfers.recovery")


class Recovery:
    """Finishes ``transfers``' PENDING rows older than ``recovery_grace_s`` (see the module docstring)."""

    def __init__(self, transfers: Transfers) -> None:
        self._transfers = transfers
        settings = transfers.settings
        self._grace_ms = int(settings.recovery_grace_s * 1000)
        self._interval_s = settings.recovery_interval_s
        self._max_backoff_s = settings.recovery_max_backoff_s
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> bool:
        """One look (see the module docstring); ``False`` when it stopped at an UNAVAILABLE. A row refused by the
        ledger is logged, counted ``failed`` and left PENDING; the look goes on."""
        transfers = self._transfers
        now_ms = transfers.now_ms()
        transfers.fraud.prune(now_ms)
        for row in await transfers.store.pending(now_ms - self._grace_ms):
            try:
                decided = await transfers.resume(row)
            except Unavailable as error:
                metrics.RECOVERIES.labels(row.kind, "unavailable").inc()
                log.info("recovering %s %s: %s", row.kind, row.transfer_id, error)
                return False
            except (NotFound, FailedPrecondition, InvalidArgument, AlreadyExists, Aborted) as error:
                metrics.RECOVERIES.labels(row.kind, "failed").inc()
                log.error("recovering %s %s: refused (%s); left PENDING", row.kind, row.transfer_id, error)
                continue
            if decided is not None:
                metrics.RECOVERIES.labels(row.kind, decided.state.lower()).inc()
        return True

    async def run(self) -> None:
        """:meth:`sweep` at once, then every ``recovery_interval_s``, backing off while the ledger fails; for ever (a
        failure is logged; the loop goes on)."""
        delay_s = self._interval_s
        while True:
            try:
                reached = await self.sweep()
            except Exception:
                log.exception("banking-transfers recovery failed")
                reached = False
            if reached:
                delay_s = self._interval_s
                await asyncio.sleep(delay_s)
            else:
                delay_s = min(delay_s * 2, self._max_backoff_s)
                await asyncio.sleep(random.uniform(delay_s / 2, delay_s))

    def start(self) -> None:
        """Run :meth:`run` in a task of its own, in a fresh context."""
        self._task = asyncio.create_task(self.run(), name="banking-transfers-recovery",
                                         context=contextvars.Context())

    async def stop(self) -> None:
        """Stop the task (a row being finished stays PENDING or is decided; the next start resumes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

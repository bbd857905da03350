"""Reversals: no hold left behind by an authorization whose outcome is unknown (seed 000 line 522, "retry with
exponential backoff"; the card networks' authorization reversal).

When an acquirer's Authorize ends without an answer (a deadline, a lost connection), the attempt may have been
approved there. The gateway marks it REVERSING (fsynced) and :class:`Reverser` sends the acquirer Void(reference)
until it answers: then the attempt is REVERSED (fsynced). The acquirer records a Void of a reference it never saw, so
an Authorize that arrives after it is refused: either way nothing stays held. Waits between Voids grow exponentially
from ``reversal_initial_backoff_s`` to ``reversal_max_backoff_s``, each drawn between half and all of its value
("equal jitter", so many reversals of one outage do not retry in step); each Void has ``reversal_timeout_s``.

Each reversal runs in its own task created with an empty ``contextvars.Context()``, so it does not inherit the
deadline of the request that started it. On start the gateway hands the reverser every attempt still REVERSING in the
store (:meth:`Reverser.resume`): a reversal survives a crash. A Void the acquirer refuses (FAILED_PRECONDITION: it was
captured, which the gateway never does to an attempt it reverses) is logged and counted ``refused`` and left
REVERSING for a person to look at. Metrics: ``casemesh_payments_gateway_reversals_total{acquirer,outcome}`` and the
``casemesh_payments_gateway_reversals_pending`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import Callable, Mapping

from . import metrics
from .clients import Acquirer, Refused
from .settings import GatewaySettings
from .store import REVERSED, GatewayStore, StoreUnavailable, now_ms, set_attempt_state

log = logging.getLogger("casemesh.payments.gateway.reversal")


class Reverser:
    """Voids REVERSING attempts at their acquirers (``acquirers``: topology name → client) until confirmed."""

    def __init__(self, store: GatewayStore, acquirers: Mapping[str, Acquirer], settings: GatewaySettings, *,
                 rng: random.Random | None = None, sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self._store = store
        self._acquirers = acquirers
        self._initial_s = settings.reversal_initial_backoff_s
        self._max_s = settings.reversal_max_backoff_s
        self._timeout_s = settings.reversal_timeout_s
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Reversals under way."""
        return len(self._tasks)

    def reverse(self, acquirer: str, reference: str) -> None:
        """Start reversing ``reference`` at ``acquirer`` (already REVERSING in the store); nothing when under way."""
        if self._closed or reference in self._tasks:
            return
        client = self._acquirers.get(acquirer)
        if client is None:
            log.error("attempt %s is REVERSING at %s, which is not a configured acquirer: not reversed", reference,
                      acquirer)
            return
        task = asyncio.create_task(self._run(client, reference), name=f"payments-gateway-reverse-{reference}",
                                   context=contextvars.Context())
        self._tasks[reference] = task
        metrics.REVERSALS_PENDING.set(len(self._tasks))
        task.add_done_callback(lambda _: self._done(reference))

    def _done(self, reference: str) -> None:
        self._tasks.pop(reference, None)
        metrics.REVERSALS_PENDING.set(len(self._tasks))

    def _backoff(self, attempt: int) -> float:
        delay = min(self._max_s, self._initial_s * 2 ** min(attempt, 30))
        return delay / 2 + self._rng.random() * delay / 2

    async def _run(self, client: Acquirer, reference: str) -> None:
        failures = 0
        while True:
            try:
                await client.void(reference, self._timeout_s)
            except Refused as error:
                log.error("%s refused the reversal of %s (%s): left REVERSING for a person to look at", client.name,
                          reference, error)
                metrics.REVERSALS.labels(client.name, "refused").inc()
                return
            except Exception as error:
                metrics.REVERSALS.labels(client.name, "retried").inc()
                log.debug("reversal of %s at %s failed (%s); retrying", reference, client.name, error)
                await self._sleep(self._backoff(failures))
                failures += 1
                continue
            break
        while True:
            try:
                await self._store.write([set_attempt_state(reference, REVERSED, now_ms())])
                break
            except StoreUnavailable as error:
                log.warning("reversal of %s confirmed but not recorded (%s); retrying", reference, error)
                await self._sleep(self._backoff(failures))
                failures += 1
        metrics.REVERSALS.labels(client.name, "reversed").inc()

    async def resume(self) -> int:
        """Start reversing every attempt REVERSING in the store; how many."""
        attempts = await self._store.reversing()
        for attempt in attempts:
            self.reverse(attempt.acquirer, attempt.reference)
        return len(attempts)

    async def drain(self) -> None:
        """Wait until no reversal is under way (tests; reversals of a healthy acquirer end)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop every reversal (the attempts stay REVERSING in the store: the next start resumes them)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

"""Following the matching engine's event log: MatchingEngineService.StreamEvents, in sequence order, resumed forever.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). The engine writes every change of its books as
an event with the next sequence number in a durable log (protos/casemesh/trading/v1/engine.proto); the order
gateway (a drop copy for its risk checks) and the market data service (the books it publishes) each follow that
log from sequence 1 with an :class:`EngineFeed`, the way an exchange's drop copy and market data feeds follow its
sequenced matching log (a session resumed from the last sequence number received, as in NASDAQ's MoldUDP64/SoupBinTCP
rewind).

An :class:`EngineFeed` calls its handler with each event, in order, exactly once per sequence number:

- every event must carry ``last + 1``; a gap or a repeat (the stream broke its contract) ends the stream, logged,
  and the feed reconnects from ``last + 1``;
- any stream error (the engine restarted: UNAVAILABLE; the feed read too slowly: RESOURCE_EXHAUSTED; anything
  else) or the stream ending reconnects from ``last + 1`` after a capped exponential backoff with jitter (each wait
  drawn between half and all of ``initial_backoff_s * 2**(failures - 1)``, at most ``max_backoff_s``; reset once a
  stream delivers an event);
- a handler that raises (a bug) leaves ``last_sequence`` where it was: the event is delivered again after the
  backoff, never skipped (a book that skipped an event would be wrong for good);
- the stream's deadline: the runtime's client interceptor (services/runtime/interceptors/client.py) gives a call
  made with ``timeout=None`` the topology's default (``calls.timeout_ms``, 500 ms), streams included, so a
  stream "without a deadline" would end every half second. The feed passes an explicit ``renew_s`` (a day by
  default) instead; when it runs out the stream is reopened at once, from ``last + 1``, without a backoff.

The feed runs as a task of its own in a fresh ``contextvars.Context``: it never inherits a request's deadline
(services/runtime/deadlines.py) or trace. Handlers are synchronous and fast: they run on the event loop between two
reads of the stream.

Metrics (:class:`FeedMetrics`, named by the service that owns the feed): reconnects by reason (``gap``,
``duplicate``, ``ended``, ``renewed``, ``handler_error``, or the stream's status code in lower case:
``unavailable``, ``resource_exhausted``, ...), the last sequence applied, and the lag of the last event applied
(seconds from the engine's ``at_unix_ns`` to the handler's return).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from prometheus_client import Counter, Gauge

from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc

log = logging.getLogger("casemesh.trading.engine_feed")

#: Called with each event, in sequence order; synchronous (it runs between two reads of the stream).
EventHandler = Callable[[engine_pb2.EngineEvent], None]

#: Reasons a stream is reopened that are not a status code.
GAP, DUPLICATE, ENDED, RENEWED, HANDLER_ERROR = "gap", "duplicate", "ended", "renewed", "handler_error"
#: A stream that ran this share of ``renew_s`` before DEADLINE_EXCEEDED ended by its own deadline (renewed at once).
_RENEW_SHARE = 0.9


@dataclass(frozen=True)
class FeedMetrics:
    """A feed's metrics, created by the service that owns it (``casemesh_trading_<service>_feed_*``).

    ``reconnects``: a Counter labelled ``reason``; ``sequence``: a Gauge, the last sequence applied; ``lag_seconds``:
    a Gauge, seconds from the last applied event's ``at_unix_ns`` to its handler's return.
    """

    reconnects: Counter
    sequence: Gauge
    lag_seconds: Gauge


class EngineFeed:
    """Follows MatchingEngineService.StreamEvents from ``from_sequence`` and hands each event to ``handler``.

    ``last_sequence`` is the sequence of the last event the handler returned from (``from_sequence - 1`` before the
    first). ``start`` runs it as a task in a fresh context; ``stop`` cancels it. Times are seconds.
    """

    def __init__(self, stub: engine_pb2_grpc.MatchingEngineServiceStub, handler: EventHandler, *, name: str,
                 metrics: FeedMetrics, from_sequence: int = 1, initial_backoff_s: float = 0.05,
                 max_backoff_s: float = 2.0, renew_s: float = 86_400.0) -> None:
        if from_sequence < 1:
            raise ValueError(f"from_sequence must be at least 1, not {from_sequence}")
        self._stub = stub
        self._handler = handler
        self.name = name
        self._metrics = metrics
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._renew_s = renew_s
        self.last_sequence = from_sequence - 1
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following the log (a task in a fresh ``contextvars.Context``: no request's deadline or trace)."""
        self._metrics.sequence.set(self.last_sequence)
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-engine-feed", context=contextvars.Context())

    async def stop(self) -> None:
        """Stop following (the open stream is cancelled)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        while True:
            reason, delivered = await self._follow()
            self._metrics.reconnects.labels(reason).inc()
            if reason == RENEWED:
                failures = 0
                continue
            failures = 1 if delivered else failures + 1
            backoff_s = min(self._max_backoff_s, self._initial_backoff_s * 2 ** (failures - 1))
            await asyncio.sleep(backoff_s * (0.5 + random.random() / 2))

    async def _follow(self) -> tuple[str, bool]:
        """Read one stream from ``last_sequence + 1`` until it fails or breaks the sequence: ``(reason, delivered)``,
        ``delivered`` True when the handler took at least one event from it."""
        opened = time.monotonic()
        delivered = False
        call = self._stub.StreamEvents(engine_pb2.StreamEventsRequest(from_sequence=self.last_sequence + 1),
                                       timeout=self._renew_s)
        metrics = self._metrics
        try:
            async for response in call:
                event = response.event
                expected = self.last_sequence + 1
                if event.sequence != expected:
                    reason = GAP if event.sequence > expected else DUPLICATE
                    log.warning("%s: the engine's event stream sent sequence %d where %d was due (%s); reconnecting "
                                "from %d", self.name, event.sequence, expected, reason, expected)
                    return reason, delivered
                self._handler(event)
                self.last_sequence = expected
                delivered = True
                metrics.sequence.set(expected)
                metrics.lag_seconds.set(max(0.0, time.time() - event.at_unix_ns / 1e9))
            log.warning("%s: the engine's event stream ended; reconnecting from %d", self.name, self.last_sequence + 1)
            return ENDED, delivered
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - opened >= self._renew_s * _RENEW_SHARE:
                log.debug("%s: renewing the engine's event stream from %d", self.name, self.last_sequence + 1)
                return RENEWED, delivered
            log.warning("%s: the engine's event stream failed (%s: %s); reconnecting from %d", self.name, code.name,
                        error.details(), self.last_sequence + 1)
            return code.name.lower(), delivered
        except Exception:  # a handler's bug must not end the feed: the event is delivered again
            log.exception("%s: handling event %d failed; reconnecting from it", self.name, self.last_sequence + 1)
            return HANDLER_ERROR, delivered
        finally:
            call.cancel()

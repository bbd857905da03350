"""Following a driver for the watchers of one ride or order: the client side of LocationService.TrackDriver.

A ride's rider (rides-trips' WatchRide) and an order's customer (food-orders' WatchOrder; couriers are drivers of the
ride-sharing location index) see their driver's positions while the driver has the ride or the order.
:class:`Following` holds the watchers of one ride or order and at most one task that streams the driver's positions
from ``track(driver_id)`` to each watcher's ``moved(position)``; when the stream ends or fails it opens it again,
after a backoff that doubles from ``retry.initial_s`` up to ``retry.max_s`` (a tracking failure never ends the
watchers' own streams; it counts in ``errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

log = logging.getLogger("casemesh.rides.location.following")


class PositionWatcher(Protocol):
    """A watcher: told each position of the driver it follows."""

    def moved(self, position: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class TrackRetry:
    """Backoff of a broken TrackDriver stream, seconds: from ``initial_s``, doubling, up to ``max_s``."""

    initial_s: float
    max_s: float


class Following:
    """The watchers of one ride or order, and the task that follows its driver for them (``driver_id``: whom it
    follows, empty when none)."""

    __slots__ = ("watchers", "tracking", "driver_id")

    def __init__(self) -> None:
        self.watchers: set[Any] = set()
        self.tracking: asyncio.Task[None] | None = None
        self.driver_id = ""

    def follow(self, driver_id: str, track: Callable[[str], AsyncIterator[Any]], retry: TrackRetry,
               errors: Counter, name: str) -> None:
        """Follow ``driver_id`` (empty: nobody), replacing whom it followed; nothing when that is who it follows."""
        if driver_id == self.driver_id:
            return
        self.stop()
        if driver_id:
            self.driver_id = driver_id
            # A context of its own: the task outlives the call that assigned the driver, whose deadline (propagated
            # through the runtime's context variables) must not bound the tracking's calls.
            self.tracking = asyncio.create_task(self._track(driver_id, track, retry, errors),
                                                name=f"{name}-track-{driver_id}", context=contextvars.Context())

    def stop(self) -> None:
        """Stop following (the task is cancelled; await :attr:`tracking` first to wait for it)."""
        if self.tracking is not None:
            self.tracking.cancel()
            self.tracking = None
        self.driver_id = ""

    async def _track(self, driver_id: str, track: Callable[[str], AsyncIterator[Any]], retry: TrackRetry,
                     errors: Counter) -> None:
        delay_s = retry.initial_s
        while True:
            try:
                async with contextlib.aclosing(track(driver_id)) as positions:
                    async for position in positions:
                        delay_s = retry.initial_s
                        for watcher in self.watchers:
                            watcher.moved(position)
                reason = "the stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a tracking failure must never end the watchers' streams
                reason = f"{type(error).__name__}: {error}"
            errors.inc()
            log.debug("tracking driver %s: %s; again in %.1f s", driver_id, reason, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, retry.max_s)

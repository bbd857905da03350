"""Request coalescing: concurrent callers asking for the same key share one call.

A CDN edge that misses on a popular object sends one request to the origin
and holds the other requests for that object until it arrives (nginx
``proxy_cache_lock``, Varnish request coalescing, CloudFront's "simultaneous
requests for the same object"). Without it a cold popular segment costs one
origin fetch per viewer: a thundering herd on the origin link (docs/case-studies/video.md).

The shared call runs as its own task, so a caller that gives up (a cancelled
stream) neither cancels it for the others nor stops it from finishing (the
edge still fills its cache). Used by the video edge (origin fetches), the
playback service's video cache and the photo service (a size rendered on
first request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one call in flight per key; callers that arrive meanwhile await its result.

    ``shared`` counts callers that joined a call already in flight. The result
    is not kept once the call ends (caching is the caller's job). Single event
    loop; not thread-safe.
    """

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[V]] = {}
        self.shared = 0

    def __len__(self) -> int:
        """Calls in flight."""
        return len(self._calls)

    def in_flight(self, key: K) -> bool:
        """Whether a call for ``key`` is running."""
        return key in self._calls

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """``(result, shared)``: the result of ``call()``, or of the call for ``key`` already in flight.

        ``shared`` is True when this caller joined another's call. The call's
        exception is raised to every caller. Cancelling a caller does not
        cancel the call.
        """
        task = self._calls.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        else:
            self.shared += 1
        return await asyncio.shield(task), shared

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" when every caller left

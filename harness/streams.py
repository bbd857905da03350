"""Long-lived bidi streams held open through a run: a population of connected clients.

Chat, collaborative editing and live streaming keep a stream open per
connected device for as long as it is online (the gRPC counterpart of a
WebSocket). A workload with ``connect`` (:class:`~.workloads.base.Workload`)
opens its population of streams before the run's first arrival, through the
:class:`Streams` it is given, and closes them after the last one; the run's
open-loop arrivals then send events (messages, edits) on those streams, and
other streams receive them. What the harness records:

- **time to connect**: a stream's time from being opened to its first server
  message, under the method's time to first message (``first_message`` in the
  result), for streams opened after the warm-up (reconnects by a journey,
  timed from the journey's intended start: coordinated-omission free);
- **stream ends**: each stream that ends after the warm-up is recorded under
  its method like a call: its status code (OK for a client half-close,
  UNAVAILABLE when its server went away, ...) and its length, so an
  availability SLO can target a stream method;
- **cross-stream measures** (:meth:`Streams.observe`): the time from an
  event's intended send on one stream to its arrival on another, matched by
  the workload (a message ID, or a send time carried in the payload:
  :meth:`Streams.wall_ns` converts a ``perf_counter`` instant to the Unix
  nanoseconds that every process on the machine shares);
- the **number of streams open** (:attr:`Streams.open_count`) and its peak.

:meth:`Streams.call` makes an unrecorded unary call, and :meth:`Streams.server_stream`
opens an unrecorded server stream, for the population's own bookkeeping (the collab workload's ``disconnect`` checks every replica against
the document the service holds before the streams close).

Each stream has one writer task draining a queue, so any number of journeys
may :meth:`BidiStream.send` on one stream at once without interleaving frames
(``grpc.aio`` allows one write in flight per call). Streams carry no deadline:
they last until closed (or until the run's end closes them); ``close`` half-
closes and waits a bounded time for the server to end the stream.

With ``--workers N`` each worker process holds its share of the population
(:attr:`Streams.share`: ``(index, count)``); the workload picks which members
are its own, as k6 splits its VUs between instances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from .stats import OK

if TYPE_CHECKING:
    from .driver import Driver

#: A stream's end code when the harness itself cancelled it (close timed out, or the run was abandoned).
CANCELLED = "CANCELLED"
#: Seconds ``BidiStream.close`` waits for the server to end a half-closed stream before cancelling it.
CLOSE_TIMEOUT_S = 5.0

_END = object()  # the request queue's end: half-close


class BidiStream:
    """One open bidi stream: :meth:`send` requests, :meth:`recv` responses, :meth:`close` it.

    Made by :meth:`Streams.open` (a population member's stream) or by a
    journey's ``Caller.bidi_stream`` (a reconnect, timed from the journey).
    ``code`` is ``None`` while the stream is open, then its status code name.
    """

    __slots__ = ("full_method", "code", "_call", "_queue", "_recorder", "_opened_at", "_record_first", "_first",
                 "_ended", "__weakref__")

    def __init__(self, stub_method: Callable[..., Any], full_method: str, recorder: StreamRecorder, *, opened_at: float,
                 record_first: bool, metadata: Any = None):
        self.full_method = full_method
        self.code: str | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._recorder = recorder
        self._opened_at = opened_at
        self._record_first = record_first
        self._first = True
        self._ended = asyncio.Event()
        self._call = stub_method(self._requests(), metadata=metadata)
        recorder.opened()

    async def _requests(self):  # noqa: ANN202 - an async generator of requests, gRPC's request iterator
        queue = self._queue
        while True:
            item = await queue.get()
            if item is _END:
                return
            yield item

    def send(self, request: Any) -> None:
        """Queue ``request`` to be written; frames go out in the order queued. Ignored once the stream has ended."""
        if self.code is None:
            self._queue.put_nowait(request)

    async def recv(self) -> Any | None:
        """The next response, or ``None`` once the stream has ended (then :attr:`code` says how)."""
        if self.code is not None:
            return None
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError as error:
            self._end(error.code().name)
            return None
        except asyncio.CancelledError:
            self._end(CANCELLED)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the reader itself was cancelled
            return None  # the call was cancelled (cancel(), or close() timing out): the stream has ended
        if response is grpc.aio.EOF:
            code = await self._call.code()
            self._end(code.name if code is not None else OK)
            return None
        if self._first:
            self._first = False
            self._recorder.first_message(self.full_method, time.perf_counter() - self._opened_at, self._record_first)
        return response

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> str:
        """Half-close, then wait up to ``timeout_s`` for the server to end the stream (reading on is the reader's
        job: a stream nobody reads is cancelled after the wait); returns the end code."""
        if self.code is None:
            self._queue.put_nowait(_END)
            try:
                await asyncio.wait_for(self._ended.wait(), timeout_s)
            except TimeoutError:
                self.cancel()
        return self.code or CANCELLED

    def cancel(self) -> None:
        """End the stream at once (recorded as CANCELLED)."""
        if self.code is None:
            self._call.cancel()
            self._end(CANCELLED)

    @property
    def ended(self) -> bool:
        """True once the stream has ended."""
        return self.code is not None

    async def wait_ended(self) -> str:
        """Wait until the stream has ended (someone must be reading it); returns its code."""
        await self._ended.wait()
        return self.code or CANCELLED

    def _end(self, code: str) -> None:
        if self.code is None:
            self.code = code
            # End the request iterator too: gRPC's task that drains it into the call waits on the queue otherwise,
            # and is destroyed pending (logged) once the stream is collected, when the server ended the stream.
            self._queue.put_nowait(_END)
            self._ended.set()
            self._recorder.ended(self.full_method, code, time.perf_counter() - self._opened_at)


class StreamRecorder:
    """Records what streams did into a driver's stats: time to connect, stream ends, the count open and its peak."""

    def __init__(self, driver: Driver):
        self._driver = driver
        self.open_count = 0
        self.peak_open = 0

    def measuring(self, at: float) -> bool:
        """True when perf_counter instant ``at`` falls in the run's measured window (after the warm-up)."""
        started = self._driver.progress.started_at  # 0 until the run's first instant
        return started > 0 and at >= started + self._driver.profile.warmup_s

    def opened(self) -> None:
        self.open_count += 1
        self.peak_open = max(self.peak_open, self.open_count)

    def first_message(self, full_method: str, latency_s: float, record: bool) -> None:
        if record:
            self._driver.stats.first_message_of(full_method).record(OK, latency_s * 1e6)

    def ended(self, full_method: str, code: str, lifetime_s: float) -> None:
        self.open_count -= 1
        now = time.perf_counter()
        if self.measuring(now):
            self._driver.stats.rpc(full_method).record(code, lifetime_s * 1e6)
            started = self._driver.progress.started_at
            self._driver.stats.series.rpc(full_method).record(code, lifetime_s * 1e6, now - started)


class Streams:
    """What a workload's ``connect`` gets: opens streams to the workload's services and records cross-stream measures.

    ``share`` is ``(index, count)``: this process is worker ``index`` of
    ``count`` (``(0, 1)`` without ``--workers``).
    """

    def __init__(self, driver: Driver, recorder: StreamRecorder, share: tuple[int, int]):
        self._driver = driver
        self._recorder = recorder
        self.share = share
        self._wall_offset_ns = time.time_ns() - time.perf_counter_ns()

    def open(self, service: str, method: str, *, metadata: Any = None) -> BidiStream:
        """Open a bidi stream to ``method`` of topology service ``service`` (no deadline; time to connect recorded
        only when opened after the warm-up)."""
        stub_method, full_method = self._driver._methods.get(service, method)
        now = time.perf_counter()
        return BidiStream(stub_method, full_method, self._recorder, opened_at=now, record_first=self._recorder.measuring(now),
                          metadata=metadata)

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        """A unary call to ``method`` of ``service`` that is not recorded (the population's own bookkeeping, such as
        checking at ``disconnect`` that every replica holds what the service holds); the run's request timeout unless
        ``timeout_s``. Raises ``grpc.aio.AioRpcError`` like any call."""
        stub_method, _ = self._driver._methods.get(service, method)
        return await stub_method(request, timeout=self._driver._timeout_s if timeout_s is None else timeout_s)

    def server_stream(self, service: str, method: str, request: Any) -> Any:
        """Open a server stream to ``method`` of ``service`` for a population member (no deadline; not recorded: the
        workload measures what it carries, as the live workload's held viewers do with their parts). Returns the
        ``grpc.aio`` call: iterate it or ``read()`` it; ``cancel()`` it to leave."""
        stub_method, _ = self._driver._methods.get(service, method)
        return stub_method(request)

    def observe(self, name: str, latency_s: float, code: str = OK, *, sent_at: float) -> None:
        """Record measure ``name`` (seconds; reported and judged like a journey of that name) of an event intended
        to be sent at perf_counter instant ``sent_at``: recorded when that instant is in the measured window."""
        driver = self._driver
        started = driver.progress.started_at  # 0 until the run's first instant
        if started <= 0:
            return
        if sent_at >= started + driver.profile.warmup_s:
            driver.stats.journey(name).record(code, latency_s * 1e6)
        driver.stats.series.journey(name).record(code, latency_s * 1e6, time.perf_counter() - started)

    def wall_ns(self, at: float) -> int:
        """perf_counter instant ``at`` (s) as Unix time in ns, the clock every process on this machine shares."""
        return int(at * 1e9) + self._wall_offset_ns

    def perf_at(self, wall_ns: int) -> float:
        """Unix time ``wall_ns`` as this process's perf_counter instant (s): the inverse of :meth:`wall_ns`."""
        return (wall_ns - self._wall_offset_ns) / 1e9

    @property
    def open_count(self) -> int:
        """Streams open now."""
        return self._recorder.open_count

    @property
    def peak_open(self) -> int:
        """The most streams open at once so far."""
        return self._recorder.peak_open

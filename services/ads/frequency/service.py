"""``casemesh.ads.v1.FrequencyService`` (topology name ``ads-frequency``): impression counts and frequency caps.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). A thin servicer over
:class:`.counter.FrequencyCounter` (the sliding windows, the one-step check and record, the memory bound), its durable
log :mod:`.store` (``DATA_DIR/ads-frequency/impressions.sqlite3``, rebuilt at start) and the sweeper; input rules in
:mod:`.validation`. Calls no other service. Users are pseudonymous keys (privacy-first): nothing else about them is
stored.

RPCs and status codes (protos/casemesh/ads/v1/frequency.proto), all internal to ``ads-server``:

- GetCounts: INVALID_ARGUMENT naming ``user_key``, ``caps`` or ``caps[i]``.
- Reserve: INVALID_ARGUMENT naming ``impression_id``, ``user_key``, ``campaign_id`` or ``cap``; FAILED_PRECONDITION
  ``frequency_capped: ...`` (nothing reserved) or ``key_reused: ...`` (the ID holds another user's or campaign's
  reservation); UNAVAILABLE when the log cannot be written (nothing reserved).
- Release: INVALID_ARGUMENT naming ``impression_id``; UNAVAILABLE when the log cannot be written (still reserved).

Settings: :class:`.settings.FrequencySettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.ads.v1 import frequency_pb2, frequency_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .counter import FrequencyCounter
from .settings import FrequencySettings
from .store import FILE_NAME, FrequencyStore

log = logging.getLogger("casemesh.ads.frequency.service")

NAME = "ads-frequency"
SERVER = "ads-server"
FULL_NAME = frequency_pb2.DESCRIPTOR.services_by_name["FrequencyService"].full_name
#: Internal methods and their callers.
INTERNAL_METHODS = {"GetCounts": (SERVER,), "Reserve": (SERVER,), "Release": (SERVER,)}


class FrequencyServicer(frequency_pb2_grpc.FrequencyServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.counter.FrequencyCounter`."""

    def __init__(self, counter: FrequencyCounter, max_window_s: int) -> None:
        self._counter = counter
        self._max_window_s = max_window_s

    async def GetCounts(self, request: frequency_pb2.GetCountsRequest,
                        context: grpc.aio.ServicerContext) -> frequency_pb2.GetCountsResponse:
        user_key, caps = validation.get_counts(request, self._max_window_s)
        return frequency_pb2.GetCountsResponse(counts=self._counter.counts(user_key, caps))

    async def Reserve(self, request: frequency_pb2.ReserveRequest,
                      context: grpc.aio.ServicerContext) -> frequency_pb2.ReserveResponse:
        count = await self._counter.reserve(*validation.reserve(request, self._max_window_s))
        return frequency_pb2.ReserveResponse(count=count)

    async def Release(self, request: frequency_pb2.ReleaseRequest,
                      context: grpc.aio.ServicerContext) -> frequency_pb2.ReleaseResponse:
        await self._counter.release(validation.impression_id(request.impression_id))
        return frequency_pb2.ReleaseResponse()


async def run_sweeper(counter: FrequencyCounter, interval_s: float) -> None:
    """:meth:`.counter.FrequencyCounter.sweep` every ``interval_s`` until cancelled; a failed sweep is logged and the
    next one tries again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await counter.sweep()
        except Exception as error:  # noqa: BLE001 - the sweeper must go on
            log.warning("%s: a sweep failed (%s: %s)", NAME, type(error).__name__, error)


class FrequencyComponent:
    """The servicer over the counter and its file (``DATA_DIR/ads-frequency/impressions.sqlite3``), and the sweeper."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, FrequencySettings)
        store = FrequencyStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes)
        self.counter = FrequencyCounter(store, self.settings.max_window_s)
        self._sweeper: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        frequency_pb2_grpc.add_FrequencyServiceServicer_to_server(
            FrequencyServicer(self.counter, self.settings.max_window_s), server)

    async def start(self) -> None:
        loaded = await self.counter.start()
        log.info("%s: %d reservations loaded (%d users)", NAME, loaded, self.counter.users)
        self._sweeper = asyncio.create_task(run_sweeper(self.counter, self.settings.sweep_interval_s),
                                            name=f"{NAME}-sweeper", context=contextvars.Context())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.counter.close()


async def build(context: RuntimeContext) -> FrequencyComponent:
    return FrequencyComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=FrequencySettings,
    access=Access(internal=INTERNAL_METHODS),
)

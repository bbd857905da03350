"""``casemesh.ads.v1.AdService`` (topology name ``ads-server``): which ad an ad request shows.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). A thin servicer over :class:`.decider.AdDecider`
(retrieval from the targeting index :mod:`.index`, kept current by :mod:`.sync`; the filters, the first-price auction
:mod:`.auction`, the reservation and the charge; the durable event log :mod:`.store`,
``DATA_DIR/ads-server/events.sqlite3``); input rules in :mod:`.validation`. Calls ``ads-campaigns`` (ListCampaigns),
``ads-budget`` (CheckEligibility, Charge) and ``ads-frequency`` (GetCounts, Reserve, Release), each call with an
explicit timeout within the decision's deadline budget (:mod:`.settings`). Privacy-first: requests carry a
pseudonymous user key and the page's context (country, interests, device), nothing personal.

RPCs and status codes (protos/casemesh/ads/v1/server.proto), public (publishers' ad requests):

- Decide: INVALID_ARGUMENT naming ``request_id``, ``user_key``, ``country``, ``interests`` or ``interests[i]``;
  UNAVAILABLE when the budget or frequency service did not answer in time, or the log could not be written (nothing
  served). A no-fill is an answer (``no_fill_reason``).
- RecordClick: INVALID_ARGUMENT naming ``impression_id``; NOT_FOUND; UNAVAILABLE (the log).

Settings: :class:`.settings.ServerSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.ads.v1 import budget_pb2_grpc, campaigns_pb2_grpc, frequency_pb2_grpc, server_pb2, server_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .clients import BudgetClient, CampaignsClient, FrequencyClient
from .decider import AdDecider
from .index import TargetingIndex
from .settings import ServerSettings
from .store import FILE_NAME, EventLog
from .sync import CampaignSync

log = logging.getLogger("casemesh.ads.server.service")

NAME = "ads-server"
CAMPAIGNS = "ads-campaigns"
BUDGET = "ads-budget"
FREQUENCY = "ads-frequency"
FULL_NAME = server_pb2.DESCRIPTOR.services_by_name["AdService"].full_name
#: Every method: publishers' ad servers and pages call them.
PUBLIC_METHODS = frozenset({"Decide", "RecordClick"})


class AdServicer(server_pb2_grpc.AdServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.decider.AdDecider`."""

    def __init__(self, decider: AdDecider) -> None:
        self._decider = decider

    async def Decide(self, request: server_pb2.DecideRequest,
                     context: grpc.aio.ServicerContext) -> server_pb2.DecideResponse:
        return await self._decider.decide(validation.decide(request))

    async def RecordClick(self, request: server_pb2.RecordClickRequest,
                          context: grpc.aio.ServicerContext) -> server_pb2.RecordClickResponse:
        first = await self._decider.record_click(validation.impression_id(request.impression_id))
        return server_pb2.RecordClickResponse(first=first)


class ServerComponent:
    """The servicer over the decider, its event log and index, and the index's sync task (its first poll right at
    the start; until it answers, the index is empty and Decide answers NO_CANDIDATES)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = settings = context.settings(NAME, ServerSettings)
        self.index = TargetingIndex()
        self.events = EventLog(context.data_dir(NAME) / FILE_NAME, settings.max_commit_writes)
        self.sync = CampaignSync(CampaignsClient(campaigns_pb2_grpc.CampaignServiceStub(context.channel(CAMPAIGNS))),
                                 self.index, settings.sync_interval_ms, settings.campaigns_timeout_ms)
        self.decider = AdDecider(
            settings, self.index, BudgetClient(budget_pb2_grpc.BudgetServiceStub(context.channel(BUDGET))),
            FrequencyClient(frequency_pb2_grpc.FrequencyServiceStub(context.channel(FREQUENCY))), self.events)
        self._sync_task: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        server_pb2_grpc.add_AdServiceServicer_to_server(AdServicer(self.decider), server)

    async def start(self) -> None:
        # Not awaited here: in one process the campaigns' server starts only after every component has started.
        self._sync_task = asyncio.create_task(self.sync.run(), name=f"{NAME}-sync", context=contextvars.Context())

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.decider.close()
        await self.events.close()


async def build(context: RuntimeContext) -> ServerComponent:
    return ServerComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(CAMPAIGNS, BUDGET, FREQUENCY), build=build,
    settings_model=ServerSettings, access=Access(public=PUBLIC_METHODS),
)

"""``casemesh.ads.v1.BudgetService`` (topology name ``ads-budget``): each campaign's spend per day, and whether it
may pay for an impression now.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). A thin servicer over :class:`.budget.Budget`
(the durable log :mod:`.store`); the campaigns are followed from ``ads-campaigns`` by :mod:`.follower`
(CampaignService.ListCampaigns, internal to this service's identity, which the runtime's channel carries, deadline
``campaigns_timeout_s``); input rules in :mod:`.validation`.

RPCs and status codes (protos/casemesh/ads/v1/budget.proto):

- CheckEligibility (internal, caller ``ads-server``): INVALID_ARGUMENT naming ``campaign_ids`` or
  ``campaign_ids[i]``; campaigns not known (yet) are UNKNOWN.
- Charge (internal, caller ``ads-server``): INVALID_ARGUMENT naming ``impression_id``, ``campaign_id`` or
  ``price_milli_minor``; NOT_FOUND (campaign not known yet); FAILED_PRECONDITION ``budget_exhausted: ...``,
  ``paced: ...`` or ``paused: ...``; UNAVAILABLE when the log cannot be written (nothing charged: retry with the same
  impression ID).
- GetSpend (public): INVALID_ARGUMENT naming ``campaign_id``; NOT_FOUND.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.BudgetSettings` (A/B switch ``pacing``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.ads.v1 import budget_pb2, budget_pb2_grpc, campaigns_pb2_grpc
from casemesh.common.v1 import money_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .budget import Budget, Spend
from .follower import CampaignFollower
from .settings import BudgetSettings
from .store import FILE_NAME, ChargeStore

log = logging.getLogger("casemesh.ads.budget.service")

NAME = "ads-budget"
CAMPAIGNS = "ads-campaigns"
SERVER = "ads-server"
FULL_NAME = budget_pb2.DESCRIPTOR.services_by_name["BudgetService"].full_name
#: Methods anyone may call (advertisers' reports, the harness).
PUBLIC_METHODS = frozenset({"GetSpend"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"CheckEligibility": (SERVER,), "Charge": (SERVER,)}


def spend_message(spend: Spend, day_length_s: int) -> budget_pb2.CampaignSpend:
    return budget_pb2.CampaignSpend(
        campaign_id=spend.campaign_id, day=spend.day,
        daily_budget=money_pb2.Money(currency_code=spend.currency_code, amount_minor=spend.budget // 1_000),
        spent_milli_minor=spend.spent, impressions=spend.impressions,
        exhausted_at_unix_ms=spend.exhausted_at_unix_ms, day_length_s=day_length_s)


class BudgetServicer(budget_pb2_grpc.BudgetServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.budget.Budget`."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self._day_length_s = budget.settings.day_length_s

    async def CheckEligibility(self, request: budget_pb2.CheckEligibilityRequest,
                               context: grpc.aio.ServicerContext) -> budget_pb2.CheckEligibilityResponse:
        answers = self._budget.eligibility(validation.check_eligibility(request))
        return budget_pb2.CheckEligibilityResponse(eligibility=answers)

    async def Charge(self, request: budget_pb2.ChargeRequest,
                     context: grpc.aio.ServicerContext) -> budget_pb2.ChargeResponse:
        spend = await self._budget.charge(*validation.charge(request))
        return budget_pb2.ChargeResponse(spend=spend_message(spend, self._day_length_s))

    async def GetSpend(self, request: budget_pb2.GetSpendRequest,
                       context: grpc.aio.ServicerContext) -> budget_pb2.GetSpendResponse:
        spend = self._budget.spend(validation.campaign_id(request.campaign_id))
        return budget_pb2.GetSpendResponse(spend=spend_message(spend, self._day_length_s))


class BudgetComponent:
    """The servicer over the budget and its file (``DATA_DIR/ads-budget/charges.sqlite3``), and the campaign
    follower."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, BudgetSettings)
        store = ChargeStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes)
        self.budget = Budget(store, self.settings)
        self.follower = CampaignFollower(campaigns_pb2_grpc.CampaignServiceStub(context.channel(CAMPAIGNS)),
                                         self.budget, self.settings.sync_interval_ms,
                                         self.settings.campaigns_timeout_s)
        self._poller: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        budget_pb2_grpc.add_BudgetServiceServicer_to_server(BudgetServicer(self.budget), server)

    async def start(self) -> None:
        charges = await self.budget.start()
        log.info("%s: %d charges of today and yesterday rebuilt from the log", NAME, charges)
        self._poller = asyncio.create_task(self.follower.run(), name=f"{NAME}-follower",
                                           context=contextvars.Context())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.budget.close()


async def build(context: RuntimeContext) -> BudgetComponent:
    return BudgetComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(CAMPAIGNS,), build=build, settings_model=BudgetSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)

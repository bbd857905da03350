"""``casemesh.ads.v1.CampaignService`` (topology name ``ads-campaigns``): advertisers' campaigns.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). A thin servicer over :class:`.campaigns.Campaigns`
(the durable log :mod:`.store`); input rules in :mod:`.validation`. Calls no other service.

RPCs and status codes (protos/casemesh/ads/v1/campaigns.proto):

- CreateCampaign (public: advertisers): INVALID_ARGUMENT naming the field (``campaign.campaign_id`` ...
  ``campaign.creative.landing_url``, ``campaign.targeting.countries[i]`` for a list's element); ALREADY_EXISTS when
  the ID holds another campaign (the same fields again return the stored one); UNAVAILABLE when the log cannot be
  written.
- GetCampaign (public): INVALID_ARGUMENT naming ``campaign_id``; NOT_FOUND.
- SetCampaignState (public): INVALID_ARGUMENT naming ``campaign_id`` or ``state``; NOT_FOUND; UNAVAILABLE.
- ListCampaigns (internal, callers ``ads-server`` and ``ads-budget``, which follow the campaigns by version):
  INVALID_ARGUMENT naming ``after_version`` or ``page_size``.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.CampaignsSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc
from casemesh.ads.v1 import campaigns_pb2, campaigns_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .campaigns import Campaigns
from .settings import CampaignsSettings
from .store import FILE_NAME, CampaignStore

log = logging.getLogger("casemesh.ads.campaigns.service")

NAME = "ads-campaigns"
FULL_NAME = campaigns_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name
#: Methods anyone may call (advertisers' tools, the harness).
PUBLIC_METHODS = frozenset({"CreateCampaign", "GetCampaign", "SetCampaignState"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"ListCampaigns": ("ads-server", "ads-budget")}


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.campaigns.Campaigns`."""

    def __init__(self, campaigns: Campaigns) -> None:
        self._campaigns = campaigns

    async def CreateCampaign(self, request: campaigns_pb2.CreateCampaignRequest,
                             context: grpc.aio.ServicerContext) -> campaigns_pb2.CreateCampaignResponse:
        campaign = await self._campaigns.create(validation.campaign(request))
        return campaigns_pb2.CreateCampaignResponse(campaign=campaign)

    async def GetCampaign(self, request: campaigns_pb2.GetCampaignRequest,
                          context: grpc.aio.ServicerContext) -> campaigns_pb2.GetCampaignResponse:
        campaign = self._campaigns.get(validation.campaign_id(request.campaign_id))
        return campaigns_pb2.GetCampaignResponse(campaign=campaign)

    async def SetCampaignState(self, request: campaigns_pb2.SetCampaignStateRequest,
                               context: grpc.aio.ServicerContext) -> campaigns_pb2.SetCampaignStateResponse:
        campaign_id = validation.campaign_id(request.campaign_id)
        campaign = await self._campaigns.set_state(campaign_id, validation.state(request.state))
        return campaigns_pb2.SetCampaignStateResponse(campaign=campaign)

    async def ListCampaigns(self, request: campaigns_pb2.ListCampaignsRequest,
                            context: grpc.aio.ServicerContext) -> campaigns_pb2.ListCampaignsResponse:
        after_version, page_size = validation.list_campaigns(request)
        page, more = self._campaigns.changed_after(after_version, page_size)
        return campaigns_pb2.ListCampaignsResponse(campaigns=page, more=more, version=self._campaigns.version)


class CampaignsComponent:
    """The servicer over the campaigns and their file (``DATA_DIR/ads-campaigns/campaigns.sqlite3``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, CampaignsSettings)
        self.campaigns = Campaigns(CampaignStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes))

    def register(self, server: grpc.aio.Server) -> None:
        campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(self.campaigns), server)

    async def start(self) -> None:
        count = await self.campaigns.start()
        log.info("%s: %d campaigns loaded, version %d", NAME, count, self.campaigns.version)

    async def stop(self) -> None:
        await self.campaigns.close()


async def build(context: RuntimeContext) -> CampaignsComponent:
    return CampaignsComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=CampaignsSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)

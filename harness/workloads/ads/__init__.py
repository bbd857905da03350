"""The ad serving workload (Google Ads; seed 001 #15 "Ad Serving", shared/seeds/001_58dfc580020147d2.txt line 40: "| 15
| Ad Serving | <100ms decisioning, frequency caps, first-price auction, pacing, privacy-first | 1M RPS, Google Ads |").

Seeding (:mod:`.seeding`) creates the advertisers' campaigns through CampaignService.CreateCampaign (a few hundred,
targeting drawn from countries by traffic share, a fixed vocabulary of interest categories and device shares;
lognormal CPM bids; frequency caps of 3 a minute to 10 a day; daily budgets sized so that without pacing they run out
early in the day) and plans a population of pseudonymous users (a country, a device, interests; Zipf activity).
Open-loop arrivals (:mod:`.journeys`): ``page_view`` (AdService.Decide for a user and the page's context; a click now
and then) and ``advertiser_check`` (BudgetService.GetSpend of a campaign).

Measures: ``fill`` (served, or why not), ``frequency_respected`` (each impression served within its campaign's cap, as
the workload's own referee counts them, :mod:`.live`), ``budget_respected`` (no day's spend above its budget) and
``budget_exhaustion`` (the share of the day left when a budget ran out: pacing's measure); the driver records every
RPC. ``disconnect`` logs the process's tally. The workload speaks only the contracts (protos/casemesh/ads/v1,
casemesh.common.v1) and casemesh.services.ads.contract.
"""

from __future__ import annotations

import logging
import random

from casemesh.ads.v1 import budget_pb2, budget_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc, server_pb2, server_pb2_grpc

from ..base import Journey, Workload, entrypoints
from .journeys import (
    BUDGET_EXHAUSTION,
    BUDGET_RESPECTED,
    FILL,
    FREQUENCY_RESPECTED,
    AdvertiserCheckParams,
    PageViewParams,
    advertiser_check,
    page_view,
)
from .live import Ads
from .seeding import BUDGET, CAMPAIGNS, SERVER, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.ads")

_ENTRYPOINTS = entrypoints({
    SERVER: (server_pb2, "AdService", server_pb2_grpc.AdServiceStub),
    BUDGET: (budget_pb2, "BudgetService", budget_pb2_grpc.BudgetServiceStub),
    CAMPAIGNS: (campaigns_pb2, "CampaignService", campaigns_pb2_grpc.CampaignServiceStub),
})

MEASURES = (FILL, FREQUENCY_RESPECTED, BUDGET_RESPECTED, BUDGET_EXHAUSTION)


async def connect(streams: object, state: State, params: SeedParams, rng: random.Random) -> Ads:
    """This process's :class:`~.live.Ads` (no call; ``streams`` and ``rng`` are not used)."""
    log.info("ads: %d campaigns (run %s), %d users", len(state.campaigns), state.run, len(state.users))
    return Ads(state, params)


async def disconnect(ads: Ads) -> None:
    """Log the process's tally (:class:`~.live.Tally`), after its last journey."""
    log.info("ads: %s", ads.tally.summary())


WORKLOAD = Workload(
    name="ads",
    description="Ad serving (shared/seeds/001 #15 'Ad Serving', Google Ads): page views asking for an ad (targeting, "
                "budget and frequency filtering, a first-price auction), clicks, and advertisers checking their "
                "spend; every impression judged against its campaign's frequency cap and every day's spend against "
                "its budget, and when budgets run out in the day (pacing)",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("page_view", "A user opens a page: AdService.Decide for the user's key, country and device and "
                    "the page's interests; a click on the ad now and then (RecordClick)", PageViewParams, page_view),
            Journey("advertiser_check", "An advertiser looks at a campaign's day (BudgetService.GetSpend)",
                    AdvertiserCheckParams, advertiser_check),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)

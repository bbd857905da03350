"""The ads journeys: pages viewed (an ad request each, sometimes a click) and advertisers checking their spend
(open-loop arrivals).

Seed 001 #15 "Ad Serving" (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning,
frequency caps, first-price auction, pacing, privacy-first | 1M RPS, Google Ads |").

- ``page_view``: a user drawn by activity (Zipf, :mod:`.live`) opens a page; the publisher asks AdService.Decide for
  an ad with a fresh request ID, the user's pseudonymous key, country and device, and the page's interest categories:
  with ``on_interest_p`` the page is about 1 or 2 of the user's own interests, else about 1 or 2 categories drawn by
  popularity. Not retried (the slot shows no ad). When an ad is served the user clicks it with ``click_p``
  (AdService.RecordClick of the impression).
- ``advertiser_check``: an advertiser looks at one of its campaigns' day (BudgetService.GetSpend of a campaign drawn
  uniformly).

Measures, besides the RPCs the driver records (latency 0 unless said):

- ``fill``: one per Decide answered: ``OK`` when an ad was served, else the NoFillReason's name without its prefix
  (``NO_CANDIDATES``, ``BUDGET``, ``FREQUENCY_CAPPED``), or ``EMPTY`` for an answer with neither an ad nor a reason;
- ``frequency_respected``: one per ad served: ``OK``, or ``CAP_EXCEEDED`` when the user had already been served the
  campaign's ``max_impressions`` within its window (:meth:`.live.Ads.served`), or ``UNKNOWN_CAMPAIGN`` (a campaign
  the workload did not create);
- ``budget_respected``: one per GetSpend answered: ``OK`` when ``spent_milli_minor`` is at most the daily budget the
  campaign was created with x 1,000, else ``OVERSPENT``;
- ``budget_exhaustion``: one per campaign-day the process sees exhausted (GetSpend's ``exhausted_at_unix_ms`` set; the
  first GetSpend that shows it): the share of the day that was *left* when the budget ran out, recorded as a latency
  where 1 s is a whole day (1 ms = 0.1% of the day), because an SLO can only bound a measure from above: "exhausted
  after 80% of the day" is "at most 200 ms". The day is ``day`` x ``day_length_s`` seconds from the Unix epoch
  (budget.proto). Code ``OK``, or ``OUTSIDE_DAY`` (latency 0) when the time is not within the day GetSpend describes.
"""

from __future__ import annotations

import random

from pydantic import Field

from casemesh.ads.v1 import budget_pb2, server_pb2

from ..base import Caller, Params
from .live import OK, Ads
from .seeding import BUDGET, SERVER, interests

FILL = "fill"
FREQUENCY_RESPECTED = "frequency_respected"
BUDGET_RESPECTED = "budget_respected"
BUDGET_EXHAUSTION = "budget_exhaustion"
OVERSPENT = "OVERSPENT"
OUTSIDE_DAY = "OUTSIDE_DAY"
EMPTY = "EMPTY"
_NO_FILL_PREFIX = "NO_FILL_REASON_"


class PageViewParams(Params):
    """A page view: what the page is about, and clicks."""

    on_interest_p: float = Field(default=0.7, ge=0, le=1,
                                 description="share of pages about the user's own interests (else by popularity)")
    click_p: float = Field(default=0.015, ge=0, le=1, description="share of ads served that are clicked")


class AdvertiserCheckParams(Params):
    """An advertiser's look at a campaign's day: nothing to choose."""


def page_interests(rng: random.Random, own: tuple[str, ...], params: PageViewParams) -> list[str]:
    """The page's interest categories (module docstring)."""
    if own and rng.random() < params.on_interest_p:
        return rng.sample(own, min(len(own), rng.randint(1, 2)))
    return list(interests(rng, rng.randint(1, 2)))


def no_fill_code(reason: int) -> str:
    """``fill``'s code for a Decide's ``no_fill_reason``."""
    return server_pb2.NoFillReason.Name(reason).removeprefix(_NO_FILL_PREFIX) if reason else OK


async def page_view(call: Caller, params: PageViewParams, ads: Ads, rng: random.Random) -> None:
    """A user opens a page: an ad request, maybe a click (module docstring)."""
    user = ads.user(rng)
    request = server_pb2.DecideRequest(request_id=ads.request_id(), user_key=user.key, country=user.country,
                                       interests=page_interests(rng, user.interests, params), device=user.device)
    sent = ads.clock()
    response = await call(SERVER, "Decide", request)
    answered = ads.clock()
    ads.tally.page_views += 1
    served = response.no_fill_reason == server_pb2.NO_FILL_REASON_UNSPECIFIED and bool(response.ad.campaign_id)
    code = OK if served else no_fill_code(response.no_fill_reason) if response.no_fill_reason else EMPTY
    ads.tally.fills[code] += 1
    call.observe(FILL, 0.0, code)
    if not served:
        return
    call.observe(FREQUENCY_RESPECTED, 0.0, ads.served(user.key, response.ad.campaign_id, sent, answered))
    if rng.random() < params.click_p:
        await call(SERVER, "RecordClick", server_pb2.RecordClickRequest(impression_id=response.ad.impression_id))
        ads.tally.clicks += 1


def left_of_day(spend: budget_pb2.CampaignSpend) -> float | None:
    """The share of GetSpend's day left at ``exhausted_at_unix_ms`` (0 to 1), ``None`` when not within the day."""
    length_ms = spend.day_length_s * 1_000
    if length_ms <= 0:
        return None
    elapsed_ms = spend.exhausted_at_unix_ms - spend.day * length_ms
    if not 0 <= elapsed_ms <= length_ms:
        return None
    return 1 - elapsed_ms / length_ms


async def advertiser_check(call: Caller, params: AdvertiserCheckParams, ads: Ads, rng: random.Random) -> None:
    """An advertiser looks at a campaign's day (module docstring)."""
    campaign = ads.campaign(rng)
    spend = (await call(BUDGET, "GetSpend", budget_pb2.GetSpendRequest(campaign_id=campaign.campaign_id))).spend
    ads.tally.spend_checks += 1
    overspent = spend.spent_milli_minor > campaign.budget_minor * 1_000
    ads.tally.overspent += overspent
    call.observe(BUDGET_RESPECTED, 0.0, OVERSPENT if overspent else OK)
    if spend.exhausted_at_unix_ms and ads.first_exhaustion(campaign.campaign_id, spend.day):
        left = left_of_day(spend)
        if left is None:
            call.observe(BUDGET_EXHAUSTION, 0.0, OUTSIDE_DAY)
        else:
            ads.tally.exhaustions.append(1 - left)
            call.observe(BUDGET_EXHAUSTION, left, OK)

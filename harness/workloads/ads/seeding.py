"""The ads workload's parameters (campaigns, their targeting, bids, caps and budgets; the users) and its seeding through
the public API (CampaignService.CreateCampaign only).

Seed 001 #15 "Ad Serving" (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning,
frequency caps, first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). What is planned, each ID under
the run's prefix ``<run>`` (8 hex digits, the first draw of the run's generator):

- **campaigns** (``ad<run>-c<i>``, ``campaigns``), ``campaigns_per_advertiser`` to an advertiser (``ad<run>-a<j>``).
  Targeting: with ``any_country_p`` every country, else 1 to 3 countries drawn by :data:`COUNTRY_SHARES`; with
  ``any_interest_p`` every interest, else 1 to 3 categories of :data:`INTERESTS` (Zipf popularity); with
  ``any_device_p`` every device, else 1 or 2 drawn by :data:`DEVICE_SHARES`. The CPM bid is lognormal around
  ``bid_median_minor`` (``bid_sigma``) clipped to ``bid_min_minor`` .. ``bid_max_minor``. The frequency cap is one of
  :data:`FREQUENCY_CAPS` (3 in a minute to 10 a day), uniform. The daily budget buys the campaign's share of a day's
  page views: ``budget_share`` x ``budget_page_views_per_s`` x ``budget_day_length_s`` / ``campaigns`` impressions
  (x a lognormal factor of sigma ``budget_sigma``) at its bid, so that the budgets together buy ``budget_share`` of
  the day's page views: without pacing the broadly targeted campaigns win the auctions and spend their budgets in the
  first part of the day (``budget_share`` 0.3: about the first third); with it they spread them over the day. The
  two ``budget_*`` rates must be the profile's page-view rate and ``ads-budget``'s ``day_length_s`` (the workload
  cannot read a service's settings; GetSpend tells the day's length afterwards);
- **users** (``users``): pseudonymous keys (the publisher's hash of a user: 24 hex digits, nothing personal), each
  with a country (:data:`COUNTRY_SHARES`), a device (:data:`DEVICE_SHARES`) and 1 to 4 interests (Zipf popularity);
  who browses is Zipf over them (``user_zipf_exponent``, :mod:`.live`). Users are not written anywhere: an ad
  request carries the key and the page's context.

What is drawn, in order, from the run's generator: the run prefix, then per campaign its targeting, bid, cap and
budget factor, then per user its country, device and interests. CreateCampaign goes ``create_concurrency`` calls in
flight (creating a campaign that exists with the same fields returns it: a resend, or a data directory kept from a run
with the same ``--seed``); a call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again, up to
:data:`SEED_ATTEMPTS` times, 100 ms doubling between; any other refusal fails the seeding with its status, and so
does an answer whose bid, budget or cap is not the one asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from pydantic import Field, field_validator, model_validator

from casemesh.ads.v1 import ads_pb2, campaigns_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.ads.contract import (
    MAX_BUDGET_MINOR,
    MAX_CPM_MINOR,
    is_country,
    is_currency_code,
    is_id,
    is_interest,
)

from ..base import Caller, Params

CAMPAIGNS = "ads-campaigns"
BUDGET = "ads-budget"
SERVER = "ads-server"

#: Attempts of a CreateCampaign answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

#: Countries and their share of ad requests: an illustrative table in the order of the largest web audiences (the US
#: first, then India, Brazil, Indonesia, Japan, Western Europe's largest, Mexico), not a measured statistic; the
#: rest of the world is spread over the last entries.
COUNTRY_SHARES: tuple[tuple[str, float], ...] = (
    ("US", 0.24), ("IN", 0.10), ("BR", 0.06), ("ID", 0.05), ("JP", 0.05), ("GB", 0.05), ("DE", 0.05), ("FR", 0.04),
    ("MX", 0.04), ("CA", 0.03), ("IT", 0.03), ("ES", 0.03), ("KR", 0.03), ("AU", 0.02), ("NL", 0.02), ("TR", 0.02),
    ("PL", 0.02), ("PH", 0.02), ("NG", 0.02), ("VN", 0.02), ("AR", 0.02),
)
#: Device types and their share of requests: about StatCounter's platform shares of 2024 (mobile ~58%, desktop ~38%,
#: tablet ~3%), a connected TV for the rest.
DEVICE_SHARES: tuple[tuple[int, float], ...] = (
    (ads_pb2.DEVICE_TYPE_MOBILE, 0.58), (ads_pb2.DEVICE_TYPE_DESKTOP, 0.38), (ads_pb2.DEVICE_TYPE_TABLET, 0.03),
    (ads_pb2.DEVICE_TYPE_TV, 0.01),
)
#: The interest categories (a fixed vocabulary shaped like the IAB content taxonomy's top tier), most popular first:
#: drawn with Zipf weights 1/(rank+1).
INTERESTS: tuple[str, ...] = (
    "news", "shopping", "entertainment", "sports", "technology", "travel", "food-drink", "finance", "fashion",
    "health-fitness", "gaming", "automotive", "music", "home-garden", "education", "beauty", "business", "real-estate",
    "parenting", "pets",
)
#: The frequency caps campaigns choose among (impressions, window in seconds): 3 a minute to 10 a day.
FREQUENCY_CAPS: tuple[tuple[int, int], ...] = ((3, 60), (5, 600), (6, 3_600), (10, 86_400))

T = TypeVar("T")


class SeedParams(Params):
    """Campaigns and users. The budgets are sized from ``budget_page_views_per_s`` and ``budget_day_length_s``, which a
    profile sets to its own rate and ads-budget's ``day_length_s`` (the ``ads`` profile: 40 and 120).
    ``budget_page_views_per_s`` follows the rate (``RATE_FIELDS``): ``--rate-scale 0.5`` halves it, and ``casemesh
    capacity`` sizes the budgets for its highest rate, so that spent budgets (cheap no-fills) never pass for capacity."""

    RATE_FIELDS = ("budget_page_views_per_s",)

    currency: str = Field(default="USD", description="every campaign's currency (ISO 4217)")
    campaigns: int = Field(default=200, ge=1, le=100_000, description="campaigns created before the run")
    campaigns_per_advertiser: int = Field(default=4, ge=1, le=1_000, description="campaigns of one advertiser")
    any_country_p: float = Field(default=0.3, ge=0, le=1, description="share of campaigns targeting every country")
    any_interest_p: float = Field(default=0.3, ge=0, le=1, description="share targeting every interest")
    any_device_p: float = Field(default=0.5, ge=0, le=1, description="share targeting every device")
    bid_median_minor: int = Field(default=250, ge=1, le=MAX_CPM_MINOR,
                                  description="median CPM bid, minor units (250: 2.50 per 1,000 impressions)")
    bid_sigma: float = Field(default=0.6, ge=0, le=5, description="a campaign's CPM bid: lognormal sigma")
    bid_min_minor: int = Field(default=10, ge=1, le=MAX_CPM_MINOR, description="lowest CPM bid")
    bid_max_minor: int = Field(default=5_000, ge=1, le=MAX_CPM_MINOR, description="highest CPM bid")
    budget_page_views_per_s: float = Field(default=100.0, gt=0, le=10_000_000,
                                           description="page views a second the budgets are sized for (the "
                                                       "profile's page_view rate)")
    budget_day_length_s: int = Field(default=86_400, ge=1, le=86_400,
                                     description="the day the budgets are sized for (ads-budget's day_length_s)")
    budget_share: float = Field(default=0.3, gt=0, le=100,
                                description="share of a day's page views the budgets together buy at their bids")
    budget_sigma: float = Field(default=0.3, ge=0, le=5, description="a campaign's budget factor: lognormal sigma")
    users: int = Field(default=20_000, ge=1, le=2_000_000, description="users (pseudonymous keys)")
    user_zipf_exponent: float = Field(default=1.0, ge=0, le=5, description="who browses: Zipf over the users")
    create_concurrency: int = Field(default=16, ge=1, le=256, description="CreateCampaign calls in flight")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency_code(value):
            raise ValueError(f"{value!r} is not a currency code (three upper-case letters)")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> SeedParams:
        if not self.bid_min_minor <= self.bid_median_minor <= self.bid_max_minor:
            raise ValueError(f"bid_min_minor ({self.bid_min_minor}) <= bid_median_minor ({self.bid_median_minor}) "
                             f"<= bid_max_minor ({self.bid_max_minor}) must hold")
        return self


@dataclass(frozen=True)
class CampaignPlan:
    """A campaign as created: targeting (empty: any), CPM bid and daily budget (minor units), frequency cap."""

    campaign_id: str
    advertiser_id: str
    countries: tuple[str, ...]
    interests: tuple[str, ...]
    devices: tuple[int, ...]
    bid_minor: int
    budget_minor: int
    cap_impressions: int
    cap_window_s: int


@dataclass(frozen=True)
class User:
    """A pseudonymous user: the publisher's key, a country, a device and interests."""

    key: str
    country: str
    device: int
    interests: tuple[str, ...]


@dataclass(frozen=True)
class State:
    """What the seeder planned and created (picklable: sent to worker processes)."""

    run: str
    currency: str
    campaigns: tuple[CampaignPlan, ...]
    users: tuple[User, ...]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def _weighted(rng: random.Random, table: Sequence[tuple[Any, float]], count: int) -> tuple[Any, ...]:
    """``count`` distinct values of ``table`` drawn by weight, in the table's order."""
    values = [v for v, _ in table]
    weights = [w for _, w in table]
    chosen: set[Any] = set()
    while len(chosen) < min(count, len(values)):
        chosen.add(rng.choices(values, weights)[0])
    return tuple(v for v in values if v in chosen)


_INTEREST_TABLE = tuple((name, 1 / (rank + 1)) for rank, name in enumerate(INTERESTS))


def interests(rng: random.Random, count: int) -> tuple[str, ...]:
    """``count`` distinct interest categories by Zipf popularity."""
    return _weighted(rng, _INTEREST_TABLE, count)


def budget_minor(params: SeedParams, bid_minor: int, factor: float) -> int:
    """A campaign's daily budget (module docstring): its share of the day's page views at its bid, x ``factor``."""
    impressions = params.budget_share * params.budget_page_views_per_s * params.budget_day_length_s / params.campaigns
    return min(max(math.ceil(impressions * factor * bid_minor / 1_000), 1), MAX_BUDGET_MINOR)


def campaign_plan(params: SeedParams, rng: random.Random, run: str, index: int) -> CampaignPlan:
    """Campaign ``index``'s plan, drawn in a fixed order (module docstring)."""
    countries = () if rng.random() < params.any_country_p else _weighted(rng, COUNTRY_SHARES, rng.randint(1, 3))
    wanted = () if rng.random() < params.any_interest_p else interests(rng, rng.randint(1, 3))
    devices = () if rng.random() < params.any_device_p else _weighted(rng, DEVICE_SHARES, rng.randint(1, 2))
    bid = round(params.bid_median_minor * math.exp(rng.gauss(0, params.bid_sigma)))
    bid = min(max(bid, params.bid_min_minor), params.bid_max_minor)
    cap_impressions, cap_window_s = rng.choice(FREQUENCY_CAPS)
    factor = math.exp(rng.gauss(0, params.budget_sigma))
    return CampaignPlan(campaign_id=f"ad{run}-c{index}", advertiser_id=f"ad{run}-a{index // params.campaigns_per_advertiser}",
                        countries=countries, interests=wanted, devices=devices, bid_minor=bid,
                        budget_minor=budget_minor(params, bid, factor), cap_impressions=cap_impressions,
                        cap_window_s=cap_window_s)


def user_key(run: str, index: int) -> str:
    """A pseudonymous user key: 24 hex digits of a hash (the publisher's; nothing personal)."""
    return hashlib.blake2b(f"{run}:{index}".encode(), digest_size=12).hexdigest()


def plan(params: SeedParams, rng: random.Random) -> State:
    """Every campaign and user, drawn in a fixed order (module docstring): no call."""
    run = run_prefix(rng)
    campaigns = tuple(campaign_plan(params, rng, run, i) for i in range(params.campaigns))
    users = tuple(User(user_key(run, i), _weighted(rng, COUNTRY_SHARES, 1)[0], _weighted(rng, DEVICE_SHARES, 1)[0],
                       interests(rng, rng.randint(1, 4))) for i in range(params.users))
    state = State(run=run, currency=params.currency, campaigns=campaigns, users=users)
    assert all(is_id(c.campaign_id) and is_id(c.advertiser_id) and all(map(is_country, c.countries))
               and all(map(is_interest, c.interests)) for c in campaigns)
    return state


def campaign_message(campaign: CampaignPlan, currency: str) -> ads_pb2.Campaign:
    """The Campaign CreateCampaign is sent."""
    topic = campaign.interests[0] if campaign.interests else "everyone"
    return ads_pb2.Campaign(
        campaign_id=campaign.campaign_id, advertiser_id=campaign.advertiser_id,
        targeting=ads_pb2.Targeting(countries=campaign.countries, interests=campaign.interests,
                                    devices=campaign.devices),
        cpm_bid=money_pb2.Money(currency_code=currency, amount_minor=campaign.bid_minor),
        daily_budget=money_pb2.Money(currency_code=currency, amount_minor=campaign.budget_minor),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=campaign.cap_impressions, window_s=campaign.cap_window_s),
        creative=ads_pb2.Creative(headline=f"The best of {topic}, from {campaign.advertiser_id}",
                                  landing_url=f"https://ads.example/{campaign.advertiser_id}/{campaign.campaign_id}"))


async def resend(send: Callable[[], Awaitable[T]]) -> T:
    """``send()`` until answered; UNAVAILABLE or DEADLINE_EXCEEDED are sent again (module docstring)."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return await send()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await asyncio.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create every campaign (module docstring); returns the state."""
    state = plan(params, rng)
    limit = asyncio.Semaphore(params.create_concurrency)

    async def create(campaign: CampaignPlan) -> None:
        request = campaigns_pb2.CreateCampaignRequest(campaign=campaign_message(campaign, state.currency))
        async with limit:
            stored: Any = (await resend(lambda: call(CAMPAIGNS, "CreateCampaign", request))).campaign
        got = (stored.cpm_bid.amount_minor, stored.daily_budget.amount_minor, stored.frequency_cap.max_impressions,
               stored.frequency_cap.window_s)
        asked = (campaign.bid_minor, campaign.budget_minor, campaign.cap_impressions, campaign.cap_window_s)
        if got != asked:
            raise RuntimeError(f"CreateCampaign {campaign.campaign_id} answered bid, budget, cap {got}, asked {asked}")

    await asyncio.gather(*(create(c) for c in state.campaigns))
    return state

"""ads-campaigns' input rules, as protos/casemesh/ads/v1/ads.proto and campaigns.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as campaigns.proto's comments
do (``campaign.campaign_id``, ``campaign.advertiser_id``, ``campaign.targeting.countries[i]``,
``campaign.targeting.interests[i]``, ``campaign.targeting.devices[i]``, ``campaign.cpm_bid``, ``campaign.daily_budget``,
``campaign.frequency_cap.max_impressions``, ``campaign.frequency_cap.window_s``, ``campaign.creative.headline``,
``campaign.creative.landing_url``; ``campaign_id``, ``state``, ``after_version``, ``page_size``), the first bad one in
the proto's field order. A list that is too long is named by its first element beyond the limit
(``campaign.targeting.countries[50]``). The shared rules are the contract's (:mod:`services.ads.contract`).
"""

from __future__ import annotations

from casemesh.ads.v1 import ads_pb2, campaigns_pb2
from casemesh.common.v1 import money_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "campaign", "campaign_id", "list_campaigns", "state"]

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1_000
_DEVICES = frozenset(v for v in ads_pb2.DeviceType.values() if v != ads_pb2.DEVICE_TYPE_UNSPECIFIED)
_STATES = frozenset({ads_pb2.CAMPAIGN_STATE_ACTIVE, ads_pb2.CAMPAIGN_STATE_PAUSED})


def campaign_id(value: str, field: str = "campaign_id") -> str:
    """A campaign ID (1 to 64 characters of [A-Za-z0-9_-]), naming ``field``."""
    return required_id(field, value)


def _bounded_list(field: str, values, limit: int) -> None:
    if len(values) > limit:
        raise InvalidArgument(f"{field}[{limit}]", f"at most {limit} values ({len(values)} given)")


def _targeting(targeting: ads_pb2.Targeting) -> ads_pb2.Targeting:
    field = "campaign.targeting"
    _bounded_list(f"{field}.countries", targeting.countries, contract.MAX_COUNTRIES)
    for i, country in enumerate(targeting.countries):
        if not contract.is_country(country):
            raise InvalidArgument(f"{field}.countries[{i}]", f"{country!r} is not an ISO 3166-1 alpha-2 code "
                                                              "(two upper-case letters)")
    _bounded_list(f"{field}.interests", targeting.interests, contract.MAX_INTERESTS)
    for i, interest in enumerate(targeting.interests):
        if not contract.is_interest(interest):
            raise InvalidArgument(f"{field}.interests[{i}]", f"{interest!r} is not 1 to 32 characters of a-z, 0-9 "
                                                              "or '-'")
    _bounded_list(f"{field}.devices", targeting.devices, contract.MAX_DEVICES)
    for i, device in enumerate(targeting.devices):
        if device not in _DEVICES:
            raise InvalidArgument(f"{field}.devices[{i}]", f"{device} is not a device type (DESKTOP, MOBILE, "
                                                            "TABLET or TV)")
    return ads_pb2.Targeting(countries=list(targeting.countries), interests=list(targeting.interests),
                             devices=list(targeting.devices))


def _money(field: str, money: money_pb2.Money, maximum: int, currency: str | None) -> money_pb2.Money:
    if not contract.is_currency_code(money.currency_code):
        raise InvalidArgument(field, f"currency_code {money.currency_code!r} is not three upper-case letters "
                                     "(ISO 4217)")
    if currency is not None and money.currency_code != currency:
        raise InvalidArgument(field, f"currency_code {money.currency_code!r} is not the bid's ({currency})")
    if not 1 <= money.amount_minor <= maximum:
        raise InvalidArgument(field, f"amount_minor {money.amount_minor} is not 1 to {maximum:,} minor units")
    return money_pb2.Money(currency_code=money.currency_code, amount_minor=money.amount_minor)


def campaign(request: campaigns_pb2.CreateCampaignRequest) -> ads_pb2.Campaign:
    """CreateCampaignRequest: its campaign in canonical form (every sub-message set; ``state``, ``version`` and
    ``created_at_unix_ms`` cleared), so that two requests with the same fields give equal messages."""
    given = request.campaign
    cid = campaign_id(given.campaign_id, "campaign.campaign_id")
    advertiser = required_id("campaign.advertiser_id", given.advertiser_id)
    targeting = _targeting(given.targeting)
    bid = _money("campaign.cpm_bid", given.cpm_bid, contract.MAX_CPM_MINOR, None)
    budget = _money("campaign.daily_budget", given.daily_budget, contract.MAX_BUDGET_MINOR, bid.currency_code)
    cap = given.frequency_cap
    if not 1 <= cap.max_impressions <= contract.MAX_CAP_IMPRESSIONS:
        raise InvalidArgument("campaign.frequency_cap.max_impressions", f"{cap.max_impressions} is not 1 to "
                                                                        f"{contract.MAX_CAP_IMPRESSIONS:,}")
    if not 1 <= cap.window_s <= contract.MAX_CAP_WINDOW_S:
        raise InvalidArgument("campaign.frequency_cap.window_s", f"{cap.window_s} is not 1 to "
                                                                 f"{contract.MAX_CAP_WINDOW_S:,} seconds")
    creative = given.creative
    if not 1 <= len(creative.headline) <= contract.MAX_HEADLINE_CHARS:
        raise InvalidArgument("campaign.creative.headline", f"has {len(creative.headline)} characters; 1 to "
                                                            f"{contract.MAX_HEADLINE_CHARS}")
    if not contract.is_landing_url(creative.landing_url):
        raise InvalidArgument("campaign.creative.landing_url", "is not an http or https URL with a host of at most "
                                                               f"{contract.MAX_URL_CHARS:,} characters")
    return ads_pb2.Campaign(
        campaign_id=cid, advertiser_id=advertiser, targeting=targeting, cpm_bid=bid, daily_budget=budget,
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=cap.max_impressions, window_s=cap.window_s),
        creative=ads_pb2.Creative(headline=creative.headline, landing_url=creative.landing_url))


def state(value: int) -> int:
    """A state to set: ACTIVE or PAUSED, naming ``state``."""
    if value not in _STATES:
        raise InvalidArgument("state", f"{value} is not ACTIVE or PAUSED")
    return value


def list_campaigns(request: campaigns_pb2.ListCampaignsRequest) -> tuple[int, int]:
    """ListCampaignsRequest: (after_version, page size; 0 asked gives :data:`DEFAULT_PAGE_SIZE`)."""
    if request.after_version < 0:
        raise InvalidArgument("after_version", f"{request.after_version} is negative")
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"{request.page_size} is not 0 to {MAX_PAGE_SIZE:,}")
    return request.after_version, request.page_size or DEFAULT_PAGE_SIZE

"""The ad serving contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/ads/v1/{ads,campaigns,budget,frequency,server}.proto).

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "| 15 | Ad Serving | <100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). Imported by the ad services and by the ads
workload alike, and by nothing else of either side; a client in another language applies the same rules, which the
protos quote in their field comments.

- IDs (campaigns, advertisers, impressions and ad requests, user keys): 1 to 64 characters of ``[A-Za-z0-9_-]``
  (:func:`is_id`). A user key is pseudonymous: the publisher's hash, never personal data.
- Targeting: at most :data:`MAX_COUNTRIES` ISO 3166-1 alpha-2 country codes (:func:`is_country`), at most
  :data:`MAX_INTERESTS` interests of 1 to 32 characters of ``[a-z0-9-]`` (:func:`is_interest`), at most 4 device
  types (not UNSPECIFIED); an empty list matches every request (:func:`matches`).
- Money: a CPM bid of 1 to :data:`MAX_CPM_MINOR` minor units, a daily budget of 1 to :data:`MAX_BUDGET_MINOR` minor
  units in the bid's currency (three upper-case letters: the payment gateway's rule, :func:`is_currency_code`). One
  impression costs the CPM bid in thousandths of a minor unit (:func:`impression_price_milli_minor`); spend is counted
  in those "milli-minor" units.
- Frequency caps: 1 to :data:`MAX_CAP_IMPRESSIONS` impressions per user within 1 to :data:`MAX_CAP_WINDOW_S` seconds.
- Creatives: a headline of 1 to :data:`MAX_HEADLINE_CHARS` characters, an http(s) landing URL of at most
  :data:`MAX_URL_CHARS` characters.
- FAILED_PRECONDITION details start with a reason and a colon: :data:`BUDGET_EXHAUSTED`, :data:`PACED`,
  :data:`PAUSED` (BudgetService.Charge), :data:`FREQUENCY_CAPPED` (FrequencyService.Reserve).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..payments.contract import is_currency_code
from ..runtime.identifiers import is_id

__all__ = [
    "BUDGET_EXHAUSTED", "FREQUENCY_CAPPED", "MAX_BATCH", "MAX_BUDGET_MINOR", "MAX_CAP_IMPRESSIONS", "MAX_CAP_WINDOW_S",
    "MAX_COUNTRIES", "MAX_CPM_MINOR", "MAX_DEVICES", "MAX_HEADLINE_CHARS", "MAX_INTERESTS", "MAX_PRICE_MILLI_MINOR",
    "MAX_URL_CHARS", "PACED", "PAUSED", "impression_price_milli_minor", "is_country", "is_currency_code", "is_id",
    "is_interest", "is_landing_url", "matches",
]

MAX_COUNTRIES = 50
MAX_INTERESTS = 20
MAX_DEVICES = 4
#: 1,000.00 in a two-decimal currency: the highest CPM bid, in minor units.
MAX_CPM_MINOR = 100_000
#: 100,000,000.00 in a two-decimal currency: the highest daily budget, in minor units.
MAX_BUDGET_MINOR = 10_000_000_000
#: The highest price of one impression BudgetService.Charge takes, in thousandths of a minor unit.
MAX_PRICE_MILLI_MINOR = 100_000_000
MAX_CAP_IMPRESSIONS = 1_000
#: 30 days, in seconds: the longest frequency-cap window.
MAX_CAP_WINDOW_S = 2_592_000
MAX_HEADLINE_CHARS = 90
MAX_URL_CHARS = 2_048
#: The most campaigns one CheckEligibility or GetCounts asks about.
MAX_BATCH = 1_000

BUDGET_EXHAUSTED = "budget_exhausted"
PACED = "paced"
PAUSED = "paused"
FREQUENCY_CAPPED = "frequency_capped"

_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_INTEREST_RE = re.compile(r"[a-z0-9-]{1,32}")
_URL_RE = re.compile(r"https?://[^\s/?#]+[^\s]*")


def is_country(value: str) -> bool:
    """True for an ISO 3166-1 alpha-2 shaped code: two upper-case letters ("US")."""
    return bool(_COUNTRY_RE.fullmatch(value))


def is_interest(value: str) -> bool:
    """True for an interest category: 1 to 32 characters of [a-z0-9-]."""
    return bool(_INTEREST_RE.fullmatch(value))


def is_landing_url(value: str) -> bool:
    """True for an http or https URL with a host, of at most :data:`MAX_URL_CHARS` characters."""
    return len(value) <= MAX_URL_CHARS and bool(_URL_RE.fullmatch(value))


def impression_price_milli_minor(cpm_bid_minor: int) -> int:
    """The price of one impression in thousandths of a minor unit: a CPM (per 1,000 impressions) of N minor units
    costs N thousandths of a minor unit per impression."""
    return cpm_bid_minor


def matches(countries: Iterable[str], interests: Iterable[str], devices: Iterable[int], *, country: str,
            request_interests: Iterable[str], device: int) -> bool:
    """Whether a campaign's targeting (``countries``, ``interests``, ``devices``; each empty for "any") matches an ad
    request from ``country`` (empty: unknown) on ``device`` (0: unknown) about ``request_interests``: each non-empty
    list must hold one of the request's values."""
    countries, interests, devices = set(countries), set(interests), set(devices)
    if countries and country not in countries:
        return False
    if devices and device not in devices:
        return False
    return not interests or not interests.isdisjoint(request_interests)

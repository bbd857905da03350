"""The URL-shortener workload: a read-heavy mix of redirects, creations and stats reads.

Shape from shared/seeds/000_69ff90d97cf45f9b.txt, "URL Shortener":
100:1 read/write ratio ("Key Insight" and "Scale Estimation": 40 new URLs/s,
4,000 redirects/s). Popularity of codes is Zipf-distributed, the usual model
of link popularity: a few codes take most redirects, which is what makes the
case study's "aggressive caching" pay off.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import string
from bisect import bisect_left
from dataclasses import dataclass

import grpc
from pydantic import Field

from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from casemesh.services.urlshortener.validation import MAX_URL_BYTES

from ..arrivals import arrival_size
from .base import Caller, Journey, Params, Workload

SERVICE = "urlshortener"
FULL_SERVICE = pb.DESCRIPTOR.services_by_name["UrlShortenerService"].full_name

#: Visitor countries and their shares of clicks (a plausible global mix; the
#: case study only asks for "geographic data", not a distribution).
COUNTRIES = ("US", "IN", "BR", "DE", "GB", "JP", "FR", "ID", "NG", "MX")
COUNTRY_WEIGHTS = (30, 15, 8, 7, 7, 6, 5, 5, 4, 3)
_COUNTRY_CUM_WEIGHTS = tuple(itertools.accumulate(COUNTRY_WEIGHTS))
_BASE62 = string.ascii_letters + string.digits
#: Shortest long URL a size may map to (bytes), the lower bound of ``url_bytes``.
MIN_URL_BYTES = 16


class SeedParams(Params):
    """Data created before the load: ``urls`` short codes for the Resolve journeys to hit."""

    urls: int = Field(default=2000, ge=1, le=1_000_000, description="codes created by Shorten before load")
    concurrency: int = Field(default=32, ge=1, le=1024, description="Shorten calls in flight while seeding")


class ResolveParams(Params):
    """Resolve of a seeded code chosen by Zipf popularity (rank r drawn with weight 1/r^s)."""

    zipf_exponent: float = Field(default=1.0, gt=0.0, le=5.0, description="Zipf exponent s over seeded codes")


class NoParams(Params):
    """A journey without parameters."""


class ShortenParams(Params):
    """Shorten of a fresh long URL; ``ttl_seconds`` 0 means no expiry.

    The long URL is ``url_bytes`` bytes long, except when
    ``url_bytes_per_size_unit`` is set and the arrival carries a size (a
    ``trace`` with ``size_column``, read with
    :func:`~casemesh.harness.arrivals.arrival_size`): then it is
    ``round(size × url_bytes_per_size_unit)`` bytes, clamped to 16 ..
    :data:`MAX_URL_BYTES` (2,048, the service's validation limit). Generated
    URLs are never shorter than their 30-byte ``https://example.com/articles/x``.
    """

    ttl_seconds: int = Field(default=0, ge=0, le=157_680_000)
    url_bytes: int = Field(default=80, ge=16, le=2048, description="length of generated long URLs (bytes)")
    url_bytes_per_size_unit: float | None = Field(
        default=None, gt=0, le=MAX_URL_BYTES, allow_inf_nan=False,
        description="long-URL bytes per unit of the arrival's size (e.g. per prompt token of a trace); unset: always url_bytes")

    def long_url_bytes(self) -> int:
        """Length (bytes) of the long URL for the current arrival: from its size when mapped, else ``url_bytes``."""
        per_unit = self.url_bytes_per_size_unit
        if per_unit is not None:
            size = arrival_size()
            if size is not None:
                return min(max(round(size * per_unit), MIN_URL_BYTES), MAX_URL_BYTES)
        return self.url_bytes


@dataclass
class State:
    """Seeded codes and the Zipf CDF over their ranks (built once per exponent)."""

    codes: list[str]
    cdfs: dict[float, list[float]]

    def zipf_code(self, exponent: float, rng: random.Random) -> str:
        cdf = self.cdfs.get(exponent)
        if cdf is None:
            cdf = self.cdfs[exponent] = list(itertools.accumulate(1.0 / (r**exponent) for r in range(1, len(self.codes) + 1)))
        return self.codes[min(bisect_left(cdf, rng.random() * cdf[-1]), len(self.codes) - 1)]


def _country(rng: random.Random) -> str:
    return rng.choices(COUNTRIES, cum_weights=_COUNTRY_CUM_WEIGHTS)[0]


def _long_url(rng: random.Random, size: int) -> str:
    head = "https://example.com/articles/"
    return head + "".join(rng.choices(_BASE62, k=max(size - len(head), 1)))


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create ``params.urls`` codes with Shorten; their order is their popularity rank."""
    codes: list[str] = [""] * params.urls
    next_index = iter(range(params.urls))

    async def worker() -> None:
        for i in next_index:
            response = await call(SERVICE, "Shorten", pb.ShortenRequest(long_url=_long_url(rng, 80)))
            codes[i] = response.code

    await asyncio.gather(*(worker() for _ in range(min(params.concurrency, params.urls))))
    return State(codes=codes, cdfs={})


async def resolve(call: Caller, params: ResolveParams, state: State, rng: random.Random) -> None:
    await call(SERVICE, "Resolve", pb.ResolveRequest(code=state.zipf_code(params.zipf_exponent, rng), country_code=_country(rng)))


async def resolve_miss(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    # Codes of 8 characters are never generated (generated codes have 7), so this is a guaranteed miss.
    code = "".join(rng.choices(_BASE62, k=8))
    try:
        await call(SERVICE, "Resolve", pb.ResolveRequest(code=code, country_code=_country(rng)))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise


async def shorten(call: Caller, params: ShortenParams, state: State, rng: random.Random) -> None:
    await call(SERVICE, "Shorten", pb.ShortenRequest(long_url=_long_url(rng, params.long_url_bytes()), ttl_seconds=params.ttl_seconds))


async def get_stats(call: Caller, params: ResolveParams, state: State, rng: random.Random) -> None:
    await call(SERVICE, "GetStats", pb.GetStatsRequest(code=state.zipf_code(params.zipf_exponent, rng)))


async def shorten_then_resolve(call: Caller, params: ShortenParams, state: State, rng: random.Random) -> None:
    response = await call(SERVICE, "Shorten", pb.ShortenRequest(long_url=_long_url(rng, params.long_url_bytes()), ttl_seconds=params.ttl_seconds))
    await call(SERVICE, "Resolve", pb.ResolveRequest(code=response.code, country_code=_country(rng)))


WORKLOAD = Workload(
    name="url-shortener",
    description="URL shortener (shared/seeds/000_69ff90d97cf45f9b.txt): Resolve-heavy with Shorten and GetStats",
    services=(SERVICE,),
    stubs={SERVICE: pb_grpc.UrlShortenerServiceStub},
    service_names={SERVICE: FULL_SERVICE},
    rpcs=tuple(f"{FULL_SERVICE}/{m}" for m in ("Shorten", "Resolve", "GetStats", "Delete")),
    journeys={
        j.name: j
        for j in (
            Journey("resolve", "Resolve a seeded code picked by Zipf popularity (the redirect)", ResolveParams, resolve),
            Journey("resolve_miss", "Resolve a code that does not exist (NOT_FOUND is the expected answer)", NoParams, resolve_miss),
            Journey("shorten", "Shorten a fresh long URL (takes IDs leased from the ID service)", ShortenParams, shorten),
            Journey("get_stats", "Read click stats of a seeded code (a hop to the analytics service)", ResolveParams, get_stats),
            Journey("shorten_then_resolve", "Create a code and follow it at once (read-your-write)", ShortenParams, shorten_then_resolve),
        )
    },
    seed_model=SeedParams,
    seed=seed,
)

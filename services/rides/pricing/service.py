"""``casemesh.rides.v1.PricingService`` (topology name ``rides-pricing``): upfront quotes and surge pricing.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Surge Pricing (line 883): a fare is "$5 +
$1.50/km" (line 890) times the surge multiplier of the pickup's cell; multipliers come from each cell's demand over
its supply on the seed's ladder, "Update every 30 seconds" (line 961). The mechanism is :mod:`.surge` (windows and
ladder) and :mod:`.quotes` (the bounded quote store); :class:`Pricing` ties them together and fetches the supply
from rides-location (``LocationService.CountAvailableDrivers`` at the surge resolution) at each recomputation. A/B
switch: ``surge_enabled`` (:mod:`.settings`).

Fare = round((base_fare_minor + per_km_minor × km) × multiplier) minor units, km the great-circle pickup-to-dropoff
distance (``h3.great_circle_distance``); duration_s = distance × detour_factor / city speed.

Status codes, as protos/casemesh/rides/v1/pricing.proto says:

- GetQuote (public): INVALID_ARGUMENT naming ``rider_id``, ``pickup``, ``pickup.lat_deg``, ``pickup.lng_deg``,
  ``dropoff``, ``dropoff.lat_deg`` or ``dropoff.lng_deg``; RESOURCE_EXHAUSTED when ``max_quotes`` unexpired quotes
  are held.
- RedeemQuote (internal: :data:`REDEEM_CALLERS`): INVALID_ARGUMENT naming ``quote_id``, ``rider_id`` or
  ``ride_id``; NOT_FOUND for an unknown or forgotten quote; PERMISSION_DENIED for another rider's quote;
  FAILED_PRECONDITION when expired or redeemed for another ride; the same ride again → the quote again.
- GetSurge (public): INVALID_ARGUMENT naming ``point``, ``point.lat_deg`` or ``point.lng_deg``.
- ListSurge (public): nothing beyond the runtime's.

Quotes work without rides-location (an optional dependency): a recomputation that cannot reach it keeps the last
supply, logs once per outage and counts ``casemesh_rides_pricing_surge_errors_total``. A failed recomputation never
ends the loop. Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping

import grpc
import h3

from casemesh.common.v1 import money_pb2
from casemesh.rides.v1 import location_pb2, location_pb2_grpc
from casemesh.rides.v1 import pricing_pb2 as pb
from casemesh.rides.v1 import pricing_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .. import validation as check
from . import metrics
from .quotes import QuoteBook, new_quote_id
from .settings import PricingSettings
from .surge import CellSurge, SurgeLadder, SurgeMap

log = logging.getLogger("casemesh.rides.pricing")

NAME = "rides-pricing"
LOCATION = "rides-location"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PricingService"].full_name
#: Who may call RedeemQuote.
REDEEM_CALLERS: tuple[str, ...] = ("rides-trips",)

#: Supply at a resolution: H3 cell → AVAILABLE drivers. Raises ``grpc.aio.AioRpcError`` when unreachable.
SupplySource = Callable[[int], Awaitable[Mapping[str, int]]]


class Pricing:
    """Quotes, their redemption and the surge map, without gRPC: ``supply`` fetches the drivers per cell.

    ``clock`` gives seconds since the Unix epoch (quote expiry, ``computed_at``); injectable so tests need no sleep.
    """

    def __init__(self, settings: PricingSettings, supply: SupplySource, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._supply = supply
        self._clock = clock
        self.quotes = QuoteBook(settings.quote_ttl_s, settings.max_quotes, clock)
        self.ladder = SurgeLadder(settings.surge_ladder, settings.surge_max_multiplier)
        self.surge = SurgeMap(self.ladder, settings.surge_resolution, settings.surge_enabled)
        self._speed_m_per_s = settings.city_speed_kmh / 3.6
        self._supply_failing = False
        for multiplier in self.ladder.multipliers:
            metrics.SURGE_CELLS.labels(metrics.multiplier_label(multiplier)).set(0)

    def fare_minor(self, distance_m: float, multiplier: float) -> int:
        """(base + per km × km) × multiplier, rounded half up to the minor unit."""
        s = self.settings
        return math.floor((s.base_fare_minor + s.per_km_minor * distance_m / 1000) * multiplier + 0.5)

    def quote(self, rider_id: str, pickup: tuple[float, float], dropoff: tuple[float, float]) -> pb.Quote:
        """A quote (points in degrees), held ``quote_ttl_s``; counts one demand in the pickup's surge cell.
        :class:`ResourceExhausted` when ``max_quotes`` unexpired quotes are held."""
        cell = self.surge.cell_of(*pickup)
        self.surge.count_demand(cell)
        multiplier = self.surge.surge(cell).multiplier
        distance_m = h3.great_circle_distance(pickup, dropoff, unit="m")
        expires_at = self.quotes.expires_at()
        quote = pb.Quote(
            quote_id=new_quote_id(), rider_id=rider_id, pickup=check.latlng(*pickup), dropoff=check.latlng(*dropoff),
            fare=money_pb2.Money(currency_code=self.settings.currency_code,
                                 amount_minor=self.fare_minor(distance_m, multiplier)),
            surge_multiplier=multiplier, distance_m=distance_m,
            duration_s=distance_m * self.settings.detour_factor / self._speed_m_per_s,
            surge_cell=cell, expires_at_unix_ms=int(expires_at * 1000))
        self.quotes.add(quote, expires_at)
        metrics.QUOTES_LIVE.set(self.quotes.live())
        metrics.QUOTES.inc()
        metrics.SURGE_MULTIPLIER.observe(multiplier)
        return quote

    def redeem(self, quote_id: str, rider_id: str, ride_id: str) -> pb.Quote:
        """:meth:`.quotes.QuoteBook.redeem`."""
        return self.quotes.redeem(quote_id, rider_id, ride_id)

    def surge_at(self, lat_deg: float, lng_deg: float) -> CellSurge:
        """The surge in force in the point's cell."""
        return self.surge.surge(self.surge.cell_of(lat_deg, lng_deg))

    async def recompute(self) -> list[CellSurge]:
        """End the demand window and compute the new map over fresh supply (the last supply when rides-location
        cannot be reached: logged once per outage, counted). Returns the new map's cells."""
        try:
            supply: Mapping[str, int] | None = await self._supply(self.settings.surge_resolution)
            if self._supply_failing:
                log.info("%s: %s answers again; surge uses fresh supply", NAME, LOCATION)
            self._supply_failing = False
        except grpc.aio.AioRpcError as error:
            supply = None
            metrics.SURGE_ERRORS.inc()
            if not self._supply_failing:
                log.warning("%s: cannot get the supply from %s (%s: %s); surge keeps the last supply until it "
                            "answers", NAME, LOCATION, error.code().name, error.details())
            self._supply_failing = True
        cells = self.surge.recompute(supply, int(self._clock() * 1000))
        metrics.RECOMPUTATIONS.inc()
        metrics.QUOTES_LIVE.set(self.quotes.live())  # also while no quote is asked: expiries lower it
        by_multiplier = {multiplier: 0 for multiplier in self.ladder.multipliers}
        for cell in cells:
            by_multiplier[cell.multiplier] = by_multiplier.get(cell.multiplier, 0) + 1
        for multiplier, count in by_multiplier.items():
            metrics.SURGE_CELLS.labels(metrics.multiplier_label(multiplier)).set(count)
        return cells


def _surge_cell(surge: CellSurge) -> pb.SurgeCell:
    lat, lng = h3.cell_to_latlng(surge.cell)
    return pb.SurgeCell(cell=surge.cell, multiplier=surge.multiplier, demand=surge.demand, supply=surge.supply,
                        center=check.latlng(lat, lng))


class PricingServicer(pb_grpc.PricingServiceServicer):
    """Validates each request and calls :class:`Pricing`."""

    def __init__(self, pricing: Pricing) -> None:
        self._pricing = pricing

    async def GetQuote(self, request: pb.GetQuoteRequest, context: grpc.aio.ServicerContext) -> pb.GetQuoteResponse:
        rider_id = check.required_id("rider_id", request.rider_id)
        pickup = check.point("pickup", request.pickup, request.HasField("pickup"))
        dropoff = check.point("dropoff", request.dropoff, request.HasField("dropoff"))
        return pb.GetQuoteResponse(quote=self._pricing.quote(rider_id, pickup, dropoff))

    async def RedeemQuote(self, request: pb.RedeemQuoteRequest,
                          context: grpc.aio.ServicerContext) -> pb.RedeemQuoteResponse:
        quote_id = check.required_id("quote_id", request.quote_id)
        rider_id = check.required_id("rider_id", request.rider_id)
        ride_id = check.required_id("ride_id", request.ride_id)
        return pb.RedeemQuoteResponse(quote=self._pricing.redeem(quote_id, rider_id, ride_id))

    async def GetSurge(self, request: pb.GetSurgeRequest, context: grpc.aio.ServicerContext) -> pb.GetSurgeResponse:
        lat, lng = check.point("point", request.point, request.HasField("point"))
        return pb.GetSurgeResponse(cell=_surge_cell(self._pricing.surge_at(lat, lng)),
                                   computed_at_unix_ms=self._pricing.surge.computed_at_unix_ms)

    async def ListSurge(self, request: pb.ListSurgeRequest, context: grpc.aio.ServicerContext) -> pb.ListSurgeResponse:
        surge = self._pricing.surge
        return pb.ListSurgeResponse(cells=[_surge_cell(cell) for cell in surge.cells()],
                                    computed_at_unix_ms=surge.computed_at_unix_ms, resolution=surge.resolution)


class LocationSupply:
    """The supply source over ``LocationService.CountAvailableDrivers`` (deadline ``timeout_s`` per call)."""

    def __init__(self, stub: location_pb2_grpc.LocationServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def __call__(self, resolution: int) -> dict[str, int]:
        response = await self._stub.CountAvailableDrivers(
            location_pb2.CountAvailableDriversRequest(resolution=resolution), timeout=self._timeout_s)
        return {cell.cell: cell.drivers for cell in response.cells}


class PricingComponent:
    """The servicer over :class:`Pricing` and the recomputation loop (every ``surge_interval_s``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, PricingSettings)
        supply = LocationSupply(location_pb2_grpc.LocationServiceStub(context.channel(LOCATION)),
                                self.settings.location_timeout_ms / 1000)
        self.pricing = Pricing(self.settings, supply)
        self.servicer = PricingServicer(self.pricing)
        self._loop: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PricingServiceServicer_to_server(self.servicer, server)

    async def _recompute_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.surge_interval_s)
            try:
                await self.pricing.recompute()
            except Exception:  # noqa: BLE001 - one failed recomputation must not end surge pricing
                log.exception("%s: a surge recomputation failed", NAME)

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._recompute_forever(), name=f"{NAME}-surge")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop


async def build(context: RuntimeContext) -> PricingComponent:
    return PricingComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(LOCATION,), optional_dependencies=(LOCATION,), build=build,
    settings_model=PricingSettings,
    access=Access(public={"GetQuote", "GetSurge", "ListSurge"}, internal={"RedeemQuote": REDEEM_CALLERS}),
)

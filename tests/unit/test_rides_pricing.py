"""rides-pricing (services/rides/pricing) without gRPC: a fake supply source and a fake clock, no sleeping.

The fare is seed 003's $5 + $1.50/km times the multiplier; the ladder gives 1.0/1.2/1.5/2.0/2.5 at demand/supply
0.5/1/2/3; a recomputation swaps the demand window and keeps the last supply when rides-location cannot be reached;
surge off quotes 1.0 but still reports demand; RedeemQuote's rules (another rider, another ride, expired,
forgotten, the same ride again); the quote store's bound.
"""

from __future__ import annotations

import math

import grpc
import h3
import pytest

from casemesh.common.v1 import geo_pb2
from casemesh.rides.v1 import pricing_pb2
from casemesh.services.rides.contract import is_id
from casemesh.services.rides.pricing.service import Pricing, PricingServicer
from casemesh.services.rides.pricing.settings import PricingSettings
from casemesh.services.rides.pricing.surge import SurgeLadder
from casemesh.services.runtime.errors import (FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
                                              ResourceExhausted)

PICKUP = (37.7749, -122.4194)
DROPOFF = (37.8024, -122.4058)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Supply:
    """A fake LocationService: ``cells`` per call, or an UNAVAILABLE error when ``down``."""

    def __init__(self) -> None:
        self.cells: dict[str, int] = {}
        self.down = False
        self.resolutions: list[int] = []

    async def __call__(self, resolution: int) -> dict[str, int]:
        self.resolutions.append(resolution)
        if self.down:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "connection refused")
        return dict(self.cells)


def make(clock: Clock | None = None, supply: Supply | None = None, **settings) -> Pricing:
    return Pricing(PricingSettings(**settings), supply or Supply(), clock or Clock())


def cell(point=PICKUP) -> str:
    return h3.latlng_to_cell(*point, 8)


def test_the_fare_and_trip_time_follow_the_formula():
    pricing = make()
    quote = pricing.quote("r1", PICKUP, DROPOFF)
    distance_m = h3.great_circle_distance(PICKUP, DROPOFF, unit="m")
    assert quote.distance_m == pytest.approx(distance_m)
    assert quote.fare.currency_code == "USD"
    assert quote.fare.amount_minor == math.floor(500 + 150 * distance_m / 1000 + 0.5)
    assert quote.duration_s == pytest.approx(distance_m * 1.3 / (30 / 3.6))
    assert quote.surge_multiplier == 1.0 and quote.surge_cell == cell()
    assert quote.quote_id.startswith("quote-") and len(quote.quote_id) == 32 and is_id(quote.quote_id)
    assert quote.expires_at_unix_ms == int((1_700_000_000.0 + 120) * 1000)
    assert pricing.fare_minor(10_000, 1.5) == 3_000  # (500 + 150 × 10) × 1.5
    assert pricing.fare_minor(1_003, 1.2) == 781  # (500 + 150.45) × 1.2 = 780.54 → 781


@pytest.mark.parametrize(("demand", "supply", "multiplier"), [
    (0, 0, 1.0), (1, 3, 1.0), (1, 2, 1.2), (2, 3, 1.2), (1, 1, 1.5), (3, 2, 1.5), (2, 1, 2.0), (5, 2, 2.0),
    (3, 1, 2.5), (100, 1, 2.5), (1, 0, 1.5), (4, 0, 2.5),
])
def test_the_ladder_of_seed_003(demand, supply, multiplier):
    settings = PricingSettings()
    assert SurgeLadder(settings.surge_ladder, settings.surge_max_multiplier).multiplier(demand, supply) == multiplier


def test_a_ladder_must_increase():
    with pytest.raises(ValueError):
        PricingSettings(surge_ladder=((1.0, 1.2), (0.5, 1.5)))
    with pytest.raises(ValueError):
        PricingSettings(surge_ladder=((0.5, 1.5), (1.0, 1.2)))
    with pytest.raises(ValueError):
        PricingSettings(surge_ladder=((0.5, 3.0),), surge_max_multiplier=2.5)


async def test_a_recomputation_swaps_the_demand_window_and_prices_the_next_quotes():
    supply = Supply()
    supply.cells = {cell(): 1, cell(DROPOFF): 4}
    pricing = make(supply=supply)
    for _ in range(2):
        assert pricing.quote("r1", PICKUP, DROPOFF).surge_multiplier == 1.0  # nothing computed yet
    cells = {c.cell: c for c in await pricing.recompute()}
    assert supply.resolutions == [8]
    assert (cells[cell()].demand, cells[cell()].supply, cells[cell()].multiplier) == (2, 1, 2.0)
    assert (cells[cell(DROPOFF)].demand, cells[cell(DROPOFF)].multiplier) == (0, 1.0)
    quote = pricing.quote("r1", PICKUP, DROPOFF)
    assert quote.surge_multiplier == 2.0
    assert quote.fare.amount_minor == math.floor((500 + 150 * quote.distance_m / 1000) * 2.0 + 0.5)
    assert pricing.surge_at(*PICKUP).multiplier == 2.0 and pricing.surge.computed_at_unix_ms > 0
    cells = {c.cell: c for c in await pricing.recompute()}  # the new window holds the one quote since
    assert (cells[cell()].demand, cells[cell()].multiplier) == (1, 1.5)


async def test_the_last_supply_is_kept_when_location_cannot_be_reached():
    supply = Supply()
    supply.cells = {cell(): 10}
    pricing = make(supply=supply)
    await pricing.recompute()
    supply.down = True
    for _ in range(3):
        pricing.quote("r1", PICKUP, DROPOFF)
    cells = {c.cell: c for c in await pricing.recompute()}
    assert (cells[cell()].supply, cells[cell()].demand, cells[cell()].multiplier) == (10, 3, 1.0)
    assert await pricing.recompute()  # still failing: still the last supply, no crash


async def test_surge_off_quotes_one_but_still_counts_demand():
    pricing = make(surge_enabled=False)
    for _ in range(5):
        pricing.quote("r1", PICKUP, DROPOFF)
    cells = {c.cell: c for c in await pricing.recompute()}
    assert (cells[cell()].demand, cells[cell()].multiplier) == (5, 1.0)
    assert pricing.quote("r1", PICKUP, DROPOFF).surge_multiplier == 1.0


def test_redeem_rules():
    clock = Clock()
    pricing = make(clock)
    quote = pricing.quote("r1", PICKUP, DROPOFF)
    with pytest.raises(NotFound):
        pricing.redeem("quote-unknown", "r1", "ride-1")
    with pytest.raises(PermissionDenied):
        pricing.redeem(quote.quote_id, "r2", "ride-1")
    assert pricing.redeem(quote.quote_id, "r1", "ride-1") == quote
    assert pricing.redeem(quote.quote_id, "r1", "ride-1") == quote  # a retried RequestRide
    with pytest.raises(FailedPrecondition):
        pricing.redeem(quote.quote_id, "r1", "ride-2")
    clock.now += 121
    assert pricing.redeem(quote.quote_id, "r1", "ride-1") == quote  # redeemed in time: still the same ride's

    late = pricing.quote("r1", PICKUP, DROPOFF)
    clock.now += 120
    with pytest.raises(FailedPrecondition, match="expired"):
        pricing.redeem(late.quote_id, "r1", "ride-3")
    clock.now += 120  # a TTL after expiry: forgotten
    with pytest.raises(NotFound):
        pricing.redeem(late.quote_id, "r1", "ride-3")


def test_the_store_is_bounded_by_unexpired_quotes():
    clock = Clock()
    pricing = make(clock, max_quotes=2, quote_ttl_s=10)
    first = pricing.quote("r1", PICKUP, DROPOFF)
    pricing.quote("r1", PICKUP, DROPOFF)
    with pytest.raises(ResourceExhausted):
        pricing.quote("r1", PICKUP, DROPOFF)
    assert pricing.quotes.live() == 2
    clock.now += 10  # the first two expire: kept for another TTL, but forgotten early to make room
    pricing.quote("r1", PICKUP, DROPOFF)
    assert pricing.quotes.live() == 1 and len(pricing.quotes) == 2
    with pytest.raises(NotFound):
        pricing.redeem(first.quote_id, "r1", "ride-1")
    clock.now += 30
    assert pricing.quotes.live() == 0 and len(pricing.quotes) == 0


async def test_the_servicer_validates_and_maps_the_surge():
    pricing = make()
    servicer = PricingServicer(pricing)

    def point(lat, lng):
        return geo_pb2.LatLng(lat_deg=lat, lng_deg=lng)

    for request, field in [
        (pricing_pb2.GetQuoteRequest(pickup=point(*PICKUP), dropoff=point(*DROPOFF)), "rider_id"),
        (pricing_pb2.GetQuoteRequest(rider_id="r1", dropoff=point(*DROPOFF)), "pickup"),
        (pricing_pb2.GetQuoteRequest(rider_id="r1", pickup=point(95, 0), dropoff=point(*DROPOFF)), "pickup.lat_deg"),
        (pricing_pb2.GetQuoteRequest(rider_id="r1", pickup=point(*PICKUP), dropoff=point(51.5, -0.1)), "dropoff"),
    ]:
        with pytest.raises(InvalidArgument) as error:
            await servicer.GetQuote(request, None)
        assert error.value.field == field
    with pytest.raises(InvalidArgument) as error:
        await servicer.RedeemQuote(pricing_pb2.RedeemQuoteRequest(quote_id="q", rider_id="r1"), None)
    assert error.value.field == "ride_id"

    quote = (await servicer.GetQuote(pricing_pb2.GetQuoteRequest(rider_id="r1", pickup=point(*PICKUP),
                                                                 dropoff=point(*DROPOFF)), None)).quote
    redeemed = await servicer.RedeemQuote(pricing_pb2.RedeemQuoteRequest(quote_id=quote.quote_id, rider_id="r1",
                                                                         ride_id="ride-1"), None)
    assert redeemed.quote == quote
    empty = await servicer.GetSurge(pricing_pb2.GetSurgeRequest(point=point(*PICKUP)), None)
    assert (empty.cell.cell, empty.cell.multiplier, empty.cell.demand, empty.computed_at_unix_ms) == (cell(), 1.0, 0, 0)
    await pricing.recompute()
    listed = await servicer.ListSurge(pricing_pb2.ListSurgeRequest(), None)
    assert listed.resolution == 8 and [c.cell for c in listed.cells] == [cell()] and listed.cells[0].demand == 1
    center = listed.cells[0].center
    assert h3.latlng_to_cell(center.lat_deg, center.lng_deg, 8) == cell()
    surge = await servicer.GetSurge(pricing_pb2.GetSurgeRequest(point=point(*PICKUP)), None)
    assert surge.cell.demand == 1 and surge.computed_at_unix_ms == listed.computed_at_unix_ms > 0

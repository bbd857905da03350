"""Shared by the ride-sharing integration tests: the mesh, and drivers and riders as a client writes them.

:func:`rides_mesh` serves the four ride-sharing services (rides-location, rides-pricing, rides-trips,
rides-dispatch) in the test's event loop. :class:`Driver` is a driver's app: one LocationService.ReportLocations
client stream (its position every ``ping_s``) and one DispatchService.ReceiveOffers feed, both reopened when they
break, and a policy deciding what to do with each offer (accept, decline, ignore). :func:`quote_and_request` is a
rider asking for a ride. :class:`Ledger` is the single-assignment check the tests apply to what the drivers won:
no ride won by two drivers, no driver winning a ride while it holds another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.rides.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    location_pb2,
    location_pb2_grpc,
    pricing_pb2,
    pricing_pb2_grpc,
    rides_pb2,
    trips_pb2,
    trips_pb2_grpc,
)
from casemesh.services.catalog import definitions
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .conftest import RunningMesh, free_port, start_mesh
from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests

SERVICES = ["rides-location", "rides-pricing", "rides-trips", "rides-dispatch"]
#: Union Square, San Francisco: inside the service area (services/rides/contract.py).
CENTRE = (37.7880, -122.4075)
#: Offers lapse quickly and the sweep runs often, so a test's phases take fractions of a second.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "rides-dispatch": {"offer_timeout_s": 1.0, "sweep_interval_s": 0.5},
}


@contextlib.asynccontextmanager
async def rides_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                     names: Sequence[str] = SERVICES) -> AsyncIterator[RunningMesh]:
    """The ride-sharing services served in this event loop on 127.0.0.1 (rides-trips' database in ``data_dir``)."""
    chosen = list(definitions(list(names)))
    topology = Topology(services={d.name: Endpoint(address=f"127.0.0.1:{free_port()}") for d in chosen},
                        data_dir=str(data_dir), settings=settings if settings is not None else FAST_SETTINGS,
                        server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def point(lat: float, lng: float) -> geo_pb2.LatLng:
    return geo_pb2.LatLng(lat_deg=lat, lng_deg=lng)


def near(metres_north: float, metres_east: float = 0.0) -> geo_pb2.LatLng:
    """A point ``metres_north`` m north and ``metres_east`` m east of :data:`CENTRE` (flat-earth, fine at city scale)."""
    return point(CENTRE[0] + metres_north / 111_320, CENTRE[1] + metres_east / 88_000)


@dataclass
class Ledger:
    """The single-assignment invariant over every accept the drivers won (their AcceptOffer answered OK).

    ``violations`` lists each breach: a ride won by a second driver, a driver winning a ride while holding another
    (a ride it won and has not dropped off or seen cancelled).
    """

    winner: dict[str, str] = field(default_factory=dict)
    holding: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def won(self, driver_id: str, ride_id: str) -> None:
        other = self.winner.get(ride_id)
        if other is not None and other != driver_id:
            self.violations.append(f"ride {ride_id} won by {other} and by {driver_id}")
        held = self.holding.get(driver_id)
        if held is not None and held != ride_id:
            self.violations.append(f"driver {driver_id} won {ride_id} while holding {held}")
        self.winner[ride_id] = driver_id
        self.holding[driver_id] = ride_id

    def released(self, driver_id: str, ride_id: str) -> None:
        if self.holding.get(driver_id) == ride_id:
            del self.holding[driver_id]


Policy = Callable[["Driver", dispatch_pb2.Offer], str]


def always(choice: str) -> Policy:
    """A policy that answers every offer with ``choice``: ``accept``, ``decline`` or ``ignore``."""
    return lambda driver, offer: choice


class Driver:
    """One driver's app: its position stream, its offer feed and its trips.

    ``policy(driver, offer)`` says what to do with each offer; an accepted ride that is won is driven at once
    (DEPART, PICK_UP, DROP_OFF, ``trip_s`` apart) when ``drive`` is set, else held. ``outcomes`` counts AcceptOffer
    answers by status code name; ``offers`` lists every offer received; ``ends`` the codes the streams ended with.
    """

    def __init__(self, mesh: RunningMesh, driver_id: str, at: geo_pb2.LatLng, ledger: Ledger, *,
                 policy: Policy = always("accept"), drive: bool = True, trip_s: float = 0.05, ping_s: float = 0.5,
                 channels: dict[str, grpc.aio.Channel] | None = None) -> None:
        channels = channels or {name: mesh.anonymous_channel(name) for name in ("rides-location", "rides-dispatch",
                                                                                 "rides-trips")}
        self.location = location_pb2_grpc.LocationServiceStub(channels["rides-location"])
        self.dispatch = dispatch_pb2_grpc.DispatchServiceStub(channels["rides-dispatch"])
        self.trips = trips_pb2_grpc.TripServiceStub(channels["rides-trips"])
        self.driver_id = driver_id
        self.at = at
        self.ledger = ledger
        self.policy = policy
        self.drive = drive
        self.trip_s = trip_s
        self.ping_s = ping_s
        self.status = rides_pb2.DRIVER_STATUS_AVAILABLE
        self.offers: list[dispatch_pb2.Offer] = []
        self.outcomes: dict[str, int] = {}
        self.ends: list[grpc.StatusCode] = []
        self.completed: list[str] = []
        self.feed_open = False
        self.pings = 0
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._report()), asyncio.create_task(self._feed())]

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 30)

    async def _positions(self) -> AsyncIterator[location_pb2.ReportLocationsRequest]:
        while not self._stopping.is_set():
            yield location_pb2.ReportLocationsRequest(driver_id=self.driver_id, point=self.at, status=self.status)
            self.pings += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.ping_s)
        yield location_pb2.ReportLocationsRequest(driver_id=self.driver_id, point=self.at,
                                                  status=rides_pb2.DRIVER_STATUS_OFFLINE)

    async def _report(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.location.ReportLocations(self._positions())
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
                await asyncio.sleep(0.2)

    async def _feed(self) -> None:
        while not self._stopping.is_set():
            call = self.dispatch.ReceiveOffers(dispatch_pb2.ReceiveOffersRequest(driver_id=self.driver_id))
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                self.feed_open = True
                while True:
                    read = asyncio.create_task(call.read())
                    done, _ = await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done:
                        read.cancel()
                        call.cancel()
                        return
                    event = read.result()
                    if event is grpc.aio.EOF:
                        break
                    if event.HasField("offer"):
                        self.offers.append(event.offer)
                        asyncio.create_task(self._answer(event.offer))
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
                await asyncio.sleep(0.2)
            finally:
                self.feed_open = False
                stopping.cancel()

    async def _answer(self, offer: dispatch_pb2.Offer) -> None:
        choice = self.policy(self, offer)
        if choice == "decline":
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.dispatch.DeclineOffer(dispatch_pb2.DeclineOfferRequest(
                    driver_id=self.driver_id, offer_id=offer.offer_id), timeout=10)
            return
        if choice != "accept":
            return
        try:
            answer = await self.dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(
                driver_id=self.driver_id, offer_id=offer.offer_id), timeout=10)
        except grpc.aio.AioRpcError as error:
            self.outcomes[error.code().name] = self.outcomes.get(error.code().name, 0) + 1
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                await self._recover(offer.ride_id)  # the accept may have been stored before the answer was lost
            return
        self.outcomes["OK"] = self.outcomes.get("OK", 0) + 1
        await self._won(answer.ride)

    async def _won(self, ride: rides_pb2.Ride) -> None:
        self.ledger.won(self.driver_id, ride.ride_id)
        assert ride.driver_id == self.driver_id, ride
        if self.drive:
            await self._drive(ride.ride_id)

    async def _recover(self, ride_id: str) -> None:
        """After an accept whose answer was lost: ask the trip service (as an app that reconnects does) whether this
        driver holds the ride, retrying while it is unreachable, and drive it if so."""
        for _ in range(150):
            try:
                held = (await self.trips.GetDriverRide(trips_pb2.GetDriverRideRequest(driver_id=self.driver_id),
                                                       timeout=5)).ride
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return
                await asyncio.sleep(0.2)
                continue
            if held.ride_id == ride_id:
                self.outcomes["OK"] = self.outcomes.get("OK", 0) + 1
                await self._won(held)
            return

    async def _drive(self, ride_id: str) -> None:
        self.status = rides_pb2.DRIVER_STATUS_BUSY
        try:
            for event in (trips_pb2.TRIP_EVENT_DEPART, trips_pb2.TRIP_EVENT_PICK_UP, trips_pb2.TRIP_EVENT_DROP_OFF):
                await asyncio.sleep(self.trip_s)
                for attempt in range(50):  # a trips restart: retry the event (repeating it is idempotent)
                    try:
                        ride = (await self.trips.UpdateTrip(trips_pb2.UpdateTripRequest(
                            ride_id=ride_id, driver_id=self.driver_id, event=event), timeout=5)).ride
                        break
                    except grpc.aio.AioRpcError as error:
                        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # the rider cancelled
                                return
                            raise
                        await asyncio.sleep(0.2)
                else:
                    return
            if ride.state == rides_pb2.RIDE_STATE_COMPLETED:
                self.completed.append(ride_id)
        finally:
            self.ledger.released(self.driver_id, ride_id)
            self.status = rides_pb2.DRIVER_STATUS_AVAILABLE


async def quote_and_request(mesh: RunningMesh, rider_id: str, pickup: geo_pb2.LatLng, dropoff: geo_pb2.LatLng, *,
                            request_id: str = "r1", channels: dict[str, grpc.aio.Channel] | None = None) -> rides_pb2.Ride:
    """GetQuote then RequestRide, as a rider's app does; the stored ride (REQUESTED)."""
    channels = channels or {name: mesh.anonymous_channel(name) for name in ("rides-pricing", "rides-trips")}
    pricing = pricing_pb2_grpc.PricingServiceStub(channels["rides-pricing"])
    trips = trips_pb2_grpc.TripServiceStub(channels["rides-trips"])
    quote = (await pricing.GetQuote(pricing_pb2.GetQuoteRequest(rider_id=rider_id, pickup=pickup, dropoff=dropoff),
                                    timeout=10)).quote
    return (await trips.RequestRide(trips_pb2.RequestRideRequest(
        rider_id=rider_id, quote_id=quote.quote_id, client_request_id=request_id), timeout=10)).ride


async def online(mesh: RunningMesh, drivers: Sequence[Driver]) -> None:
    """Wait until every driver is in the location index and has its offer feed open."""
    location = location_pb2_grpc.LocationServiceStub(mesh.anonymous_channel("rides-location"))

    async def indexed() -> bool:
        for d in drivers:
            try:
                await location.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id=d.driver_id), timeout=5)
            except grpc.aio.AioRpcError:
                return False
        return True

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not (all(d.feed_open for d in drivers) and await indexed()):
        assert loop.time() < deadline, "drivers did not come online"
        await asyncio.sleep(0.05)

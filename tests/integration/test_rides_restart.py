"""Killing rides-dispatch, then rides-trips, while drivers accept rides: no ride gets two drivers, no driver two rides,
and no acknowledged ride is lost or left unmatched.

CASE-STUDY.md point 5 for ride sharing (seed 003 "Uber Ride Matching": the atomic accept; the issue: "no ride matched
to two drivers and no driver holding two rides, under concurrent accepts and a matcher restart"). The mesh runs as
separate processes (harness Mesh, restarts by the test only). Twelve drivers accept every offer, three at a time per
ride, while riders keep asking:

- rides-dispatch (the matcher) gets SIGKILL with rides being matched and offers outstanding: the drivers' feeds break
  and they reopen them once it is back; the restarted dispatch finds the REQUESTED rides in the trip service
  (ListOpenRides) and offers them again. Accepts of offers made before the kill are NOT_FOUND.
- rides-trips (the durable store of rides) gets SIGKILL: rides requested, matched or moved on before the kill are all
  there after it (each was on disk before it was answered).

Afterwards: the drivers' wins hold the single-assignment invariant (tests/integration/rides.py Ledger), every ride
answered by RequestRide is in the trip service with one driver at most, and none is left REQUESTED.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.rides.v1 import rides_pb2, trips_pb2, trips_pb2_grpc

from .rides import SERVICES, Driver, Ledger, eventually, near, quote_and_request

#: Client channels reconnect quickly: a service is gone for a second or two only.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))
SETTINGS = {"rides-dispatch": {"offer_timeout_s": 1.0, "sweep_interval_s": 0.5, "max_match_s": 120.0}}
TERMINAL = {rides_pb2.RIDE_STATE_COMPLETED, rides_pb2.RIDE_STATE_CANCELLED}


class _Channels:
    """The test's channels to the mesh's processes, in the shape tests/integration/rides.py takes."""

    def __init__(self, mesh: Mesh) -> None:
        self.by_name = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                        for name in SERVICES}

    async def close(self) -> None:
        for channel in self.by_name.values():
            await channel.close()


async def _request_with_retry(channels: _Channels, rider: str, n: int) -> rides_pb2.Ride | None:
    """A rider's request, retried with the same client_request_id while the trip service is down; None if refused."""
    for _ in range(100):
        try:
            return await quote_and_request(None, rider, near(10 * n, 0), near(1_500, 300), request_id=f"req-{n}",
                                           channels=channels.by_name)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            await asyncio.sleep(0.2)
    return None


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_dispatch_then_trips_keeps_single_assignment_and_every_ride(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = _Channels(mesh)
        ledger = Ledger()
        drivers = [Driver(None, f"d{i}", near(-200 + 40 * i, 100), ledger, trip_s=0.3, ping_s=0.3,
                          channels=channels.by_name) for i in range(12)]
        acknowledged: list[rides_pb2.Ride] = []
        riders: list[asyncio.Task] = []

        async def ask(n: int) -> None:
            ride = await _request_with_retry(channels, f"rider-{n}", n)
            if ride is not None:
                acknowledged.append(ride)

        try:
            for d in drivers:
                d.start()
            await eventually(lambda: all(d.pings and d.feed_open for d in drivers), "every driver online")
            await asyncio.sleep(0.5)
            for n in range(10):
                riders.append(asyncio.create_task(ask(n)))
                await asyncio.sleep(0.05)
            await eventually(lambda: sum(len(d.completed) for d in drivers) >= 3, "three rides completed")

            for n in range(10, 20):
                riders.append(asyncio.create_task(ask(n)))
            await asyncio.sleep(0.1)
            assert mesh.kill("rides-dispatch", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.5)
            await mesh.start_services(["rides-dispatch"])
            done_then = sum(len(d.completed) for d in drivers)
            await eventually(lambda: sum(len(d.completed) for d in drivers) >= done_then + 5,
                             "five more rides completed after the dispatch restart")

            for n in range(20, 30):
                riders.append(asyncio.create_task(ask(n)))
            await asyncio.sleep(0.2)
            assert mesh.kill("rides-trips", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.5)
            await mesh.start_services(["rides-trips"])
            await asyncio.wait_for(asyncio.gather(*riders), 60)

            trips = trips_pb2_grpc.TripServiceStub(channels.by_name["rides-trips"])

            async def stored() -> list[rides_pb2.Ride]:
                return [(await trips.GetRide(trips_pb2.GetRideRequest(ride_id=r.ride_id), timeout=10)).ride
                        for r in acknowledged]

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while not all(r.state in TERMINAL for r in await stored()):
                assert loop.time() < deadline, [rides_pb2.RideState.Name(r.state) for r in await stored()]
                await asyncio.sleep(0.5)
            final = await stored()
        finally:
            await asyncio.gather(*(d.stop() for d in drivers), return_exceptions=True)
            for task in riders:
                task.cancel()
            await channels.close()

        assert len(acknowledged) == 30, "every rider's request was answered, retried across the trips restart"
        assert len({r.ride_id for r in acknowledged}) == 30
        assert not ledger.violations, ledger.violations
        for ride in final:
            if ride.state == rides_pb2.RIDE_STATE_COMPLETED:
                assert ledger.winner.get(ride.ride_id) == ride.driver_id, (ride, ledger.winner.get(ride.ride_id))
        completed = [r for r in final if r.state == rides_pb2.RIDE_STATE_COMPLETED]
        assert len(completed) >= 25, [rides_pb2.RideState.Name(r.state) for r in final]

"""When the load generator is the bottleneck, the harness says so (issue 11, item 8).

Two behaviours a user relies on when the harness's own event loop stalls:
deadline expiries that the harness could not have avoided are counted as
harness-side (their gRPC status code unchanged), and a driver that falls
seconds behind its schedule stops sending, so the run ends as invalid
instead of running for several times its planned duration.

The stall is made by blocking the harness's event loop (``time.sleep``)
while a thread-pool server, which the block does not stop, holds every call
past its deadline. Nothing here asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from casemesh.harness.driver import ABANDON_BEHIND_S, Driver, harness_caused
from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.result import calls_summary, timeline_summary
from casemesh.harness.stats import RunStats
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"


def test_only_expiries_seen_far_past_their_deadline_are_the_harnesss():
    assert harness_caused("DEADLINE_EXCEEDED", elapsed_s=3.0, timeout_s=1.0)
    assert not harness_caused("DEADLINE_EXCEEDED", elapsed_s=1.01, timeout_s=1.0)  # on time: the server's
    assert not harness_caused("DEADLINE_EXCEEDED", elapsed_s=1.2, timeout_s=1.0)   # within 25 % of the deadline
    assert harness_caused("DEADLINE_EXCEEDED", elapsed_s=0.2, timeout_s=0.1)       # at least 50 ms late
    assert not harness_caused("UNAVAILABLE", elapsed_s=30.0, timeout_s=1.0)       # only expiries
    assert not harness_caused("OK", elapsed_s=30.0, timeout_s=1.0)


class HangingShortener(pb_grpc.UrlShortenerServiceServicer):
    """Answers the seed at once, then holds every call until released (a server that never answers in time)."""

    def __init__(self) -> None:
        self.hang = False
        self.release = threading.Event()

    def Shorten(self, request, context):
        if self.hang:
            self.release.wait(10)
        return pb.ShortenResponse(code="abc1234")


@pytest.fixture
def hanging_server():
    servicer = HangingShortener()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    pb_grpc.add_UrlShortenerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    servicer.release.set()
    server.stop(0)


def _profile(directory: Path, duration_s: float) -> Path:
    path = directory / "profile.yaml"
    path.write_text(f"""apiVersion: casemesh.dev/v1
kind: Profile
metadata: {{name: attribution-test}}
workload: url-shortener
services: []
seed: {{urls: 1}}
arrival: {{process: constant, rate_per_s: 10}}
warmup_s: 0
duration_s: {duration_s}
request_timeout_ms: 1000
journeys:
  - {{name: shorten, weight: 1}}
""")
    return path


async def _drive(profile: Path, address: str, servicer: HangingShortener, stall_s: float) -> RunStats:
    """Run the profile; ``stall_s`` > 0 blocks the harness's event loop that long, 0.3 s into the run."""
    async with grpc.aio.insecure_channel(address) as channel:
        driver = Driver(load_profile(profile), {"urlshortener": channel})
        await driver.seed()
        servicer.hang = True

        async def stall() -> None:
            await asyncio.sleep(0.3)
            time.sleep(stall_s)  # the harness's event loop is blocked: it neither sends nor takes responses

        staller = asyncio.create_task(stall()) if stall_s else None
        stats = await asyncio.wait_for(driver.run(), 60)
        if staller is not None:
            await staller
        return stats


async def test_a_stalled_harness_blames_itself_and_abandons_the_run(tmp_path, hanging_server):
    servicer, address = hanging_server
    stats = await _drive(_profile(tmp_path, duration_s=6), address, servicer, stall_s=ABANDON_BEHIND_S + 1.0)

    timeline = timeline_summary(stats.timeline)
    assert timeline["abandoned_at_s"] is not None and timeline["abandoned_behind_s"] > ABANDON_BEHIND_S
    assert not timeline["ended_early"]  # that is for a trace that runs out, not for a driver that gave up
    assert timeline["end_s"] < timeline["planned_end_s"] and timeline["sent_total"] < 60  # it stopped sending (10/s for 6 s)
    # The calls made before the stall expired in grpc-core on time, but the harness saw that seconds late.
    rpc, journey = calls_summary(stats.rpcs[SHORTEN], 1.0), calls_summary(stats.journeys["shorten"], 1.0)
    assert rpc["errors"]["DEADLINE_EXCEEDED"] >= rpc["harness_side"]["DEADLINE_EXCEEDED"] >= 1
    assert journey["harness_side"]["DEADLINE_EXCEEDED"] >= 1
    # Through the worker wire format too (--workers N ships stats this way).
    again = RunStats.from_wire(stats.to_wire())
    assert again.rpcs[SHORTEN].harness_side == stats.rpcs[SHORTEN].harness_side
    assert again.timeline.abandoned_at_s == stats.timeline.abandoned_at_s


async def test_expiries_seen_on_time_stay_the_servers(tmp_path, hanging_server):
    servicer, address = hanging_server
    stats = await _drive(_profile(tmp_path, duration_s=1), address, servicer, stall_s=0)

    rpc = calls_summary(stats.rpcs[SHORTEN], 1.0)
    assert rpc["errors"]["DEADLINE_EXCEEDED"] == rpc["count"] == 10
    assert rpc["harness_side"] == {}
    assert stats.timeline.abandoned_at_s is None

"""Measurement truth: the harness reports the latency a server really has, stalls included.

A fake URL-shortener server in this process answers Resolve after a known
delay; ``casemesh run --target`` drives it from a subprocess. Open-loop
measurement from the intended send time must report that delay, and a stall
must show up in the tail in full (no coordinated omission): every request that
was due during the stall waited for its end.
"""

from __future__ import annotations

import asyncio
import json
import sys

import grpc
import pytest

from casemesh.harness.mesh import free_port
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from .profiles import RESOLVE, write_profile


class FakeShortener(pb_grpc.UrlShortenerServiceServicer):
    """Shorten hands out codes; Resolve sleeps ``delay_s`` and, while ``stalled`` is clear, waits for it."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.running = asyncio.Event()
        self.running.set()
        self.created = 0

    async def Shorten(self, request, context):
        self.created += 1
        return pb.ShortenResponse(code=f"code{self.created:03d}")

    async def Resolve(self, request, context):
        await self.running.wait()
        await asyncio.sleep(self.delay_s)
        return pb.ResolveResponse(long_url="https://example.com/")


async def drive(tmp_path, servicer, *, stall_at_s: float | None = None, stall_s: float = 0.0) -> dict:
    """Serve ``servicer`` on a free loopback port and run ``casemesh run --target`` against it."""
    server = grpc.aio.server()
    pb_grpc.add_UrlShortenerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    profile = write_profile(tmp_path, services="[]", rate=100, process="constant", duration_s=3, warmup_s=0.5,
                            seed_urls=20, journeys="  - {name: resolve, weight: 1}\n")
    out = tmp_path / "out"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "casemesh.harness.cli", "run", str(profile), "--target", f"127.0.0.1:{port}",
        "--out", str(out), "--no-progress", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        if stall_at_s is not None:
            # Seeding is quick; the run starts right after. Stall the server inside the measured window.
            while servicer.created < 20:
                await asyncio.sleep(0.01)
            await asyncio.sleep(stall_at_s)
            servicer.running.clear()
            await asyncio.sleep(stall_s)
            servicer.running.set()
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
        await server.stop(0)
    assert process.returncode == 0, output.decode()
    return json.loads((out / "result.json").read_text())


async def test_reported_latency_matches_a_known_server_delay(tmp_path):
    result = await drive(tmp_path, FakeShortener(delay_s=0.020))
    resolve = result["rpcs"][RESOLVE]
    assert resolve["count"] == pytest.approx(300, abs=3)  # 100/s for 3 s, constant arrivals
    assert 19.9 <= resolve["p50_ms"] <= 30.0
    assert 19.9 <= resolve["p99_ms"] <= 60.0


async def test_a_stall_shows_up_in_the_tail(tmp_path):
    # 1 s stall in a 3 s window at 100/s: ~100 requests were due during it and each waits for its end,
    # so ~1/3 of the calls take 0..1000 ms and the p99 is close to the whole stall. A closed-loop
    # measurement would record one slow call and report a p99 near the server's normal 5 ms.
    result = await drive(tmp_path, FakeShortener(delay_s=0.005), stall_at_s=1.5, stall_s=1.0)
    resolve = result["rpcs"][RESOLVE]
    assert resolve["p99_ms"] >= 700
    assert resolve["p90_ms"] >= 300
    assert resolve["max_ms"] <= 1500

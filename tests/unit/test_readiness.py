"""``--target`` waits for its servers to be ready (harness/readiness.py): a server that starts late is waited for."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from casemesh.harness.errors import HarnessError
from casemesh.harness.mesh import free_port
from casemesh.harness.readiness import wait_ready

#: Reconnect quickly, as a user's server that comes up a moment later should be seen at once.
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 200)]


async def _server(port: int, status: int | None) -> grpc.aio.Server:
    """A server on ``port``: with the health service answering ``status``, or none at all (``None``)."""
    server = grpc.aio.server()
    if status is not None:
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        await servicer.set("", status)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def test_a_server_that_starts_late_is_waited_for_and_one_without_health_counts_as_ready():
    late, bare = free_port(), free_port()
    targets = {"urlshortener": f"127.0.0.1:{late}", "other": f"127.0.0.1:{bare}"}
    said: list[str] = []
    servers = [await _server(bare, None)]  # no health service: answering at all is ready
    channels = {name: grpc.aio.insecure_channel(address, options=FAST_RECONNECT) for name, address in targets.items()}
    try:
        waiting = asyncio.create_task(wait_ready(targets, channels, 30, said.append))
        await asyncio.sleep(1.0)
        assert not waiting.done()
        servers.append(await _server(late, health_pb2.HealthCheckResponse.SERVING))
        waited = await asyncio.wait_for(waiting, 30)
    finally:
        for channel in channels.values():
            await channel.close()
        for server in servers:
            await server.stop(0)
    assert waited >= 0.9
    assert said[0].startswith(f"waiting for urlshortener at 127.0.0.1:{late} (UNAVAILABLE")
    assert said[-1].startswith("targets ready after")


async def test_a_target_that_never_serves_fails_naming_it_and_its_last_answer():
    port = free_port()
    server = await _server(port, health_pb2.HealthCheckResponse.NOT_SERVING)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        with pytest.raises(HarnessError, match=rf"not ready after 0.5 s .*urlshortener at 127.0.0.1:{port}: health NOT_SERVING"):
            await wait_ready({"urlshortener": f"127.0.0.1:{port}"}, {"urlshortener": channel}, 0.5, lambda line: None)
    finally:
        await channel.close()
        await server.stop(0)


def test_run_against_nothing_exits_3_after_the_connect_timeout():
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "casemesh.harness.cli", "run", "url-shortener", "--target", f"urlshortener=127.0.0.1:{port}",
                           "--connect-timeout", "1", "--no-progress", "--no-control", "--report", "off", "--rate-scale", "0.1",
                           "--duration", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 3, done.stdout + done.stderr
    output = " ".join((done.stdout + done.stderr).split())
    assert f"waiting for urlshortener at 127.0.0.1:{port}" in output
    assert "not ready after 1 s (--connect-timeout)" in output

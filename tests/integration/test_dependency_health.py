"""A service reports NOT_SERVING while a required upstream is down, and SERVING once it is back."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.harness.mesh import Mesh
from casemesh.services.runtime.topology import ServerPolicy
from casemesh.services.urlshortener.service import FULL_NAME as URLSHORTENER

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BOUND_S = ServerPolicy().dependency_unhealthy_after_s


async def status(health: health_pb2_grpc.HealthStub, service: str = URLSHORTENER) -> int:
    return (await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status


async def wait_for(health: health_pb2_grpc.HealthStub, wanted: int, timeout_s: float = 60) -> float:
    """Seconds until urlshortener reports ``wanted`` (fails after ``timeout_s``)."""
    started = time.monotonic()
    while await status(health) != wanted:
        assert time.monotonic() - started < timeout_s, f"still not {health_pb2.HealthCheckResponse.ServingStatus.Name(wanted)}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_urlshortener_health_follows_its_required_upstream(tmp_path):
    async with Mesh(["urlshortener", "idgen", "analytics"], tmp_path) as mesh:
        async with grpc.aio.insecure_channel(mesh.topology.endpoint("urlshortener").address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert await status(health) == SERVING

            mesh.kill("idgen")  # on purpose: the mesh does not restart it
            took = await wait_for(health, NOT_SERVING)
            # Not before the bound (less the probe interval, 1 s at most); "within" it is checked generously above.
            assert took >= BOUND_S - 1.0
            assert await status(health, "") == SERVING  # the process itself is up

            await mesh.start_services(["idgen"])
            await wait_for(health, SERVING)

            # analytics is optional for urlshortener: its loss is logged, the status stays SERVING.
            mesh.kill("analytics")
            log = tmp_path / "logs" / "urlshortener.log"
            deadline = time.monotonic() + 60
            while "optional upstream analytics" not in log.read_text():
                assert time.monotonic() < deadline, "the loss of analytics was not logged"
                await asyncio.sleep(0.2)
            assert await status(health) == SERVING
            await mesh.start_services(["analytics"])

    text = log.read_text()
    # Logged once when idgen went down, once when it came back.
    assert text.count("required upstream idgen") == 2, text
    assert text.count("health NOT_SERVING") == 1 and text.count("health SERVING") == 1, text

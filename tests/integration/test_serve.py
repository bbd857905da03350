"""``casemesh serve`` as separate processes: reflection for grpcurl, /metrics over HTTP, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from casemesh.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from casemesh.harness.mesh import Mesh, free_port
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from ..caller_identity import identified_channel, serve_environment

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).with_name("grpcurl"))


@pytest.fixture
def served(tmp_path):
    """All three services in one ``casemesh serve`` process on one free port (as the default topology does)."""
    port, metrics_port = free_port(), free_port()
    topology = tmp_path / "topology.yaml"
    topology.write_text(
        f"services:\n  urlshortener: {{address: '127.0.0.1:{port}', metrics_address: '127.0.0.1:{metrics_port}'}}\n"
        f"  idgen: {{address: '127.0.0.1:{port}'}}\n  analytics: {{address: '127.0.0.1:{port}'}}\n"
        "reflection: true\n"  # as the shipped topology has it for local use
    )
    # --dev-secret: a random mesh secret for this command, as a user serving locally would run it.
    process = subprocess.Popen([sys.executable, "-m", "casemesh.harness.cli", "serve", "--dev-secret", "--topology", str(topology)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={k: v for k, v in os.environ.items() if not k.startswith("CASEMESH_SECRET")})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1).read()
            break
        except OSError:
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.2)
    yield port, metrics_port
    process.terminate()
    assert process.wait(30) == 0


def test_grpcurl_lists_services_health_and_reflection(served):
    port, _ = served
    listed = subprocess.run([GRPCURL, "-plaintext", f"127.0.0.1:{port}", "list"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {
        "casemesh.urlshortener.v1.UrlShortenerService", "casemesh.idgen.v1.IdGeneratorService",
        "casemesh.analytics.v1.AnalyticsService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
    }
    described = subprocess.run([GRPCURL, "-plaintext", f"127.0.0.1:{port}", "describe", "casemesh.urlshortener.v1.ShortenRequest"],
                               capture_output=True, text=True, timeout=30)
    assert "long_url" in described.stdout and "ttl_seconds" in described.stdout


def test_metrics_endpoint_serves_grpc_and_cache_metrics(served):
    port, metrics_port = served

    async def calls() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.UrlShortenerServiceStub(channel)
            created = await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/m"))
            await stub.Resolve(pb.ResolveRequest(code=created.code))
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Resolve(pb.ResolveRequest(code="missing"))

    asyncio.run(calls())
    resolve = 'grpc_method="Resolve",grpc_service="casemesh.urlshortener.v1.UrlShortenerService",grpc_type="unary"'
    expected = [f'grpc_server_handled_total{{grpc_code="OK",{resolve}}} 1.0',
                f'grpc_server_handled_total{{grpc_code="NotFound",{resolve}}} 1.0']
    # The server counts a call once its handler has returned, which may be just after the client has its status: on
    # a loaded machine the first scrape can come in between (a CI run saw the NotFound line missing).
    deadline = time.monotonic() + 30
    while True:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        if all(line in text for line in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for line in expected:
        assert line in text
    assert 'grpc_client_handled_total{grpc_code="OK",grpc_method="LeaseIds"' in text
    assert 'casemesh_urlshortener_cache_lookups_total{result="hit"}' in text


def test_metrics_endpoint_serves_event_loop_lag_and_gc_pauses(served):
    _, metrics_port = served
    deadline = time.monotonic() + 30
    while True:  # the loop probe ticks every 5 ms from the moment the process serves
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        lag = families["casemesh_event_loop_lag_seconds"]
        ticks = next(s.value for s in lag.samples if s.name.endswith("_count"))
        if ticks >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lag.type == "histogram" and ticks >= 10
    assert {s.labels["le"] for s in lag.samples if s.name.endswith("_bucket")} >= {"0.0001", "0.002", "1.0", "+Inf"}
    pauses = families["casemesh_gc_pause_seconds"]
    assert pauses.type == "histogram"
    assert {s.labels["generation"] for s in pauses.samples if s.name.endswith("_count")} == {"0", "1", "2"}


def test_clicks_buffered_at_shutdown_reach_analytics(tmp_path):
    async def scenario() -> int:
        mesh = Mesh(["urlshortener", "idgen", "analytics"], tmp_path, env=serve_environment())
        await mesh.start()
        try:
            # The run's own random secret reaches the processes through their environment only.
            secret = mesh.secret.current
            assert secret != serve_environment()["CASEMESH_SECRET"]
            assert all(secret not in " ".join(map(str, process.args)) for process in mesh._processes.values())
            assert secret not in (tmp_path / "topology.yaml").read_text()
            async with grpc.aio.insecure_channel(mesh.topology.endpoint("urlshortener").address) as channel:
                stub = pb_grpc.UrlShortenerServiceStub(channel)
                code = (await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/flush"))).code
                await asyncio.gather(*(stub.Resolve(pb.ResolveRequest(code=code, country_code="FR")) for _ in range(300)))
            mesh.stop(["urlshortener"])  # SIGTERM right away: clicks are still in its buffer
            # GetClickStats is internal (urlshortener only): read it as the test identity, which this mesh lets in.
            async with identified_channel(mesh.topology.endpoint("analytics").address, mesh.secret) as channel:
                stats = await analytics_pb2_grpc.AnalyticsServiceStub(channel).GetClickStats(analytics_pb2.GetClickStatsRequest(code=code))
                return stats.total_clicks
        finally:
            mesh.stop()

    assert asyncio.run(scenario()) == 300

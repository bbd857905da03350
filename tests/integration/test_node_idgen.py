"""The Node idgen (services/idgen/node) inside the mesh: its contract, high-water marks shared with the Python
idgen, and `casemesh run --set idgen.impl=node` with one trace across Python and Node.

Needs node (and npm the first time: `make node-idgen` installs the packages and compiles). Skips without node,
unless CASEMESH_REQUIRE_INTEROP=1 (CI), under which it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.harness.errors import HarnessError
from casemesh.harness.implementations import ensure_built
from casemesh.harness.mesh import Mesh
from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc
from casemesh.services.idgen.generators import SnowflakeGenerator
from casemesh.services.runtime.authorization import ALLOW_TEST_IDENTITY_ENV
from casemesh.urlshortener.v1 import urlshortener_pb2 as us_pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as us_grpc

from ..caller_identity import identified_channel
from .profiles import RESOLVE, latency_slo, write_profile

REQUIRE_ENV = "CASEMESH_REQUIRE_INTEROP"
IDGEN = "casemesh.idgen.v1.IdGeneratorService"
LEASE = f"{IDGEN}/LeaseIds"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.fixture(scope="module")
def node_idgen() -> Path:
    """The compiled Node idgen (built by make if needed); skip without node unless CASEMESH_REQUIRE_INTEROP=1."""
    if shutil.which("node") is None:
        message = "node not found: install Node.js >= 20 (and npm) for the Node idgen"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it", pytrace=False)
        pytest.skip(message)
    try:
        return ensure_built("idgen")
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)


def _mark(out: Path, name: str) -> int:
    return int((out / "data" / "idgen" / name).read_text())


async def _lease(stub: pb_grpc.IdGeneratorServiceStub, count: int, layout: int) -> pb.LeaseIdsResponse:
    return await stub.LeaseIds(pb.LeaseIdsRequest(count=count, layout=layout), timeout=10)


async def test_node_idgen_serves_the_contract_and_shares_marks_with_the_python_idgen(tmp_path, node_idgen):
    env = {ALLOW_TEST_IDENTITY_ENV: "1"}
    async with Mesh(["urlshortener", "idgen", "analytics"], tmp_path, env=env, impls={"idgen": "node"}, restart=None) as mesh:
        assert mesh.topology.endpoint("idgen").impl == "node"
        assert "Node" in (tmp_path / "logs" / "idgen.log").read_text()
        address = mesh.topology.endpoint("idgen").address
        async with identified_channel(address, mesh.secret) as channel, grpc.aio.insecure_channel(address) as anonymous:
            stub = pb_grpc.IdGeneratorServiceStub(channel)
            health = health_pb2_grpc.HealthStub(anonymous)
            for service in ("", IDGEN):  # health is open to every caller, per service and for the server
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as denied:  # internal: only urlshortener (and the test identity here)
                await pb_grpc.IdGeneratorServiceStub(anonymous).LeaseIds(pb.LeaseIdsRequest(count=1, layout=pb.ID_LAYOUT_COUNTER), timeout=10)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and "unidentified caller" in denied.value.details()
            for request, field in [(pb.LeaseIdsRequest(count=0, layout=pb.ID_LAYOUT_COUNTER), "count"),
                                   (pb.LeaseIdsRequest(count=10_001, layout=pb.ID_LAYOUT_COUNTER), "count"),
                                   (pb.LeaseIdsRequest(count=1), "layout")]:
                with pytest.raises(grpc.aio.AioRpcError) as invalid:
                    await stub.LeaseIds(request, timeout=10)
                assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT and invalid.value.details().startswith(f"{field}: ")

            # Shortens through Python urlshortener → Node idgen: all succeed, every code distinct, across ID blocks.
            async with identified_channel(mesh.topology.endpoint("urlshortener").address, mesh.secret) as front:
                shortener = us_grpc.UrlShortenerServiceStub(front)
                codes: list[str] = []
                for batch in range(20):
                    replies = await asyncio.gather(*(shortener.Shorten(us_pb.ShortenRequest(long_url=f"https://example.com/{batch}/{i}"), timeout=10)
                                                     for i in range(16)))
                    codes.extend(reply.code for reply in replies)
            assert len(codes) == 320 and len(set(codes)) == 320

            counter = await _lease(stub, 100, pb.ID_LAYOUT_COUNTER)
            [run] = counter.ranges
            assert run.count == 100 and counter.worker_id == 0 and counter.layout == pb.ID_LAYOUT_COUNTER
            assert run.start >= 513  # after the urlshortener's two blocks of 256
            snowflake = await _lease(stub, 5000, pb.ID_LAYOUT_SNOWFLAKE)
            assert sum(r.count for r in snowflake.ranges) == 5000 and len(snowflake.ranges) >= 2  # 4096 per millisecond at most
            assert all(SnowflakeGenerator.decompose(r.start)[1:] == (0, 0) for r in snowflake.ranges)
            node_last = snowflake.ranges[-1].start + snowflake.ranges[-1].count - 1
        metrics = urllib.request.urlopen(f"http://{mesh.topology.endpoint('idgen').metrics_address}/metrics", timeout=10).read().decode()
        for line in ('grpc_server_handled_total{grpc_type="unary",grpc_service="casemesh.idgen.v1.IdGeneratorService",'
                     'grpc_method="LeaseIds",grpc_code="InvalidArgument"} 3',
                     'grpc_server_handled_total{grpc_type="unary",grpc_service="casemesh.idgen.v1.IdGeneratorService",'
                     'grpc_method="LeaseIds",grpc_code="PermissionDenied"} 1'):
            assert line in metrics
        assert "grpc_server_started_total{" in metrics and "grpc_server_handling_seconds_bucket{le=\"0.005\"" in metrics
    node_counter_mark = _mark(tmp_path, "counter.mark")
    assert node_counter_mark == run.start + run.count - 1  # reserve 0: the mark is the last ID handed out

    # The Python idgen on the same data folder resumes above the Node idgen's marks, and the other way round.
    async with Mesh(["idgen"], tmp_path, env=env, restart=None) as mesh:
        async with identified_channel(mesh.topology.endpoint("idgen").address, mesh.secret) as channel:
            stub = pb_grpc.IdGeneratorServiceStub(channel)
            assert (await _lease(stub, 10, pb.ID_LAYOUT_COUNTER)).ranges[0].start == node_counter_mark + 1
            assert (await _lease(stub, 10, pb.ID_LAYOUT_SNOWFLAKE)).ranges[0].start > node_last
    python_counter_mark = _mark(tmp_path, "counter.mark")
    assert python_counter_mark == node_counter_mark + 10
    async with Mesh(["idgen"], tmp_path, env=env, impls={"idgen": "node"}, restart=None) as mesh:
        async with identified_channel(mesh.topology.endpoint("idgen").address, mesh.secret) as channel:
            stub = pb_grpc.IdGeneratorServiceStub(channel)
            assert (await _lease(stub, 1, pb.ID_LAYOUT_COUNTER)).ranges[0].start == python_counter_mark + 1


def test_casemesh_run_with_the_node_idgen_traces_across_python_and_node(tmp_path, node_idgen):
    # Half the arrivals Shorten; 180 seeded URLs leave 76 IDs of the first block of 256, refilled below 64:
    # the refill's LeaseIds is made inside a traced Shorten of the measured window.
    journeys = "  - {name: resolve, weight: 50}\n  - {name: shorten, weight: 50}\n"
    profile = write_profile(tmp_path, rate=40, duration_s=2, warmup_s=0.5, seed_urls=180, journeys=journeys,
                            slos={"ok.slo.yaml": latency_slo("resolve-generous", RESOLVE, within_ms=1500)})
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", str(profile), "--set", "idgen.impl=node", "--duration", "2", "--trace-ratio", "1",
                           "--no-progress", "--report", "off", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0 passed, 1 an SLO missed, 4 the load generator fell behind (a loaded machine): the mesh worked in each.
    assert done.returncode in (0, 1, 4), done.stdout + done.stderr
    assert "impl: node" in (out / "topology.yaml").read_text()
    result = json.loads((out / "result.json").read_text())
    shorten = result["rpcs"][SHORTEN]
    assert shorten["count"] > 12 and shorten["ok"] == shorten["count"] and not shorten["errors"], shorten
    assert _mark(out, "counter.mark") >= 512  # two blocks leased from the Node idgen

    spans: dict[str, list[tuple[str, str, dict]]] = defaultdict(list)  # trace id → (service, language, span)
    for file in (out / "traces").glob("*.otlp.jsonl"):
        for line in file.read_text().splitlines():
            for resource_spans in json.loads(line)["resourceSpans"]:
                attributes = {a["key"]: a["value"].get("stringValue") for a in resource_spans["resource"]["attributes"]}
                for scope in resource_spans["scopeSpans"]:
                    for span in scope["spans"]:
                        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
                        spans[span["traceId"]].append((attributes["service.name"], attributes["telemetry.sdk.language"], span))
    crossing = []
    for trace_id, found in spans.items():
        shorten_spans = [s for service, language, s in found if service == "urlshortener" and language == "python" and s["name"] == SHORTEN]
        client_ids = {s["spanId"] for service, _, s in found if service == "urlshortener" and s["name"] == LEASE}
        node_spans = [s for service, language, s in found if service == "idgen" and language == "nodejs" and s["name"] == LEASE]
        if shorten_spans and node_spans and all(s["parentSpanId"] in client_ids for s in node_spans):
            crossing.append((trace_id, node_spans[0]))
    assert crossing, "no trace holds a Python Shorten span and the Node idgen's LeaseIds span under its client span"
    _, node_span = crossing[0]
    assert node_span["kind"] == "SPAN_KIND_SERVER"
    assert {a["key"]: a["value"] for a in node_span["attributes"]}["rpc.grpc.status_code"] == {"intValue": 0}


def _serve_node(topology: Path, secret: str) -> subprocess.Popen:
    from casemesh.harness.implementations import node_command

    return subprocess.Popen(node_command("idgen", topology), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, "CASEMESH_SECRET": secret, ALLOW_TEST_IDENTITY_ENV: "1"})


async def test_node_idgen_exhaustion_an_unwritable_mark_and_a_bad_mark_file(tmp_path, node_idgen):
    from casemesh.harness.mesh import free_port
    from casemesh.services.idgen.generators import COUNTER_MAXIMUM
    from casemesh.services.runtime.secrets import MeshSecret

    secret = MeshSecret.generate()
    address = f"127.0.0.1:{free_port()}"
    topology = tmp_path / "topology.yaml"
    topology.write_text(f"services:\n  idgen: {{address: '{address}', impl: node}}\ndata_dir: {tmp_path / 'data'}\n"
                        f"settings:\n  idgen: {{counter_start: {COUNTER_MAXIMUM - 4}}}\n")
    (tmp_path / "data" / "idgen" / "snowflake-0.mark.tmp").mkdir(parents=True)  # the Snowflake mark cannot be written
    process = _serve_node(topology, secret.current)
    try:
        async with identified_channel(address, secret) as channel:
            await asyncio.wait_for(channel.channel_ready(), 60)
            stub = pb_grpc.IdGeneratorServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as unwritable:
                await _lease(stub, 1, pb.ID_LAYOUT_SNOWFLAKE)
            assert unwritable.value.code() == grpc.StatusCode.UNAVAILABLE
            assert unwritable.value.details().startswith("cannot persist the ID high-water mark: ")
            with pytest.raises(grpc.aio.AioRpcError) as exhausted:  # 5 IDs left: a lease of 6 gets none of them
                await _lease(stub, 6, pb.ID_LAYOUT_COUNTER)
            assert exhausted.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "counter ID space exhausted: 5 IDs left, 6 asked" in exhausted.value.details()
            assert (await _lease(stub, 5, pb.ID_LAYOUT_COUNTER)).ranges[0].start == COUNTER_MAXIMUM - 4
    finally:
        process.terminate()
        assert process.wait(30) == 0, process.stdout.read()
    assert _mark(tmp_path, "counter.mark") == COUNTER_MAXIMUM

    (tmp_path / "data" / "idgen" / "counter.mark").write_text("12ab\n")
    process = _serve_node(topology, secret.current)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "counter.mark: expected one non-negative integer" in output, output


async def test_node_idgen_over_mtls_authorizes_by_the_peer_certificate(tmp_path, node_idgen):
    from casemesh.harness.certs import init_certs
    from casemesh.harness.channels import open_mesh_channel
    from casemesh.services.runtime.topology import TlsSettings

    certs = init_certs(tmp_path / "certs")
    tls = TlsSettings(dir=str(certs.directory))
    async with Mesh(["urlshortener", "idgen", "analytics"], tmp_path, impls={"idgen": "node"}, tls=tls, restart=None) as mesh:
        assert "with mTLS" in (tmp_path / "logs" / "idgen.log").read_text()
        async with open_mesh_channel(mesh.topology.endpoint("urlshortener").address, tls) as front:
            shortener = us_grpc.UrlShortenerServiceStub(front)
            replies = await asyncio.gather(*(shortener.Shorten(us_pb.ShortenRequest(long_url=f"https://example.com/tls/{i}"), timeout=10)
                                             for i in range(8)))
            assert len({reply.code for reply in replies}) == 8  # urlshortener's certificate (its SPIFFE ID) is let in
        async with open_mesh_channel(mesh.topology.endpoint("idgen").address, tls) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as denied:  # the harness's certificate is not
                await _lease(pb_grpc.IdGeneratorServiceStub(channel), 1, pb.ID_LAYOUT_COUNTER)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert denied.value.details().endswith("may not be called by spiffe://casemesh.local/harness")

"""mTLS across the URL-shortener mesh (one in-process mesh shared by the module): who gets in, who does not, reflection off."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from casemesh.harness.certs import init_certs
from casemesh.harness.channels import open_mesh_channel
from casemesh.harness.mesh import free_port
from casemesh.harness.recording import format as fmt
from casemesh.harness.recording import proxy as px
from casemesh.services.catalog import definitions
from casemesh.services.runtime.bind_check import BindRefused
from casemesh.services.runtime.server import serve
from casemesh.services.runtime.topology import TlsSettings, Topology
from casemesh.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from .conftest import loopback_topology, start_mesh

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("tls") / "certs")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tls_mesh(certs):
    """urlshortener, idgen and analytics, each on its own port, serving and calling each other with mTLS only."""
    tls = TlsSettings(dir=str(certs.directory))
    topology = loopback_topology(["urlshortener", "idgen", "analytics"]).model_copy(update={"tls": tls})
    running, stop, task = await start_mesh(definitions(["urlshortener", "idgen", "analytics"]), topology)
    try:
        yield running, tls
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_certificate_holder_calls_public_methods_through_the_mtls_mesh(tls_mesh):
    running, tls = tls_mesh
    async with open_mesh_channel(running.address("urlshortener"), tls) as channel:  # as the harness
        stub = pb_grpc.UrlShortenerServiceStub(channel)
        # Shorten leases IDs from idgen: a service-to-service hop over mTLS with urlshortener's certificate.
        shortened = await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/over-mtls"), timeout=10)
        resolved = await stub.Resolve(pb.ResolveRequest(code=shortened.code), timeout=10)
    assert resolved.long_url == "https://example.com/over-mtls"


async def test_plaintext_and_certificate_less_clients_are_refused(tls_mesh, tmp_path):
    running, tls = tls_mesh
    address = running.address("urlshortener")
    ca = (Path(tls.dir) / "ca.pem").read_bytes()
    other = init_certs(tmp_path / "other", ["harness"])  # a self-made CA: its certificate names the right identity
    other_cert, other_key = (path.read_bytes() for path in other.leaves["harness"])
    clients = {
        "plaintext": grpc.aio.insecure_channel(address),
        "TLS without a client certificate": grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca)),
        "a certificate of another CA": grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(
            ca, private_key=other_key, certificate_chain=other_cert)),
    }
    for what, channel in clients.items():
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.UrlShortenerServiceStub(channel).Resolve(pb.ResolveRequest(code="abcdefg"), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, what


async def test_a_valid_certificate_of_the_wrong_identity_is_denied_internal_methods(tls_mesh):
    running, tls = tls_mesh
    clicks = analytics_pb2.RecordClicksRequest(events=[analytics_pb2.ClickEvent(code="abcdefg", click_time=Timestamp(seconds=1_700_000_000))])
    # The harness's certificate is valid, but RecordClicks is urlshortener's to call.
    async with open_mesh_channel(running.address("analytics"), tls) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await analytics_pb2_grpc.AnalyticsServiceStub(channel).RecordClicks(clicks, timeout=5)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The test identity (allowed every method by these test servers) gets through with its own certificate.
    async with open_mesh_channel(running.address("analytics"), tls, identity="test") as channel:
        reply = await analytics_pb2_grpc.AnalyticsServiceStub(channel).RecordClicks(clicks, timeout=5)
    assert reply.accepted_count == 1


async def test_the_recording_proxy_reaches_an_mtls_upstream_as_the_harness(tls_mesh, tmp_path):
    running, tls = tls_mesh
    upstream = running.address("urlshortener")
    writer = fmt.RecordingWriter(tmp_path / "calls.cmrec", fmt.new_header(upstream=upstream, listen="127.0.0.1:0", recorder="test",
                                                                          metadata_allow=["x-*"], response_data=False))
    proxy = px.RecordingProxy(upstream, writer, upstream_tls=tls)  # casemesh record --tls DIR
    await proxy.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:  # the proxy listens plaintext on loopback
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await pb_grpc.UrlShortenerServiceStub(channel).Resolve(pb.ResolveRequest(code="zzzzzzz"), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND  # answered by the handler: the mTLS hop held
    finally:
        await proxy.stop(0)
        writer.close()


async def test_reflection_is_off_by_default(tls_mesh):
    running, tls = tls_mesh
    async with open_mesh_channel(running.address("urlshortener"), tls) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5):
                pass
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_plaintext_server_refuses_a_public_address_before_binding():
    topology = Topology.model_validate({"services": {"idgen": {"address": f"0.0.0.0:{free_port()}"}}})
    with pytest.raises(BindRefused, match=r"service idgen: refusing to serve plaintext on 0\.0\.0\.0:\d+"):
        await serve(definitions(["idgen"]), topology, stop=asyncio.Event())


async def test_casemesh_serve_exits_2_naming_the_service_and_address(tmp_path):
    topology = tmp_path / "public.yaml"
    topology.write_text("services: {idgen: {address: '0.0.0.0:50999'}}\n")
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "casemesh.harness.cli", "serve", "--topology", str(topology)],
                                   capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "service idgen: refusing to serve plaintext on 0.0.0.0:50999" in " ".join(done.stderr.split())

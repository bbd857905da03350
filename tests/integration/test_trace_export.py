"""OTLP trace export across the URL-shortener mesh, received by an in-test OTLP/gRPC collector.

The three services run as separate ``casemesh serve`` processes (as ``casemesh
run`` starts them) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a
``opentelemetry.proto.collector.trace.v1.TraceService`` served by this test on
127.0.0.1: the same wire protocol Jaeger all-in-one ingests on 4317 (see
deploy/compose.yaml). A Shorten sent from a client span of the test's own, with
its ``traceparent``, must come back as one trace whose spans link up:

    test CLIENT span
      └─ urlshortener SERVER  UrlShortenerService/Shorten
           └─ urlshortener CLIENT  IdGeneratorService/LeaseIds   (the ID-block lease of the first Shorten)
                └─ idgen SERVER  IdGeneratorService/LeaseIds

and the latency histogram's exemplar on /metrics carries that trace id, which
is what a Grafana exemplar click opens in Jaeger (docs/observability.md).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from casemesh.harness.mesh import Mesh
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
LEASE = "casemesh.idgen.v1.IdGeneratorService/LeaseIds"
SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent, with the ``service.name`` of the process that sent it."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, trace_pb2.Span]] = []
        self.arrived = asyncio.Event()

    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((service, span) for span in scope_spans.spans)
        self.arrived.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: int) -> list[tuple[str, trace_pb2.Span]]:
        wanted = trace_id.to_bytes(16, "big")
        return [(service, span) for service, span in self.spans if span.trace_id == wanted]

    async def wait_for(self, trace_id: int, count: int, timeout_s: float) -> list[tuple[str, trace_pb2.Span]]:
        """The spans of ``trace_id`` once at least ``count`` have arrived (or what arrived by ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while len(self.of_trace(trace_id)) < count and time.monotonic() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        return self.of_trace(trace_id)


@pytest.fixture
async def collector():
    server = grpc.aio.server()
    received = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield received, port
    await server.stop(None)


@pytest.fixture
async def traced_mesh(collector, tmp_path):
    """urlshortener, idgen and analytics as three processes exporting OTLP to the collector."""
    received, port = collector
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "CASEMESH_TRACE_RATIO": "1",
        # The standard BatchSpanProcessor setting: export within 100 ms instead of 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    mesh = Mesh(["urlshortener", "idgen", "analytics"], tmp_path, env=env)
    await mesh.start()
    try:
        yield mesh, received
    finally:
        # Stopping waits for the processes, which flush their spans to the collector served by this
        # event loop: wait in a thread so the loop keeps answering them.
        await asyncio.to_thread(mesh.stop)


async def test_a_shorten_is_one_trace_across_services_with_linked_parents(traced_mesh):
    mesh, received = traced_mesh
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("casemesh.tests")
    async with grpc.aio.insecure_channel(mesh.topology.endpoint("urlshortener").address) as channel:
        stub = pb_grpc.UrlShortenerServiceStub(channel)
        with tracer.start_as_current_span(SHORTEN, kind=SpanKind.CLIENT) as client_span:
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier)
            # The first Shorten finds the ID block empty and leases one from idgen before answering.
            await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/traced"), metadata=tuple(carrier.items()), timeout=10)
    context = client_span.get_span_context()

    spans = await received.wait_for(context.trace_id, 3, timeout_s=15)
    by_kind = {(service, span.name, span.kind): span for service, span in spans}
    shorten = by_kind.get(("urlshortener", SHORTEN, SERVER))
    lease_client = by_kind.get(("urlshortener", LEASE, CLIENT))
    lease_server = by_kind.get(("idgen", LEASE, SERVER))
    received_names = sorted((service, span.name, trace_pb2.Span.SpanKind.Name(span.kind)) for service, span in spans)
    assert shorten and lease_client and lease_server, f"spans of the trace received: {received_names}"
    assert len(spans) == 3, f"spans of the trace received: {received_names}"

    assert shorten.parent_span_id == context.span_id.to_bytes(8, "big")
    assert lease_client.parent_span_id == shorten.span_id
    assert lease_server.parent_span_id == lease_client.span_id
    for span in (shorten, lease_client, lease_server):
        attributes = {a.key: a.value for a in span.attributes}
        assert attributes["rpc.system"].string_value == "grpc"
        assert attributes["rpc.grpc.status_code"].int_value == 0
        assert span.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    # Children start after and end before their parents (all clocks are this machine's).
    assert shorten.start_time_unix_nano <= lease_client.start_time_unix_nano <= lease_server.start_time_unix_nano
    assert lease_server.end_time_unix_nano <= lease_client.end_time_unix_nano <= shorten.end_time_unix_nano

    # The Shorten latency observation carries this trace as its exemplar (OpenMetrics exposition, as
    # Prometheus scrapes it): the link a Grafana exemplar click follows into Jaeger.
    metrics_address = mesh.topology.endpoint("urlshortener").metrics_address
    request = urllib.request.Request(f"http://{metrics_address}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    exposition = (await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read())).decode()
    exemplars = re.findall(r'^grpc_server_handling_seconds_bucket\{[^}]*grpc_method="Shorten"[^}]*\} \S+ # \{trace_id="([0-9a-f]{32})"\}',
                           exposition, re.MULTILINE)
    assert format(context.trace_id, "032x") in exemplars

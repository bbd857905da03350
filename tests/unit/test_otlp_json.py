"""The span files' fast OTLP JSON (services/runtime/otlp_json.py) is the SDK's own encoding, field for field."""

from __future__ import annotations

import base64
import time

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from casemesh.services.runtime.otlp_json import export_request


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _sdk_json(spans) -> dict:
    """What the SDK makes of the spans (encode_spans, MessageToDict), with its base64 ids turned into OTLP/JSON's hex."""
    document = MessageToDict(encode_spans(spans))

    def hexed(item: dict) -> None:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in item:
                item[key] = base64.b64decode(item[key]).hex()

    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                hexed(span)
                for link in span.get("links", []):
                    hexed(link)
    return document


def _spans():
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "urlshortener", "casemesh.replica": 2}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("casemesh.services.runtime", "0.1.0")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("pkg.Svc/Resolve", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
                                      kind=SpanKind.SERVER, attributes={"rpc.system": "grpc", "rpc.grpc.status_code": 5}) as server:
        server.set_attribute("ratio", 0.25)
        server.set_attribute("cached", False)
        server.set_attribute("tags", ["a", "b"])
        server.add_event("retry", {"attempt": 2}, timestamp=time.time_ns())
        with tracer.start_as_current_span("pkg.Idgen/LeaseIds", kind=SpanKind.CLIENT, links=[Link(remote, {"why": "batch"})]) as client:
            client.set_status(Status(StatusCode.ERROR, "UNAVAILABLE"))
        server.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("resolve", kind=SpanKind.CLIENT, attributes={"casemesh.send_lag_ms": 1.5}):
        pass
    other_provider = TracerProvider(resource=Resource.create({"service.name": "idgen"}))
    other_keep = Keep()
    other_provider.add_span_processor(SimpleSpanProcessor(other_keep))
    with other_provider.get_tracer("x").start_as_current_span("internal work"):
        pass
    return keep.spans + other_keep.spans


def test_the_fast_encoding_is_the_sdks():
    spans = _spans()
    assert export_request(spans) == _sdk_json(spans)

"""OpenTelemetry tracing for casemesh processes (servers and the harness alike).

Spans cross every hop with W3C trace context (``traceparent``), carried by the
gRPC instrumentation's client and server interceptors. Sampling is
parent-based: services follow the decision of whoever started the trace (the
harness), which samples ``CASEMESH_TRACE_RATIO`` of its calls (default 0.01;
the standard ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` win when set).

Export:
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` set → OTLP/gRPC (Jaeger ingests it on 4317);
- ``CASEMESH_TRACES_DIR`` set → one file per process,
  ``DIR/<service>-<pid>.otlp.jsonl``: each line an OTLP JSON
  ``ExportTraceServiceRequest`` with hex trace and span ids, the form Jaeger's
  UI opens and ``otel-cli``/collectors read;
- neither → spans are still created (for exemplars) but not exported.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

TRACES_DIR_ENV = "CASEMESH_TRACES_DIR"
RATIO_ENV = "CASEMESH_TRACE_RATIO"
DEFAULT_RATIO = 0.01
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpJsonFileExporter(SpanExporter):
    """Appends spans to ``path`` as OTLP JSON lines (``ExportTraceServiceRequest`` with hex ids)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        document = MessageToDict(encode_spans(spans))
        for resource_spans in document.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    _hex_ids(span)
                    for link in span.get("links", []):
                        _hex_ids(link)
        line = json.dumps(document, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a") as out:
            out.write(line)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _hex_ids(item: dict) -> None:
    # Proto3 JSON writes bytes as base64; OTLP JSON wants trace and span ids as hex.
    for key in _ID_FIELDS:
        if key in item:
            item[key] = base64.b64decode(item[key]).hex()


def configure_tracing(service_name: str) -> TracerProvider:
    """Install and return the process's tracer provider for ``service_name`` (the ``service.name`` resource)."""
    sampler = None
    if "OTEL_TRACES_SAMPLER" not in os.environ:
        sampler = ParentBased(TraceIdRatioBased(float(os.environ.get(RATIO_ENV, DEFAULT_RATIO))))
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=sampler)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    traces_dir = os.environ.get(TRACES_DIR_ENV)
    if traces_dir:
        path = Path(traces_dir) / f"{service_name}-{os.getpid()}.otlp.jsonl"
        provider.add_span_processor(BatchSpanProcessor(OtlpJsonFileExporter(path), schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider

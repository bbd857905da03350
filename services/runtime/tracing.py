"""OpenTelemetry tracing for casemesh processes (servers and the harness alike).

Spans cross every hop with W3C trace context (``traceparent`` metadata): the
casemesh server interceptor opens a SERVER span per call that carries one, and
the client interceptor a CLIENT span per outbound call made inside a sampled
span (:class:`RpcTracing`). Sampling is parent-based: a service follows the
decision of whoever started the trace (the harness), and starts traces of its
own for calls without ``traceparent`` at ``CASEMESH_TRACE_RATIO`` (default
0.01; 0 turns that off, as ``casemesh run`` does for the services it starts;
the standard ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` win when set).

casemesh does not use opentelemetry-instrumentation-grpc's interceptors: measured
here they cost about 0.2 CPU-ms per call even when nothing was sampled, as much
as the RPC itself (docs/benchmarks.md). Calls without ``traceparent`` cost
nothing here unless the service starts traces itself.

Export:
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` set → OTLP/gRPC (Jaeger ingests it on 4317);
- ``CASEMESH_TRACES_DIR`` set → one file per process,
  ``DIR/<service>-<pid>.otlp.jsonl``: each line an OTLP JSON
  ``ExportTraceServiceRequest`` with hex trace and span ids, the form Jaeger's
  UI opens and ``otel-cli``/collectors read;
- neither → spans are still created (for exemplars) but not exported.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from .otlp_json import export_request

TRACES_DIR_ENV = "CASEMESH_TRACES_DIR"
RATIO_ENV = "CASEMESH_TRACE_RATIO"
DEFAULT_RATIO = 0.01
_PROPAGATED = frozenset({"traceparent", "tracestate"})


class OtlpJsonFileExporter(SpanExporter):
    """Appends spans to ``path`` as OTLP JSON lines (``ExportTraceServiceRequest`` with hex ids)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Not the SDK's encode_spans + MessageToDict: ten times the CPU, held against the event loop (otlp_json.py).
        line = json.dumps(export_request(spans), separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a") as out:
            out.write(line)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def root_ratio() -> float:
    """Share of calls without ``traceparent`` that a service starts a trace for (``CASEMESH_TRACE_RATIO``)."""
    return float(os.environ.get(RATIO_ENV, DEFAULT_RATIO))


def configure_tracing(service_name: str, sampler: Sampler | None = None) -> TracerProvider:
    """Install and return the process's tracer provider for ``service_name`` (the ``service.name`` resource).

    ``sampler`` defaults to parent-based with :func:`root_ratio` for roots
    (``OTEL_TRACES_SAMPLER`` overrides it when set).
    """
    if sampler is None and "OTEL_TRACES_SAMPLER" not in os.environ:
        sampler = ParentBased(TraceIdRatioBased(root_ratio()))
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


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


@lru_cache(maxsize=1024)
def rpc_attributes(full_method: str) -> dict[str, str]:
    """OpenTelemetry RPC attributes of ``/pkg.Service/Method`` (built once per method; do not mutate)."""
    service, method = split_method(full_method)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


class RpcTracing:
    """Spans for gRPC calls: SERVER spans from inbound ``traceparent``, CLIENT spans that inject it.

    Span names are ``pkg.Service/Method`` (OpenTelemetry's RPC convention);
    attributes ``rpc.system``, ``rpc.service``, ``rpc.method`` and
    ``rpc.grpc.status_code``; a non-OK status marks the span as an error.
    """

    def __init__(self, tracer: trace.Tracer, trace_roots: bool):
        self.tracer = tracer
        #: Whether calls without ``traceparent`` may start a trace here (root ratio > 0).
        self.trace_roots = trace_roots

    def server_span(self, full_method: str, metadata: Sequence[tuple[str, str | bytes]] | None):
        """A context manager for the SERVER span of an inbound call, or ``None`` when nothing would be sampled."""
        carrier = {key: value for key, value in metadata or () if key in _PROPAGATED}
        if not carrier and not self.trace_roots:
            return None
        return self.tracer.start_as_current_span(
            full_method.lstrip("/"), context=extract(carrier) if carrier else None, kind=SpanKind.SERVER,
            attributes=rpc_attributes(full_method), record_exception=False, set_status_on_exception=False,
        )

    def client_span(self, full_method: str):
        """A context manager for the CLIENT span of an outbound call, or ``None`` outside a sampled trace.

        The parent may have ended already (a background task started by a
        request, such as an ID-block refill): the call is still part of that trace.
        """
        parent = trace.get_current_span().get_span_context()
        if not (parent.is_valid and parent.trace_flags.sampled):
            return None
        return self.tracer.start_as_current_span(
            full_method.lstrip("/"), kind=SpanKind.CLIENT, attributes=rpc_attributes(full_method),
            record_exception=False, set_status_on_exception=False,
        )


def inject_metadata(metadata: Sequence[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """``metadata`` plus the current span's ``traceparent`` (and ``tracestate``)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return (*(metadata or ()), *carrier.items())


def end_span(span: trace.Span, code_value: int, code_name: str) -> None:
    """Record the gRPC status on ``span`` (error status when not OK)."""
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code_value)
        if code_value != 0:
            span.set_status(Status(StatusCode.ERROR, code_name))

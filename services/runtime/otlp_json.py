"""OTLP JSON of finished spans, built directly from the SDK's ``ReadableSpan`` objects.

The span files every casemesh process writes (:mod:`.tracing`) are OTLP JSON
``ExportTraceServiceRequest`` documents with hex trace and span ids, the form
Jaeger's UI opens. The OpenTelemetry SDK makes them only through protobuf:
``encode_spans`` builds the message, ``json_format.MessageToDict`` maps it to
JSON. Measured here on 300 spans (the harness's batches at 100 journeys/s
fully traced) that took 34 ms of CPU, 38 ms with ``json.dumps``, in the
exporter thread, holding the GIL in pieces while the driver's event loop
waited for it: in fresh-clone CI the send lag of a fully traced run at 100/s
reached 12 ms, past the 10 ms bound that makes a run invalid.
:func:`export_request` writes the same document from the span objects in
11 ms, ``json.dumps`` included (3.5 times less); tests/unit/test_otlp_json.py
checks it field for field against the SDK's own encoding.

The mapping is proto3's JSON mapping of ``opentelemetry.proto.trace.v1``
(opentelemetry-proto, ``trace.proto`` and ``common.proto``): 64-bit integers
as decimal strings, enums by name, ids as hex (OTLP/JSON's one exception to
proto3's base64 bytes), fields at their default value left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

_KINDS = {SpanKind.INTERNAL: "SPAN_KIND_INTERNAL", SpanKind.SERVER: "SPAN_KIND_SERVER", SpanKind.CLIENT: "SPAN_KIND_CLIENT",
          SpanKind.PRODUCER: "SPAN_KIND_PRODUCER", SpanKind.CONSUMER: "SPAN_KIND_CONSUMER"}
_STATUS = {StatusCode.OK: "STATUS_CODE_OK", StatusCode.ERROR: "STATUS_CODE_ERROR"}
#: SpanFlags of trace.proto: the span's parent context says whether it is remote, and whether it is.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def any_value(value: Any) -> dict[str, Any]:
    """An attribute value as OTLP ``AnyValue`` JSON (``bool`` before ``int``: a bool is an int in Python)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        raise TypeError("bytes attributes are not written by casemesh")
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [any_value(v) for v in value]} if value else {}}
    return {"stringValue": str(value)}


def attributes(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``KeyValue`` JSON of an attribute mapping, in its order."""
    return [{"key": key, "value": any_value(value)} for key, value in (values or {}).items()]


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    out: dict[str, Any] = {"traceId": format(context.trace_id, "032x"), "spanId": format(context.span_id, "016x")}
    if context.trace_state:
        out["traceState"] = context.trace_state.to_header()
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    out["flags"] = _HAS_IS_REMOTE | (_IS_REMOTE if span.parent is not None and span.parent.is_remote else 0)
    out["name"] = span.name
    out["kind"] = _KINDS[span.kind]
    out["startTimeUnixNano"] = str(span.start_time)
    out["endTimeUnixNano"] = str(span.end_time)
    if span.attributes:
        out["attributes"] = attributes(span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [{"timeUnixNano": str(e.timestamp), "name": e.name, **({"attributes": attributes(e.attributes)} if e.attributes else {})}
                         for e in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [{"traceId": format(link.context.trace_id, "032x"), "spanId": format(link.context.span_id, "016x"),
                         **({"attributes": attributes(link.attributes)} if link.attributes else {}),
                         "flags": _HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)}
                        for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.description:
        status["message"] = span.status.description
    if span.status.status_code in _STATUS:
        status["code"] = _STATUS[span.status.status_code]
    out["status"] = status
    return out


def export_request(spans: Iterable[ReadableSpan]) -> dict[str, Any]:
    """The ``ExportTraceServiceRequest`` JSON of ``spans``: grouped by resource, then by instrumentation scope."""
    resources: dict[int, tuple[Any, dict[Any, list[dict[str, Any]]]]] = {}
    for span in spans:
        _, scopes = resources.setdefault(id(span.resource), (span.resource, {}))
        scopes.setdefault(span.instrumentation_scope, []).append(_span(span))
    out = []
    for resource, scopes in resources.values():
        scope_spans = []
        for scope, encoded in scopes.items():
            described: dict[str, Any] = {}
            if scope is not None:
                if scope.name:
                    described["name"] = scope.name
                if scope.version:
                    described["version"] = scope.version
                if scope.attributes:
                    described["attributes"] = attributes(scope.attributes)
            entry: dict[str, Any] = {"scope": described, "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_entry: dict[str, Any] = {"resource": {"attributes": attributes(resource.attributes)} if resource.attributes else {},
                                          "scopeSpans": scope_spans}
        if resource.schema_url:
            resource_entry["schemaUrl"] = resource.schema_url
        out.append(resource_entry)
    return {"resourceSpans": out}

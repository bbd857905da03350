"""Prometheus metrics of every casemesh server and client, named as go-grpc-prometheus names them.

Existing Grafana gRPC dashboards work unchanged: ``grpc_server_started_total``,
``grpc_server_handled_total``, ``grpc_server_handling_seconds`` (histogram),
``grpc_server_msg_received_total``, ``grpc_server_msg_sent_total`` and the
``grpc_client_*`` mirrors (``grpc_client_handling_seconds`` for client-side
latency), with labels ``grpc_service`` (full service name), ``grpc_method``,
``grpc_type`` (``unary|client_stream|server_stream|bidi_stream``) and
``grpc_code`` in the Go spelling (``OK``, ``NotFound``, ``DeadlineExceeded``,
``Canceled``). Histogram buckets are in seconds and include 0.05 and 2.0 (the
2-second playback-start SLO). Observations carry a ``trace_id`` exemplar when
the current span is sampled (exemplars show in the OpenMetrics exposition).
"""

from __future__ import annotations

import grpc
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

#: Latency buckets in seconds: fine below 10 ms where in-memory RPCs live; 0.05, 0.2 (photo load, seed 003) and
#: 2.0 included, so SLO thresholds of the case studies are bucket bounds.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0,
                     10.0)

_LABELS = ("grpc_type", "grpc_service", "grpc_method")

#: grpc.StatusCode → the code name as Go's ``codes.Code.String()`` spells it (go-grpc-prometheus label values).
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    code: ("OK" if code is grpc.StatusCode.OK else "Canceled" if code is grpc.StatusCode.CANCELLED
           else "".join(part.capitalize() for part in code.name.split("_")))
    for code in grpc.StatusCode
}


def code_label(code: grpc.StatusCode) -> str:
    """The ``grpc_code`` label value of ``code`` (``NOT_FOUND`` → ``NotFound``)."""
    return GO_CODE_NAMES[code]


class RpcMetrics:
    """The ``grpc_<side>_*`` metric family of one side (``server`` or ``client``) in one registry."""

    def __init__(self, side: str, registry: CollectorRegistry = REGISTRY):
        peer = "server" if side == "client" else "client"
        self.started = Counter(f"grpc_{side}_started_total", f"Total number of RPCs started on the {side}.", _LABELS, registry=registry)
        self.handled = Counter(
            f"grpc_{side}_handled_total", f"Total number of RPCs completed on the {side}, regardless of success or failure.",
            (*_LABELS, "grpc_code"), registry=registry,
        )
        self.handling_seconds = Histogram(
            f"grpc_{side}_handling_seconds",
            f"Histogram of response latency (seconds) of gRPC calls {'handled by the server' if side == 'server' else 'until the response is received by the client'}.",
            _LABELS, buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        self.msg_received = Counter(f"grpc_{side}_msg_received_total", f"Total number of RPC stream messages received from the {peer}.", _LABELS, registry=registry)
        self.msg_sent = Counter(f"grpc_{side}_msg_sent_total", f"Total number of gRPC stream messages sent to the {peer}.", _LABELS, registry=registry)


_families: dict[str, RpcMetrics] = {}


def rpc_metrics(side: str) -> RpcMetrics:
    """The process-wide metric family of ``side`` (``"server"`` or ``"client"``), created once."""
    family = _families.get(side)
    if family is None:
        family = _families[side] = RpcMetrics(side)
    return family


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": <32 hex>}`` of the current span when it is sampled, else ``None``."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return {"trace_id": format(context.trace_id, "032x")}
    return None


def serve_metrics(address: str) -> None:
    """Expose the process's registry as ``http://ADDRESS/metrics`` (``host:port``) on a daemon thread.

    Prometheus scrapes ask for OpenMetrics, which is the exposition that carries exemplars.
    """
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")

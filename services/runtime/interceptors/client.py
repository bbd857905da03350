"""The casemesh client interceptor for outbound mesh calls: tracing, deadline propagation and ``grpc_client_*`` metrics.

Inside a sampled span, each call gets a CLIENT span and carries its
``traceparent`` to the next service.

A call without a timeout gets the channel's default (the topology's
``calls.timeout_ms``); every outbound call's timeout is then cut to what is left of the inbound call's
deadline (``services.runtime.deadlines``). Unary calls are observed in full
(started, handled by code, handling seconds with a ``trace_id`` exemplar);
streaming calls get the deadline and the started count. With a caller token
(``..identity.CallerToken``), every call carries it in its metadata.

With a circuit breaker (``..circuit_breaker``), a unary call it does not
admit fails at once with its ``UNAVAILABLE`` error, no network call made, and
every admitted call's final status (after gRPC's retries) is reported to it.
Streaming calls are not gated (their outcome is known only as they are read).
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from ..circuit_breaker import CircuitBreaker
from ..deadlines import bounded_timeout
from ..identity import CallerToken
from ..metrics import RpcMetrics, code_label, rpc_metrics, trace_exemplar
from ..tracing import RpcTracing, end_span, inject_metadata, split_method


def _with_deadline(details: grpc.aio.ClientCallDetails, default_timeout_s: float | None) -> grpc.aio.ClientCallDetails:
    timeout = bounded_timeout(details.timeout if details.timeout is not None else default_timeout_s)
    if timeout == details.timeout:
        return details
    return details._replace(timeout=timeout)


def _with_caller(details: grpc.aio.ClientCallDetails, caller_token: CallerToken | None) -> grpc.aio.ClientCallDetails:
    if caller_token is None:
        return details
    return details._replace(metadata=(*(details.metadata or ()), *caller_token.metadata()))


class _UnaryStreamView(grpc.aio.UnaryStreamClientInterceptor):
    """``inner``'s unary-stream interception, as an object grpc.aio files under unary-stream calls."""

    def __init__(self, inner: ClientInterceptor):
        self._inner = inner

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await self._inner.intercept_unary_stream(continuation, client_call_details, request)


def _method_name(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else method


class ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Bounds timeouts by the inbound deadline and records ``grpc_client_*`` metrics.

    Give a channel :meth:`channel_interceptors`, not the object itself:
    ``grpc.aio`` files an interceptor under the first call kind it implements
    only (unary-unary), so its unary-stream half needs an object of its own.
    """

    def channel_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        """The interceptors to open a channel with: this one (unary calls) and its unary-stream view."""
        return [self, _UnaryStreamView(self)]

    def __init__(self, metrics: RpcMetrics | None = None, default_timeout_s: float | None = None,
                 tracing: RpcTracing | None = None, breaker: CircuitBreaker | None = None,
                 caller_token: CallerToken | None = None):
        self._default_timeout_s = default_timeout_s
        self._caller_token = caller_token
        self._breaker = breaker
        self._tracing = tracing
        self._metrics = metrics or rpc_metrics("client")
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any, dict[grpc.StatusCode, Any]]] = {}

    def _observer(self, kind: str, method: str) -> tuple[Any, Any, Any, Any, dict[grpc.StatusCode, Any]]:
        key = (kind, method)
        children = self._children.get(key)
        if children is None:
            labels = (kind, *split_method(method))
            m = self._metrics
            children = self._children[key] = (
                m.started.labels(*labels), m.msg_sent.labels(*labels), m.msg_received.labels(*labels),
                m.handling_seconds.labels(*labels), {},
            )
        return children

    def _traced(self, details: grpc.aio.ClientCallDetails, method: str) -> tuple[grpc.aio.ClientCallDetails, Any, Any]:
        """(details with ``traceparent``, span scope, span) inside a sampled span, else (details, None, None)."""
        scope = self._tracing.client_span(method) if self._tracing is not None else None
        if scope is None:
            return details, None, None
        span = scope.__enter__()
        return details._replace(metadata=inject_metadata(details.metadata)), scope, span

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        breaker = self._breaker
        if breaker is not None and not breaker.admit():
            raise breaker.rejection()
        details = _with_caller(_with_deadline(client_call_details, self._default_timeout_s), self._caller_token)
        method = _method_name(details)
        started, sent, received, seconds, handled = self._observer("unary", method)
        started.inc()
        sent.inc()
        started_at = time.perf_counter()
        details, scope, span = self._traced(details, method)
        code = grpc.StatusCode.UNKNOWN
        try:
            call = await continuation(details, request)
            try:
                await call
                code = grpc.StatusCode.OK
                received.inc()
            except grpc.aio.AioRpcError as error:
                code = error.code()
            if breaker is not None:
                breaker.record(code)
                breaker = None
            child = handled.get(code)
            if child is None:
                child = handled[code] = self._metrics.handled.labels("unary", *split_method(method), code_label(code))
            child.inc()
            seconds.observe(time.perf_counter() - started_at, exemplar=trace_exemplar())
            return call
        finally:
            if breaker is not None:  # the call never completed here (cancelled while starting)
                breaker.record(code if code is not grpc.StatusCode.UNKNOWN else grpc.StatusCode.CANCELLED)
            if scope is not None:
                end_span(span, code.value[0], code.name)
                scope.__exit__(None, None, None)

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        details = _with_caller(_with_deadline(client_call_details, self._default_timeout_s), self._caller_token)
        method = _method_name(details)
        started, sent, *_ = self._observer("server_stream", method)
        started.inc()
        sent.inc()
        details, scope, _ = self._traced(details, method)
        try:
            return await continuation(details, request)
        finally:
            if scope is not None:  # the span covers starting the stream, not reading it
                scope.__exit__(None, None, None)

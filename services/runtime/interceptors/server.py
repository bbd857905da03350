"""The casemesh server interceptor: tracing, metrics, deadline context and error mapping for every RPC.

One interceptor does the four jobs so each call pays for one wrapper; the
wrapped handler is built once per method and cached. Domain errors
(``services.runtime.errors``) become status codes here, so servicers only
validate and call the domain:

====================== ==================
``InvalidArgument``    ``INVALID_ARGUMENT`` ("FIELD: REASON")
``NotFound``           ``NOT_FOUND``
``AlreadyExists``      ``ALREADY_EXISTS``
``ResourceExhausted``  ``RESOURCE_EXHAUSTED``
``FailedPrecondition`` ``FAILED_PRECONDITION``
``Unauthenticated``    ``UNAUTHENTICATED``
``AioRpcError``        ``DEADLINE_EXCEEDED`` if a dependency's call ran out of time, else ``UNAVAILABLE``
any other exception    ``UNKNOWN`` (logged with its traceback; the server goes on)
====================== ==================
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..deadlines import INBOUND_DEADLINE
from ..errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unauthenticated
from ..metrics import RpcMetrics, code_label, rpc_metrics, trace_exemplar
from ..tracing import RpcTracing, end_span, split_method

log = logging.getLogger("casemesh.server")

_DOMAIN_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
)


def rpc_type(handler: grpc.RpcMethodHandler) -> str:
    """The ``grpc_type`` label of a handler: unary, client_stream, server_stream or bidi_stream."""
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class _MethodObserver:
    """Metric children of one method (label lookups done once) and the call bookkeeping."""

    __slots__ = ("labels", "started", "received", "sent", "seconds", "metrics", "handled")

    def __init__(self, metrics: RpcMetrics, labels: tuple[str, str, str]):
        self.metrics = metrics
        self.labels = labels
        self.started = metrics.started.labels(*labels)
        self.received = metrics.msg_received.labels(*labels)
        self.sent = metrics.msg_sent.labels(*labels)
        self.seconds = metrics.handling_seconds.labels(*labels)
        self.handled: dict[grpc.StatusCode, Any] = {}

    def finish(self, code: grpc.StatusCode, started_at: float) -> None:
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self.metrics.handled.labels(*self.labels, code_label(code))
        child.inc()
        self.seconds.observe(time.perf_counter() - started_at, exemplar=trace_exemplar())


async def _fail(exc: BaseException, context: grpc.aio.ServicerContext, full_method: str) -> grpc.StatusCode:
    """Abort the call for a domain error or a crash; returns the status code (``abort`` raises)."""
    for kind, code in _DOMAIN_CODES:
        if isinstance(exc, kind):
            await context.abort(code, str(exc))
    if isinstance(exc, grpc.aio.AioRpcError):
        # A dependency failed: keep a deadline as a deadline, anything else means "try again later".
        code = grpc.StatusCode.DEADLINE_EXCEEDED if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else grpc.StatusCode.UNAVAILABLE
        await context.abort(code, f"dependency call failed with {exc.code().name}: {exc.details()}")
    log.exception("unhandled error in %s", full_method, exc_info=exc)
    await context.abort(grpc.StatusCode.UNKNOWN, f"unexpected {type(exc).__name__} in {full_method}")
    raise AssertionError("unreachable")  # pragma: no cover - abort always raises


def _status(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return default


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler with a SERVER span, metrics (``grpc_server_*``), the inbound deadline and error mapping."""

    def __init__(self, metrics: RpcMetrics | None = None, tracing: RpcTracing | None = None):
        self._metrics = metrics or rpc_metrics("server")
        self.tracing = tracing
        self._cache: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        #: Full gRPC service names that refuse new calls with UNAVAILABLE (shutting down).
        self.draining: set[str] = set()
        #: Calls being handled, per full gRPC service name.
        self.in_flight: dict[str, int] = {}

    async def drain(self, service: str, timeout_s: float) -> bool:
        """Refuse new calls to ``service`` and wait (at most ``timeout_s``) for its calls in flight to end.

        Returns ``True`` when none is left. Used on shutdown so a service can
        flush what it owes other services while they still serve.
        """
        self.draining.add(service)
        deadline = time.monotonic() + timeout_s
        while self.in_flight.get(service, 0) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight.get(service, 0) == 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._cache[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        service, method = split_method(full_method)
        observer = _MethodObserver(self._metrics, (rpc_type(handler), service, method))
        self.in_flight.setdefault(service, 0)
        interceptor = self
        serdes = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}

        async def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                observer.received.inc()
                yield request

        def requests_of(request: Any) -> Any:
            if handler.request_streaming:
                return counted(request)
            observer.received.inc()
            return request

        if not handler.response_streaming:
            inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with _Call(interceptor, observer, service, full_method, context):
                    response = await inner(requests_of(request), context)
                    observer.sent.inc()
                    return response

            factory = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
            return factory(unary_response, **serdes)

        inner_stream = handler.stream_stream if handler.request_streaming else handler.unary_stream

        async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with _Call(interceptor, observer, service, full_method, context):
                responses = inner_stream(requests_of(request), context)
                if hasattr(responses, "__aiter__"):
                    async for response in responses:
                        observer.sent.inc()
                        yield response
                else:
                    # A handler that writes with ``context.write`` (grpc's own Health.Watch) is a
                    # coroutine, not an async generator: run it; its messages are not counted.
                    await responses

        factory = grpc.stream_stream_rpc_method_handler if handler.request_streaming else grpc.unary_stream_rpc_method_handler
        return factory(stream_response, **serdes)


class _Call:
    """One call's bookkeeping: counts it in flight, sets its deadline, maps its errors, observes its end."""

    __slots__ = ("interceptor", "observer", "service", "full_method", "context", "started_at", "span_scope", "span")

    def __init__(self, interceptor: ServerInterceptor, observer: _MethodObserver, service: str,
                 full_method: str, context: grpc.aio.ServicerContext):
        self.interceptor = interceptor
        self.observer = observer
        self.service = service
        self.full_method = full_method
        self.context = context
        self.started_at = 0.0
        self.span_scope = None
        self.span = None

    async def __aenter__(self) -> _Call:
        self.started_at = time.perf_counter()
        tracing = self.interceptor.tracing
        if tracing is not None:
            self.span_scope = tracing.server_span(self.full_method, self.context.invocation_metadata())
            if self.span_scope is not None:
                self.span = self.span_scope.__enter__()
        self.observer.started.inc()
        remaining = self.context.time_remaining()
        INBOUND_DEADLINE.set(None if remaining is None else time.monotonic() + remaining)
        if self.service in self.interceptor.draining:
            self._end(grpc.StatusCode.UNAVAILABLE)
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.service} is shutting down")
        self.interceptor.in_flight[self.service] += 1
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        context = self.context
        code = grpc.StatusCode.UNKNOWN
        try:
            if exc is None:
                code = _status(context, grpc.StatusCode.OK)
            elif isinstance(exc, grpc.aio.AbortError):
                code = _status(context, grpc.StatusCode.UNKNOWN)
            elif isinstance(exc, asyncio.CancelledError):
                code = grpc.StatusCode.CANCELLED
            elif isinstance(exc, Exception):  # every error becomes a status, never a dead server
                try:
                    await _fail(exc, context, self.full_method)
                finally:
                    code = _status(context, grpc.StatusCode.UNKNOWN)
        finally:
            self.interceptor.in_flight[self.service] -= 1
            self._end(code)
        return False

    def _end(self, code: grpc.StatusCode) -> None:
        self.observer.finish(code, self.started_at)  # inside the span: its trace_id becomes the exemplar
        if self.span_scope is not None:
            end_span(self.span, code.value[0], code.name)
            self.span_scope.__exit__(None, None, None)
            self.span_scope = None

"""The casemesh server interceptor: metrics, deadline context and error mapping for every RPC.

One interceptor does the three jobs so each call pays for one wrapper; the
wrapped handler is built once per method and cached. Domain errors
(``services.runtime.errors``) become status codes here, so servicers only
validate and call the domain:

=====================  ==================
``InvalidArgument``    ``INVALID_ARGUMENT`` ("FIELD: REASON")
``NotFound``           ``NOT_FOUND``
``AlreadyExists``      ``ALREADY_EXISTS``
``ResourceExhausted``  ``RESOURCE_EXHAUSTED``
``AioRpcError``        ``DEADLINE_EXCEEDED`` if a dependency's call ran out of time, else ``UNAVAILABLE``
any other exception    ``UNKNOWN`` (logged with its traceback; the server goes on)
=====================  ==================
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..deadlines import INBOUND_DEADLINE
from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from ..metrics import RpcMetrics, code_label, rpc_metrics, trace_exemplar

log = logging.getLogger("casemesh.server")

_DOMAIN_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


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
    """Wraps every handler with metrics (``grpc_server_*``), the inbound deadline and error mapping."""

    def __init__(self, metrics: RpcMetrics | None = None):
        self._metrics = metrics or rpc_metrics("server")
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
        kind = rpc_type(handler)
        service, method = split_method(full_method)
        observer = _MethodObserver(self._metrics, (kind, service, method))
        serdes = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}

        in_flight = self.in_flight
        in_flight.setdefault(service, 0)
        draining = self.draining

        async def enter(context: grpc.aio.ServicerContext) -> float:
            observer.started.inc()
            in_flight[service] += 1
            if service in draining:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{service} is shutting down")
            remaining = context.time_remaining()
            INBOUND_DEADLINE.set(None if remaining is None else time.monotonic() + remaining)
            return time.perf_counter()

        async def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                observer.received.inc()
                yield request

        if not handler.response_streaming:
            inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                code = grpc.StatusCode.OK
                started_at = time.perf_counter()
                try:
                    started_at = await enter(context)
                    if handler.request_streaming:
                        response = await inner(counted(request), context)
                    else:
                        observer.received.inc()
                        response = await inner(request, context)
                    observer.sent.inc()
                    code = _status(context, grpc.StatusCode.OK)
                    return response
                except grpc.aio.AbortError:
                    code = _status(context, grpc.StatusCode.UNKNOWN)
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:  # noqa: BLE001 - every error becomes a status, never a dead server
                    code = grpc.StatusCode.UNKNOWN
                    try:
                        await _fail(exc, context, full_method)
                    finally:
                        code = _status(context, grpc.StatusCode.UNKNOWN)
                finally:
                    in_flight[service] -= 1
                    observer.finish(code, started_at)

            factory = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
            return factory(unary_response, **serdes)

        inner_stream = handler.stream_stream if handler.request_streaming else handler.unary_stream

        async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            code = grpc.StatusCode.OK
            started_at = time.perf_counter()
            try:
                started_at = await enter(context)
                if handler.request_streaming:
                    responses = inner_stream(counted(request), context)
                else:
                    observer.received.inc()
                    responses = inner_stream(request, context)
                async for response in responses:
                    observer.sent.inc()
                    yield response
                code = _status(context, grpc.StatusCode.OK)
            except grpc.aio.AbortError:
                code = _status(context, grpc.StatusCode.UNKNOWN)
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001
                try:
                    await _fail(exc, context, full_method)
                finally:
                    code = _status(context, grpc.StatusCode.UNKNOWN)
            finally:
                in_flight[service] -= 1
                observer.finish(code, started_at)

        factory = grpc.stream_stream_rpc_method_handler if handler.request_streaming else grpc.unary_stream_rpc_method_handler
        return factory(stream_response, **serdes)

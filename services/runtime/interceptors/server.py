"""The casemesh server interceptor: admission, tracing, metrics, deadline context and error mapping for every RPC.

One interceptor does the five jobs so each call pays for one wrapper; the
wrapped handler is built once per method and cached. Domain errors
(``services.runtime.errors``) become status codes here, so servicers only
validate and call the domain:

====================== ==================
``InvalidArgument``    ``INVALID_ARGUMENT`` ("FIELD: REASON")
``NotFound``           ``NOT_FOUND``
``AlreadyExists``      ``ALREADY_EXISTS``
``ResourceExhausted``  ``RESOURCE_EXHAUSTED``
``FailedPrecondition`` ``FAILED_PRECONDITION``
``Aborted``            ``ABORTED``
``PermissionDenied``   ``PERMISSION_DENIED``
``Unauthenticated``    ``UNAUTHENTICATED``
``Unavailable``        ``UNAVAILABLE``
``AioRpcError``        ``DEADLINE_EXCEEDED`` if a dependency's call ran out of time, else ``UNAVAILABLE``
an undecodable body    ``INVALID_ARGUMENT`` ("request body could not be decoded as pkg.Msg"; ``..decoding``)
any other exception    ``UNKNOWN`` (logged with its traceback; the server goes on)
====================== ==================

Admission (``..admission``) runs first: a call that the service has no slot
for, or whose deadline is too short for its method, is answered
``RESOURCE_EXHAUSTED`` with the ``grpc-retry-pushback-ms`` trailer before its
body is decoded or its handler runs.

Authorization (``..authorization``) comes next, before the handler: a caller
an internal method does not allow gets ``PERMISSION_DENIED`` (``UNAUTHENTICATED``
for a bad caller token), counted under the method like any other call.

Fault injection (``..faults``, only when the harness switched it on): an
admitted call is delayed and/or aborted with the fault's code before its
handler runs, and counted like any other call under the code it ended with.

Under the topology's ``server.abandoned_work: finish`` (``..admission``) the
fault and the handler of a method with one response run in a shielded task:
a call cancelled by its caller or its deadline ends (and is counted) at
once, while its work goes on to its end and keeps its admission slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from grpc._cython.cygrpc import ExecuteBatchError  # what abort raises once core has ended the call

from ..admission import DEADLINE, METHOD_LIMIT, Admission, Gate
from ..authorization import Authorizer
from ..deadlines import INBOUND_DEADLINE
from ..decoding import DecodeLog, Undecodable, guarded, message_type_name
from ..errors import (Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
                      ResourceExhausted, Unauthenticated, Unavailable)
from ..faults import FaultInjector
from ..metrics import RpcMetrics, code_label, rpc_metrics, trace_exemplar
from ..tracing import RpcTracing, end_span, split_method

log = logging.getLogger("casemesh.server")

#: ``time.perf_counter()`` when the server took the call being handled (set in the call's own task).
_ACCEPTED_AT: ContextVar[float] = ContextVar("casemesh_accepted_at", default=0.0)
#: The admission slot of the call being handled, under ``abandoned_work: finish`` (its shielded work shares it).
_SLOT: ContextVar[_SharedSlot | None] = ContextVar("casemesh_slot", default=None)


class _SharedSlot:
    """An admission slot held by a call's task and by its shielded work (``abandoned_work: finish``): freed when both end."""

    __slots__ = ("gate", "holders")

    def __init__(self, gate: Gate):
        self.gate = gate
        self.holders = 1

    def hold(self) -> None:
        self.holders += 1

    def drop(self, *_: object) -> None:
        self.holders -= 1
        if self.holders == 0:
            self.gate.leave()


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Done callback of a shielded work task: its error is the abandoned call's, which nobody awaits any more."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("the work of an abandoned call ended with %r", task.exception())


async def _shielded(work: Awaitable[Any]) -> Any:
    """Run ``work`` to its end even if the call is cancelled (``abandoned_work: finish``); its result while the call lasts."""
    task = asyncio.ensure_future(work)
    slot = _SLOT.get()
    if slot is not None:
        slot.hold()
        task.add_done_callback(slot.drop)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)

_DOMAIN_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Aborted, grpc.StatusCode.ABORTED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
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

    def finish(self, code: grpc.StatusCode, started_at: float, traced: bool = False) -> float:
        """Count the call as handled with ``code``; returns its duration in seconds.

        ``traced``: the call has a SERVER span, whose trace id becomes the
        duration's exemplar (untraced calls skip the span lookup).
        """
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self.metrics.handled.labels(*self.labels, code_label(code))
        child.inc()
        elapsed = time.perf_counter() - started_at
        self.seconds.observe(elapsed, exemplar=trace_exemplar() if traced else None)
        return elapsed


class UndecodableRequest(Exception):
    """A request message of the call could not be decoded (raised where the handler would have received it).

    Its text is the client-facing status message, which names the type and nothing of the parser's internals.
    """


class _Method:
    """What the interceptor keeps per method: the handler it wrapped, the wrapper, the admission gate, rejecters."""

    __slots__ = ("handler", "wrapped", "gate", "observer", "type_name", "rejecters")

    def __init__(self, handler: grpc.RpcMethodHandler, wrapped: grpc.RpcMethodHandler, gate: Gate | None,
                 observer: _MethodObserver, type_name: str):
        self.handler = handler
        self.wrapped = wrapped
        self.gate = gate
        self.observer = observer
        self.type_name = type_name
        self.rejecters: dict[str, grpc.RpcMethodHandler] = {}


class _CallEnded(asyncio.CancelledError):
    """The call had already ended in grpc-core (its deadline passed, or the client cancelled) when the handler failed.

    Nothing can be sent any more; raised instead of ``abort``'s
    ``ExecuteBatchError`` so grpc treats the handler as cancelled (no
    traceback) and the call is counted under ``code``.
    """

    def __init__(self, code: grpc.StatusCode):
        super().__init__(code.name)
        self.code = code


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """``context.abort(code, details)``; :class:`_CallEnded` when grpc-core had already ended the call."""
    try:
        await context.abort(code, details)
    except ExecuteBatchError:
        # Seen in a retry storm: a dependency call expired with the inbound deadline, and core ended the
        # inbound call before the handler could answer it; abort then failed with a traceback per call.
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0.001
        raise _CallEnded(grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED) from None


async def _fail(exc: BaseException, context: grpc.aio.ServicerContext, full_method: str) -> grpc.StatusCode:
    """Abort the call for a domain error or a crash; returns the status code (``abort`` raises).

    Raises :class:`_CallEnded` instead when the call had already ended.
    """
    if isinstance(exc, UndecodableRequest):
        await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    for kind, code in _DOMAIN_CODES:
        if isinstance(exc, kind):
            await _abort(context, code, str(exc))
    if isinstance(exc, grpc.aio.AioRpcError):
        # A dependency failed: keep a deadline as a deadline, anything else means "try again later".
        code = grpc.StatusCode.DEADLINE_EXCEEDED if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else grpc.StatusCode.UNAVAILABLE
        await _abort(context, code, f"dependency call failed with {exc.code().name}: {exc.details()}")
    log.exception("unhandled error in %s", full_method, exc_info=exc)
    await _abort(context, grpc.StatusCode.UNKNOWN, f"unexpected {type(exc).__name__} in {full_method}")
    raise AssertionError("unreachable")  # pragma: no cover - abort always raises


def _status(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return default


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler with admission, a SERVER span, metrics (``grpc_server_*``), the inbound deadline and error mapping.

    ``admission`` holds the limits (default :class:`~..admission.AdmissionLimits`);
    ``decode_log`` rate-limits the warnings about undecodable bodies.
    """

    def __init__(self, metrics: RpcMetrics | None = None, tracing: RpcTracing | None = None,
                 admission: Admission | None = None, decode_log: DecodeLog | None = None,
                 authorizer: Authorizer | None = None):
        self._metrics = metrics or rpc_metrics("server")
        self.tracing = tracing
        self.admission = admission or Admission()
        self.decode_log = decode_log or DecodeLog()
        self._cache: dict[str, _Method] = {}
        #: Per-method authorization (``..authorization``); ``None``: every method open.
        self.authorizer = authorizer
        #: Full gRPC service names that refuse new calls with UNAVAILABLE (shutting down).
        self.draining: set[str] = set()
        #: Calls being handled, per full gRPC service name.
        self.in_flight: dict[str, int] = {}
        #: The fault injector while a fault is active (``..faults.FaultWatch`` sets it), else ``None``: one check per call.
        self.faults: FaultInjector | None = None

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
        full_method = handler_call_details.method
        cached = self._cache.get(full_method)
        if cached is None or cached.handler is not handler:
            cached = self._cache[full_method] = self._wrap(handler, full_method)
        gate = cached.gate
        if gate is None:
            return cached.wrapped
        if gate.max_start_wait_s != math.inf:
            _ACCEPTED_AT.set(time.perf_counter())
        # The slots are held until the call's task ends, however it ends (even before the handler runs), and under
        # abandoned_work: finish also until its shielded work ends.
        if gate.try_enter() or (reason := await gate.enter()) is None:
            if gate.finish_abandoned:
                slot = _SharedSlot(gate)
                _SLOT.set(slot)
                asyncio.current_task().add_done_callback(slot.drop)
            else:
                asyncio.current_task().add_done_callback(gate.leave)
            return cached.wrapped
        return self._rejecter(cached, reason)

    def _rejecter(self, cached: _Method, reason: str) -> grpc.RpcMethodHandler:
        """A handler of the method's kind that answers RESOURCE_EXHAUSTED for ``reason`` without reading the request."""
        rejecter = cached.rejecters.get(reason)
        if rejecter is not None:
            return rejecter
        gate, observer, handler = cached.gate, cached.observer, cached.handler
        limiter = gate.service_limiter
        if reason == METHOD_LIMIT:
            bound = f"{gate.service}/{gate.method} is at its limit of {gate.method_limiter.limit} calls in flight"
        else:
            bound = f"{gate.service} is at its limit of {limiter.limit} calls in flight and {limiter.max_queue} waiting"
        details = f"{bound} ({reason}); retry after {gate.pushback[0][1]} ms"

        async def reject(request: Any, context: grpc.aio.ServicerContext) -> None:
            started_at = time.perf_counter()
            observer.started.inc()
            gate.count_shed(reason)
            observer.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, started_at)
            context.set_trailing_metadata(gate.pushback)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, details)

        # No request_deserializer: the body is never decoded, the request stream never read.
        factory = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
                   (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
        rejecter = cached.rejecters[reason] = factory[(handler.request_streaming, handler.response_streaming)](
            reject, response_serializer=handler.response_serializer)
        return rejecter

    def _wrap(self, handler: grpc.RpcMethodHandler, full_method: str) -> _Method:
        service, method = split_method(full_method)
        observer = _MethodObserver(self._metrics, (rpc_type(handler), service, method))
        gate = self.admission.gate(service, method)
        if gate is not None and handler.response_streaming:
            gate.deadline_drop = False  # a stream lasts as long as its caller asked: its median predicts nothing
        type_name = message_type_name(handler.request_deserializer, f"the request of {full_method}")
        self.in_flight.setdefault(service, 0)
        interceptor = self
        serdes = {"request_deserializer": guarded(handler.request_deserializer),
                  "response_serializer": handler.response_serializer}

        def undecodable(bad: Undecodable) -> UndecodableRequest:
            interceptor.decode_log.record(full_method, type_name, bad)
            return UndecodableRequest(f"request body could not be decoded as {type_name}")

        async def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                observer.received.inc()
                if request.__class__ is Undecodable:
                    raise undecodable(request)
                yield request

        def requests_of(request: Any) -> Any:
            if handler.request_streaming:
                return counted(request)
            observer.received.inc()
            if request.__class__ is Undecodable:
                raise undecodable(request)
            return request

        if not handler.response_streaming:
            inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

            async def work(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if interceptor.faults is not None:  # injected delay/abort (..faults), counted by _Call as any end
                    await interceptor.faults.apply(service, method, context)
                response = await inner(requests_of(request), context)
                observer.sent.inc()
                return response

            if gate is not None and gate.finish_abandoned:  # abandoned_work: finish: the work goes on if the caller leaves
                async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                    async with _Call(interceptor, observer, gate, service, full_method, context):
                        return await _shielded(work(request, context))
            else:  # the hot path: the work in the call's own task, no extra coroutine
                async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                    async with _Call(interceptor, observer, gate, service, full_method, context):
                        if interceptor.faults is not None:  # injected delay/abort (..faults), counted by _Call as any end
                            await interceptor.faults.apply(service, method, context)
                        response = await inner(requests_of(request), context)
                        observer.sent.inc()
                        return response

            factory = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
            return _Method(handler, factory(unary_response, **serdes), gate, observer, type_name)

        inner_stream = handler.stream_stream if handler.request_streaming else handler.unary_stream

        async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with _Call(interceptor, observer, gate, service, full_method, context):
                if interceptor.faults is not None:
                    await interceptor.faults.apply(service, method, context)
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
        return _Method(handler, factory(stream_response, **serdes), gate, observer, type_name)


class _Call:
    """One call's bookkeeping: counts it in flight, sets its deadline, maps its errors, observes its end."""

    __slots__ = ("interceptor", "observer", "gate", "service", "full_method", "context", "started_at", "span_scope", "span")

    def __init__(self, interceptor: ServerInterceptor, observer: _MethodObserver, gate: Gate | None, service: str,
                 full_method: str, context: grpc.aio.ServicerContext):
        self.interceptor = interceptor
        self.observer = observer
        self.gate = gate
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
        authorizer = self.interceptor.authorizer
        if authorizer is not None:  # a public method: one dict lookup; an internal one: the caller's identity checked
            denial = authorizer.check(self.full_method, self.context)
            if denial is not None:
                self._end(denial.code)
                await self.context.abort(denial.code, denial.message)
        gate = self.gate
        if gate is not None:
            waited = self.started_at - _ACCEPTED_AT.get()
            reason = gate.too_late(remaining, waited)
            if reason is not None:
                gate.count_shed(reason)
                self._end(grpc.StatusCode.RESOURCE_EXHAUSTED)
                self.context.set_trailing_metadata(gate.pushback)
                if reason == DEADLINE:
                    why = (f"{remaining * 1000:.1f} ms left of the deadline is less than the method's recent median "
                           f"service time ({gate.median.value * 1000:.1f} ms)")
                else:
                    why = f"{self.service} is overloaded: the call waited {waited * 1000:.0f} ms to start"
                await self.context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                         f"not started: {why}; retry after {gate.pushback[0][1]} ms")
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
                ended: _CallEnded | None = None
                try:
                    await _fail(exc, context, self.full_method)
                except _CallEnded as error:
                    ended = error
                    raise
                finally:
                    code = ended.code if ended is not None else _status(context, grpc.StatusCode.UNKNOWN)
        finally:
            self.interceptor.in_flight[self.service] -= 1
            elapsed = self._end(code)
            if self.gate is not None:
                self.gate.median.observe(elapsed)
        return False

    def _end(self, code: grpc.StatusCode) -> float:
        elapsed = self.observer.finish(code, self.started_at, self.span is not None)  # inside the span: its trace_id is the exemplar
        if self.span_scope is not None:
            end_span(self.span, code.value[0], code.name)
            self.span_scope.__exit__(None, None, None)
            self.span_scope = None
        return elapsed

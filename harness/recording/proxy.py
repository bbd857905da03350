"""``casemesh record``: a transparent gRPC proxy that records every call passing through it.

The proxy is a ``grpc.aio`` server with one generic handler that accepts any
method, as bytes (identity serializers: no generated code, no descriptors).
Each call is forwarded to the upstream as a stream-stream call, which on the
wire is the same as unary, client-streaming and server-streaming calls: the
RPC kind only decides how many messages flow each way. The proxy relays, in
both directions and as they come: request metadata (except reserved gRPC and
HTTP/2 headers), request messages, the upstream's initial metadata, response
messages, trailing metadata and the final status code and message. The
caller's deadline is propagated as the upstream call's timeout (the time the
caller had left when the call reached the proxy); a caller's cancellation
cancels the upstream call.

Every finished call is written to the recording (:mod:`.format`) with its
request bytes, the request metadata whose keys the allow-list selects, the
sizes and times of its responses (their bytes with ``record_responses``), its
status and its latency in µs measured at the proxy.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from casemesh.services.runtime.topology import TlsSettings

from ..channels import open_mesh_channel
from ..phases import PHASE_KEY
from . import format as fmt

log = logging.getLogger("casemesh.recording.proxy")

#: Request metadata recorded unless ``--metadata`` says otherwise: application headers by convention.
DEFAULT_METADATA_ALLOW = ("x-*",)
#: Keys that look like credentials: a wildcard pattern never records them; only an exact key does.
SENSITIVE_KEY = re.compile(r"auth|token|cookie|secret|passw|api[-_]?key|session|credential|signature|csrf|xsrf|casemesh-caller",
                           re.IGNORECASE)  # casemesh-caller: the mesh's caller token (services/runtime/identity.py)
#: Channel and server options: no message size limit, the proxy relays what the two ends accept.
_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
#: Time a stopping proxy leaves calls in flight to finish before cancelling them (s).
STOP_GRACE_S = 2.0


def check_loopback(address: str) -> str:
    """``address`` when it is ``127.x.x.x:PORT`` or ``[::1]:PORT``; ``ValueError`` saying why otherwise.

    The proxy records request bodies and headers: it must not be reachable
    from other machines.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not host:port (e.g. 127.0.0.1:50060 or [::1]:50060)")
    try:
        loopback = ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback or (":" in host and not host.startswith("[")):
        raise ValueError(f"{address!r} is not a loopback address: the recorder only listens on 127.0.0.1 or [::1] "
                         "(it records request bodies and headers, so it must not be reachable from other machines)")
    return address


class MetadataAllowList:
    """Which request metadata keys are recorded: those matching a pattern (fnmatch, case-insensitive).

    Reserved gRPC/HTTP/2 headers are never recorded; ``casemesh-phase``
    (which marks the harness's seeding calls, harness/phases.py) always is. Keys that look like
    credentials (:data:`SENSITIVE_KEY`: ``authorization``, ``x-api-key``,
    ``cookie``, ...) are recorded only when a pattern names them exactly,
    never through a wildcard.
    """

    def __init__(self, patterns: Sequence[str]):
        self.patterns = [p.lower() for p in patterns]
        self._exact = {p for p in self.patterns if not any(c in p for c in "*?[")}
        self._wild = [p for p in self.patterns if p not in self._exact]
        self._cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        """True when ``key`` (lower case, as gRPC delivers it) is to be recorded."""
        kept = self._cache.get(key)
        if kept is None:
            if fmt.is_reserved_metadata(key):
                kept = False
            elif key in self._exact or key == PHASE_KEY:
                kept = True
            else:
                kept = not SENSITIVE_KEY.search(key) and any(fnmatch.fnmatchcase(key, p) for p in self._wild)
            if len(self._cache) < 4096:
                self._cache[key] = kept
        return kept


@dataclass
class ProxyCounters:
    """Live counters of a recording proxy (read by the progress display; one event loop, no locking)."""

    started: int = 0
    recorded: int = 0
    in_flight: int = 0
    errors: int = 0
    not_recorded: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


def _relayed(metadata: Sequence[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((k, v) for k, v in (metadata or ()) if not fmt.is_reserved_metadata(k))


class RecordingProxy:
    """Forwards every call to ``upstream`` and writes each finished call to ``writer``.

    ``metadata_allow`` selects the request metadata recorded (see
    :class:`MetadataAllowList`); ``record_responses`` also keeps response
    bytes. After ``max_calls`` recorded calls, further calls are still
    relayed but not recorded, and :attr:`limit_reached` is set. Use
    :meth:`start` and :meth:`stop` inside the event loop that runs it.
    """

    def __init__(self, upstream: str, writer: fmt.RecordingWriter, *, metadata_allow: Sequence[str] = DEFAULT_METADATA_ALLOW,
                 record_responses: bool = False, max_calls: int | None = None, upstream_tls: TlsSettings | None = None):
        self.upstream = upstream
        self.upstream_tls = upstream_tls  # mTLS to the upstream as the harness (harness/channels.py); the listener stays loopback plaintext
        self.writer = writer
        self.allow = MetadataAllowList(metadata_allow)
        self.record_responses = record_responses
        self.max_calls = max_calls
        self.counters = ProxyCounters()
        self.limit_reached = asyncio.Event()
        self.port = 0
        self._origin = time.perf_counter()
        self._closing = False
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None
        self._methods: dict[str, grpc.aio.StreamStreamMultiCallable] = {}

    def offset_us(self, now: float | None = None) -> int:
        """Microseconds since the recording's origin (``now``: a ``time.perf_counter()`` value)."""
        return int(((time.perf_counter() if now is None else now) - self._origin) * 1e6)

    async def start(self, listen: str, *, origin: float | None = None) -> int:
        """Listen on ``listen`` (loopback ``host:port``; port 0 picks a free one); returns the bound port.

        ``origin`` is the ``time.perf_counter()`` value call offsets count
        from (default: now). ``OSError`` when the address cannot be bound.
        """
        self._origin = time.perf_counter() if origin is None else origin
        self._channel = open_mesh_channel(self.upstream, self.upstream_tls, options=_UNLIMITED)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *_UNLIMITED])
        server.add_generic_rpc_handlers((_GenericHandler(self),))
        try:
            port = server.add_insecure_port(listen)
        except RuntimeError:  # grpc's "Failed to bind to address"
            port = 0
        if port == 0:
            await self._channel.close()
            raise OSError(f"cannot listen on {listen}: the address is in use or not available here")
        await server.start()
        self._server, self.port = server, port
        return port

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop accepting calls, give those in flight ``grace_s`` seconds, then cancel them (not recorded) and close the upstream channel."""
        self._closing = True
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._channel is not None:
            await self._channel.close()

    def _upstream_method(self, method: str) -> grpc.aio.StreamStreamMultiCallable:
        multicallable = self._methods.get(method)
        if multicallable is None:
            assert self._channel is not None
            # No serializers: messages stay bytes both ways.
            multicallable = self._methods[method] = self._channel.stream_stream(method)
        return multicallable

    async def relay(self, method: str, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        """Forward one call of any kind to the upstream and record it (the generic handler's behaviour)."""
        started = time.perf_counter()
        counters = self.counters
        counters.started += 1
        counters.in_flight += 1
        remaining = context.time_remaining()
        timeout_s = remaining if remaining is not None and remaining < 1e9 else None
        incoming = context.invocation_metadata() or ()
        record = fmt.RecordedCall(start_offset_us=self.offset_us(started), method=method,
                                  timeout_us=max(int(timeout_s * 1e6), 1) if timeout_s is not None else 0)
        allow = self.allow
        record.metadata.extend(fmt.MetadataEntry(key=k, value=v if isinstance(v, bytes) else v.encode("ascii", "replace"))
                               for k, v in incoming if allow(k))
        call = self._upstream_method(method)(metadata=_relayed(incoming), timeout=timeout_s)
        pump = asyncio.create_task(self._pump_requests(request_iterator, call, record, started))
        code, details = grpc.StatusCode.UNKNOWN, ""
        ended_by = fmt.pb.CALL_END_UNSPECIFIED
        try:
            initial = await call.initial_metadata()
            await context.send_initial_metadata(_relayed(initial))
            keep = self.record_responses
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                record.responses.add(offset_us=int((time.perf_counter() - started) * 1e6), size_bytes=len(message),
                                     data=message if keep else b"")
                await context.write(message)
            code, details = await call.code(), await call.details() or ""
        except grpc.aio.AioRpcError as error:  # the upstream call ended with a status while reading
            code, details = error.code(), error.details() or ""
        except asyncio.CancelledError:
            # The caller went away: it cancelled, its deadline expired, or this proxy is stopping.
            call.cancel()
            expired = timeout_s is not None and time.perf_counter() - started >= timeout_s - 0.001
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            details = "Deadline Exceeded" if expired else "cancelled by the client"
            ended_by = fmt.pb.CALL_END_DEADLINE_EXCEEDED if expired else fmt.pb.CALL_END_CLIENT_CANCELLED
            self._finish(record, started, code, details, ended_by, pump)
            raise
        except Exception as error:  # a bug here must not take the proxy down: the caller gets INTERNAL
            log.exception("relaying %s failed", method)
            call.cancel()
            code, details, ended_by = grpc.StatusCode.INTERNAL, f"recorder: {type(error).__name__}: {error}", fmt.pb.CALL_END_RECORDER
        self._finish(record, started, code, details, ended_by, pump)
        try:
            trailing = await call.trailing_metadata()
        except Exception:  # noqa: BLE001 - trailers of a failed or cancelled call may be unavailable
            trailing = None
        context.set_trailing_metadata(_relayed(trailing))
        if code != grpc.StatusCode.OK:
            context.set_code(code)
            context.set_details(details)

    async def _pump_requests(self, request_iterator: object, call: grpc.aio.StreamStreamCall, record: fmt.RecordedCall, started: float) -> None:
        """Caller → upstream: each request message as it arrives, then half-close."""
        try:
            async for message in request_iterator:  # type: ignore[attr-defined]
                record.requests.add(offset_us=int((time.perf_counter() - started) * 1e6), size_bytes=len(message), data=message)
                await call.write(message)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the upstream ended the call before reading every request: its status is what counts
        except Exception:  # noqa: BLE001 - the caller's stream broke; the call ends through the reader
            log.debug("request stream ended abnormally", exc_info=True)

    def _finish(self, record: fmt.RecordedCall, started: float, code: grpc.StatusCode, details: str,
                ended_by: int, pump: asyncio.Task) -> None:
        pump.cancel()
        counters = self.counters
        counters.in_flight -= 1
        record.latency_us = int((time.perf_counter() - started) * 1e6)
        record.status_code = code.value[0]
        record.status_message = details
        record.ended_by = ended_by
        if code != grpc.StatusCode.OK:
            counters.errors += 1
        stopping = self._closing and ended_by == fmt.pb.CALL_END_CLIENT_CANCELLED
        if stopping or (self.max_calls is not None and counters.recorded >= self.max_calls):
            counters.not_recorded += 1  # unfinished when the recorder stopped, or past --max-calls
            return
        try:
            self.writer.write_call(record)
        except ValueError:  # the recording was closed while this call was being cancelled
            counters.not_recorded += 1
            return
        counters.recorded += 1
        counters.by_method[record.method] = counters.by_method.get(record.method, 0) + 1
        if self.max_calls is not None and counters.recorded >= self.max_calls:
            self.limit_reached.set()


class _GenericHandler(grpc.GenericRpcHandler):
    """Accepts every method as a stream-stream call of bytes."""

    def __init__(self, proxy: RecordingProxy):
        self._proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        relay = self._proxy.relay

        async def behaviour(request_iterator: object, context: grpc.aio.ServicerContext) -> None:
            await relay(method, request_iterator, context)

        return grpc.stream_stream_rpc_method_handler(behaviour)


async def record(*, listen: str, upstream: str, writer: fmt.RecordingWriter, stop: asyncio.Event,
                 duration_s: float | None = None, max_calls: int | None = None, metadata_allow: Sequence[str] = DEFAULT_METADATA_ALLOW,
                 record_responses: bool = False, on_ready: Callable[[RecordingProxy], None] | None = None,
                 on_tick: Callable[[RecordingProxy], None] | None = None, tick_s: float = 1.0,
                 upstream_tls: TlsSettings | None = None) -> str:
    """Run a recording proxy until ``stop`` is set, ``duration_s`` seconds pass or ``max_calls`` calls are recorded.

    Writes the end entry and closes ``writer``; returns the stop reason
    (``signal``, ``duration`` or ``max-calls``). ``on_ready`` gets the proxy
    once it listens (``proxy.port``), ``on_tick`` every ``tick_s`` seconds.
    ``upstream_tls``: call the upstream with mTLS as the harness. ``OSError``
    when ``listen`` cannot be bound.
    """
    origin = time.perf_counter()
    proxy = RecordingProxy(upstream, writer, metadata_allow=metadata_allow, record_responses=record_responses, max_calls=max_calls,
                           upstream_tls=upstream_tls)
    try:
        await proxy.start(listen, origin=origin)
    except BaseException:
        writer.close()
        raise
    reason = "signal"
    try:
        if on_ready:
            on_ready(proxy)
        deadline = origin + duration_s if duration_s is not None else None
        while not stop.is_set():
            if proxy.limit_reached.is_set():
                reason = "max-calls"
                break
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                reason = "duration"
                break
            wait = tick_s if deadline is None else min(tick_s, deadline - now)
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(proxy.limit_reached.wait())]
            await asyncio.wait(waiters, timeout=max(wait, 0.001), return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if on_tick:
                on_tick(proxy)
    finally:
        await proxy.stop()
        writer.close(duration_us=proxy.offset_us(), stop_reason=reason)
    if on_tick:
        on_tick(proxy)
    return reason

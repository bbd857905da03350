"""Undecodable request bodies: a clear ``INVALID_ARGUMENT`` instead of grpc's ``UNKNOWN`` and a traceback.

grpc decodes each request message with the handler's ``request_deserializer``
before the handler runs; when that raises (bytes that are not the request
type: bad UTF-8 in a string field, a truncated varint, a wrong wire type),
grpc answers ``UNKNOWN`` with the exception's text, logs a traceback, and the
interceptor never sees the call. :func:`guarded` wraps the deserializer so a
failure returns an :class:`Undecodable` marker instead; the server interceptor
answers it with ``INVALID_ARGUMENT`` "request body could not be decoded as
casemesh.urlshortener.v1.ResolveRequest" (no exception text: it describes the
parser, not the contract), counts it under the method in
``grpc_server_handled_total{grpc_code="InvalidArgument"}``, and
:class:`DecodeLog` logs it at WARNING, without a traceback, at most once per
method per minute.

Why ``INVALID_ARGUMENT`` and not gRPC-Go's ``INTERNAL``: the fault is in the
client's bytes, not in the server, and retrying the same bytes can never
succeed; ``INTERNAL`` is for broken invariants of the server or library and
makes error-rate SLOs blame the server for a client's mistake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("casemesh.server")

#: Seconds between two log lines about undecodable bodies of one method.
LOG_INTERVAL_S = 60.0


class Undecodable:
    """Stands in for a request message that could not be decoded; ``error`` is the parser's exception."""

    __slots__ = ("error", "size_bytes")

    def __init__(self, error: BaseException, size_bytes: int):
        self.error = error
        self.size_bytes = size_bytes


def message_type_name(deserializer: Callable[[bytes], Any] | None, fallback: str) -> str:
    """The full protobuf name of what ``deserializer`` decodes (``Msg.FromString`` → ``pkg.Msg``), else ``fallback``."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None) or fallback


def guarded(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` that returns :class:`Undecodable` instead of raising; ``None`` stays ``None`` (raw bytes)."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # protobuf's DecodeError, or anything a custom deserializer raises
            return Undecodable(error, len(data))

    return decode


class DecodeLog:
    """Logs undecodable bodies at WARNING, at most once per method per ``interval_s``, with how many were not logged."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def record(self, full_method: str, type_name: str, bad: Undecodable) -> bool:
        """Note one undecodable body of ``full_method``; ``True`` when this one was logged."""
        now = self._clock()
        last = self._last.get(full_method)
        if last is not None and now - last < self.interval_s:
            self._suppressed[full_method] = self._suppressed.get(full_method, 0) + 1
            return False
        self._last[full_method] = now
        suppressed = self._suppressed.pop(full_method, 0)
        log.warning("%s: request body (%d bytes) could not be decoded as %s: %s (%d more not logged in the last %.0f s)",
                    full_method, bad.size_bytes, type_name, bad.error, suppressed, self.interval_s)
        return True

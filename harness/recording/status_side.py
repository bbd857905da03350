"""Which side made a call's final status: the server, or the client's own gRPC stack.

A replayed call can end with a status the target never sent: grpcio's core
makes statuses of its own when the client's deadline expires, when the
connection cannot be made or breaks, or when the core itself fails a call
("Internal error from Core"). Under load, such statuses are the *client's*
trouble (its event loop, its connections), and blaming them on the target
misleads (issue 13: a Node server was charged with 1,776 ``OK→INTERNAL``
divergences it never sent).

grpcio does not say where a status came from, so :func:`status_side`
recognises the messages grpc-core itself writes (grpc/grpc: ``src/core``,
the status strings of deadline expiry, cancellation, connectivity and
transport failures, as grpcio 1.6x-1.8x reports them). Any other status is
taken as the server's. Sides:

- ``server``: the target sent it (or a message no rule knows);
- ``client``: the client decided (its deadline expired, it cancelled, its core failed);
- ``transport``: the connection failed (refused, reset, closed, GOAWAY, keepalive).
"""

from __future__ import annotations

import re

import grpc

SERVER, CLIENT, TRANSPORT = "server", "client", "transport"

#: (status code, pattern of grpc-core's own message) → side. Patterns are matched case-insensitively at the message start
#: unless they begin with ``.*``.
_RULES: tuple[tuple[grpc.StatusCode, re.Pattern[str], str], ...] = tuple(
    (code, re.compile(pattern, re.IGNORECASE), side) for code, pattern, side in (
        (grpc.StatusCode.DEADLINE_EXCEEDED, r"deadline exceeded$", CLIENT),
        (grpc.StatusCode.CANCELLED, r"(locally cancelled by application!?|cancelled)$", CLIENT),
        (grpc.StatusCode.INTERNAL, r"internal error from core", CLIENT),
        (grpc.StatusCode.UNKNOWN, r"stream removed", TRANSPORT),
        (grpc.StatusCode.INTERNAL, r".*(rst_stream|stream removed|received http2 header with status)", TRANSPORT),
        (grpc.StatusCode.UNAVAILABLE, r".*(failed to connect|connection reset|connection refused|socket closed|broken pipe"
                                      r"|goaway|keepalive watchdog|connection attempt timed out|endpoint closing|recvmsg|sendmsg"
                                      r"|connection aborted|transport closed|no connection)", TRANSPORT),
    )
)


def status_side(code: grpc.StatusCode, details: str) -> str:
    """``server``, ``client`` or ``transport``: who made a final status of ``code`` with message ``details``.

    ``OK`` is always the server's.
    """
    text = (details or "").strip()
    for rule_code, pattern, side in _RULES:
        if code == rule_code and pattern.match(text):
            return side
    return SERVER

"""Deadline propagation: an inbound call's deadline bounds every outbound call made while serving it.

The server interceptor stores the absolute deadline of the call being handled
(``time.monotonic()`` seconds) in a context variable; the client interceptor
shortens each outbound call's timeout to what is left of it, so a caller that
gives up never leaves work running further down the mesh.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

#: Absolute deadline (``time.monotonic()`` seconds) of the inbound RPC being served, if it has one.
INBOUND_DEADLINE: ContextVar[float | None] = ContextVar("casemesh_inbound_deadline", default=None)


def remaining_s() -> float | None:
    """Seconds left of the inbound deadline (may be <= 0), or ``None`` when there is none."""
    deadline = INBOUND_DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def bounded_timeout(timeout_s: float | None) -> float | None:
    """``timeout_s`` shortened to the inbound deadline's remainder (never below 1 ms)."""
    left = remaining_s()
    if left is None:
        return timeout_s
    left = max(left, 0.001)
    return left if timeout_s is None else min(timeout_s, left)

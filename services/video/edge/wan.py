"""The WAN model of the edge: the shared edge-to-origin link and the per-stream client pacing.

Everything on this machine talks over loopback, where 1.25 MB moves in a
millisecond; the seed's question ("Video playback must start within 2
seconds globally (p95)", seed 004, "Clarify Requirements"; "A CDN is not
optional", "Estimate Scale") is only meaningful with the wide-area network
modelled. The model is explicit, from the edge's settings, and pure
arithmetic on a monotonic clock here (the edge sleeps until the times these
classes compute); docs/case-studies/video.md, "Playback and the CDN edge", gives the
defaults and why.

- :class:`OriginLink`: ONE link between the edge and the origin, shared by
  every miss, FIFO. A transfer of B bytes occupies it for ``B x 8 / rate``
  seconds starting when both the bytes are ready and the previous transfer
  has ended (a virtual-clock reservation). Under load, misses queue on it:
  that is what makes the hit ratio decide playback start.
- :class:`Pacer`: one stream's delivery schedule to the client at the
  client link's bandwidth. Deadlines are absolute (``start + bytes so far x
  8 / rate``) on one monotonic schedule, so time spent between chunks is
  absorbed and sleep rounding does not accumulate.

Units: seconds of ``time.monotonic``/``loop.time`` for times, bytes, bit/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class OriginLink:
    """A FIFO link of ``bandwidth_bps`` bit/s shared by all origin fetches; 0 means unlimited.

    :meth:`reserve` books a transfer and returns when it ends; ``clock`` (a
    monotonic clock in seconds, injectable for tests) gives "now".
    ``busy_until`` is when the last booked transfer ends; ``reserved_bytes``
    and ``reservations`` count what was booked.
    """

    def __init__(self, bandwidth_bps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if bandwidth_bps < 0:
            raise ValueError(f"bandwidth_bps must be >= 0 (got {bandwidth_bps})")
        self.bandwidth_bps = bandwidth_bps
        self._clock = clock
        self.busy_until = float("-inf")
        self.reserved_bytes = 0
        self.reservations = 0

    def transfer_s(self, size_bytes: int) -> float:
        """Seconds the link needs for ``size_bytes`` at full rate (0 when unlimited)."""
        return size_bytes * 8 / self.bandwidth_bps if self.bandwidth_bps else 0.0

    def reserve(self, size_bytes: int, ready_at: float | None = None) -> tuple[float, float]:
        """Book the transfer of ``size_bytes``; returns ``(start, end)`` in clock seconds.

        ``start = max(now, ready_at, end of the previous booking)``;
        ``end = start + size_bytes x 8 / bandwidth``. Bookings are served in
        the order :meth:`reserve` is called (FIFO). ``ready_at`` is when the
        bytes can start moving (after the round trip); default now.
        """
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be >= 0 (got {size_bytes})")
        now = self._clock()
        start = max(now, ready_at if ready_at is not None else now)
        if self.bandwidth_bps:
            start = max(start, self.busy_until)
            end = start + self.transfer_s(size_bytes)
            self.busy_until = end
        else:
            end = start
        self.reserved_bytes += size_bytes
        self.reservations += 1
        return start, end

    def backlog_s(self) -> float:
        """Seconds until the link is free of booked transfers (0 when idle)."""
        return max(0.0, self.busy_until - self._clock())


class Pacer:
    """One stream's delivery schedule at ``bandwidth_bps`` bit/s (0 = unpaced).

    The schedule's clock ``t`` is when the bytes sent so far have reached the
    client. :meth:`hold_until` moves it forward when bytes cannot go out
    before some time (the first byte's round trip, a miss's origin fetch);
    :meth:`advance` books ``n`` more bytes and returns the absolute time the
    last of them arrives: ``t += n x 8 / bandwidth``. Sleeping until each
    returned deadline paces the stream without accumulating rounding or the
    time spent producing chunks.
    """

    def __init__(self, bandwidth_bps: float, start: float) -> None:
        if bandwidth_bps < 0:
            raise ValueError(f"bandwidth_bps must be >= 0 (got {bandwidth_bps})")
        self.bandwidth_bps = bandwidth_bps
        self.t = start
        self.sent_bytes = 0

    def hold_until(self, t: float) -> float:
        """No byte arrives before ``t``: the schedule resumes at ``max(t, current)``; returns it."""
        if t > self.t:
            self.t = t
        return self.t

    def advance(self, size_bytes: int) -> float:
        """Book ``size_bytes`` more; the absolute time (clock seconds) they have all arrived."""
        self.sent_bytes += size_bytes
        if self.bandwidth_bps:
            self.t += size_bytes * 8 / self.bandwidth_bps
        return self.t

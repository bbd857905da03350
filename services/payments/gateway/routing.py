"""PSP routing: acquirers in cost order, a circuit breaker per acquirer, failover (seed 001 #25 "PSP routing",
shared/seeds/001_58dfc580020147d2.txt line 49; Adyen's and Stripe's routing across acquirers).

:class:`Router` yields the acquirers an authorization may try, in the settings' order (cheapest first). With
``failover`` on, it skips an acquirer whose breaker is open, and the payment moves on to the next acquirer when one
fails; with ``failover`` off (the A/B switch's baseline) it yields only the first acquirer of the list, breaker or
not, and the payment fails UNAVAILABLE when that one does.

:class:`AcquirerBreaker` is written here rather than reusing ``services/runtime/circuit_breaker.py``: that one guards a
mesh channel, opens on consecutive failures only, and shares its metric family (``casemesh_circuit_state{target}``)
with the channel breaker of the same target; routing needs a failure-ratio trigger as well (an acquirer failing one
authorization in two never fails five in a row for long) and its own gauge. The state machine (Nygard, *Release
It!*, ch. 5; Hystrix's ratio over a rolling window):

- **closed**: authorizations go through; the outcome of each is recorded: a *failure* is an unknown outcome (no answer:
  UNAVAILABLE, DEADLINE_EXCEEDED) or a call the mesh channel failed fast; any answer, a decline or a refusal
  included, is a *success*. ``consecutive_failures`` failures in a row, or a failure ratio of at least
  ``failure_ratio`` over the last ``window_s`` once the window holds ``min_calls`` outcomes, open it;
- **open**: routing skips the acquirer for ``cooldown_s``;
- **half-open**: then ``half_open_probes`` authorizations at a time go through as probes; a success closes it (the
  window starts afresh), a failure opens it for another ``cooldown_s``; a probe that never reports (its call was
  cancelled) is given up after ``cooldown_s``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator

from . import metrics
from .settings import GatewaySettings

log = logging.getLogger("casemesh.payments.gateway.routing")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class AcquirerBreaker:
    """The circuit breaker of one acquirer (see the module docstring). ``clock`` is monotonic seconds. Sets
    ``casemesh_payments_gateway_breaker_open{acquirer}`` on every change. Not thread-safe: one event loop."""

    def __init__(self, acquirer: str, *, consecutive_failures: int = 5, failure_ratio: float = 0.5,
                 window_s: float = 10.0, min_calls: int = 20, cooldown_s: float = 5.0, half_open_probes: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.acquirer = acquirer
        self._threshold = consecutive_failures
        self._ratio = failure_ratio
        self._window_s = window_s
        self._min_calls = min_calls
        self._cooldown_s = cooldown_s
        self._max_probes = half_open_probes
        self._clock = clock
        self._state = CLOSED
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._failures_in_window = 0
        self._open_until = 0.0
        self._probes = 0
        self._probe_at = 0.0
        self._gauge = metrics.BREAKER_OPEN.labels(acquirer)
        self._gauge.set(0)

    @classmethod
    def from_settings(cls, acquirer: str, settings: GatewaySettings,
                      clock: Callable[[], float] = time.monotonic) -> AcquirerBreaker:
        return cls(acquirer, consecutive_failures=settings.breaker_consecutive_failures,
                   failure_ratio=settings.breaker_failure_ratio, window_s=settings.breaker_window_s,
                   min_calls=settings.breaker_min_calls, cooldown_s=settings.breaker_cooldown_s,
                   half_open_probes=settings.breaker_half_open_probes, clock=clock)

    @property
    def state(self) -> str:
        """:data:`CLOSED`, :data:`OPEN` or :data:`HALF_OPEN` (an open breaker whose cool-down is over reads
        half-open)."""
        if self._state == OPEN and self._clock() >= self._open_until:
            self._state = HALF_OPEN
            self._probes = 0
        return self._state

    def admit(self) -> bool:
        """Whether an authorization may be sent now (a half-open breaker counts it as a probe)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN:
            if self._probes and self._clock() >= self._probe_at + self._cooldown_s:
                self._probes = 0  # probes that never reported (their call was cancelled): let another through
            if self._probes < self._max_probes:
                self._probes += 1
                self._probe_at = self._clock()
                return True
        return False

    def record(self, ok: bool) -> None:
        """The outcome of an authorization sent (admitted or not: failover off sends without asking)."""
        state = self.state
        if state == HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if ok:
                self._close()
            else:
                self._trip("a probe failed")
            return
        if state == OPEN:
            return  # sent before it opened, or without asking (failover off): the cool-down stands
        now = self._clock()
        self._window.append((now, not ok))
        self._failures_in_window += not ok
        while self._window and self._window[0][0] < now - self._window_s:
            _, failed = self._window.popleft()
            self._failures_in_window -= failed
        self._consecutive = 0 if ok else self._consecutive + 1
        if self._consecutive >= self._threshold:
            self._trip(f"{self._consecutive} authorizations in a row failed")
        elif (len(self._window) >= self._min_calls
              and self._failures_in_window >= self._ratio * len(self._window)):
            self._trip(f"{self._failures_in_window} of the last {len(self._window)} authorizations failed")

    def _trip(self, why: str) -> None:
        if self._state == CLOSED:
            log.warning("breaker of %s open: %s; routing skips it for %.1f s", self.acquirer, why, self._cooldown_s)
        self._state = OPEN
        self._open_until = self._clock() + self._cooldown_s
        self._probes = 0
        self._consecutive = 0
        self._window.clear()
        self._failures_in_window = 0
        self._gauge.set(1)

    def _close(self) -> None:
        log.warning("breaker of %s closed: a probe succeeded", self.acquirer)
        self._state = CLOSED
        self._consecutive = 0
        self._window.clear()
        self._failures_in_window = 0
        self._gauge.set(0)


class Router:
    """The routing order over ``acquirers`` (topology names, cheapest first) with a breaker each; ``failover`` as
    the module docstring says."""

    def __init__(self, acquirers: tuple[str, ...], failover: bool,
                 breaker: Callable[[str], AcquirerBreaker]) -> None:
        if not acquirers:
            raise ValueError("no acquirer to route to")
        self.acquirers = acquirers
        self.failover = failover
        self.breakers = {name: breaker(name) for name in acquirers}

    @classmethod
    def from_settings(cls, settings: GatewaySettings, clock: Callable[[], float] = time.monotonic) -> Router:
        return cls(settings.acquirers, settings.failover,
                   lambda name: AcquirerBreaker.from_settings(name, settings, clock))

    def route(self) -> Iterator[str]:
        """The acquirers to try, in order, asked lazily (a half-open breaker's probe is taken only when reached)."""
        if not self.failover:
            yield self.acquirers[0]
            return
        for name in self.acquirers:
            if self.breakers[name].admit():
                yield name

    def record(self, acquirer: str, ok: bool) -> None:
        """The outcome of an authorization at ``acquirer`` (one not routed by this router is ignored)."""
        breaker = self.breakers.get(acquirer)
        if breaker is not None:
            breaker.record(ok)

"""The circuit breaker's state machine (closed, open, half-open) on a fake clock, and its metrics."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry

from casemesh.services.runtime.circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitMetrics
from casemesh.services.runtime.topology import CircuitBreakerPolicy

UNAVAILABLE, OK = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(**policy) -> tuple[CircuitBreaker, Clock, CollectorRegistry]:
    clock, registry = Clock(), CollectorRegistry()
    settings = {"consecutive_failures": 3, "open_ms": 500, **policy}
    return CircuitBreaker("idgen", CircuitBreakerPolicy(**settings), clock=clock, metrics=CircuitMetrics(registry)), clock, registry


def metric(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"target": "idgen"})


def fail(b: CircuitBreaker, n: int, code: grpc.StatusCode = UNAVAILABLE) -> None:
    for _ in range(n):
        assert b.admit()
        b.record(code)


def test_consecutive_failures_open_it_and_it_fails_fast_until_open_ms_pass():
    b, clock, registry = breaker()
    fail(b, 2)
    b.admit(), b.record(OK)  # a success resets the count
    fail(b, 2)
    assert b.state == CLOSED and metric(registry, "casemesh_circuit_state") == CLOSED
    fail(b, 1)
    assert b.state == OPEN and metric(registry, "casemesh_circuit_state") == OPEN
    assert metric(registry, "casemesh_circuit_opened_total") == 1
    assert not b.admit() and not b.admit()
    assert metric(registry, "casemesh_circuit_rejected_total") == 2
    error = b.rejection()
    assert error.code() == UNAVAILABLE and error.details().startswith("circuit open to idgen")
    clock.now += 0.499
    assert not b.admit()
    clock.now += 0.001
    assert b.state == HALF_OPEN and metric(registry, "casemesh_circuit_state") == HALF_OPEN


def test_half_open_lets_its_probes_through_and_a_success_closes_it():
    b, clock, _ = breaker(half_open_probes=1)
    fail(b, 3)
    clock.now += 1
    assert b.admit()          # the probe
    assert not b.admit()      # one probe at a time: the others still fail fast
    b.record(OK)
    assert b.state == CLOSED and b.admit()


def test_a_failed_probe_opens_it_for_another_open_ms():
    b, clock, registry = breaker()
    fail(b, 3)
    clock.now += 1
    assert b.admit()
    b.record(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert b.state == OPEN and not b.admit()
    clock.now += 0.5
    assert b.state == HALF_OPEN
    assert metric(registry, "casemesh_circuit_opened_total") == 2


def test_only_failure_codes_count_and_a_cancelled_call_counts_for_nothing():
    b, clock, _ = breaker(failure_codes=("UNAVAILABLE",))
    fail(b, 5, grpc.StatusCode.NOT_FOUND)  # the upstream answered: healthy
    fail(b, 5, grpc.StatusCode.RESOURCE_EXHAUSTED)  # not a failure code here: resets like a success
    fail(b, 2)
    fail(b, 1, grpc.StatusCode.CANCELLED)  # the caller gave up: neither
    assert b.state == CLOSED
    fail(b, 1)
    assert b.state == OPEN
    clock.now += 1
    assert b.admit()
    b.record(grpc.StatusCode.CANCELLED)  # a cancelled probe frees its slot without a verdict
    assert b.state == HALF_OPEN and b.admit()

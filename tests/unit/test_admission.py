"""Admission control's building blocks: slots, the bounded queue, the recent median and the deadline rule."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from casemesh.services.runtime.admission import (
    DEADLINE, METHOD_LIMIT, QUEUE_FULL, QUEUE_TIMEOUT, START_TIMEOUT, Admission, AdmissionLimits, Limiter, RecentMedian,
    limits_from_policy,
)
from casemesh.services.runtime.topology import ServerPolicy, Topology

SERVICE = "casemesh.urlshortener.v1.UrlShortenerService"


def admission(**limits) -> Admission:
    return Admission(AdmissionLimits(**limits), registry=CollectorRegistry())


async def test_slots_are_taken_up_to_the_limit_then_refused_without_a_queue():
    limiter = Limiter(2, max_queue=0)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    assert await limiter.acquire() == QUEUE_FULL
    limiter.release()
    assert await limiter.acquire() is None
    assert limiter.in_flight == 2


async def test_a_released_slot_goes_to_the_oldest_waiter_first():
    limiter = Limiter(1, max_queue=2, max_wait_s=5)
    assert await limiter.acquire() is None
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.queued == 2
    assert await limiter.acquire() == QUEUE_FULL  # the queue is bounded
    assert not limiter.try_acquire()  # nobody jumps the queue
    limiter.release()
    assert await first is None and not second.done()
    limiter.release()
    assert await second is None
    assert limiter.in_flight == 1 and limiter.queued == 0


async def test_a_wait_longer_than_max_wait_is_refused_and_leaves_no_slot_taken():
    limiter = Limiter(1, max_queue=1, max_wait_s=0.01)
    assert limiter.try_acquire()
    assert await limiter.acquire() == QUEUE_TIMEOUT
    assert limiter.queued == 0
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_waiter_cancelled_in_the_queue_takes_no_slot():
    limiter = Limiter(1, max_queue=1, max_wait_s=5)
    assert limiter.try_acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 0
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_waiter_cancelled_just_after_being_handed_a_slot_gives_it_back():
    limiter = Limiter(1, max_queue=1, max_wait_s=5)
    assert limiter.try_acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the slot to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.in_flight == 0


def test_limiter_rejects_nonsense_bounds():
    with pytest.raises(ValueError, match="limit >= 1"):
        Limiter(0)


def test_recent_median_is_zero_until_measured_then_follows_recent_calls():
    median = RecentMedian(size=8, every=4)
    for _ in range(3):
        median.observe(1.0)
    assert median.value == 0.0  # never judged before it is measured
    median.observe(1.0)
    assert median.value == 1.0
    for _ in range(8):
        median.observe(0.002)
    assert median.value == 0.002  # old samples age out


async def test_gate_applies_the_service_limit_and_a_per_method_bound():
    gates = admission(max_concurrent_rpcs=10, max_queued_rpcs=0, limits={f"{SERVICE}/Shorten": 1})
    shorten, resolve = gates.gate(SERVICE, "Shorten"), gates.gate(SERVICE, "Resolve")
    assert shorten.service_limiter is resolve.service_limiter  # the slots are the service's
    assert shorten.try_enter()
    assert not shorten.try_enter()
    assert await shorten.enter() == METHOD_LIMIT
    assert resolve.try_enter()
    shorten.leave()
    assert shorten.try_enter()
    assert resolve.service_limiter.in_flight == 2


def test_a_per_service_limit_overrides_the_default():
    gates = admission(max_concurrent_rpcs=10, limits={SERVICE: 1})
    assert gates.gate(SERVICE, "Resolve").service_limiter.limit == 1
    assert gates.gate("casemesh.idgen.v1.IdGeneratorService", "LeaseIds").service_limiter.limit == 10


def test_health_and_reflection_are_never_gated():
    gates = admission()
    assert gates.gate("grpc.health.v1.Health", "Check") is None
    assert gates.gate("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo") is None


def test_deadline_rule_drops_calls_with_less_time_left_than_the_recent_median():
    gate = admission().gate(SERVICE, "Resolve")
    assert gate.too_late(0.0001) is None  # no median yet
    for _ in range(16):
        gate.median.observe(0.050)
    assert gate.too_late(0.010) == DEADLINE
    assert gate.too_late(0.200) is None
    assert gate.too_late(None) is None  # no deadline, nothing to miss
    assert admission(deadline_drop=False).gate(SERVICE, "Resolve").too_late(-1.0) is None


def test_a_call_that_waited_past_the_start_wait_bound_is_not_started():
    gate = admission(max_start_wait_ms=100).gate(SERVICE, "Resolve")
    assert gate.too_late(None, waited_s=0.050) is None
    assert gate.too_late(None, waited_s=0.150) == START_TIMEOUT
    assert admission().gate(SERVICE, "Resolve").too_late(None, waited_s=60.0) is None  # off by default


def test_rejections_are_counted_by_reason_and_carry_the_pushback_trailer():
    registry = CollectorRegistry()
    gate = Admission(AdmissionLimits(retry_pushback_ms=250), registry=registry).gate(SERVICE, "Resolve")
    gate.count_shed(QUEUE_FULL)
    gate.count_shed(QUEUE_FULL)
    gate.count_shed(DEADLINE)
    labels = {"grpc_service": SERVICE, "grpc_method": "Resolve"}
    assert registry.get_sample_value("casemesh_server_shed_total", {**labels, "reason": QUEUE_FULL}) == 2
    assert registry.get_sample_value("casemesh_server_shed_total", {**labels, "reason": DEADLINE}) == 1
    assert gate.pushback == (("grpc-retry-pushback-ms", "250"),)


def test_topology_server_section_sets_the_limits_and_names_a_bad_key():
    policy = Topology.model_validate({"services": {}, "server": {
        "max_concurrent_rpcs": 8, "max_queued_rpcs": 2, "max_queue_wait_ms": 20, "retry_pushback_ms": 5,
        "max_start_wait_ms": 500, "limits": {f"{SERVICE}/Resolve": 3}}}).server
    limits = limits_from_policy(policy)
    assert (limits.max_concurrent_rpcs, limits.max_queued_rpcs, limits.max_queue_wait_ms, limits.retry_pushback_ms) == (8, 2, 20, 5)
    assert limits.limits == {f"{SERVICE}/Resolve": 3} and limits.max_start_wait_ms == 500
    assert limits_from_policy(ServerPolicy()).max_start_wait_ms is None
    with pytest.raises(ValueError, match="'Resolve' is not a full gRPC service"):
        ServerPolicy(limits={"Resolve": 3})
    with pytest.raises(ValueError, match="at least 1"):
        ServerPolicy(limits={SERVICE: 0})


class _Context:
    """Just enough of grpc.aio.ServicerContext for a rejection."""

    def __init__(self) -> None:
        self.trailers: tuple = ()
        self.aborted: tuple | None = None

    def set_trailing_metadata(self, metadata) -> None:
        self.trailers = tuple(metadata)

    async def abort(self, code, details):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


@pytest.mark.parametrize("request_streaming,response_streaming", [(False, False), (True, False), (False, True), (True, True)])
async def test_a_rejection_of_any_kind_of_method_is_resource_exhausted_with_pushback_and_counted(request_streaming, response_streaming):
    import grpc

    from casemesh.services.runtime.interceptors.server import ServerInterceptor
    from casemesh.services.runtime.metrics import RpcMetrics

    registry = CollectorRegistry()
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry),
                                    admission=Admission(AdmissionLimits(max_concurrent_rpcs=1, max_queued_rpcs=0,
                                                                        retry_pushback_ms=40), registry=registry))
    kinds = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    handler = kinds[(request_streaming, response_streaming)](lambda request, context: None)

    class Details:
        method = f"/{SERVICE}/Resolve"
        invocation_metadata = ()

    async def continuation(details):
        return handler

    admitted = await interceptor.intercept_service(continuation, Details())  # takes the one slot
    rejecter = await interceptor.intercept_service(continuation, Details())
    assert rejecter is not admitted and rejecter.request_deserializer is None  # the body is never decoded
    assert (rejecter.request_streaming, rejecter.response_streaming) == (request_streaming, response_streaming)
    function = rejecter.unary_unary or rejecter.stream_unary or rejecter.unary_stream or rejecter.stream_stream
    context = _Context()
    with pytest.raises(RuntimeError):
        await function(None, context)
    assert context.aborted[0] == grpc.StatusCode.RESOURCE_EXHAUSTED and "queue_full" in context.aborted[1]
    assert context.trailers == (("grpc-retry-pushback-ms", "40"),)
    kind = {(False, False): "unary", (True, False): "client_stream", (False, True): "server_stream", (True, True): "bidi_stream"}
    labels = {"grpc_type": kind[(request_streaming, response_streaming)], "grpc_service": SERVICE, "grpc_method": "Resolve"}
    assert registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "ResourceExhausted"}) == 1
    assert registry.get_sample_value("grpc_server_started_total", labels) == 1
    assert registry.get_sample_value("casemesh_server_shed_total",
                                     {"grpc_service": SERVICE, "grpc_method": "Resolve", "reason": QUEUE_FULL}) == 1


async def test_a_method_limit_rejection_names_the_method_and_its_bound():
    import grpc

    from casemesh.services.runtime.interceptors.server import ServerInterceptor
    from casemesh.services.runtime.metrics import RpcMetrics

    registry = CollectorRegistry()
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry), admission=Admission(
        AdmissionLimits(limits={f"{SERVICE}/Shorten": 1}), registry=registry))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: None)

    class Details:
        method = f"/{SERVICE}/Shorten"
        invocation_metadata = ()

    async def continuation(details):
        return handler

    await interceptor.intercept_service(continuation, Details())
    rejecter = await interceptor.intercept_service(continuation, Details())
    context = _Context()
    with pytest.raises(RuntimeError):
        await rejecter.unary_unary(None, context)
    assert context.aborted[1] == f"{SERVICE}/Shorten is at its limit of 1 calls in flight (method_limit); retry after 100 ms"
    assert registry.get_sample_value("casemesh_server_shed_total",
                                     {"grpc_service": SERVICE, "grpc_method": "Shorten", "reason": METHOD_LIMIT}) == 1


async def test_an_abandoned_waiter_keeps_its_place_and_owns_the_slot_it_is_handed():
    limiter = Limiter(1, max_queue=2, max_wait_s=5)
    assert limiter.try_acquire()
    handed: list[bool] = []
    waiter = asyncio.create_task(limiter.acquire(handed.append))
    await asyncio.sleep(0)
    waiter.cancel()  # the caller leaves; the queue cannot tell
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 1 and handed == []
    limiter.release()  # the slot goes to the abandoned waiter, which now owns it
    await asyncio.sleep(0)
    assert handed == [True] and limiter.in_flight == 1 and limiter.queued == 0
    assert not limiter.try_acquire()


async def test_an_abandoned_waiter_whose_wait_runs_out_takes_no_slot():
    limiter = Limiter(1, max_queue=1, max_wait_s=0.01)
    assert limiter.try_acquire()
    handed: list[bool] = []
    waiter = asyncio.create_task(limiter.acquire(handed.append))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.05)
    assert handed == [False] and limiter.queued == 0 and limiter.in_flight == 1


async def test_a_gate_under_finish_holds_an_abandoned_calls_slot_for_the_recent_median():
    gate = admission(max_concurrent_rpcs=1, max_queued_rpcs=1, max_queue_wait_ms=5000, abandoned_work="finish",
                     limits={f"{SERVICE}/Resolve": 2}).gate(SERVICE, "Resolve")
    for _ in range(16):
        gate.median.observe(0.05)
    assert gate.try_enter()
    queued = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.leave()  # the first call ends: its slot goes to the abandoned call, for the median's 50 ms of work
    await asyncio.sleep(0.02)
    assert gate.service_limiter.in_flight == 1 and gate.method_limiter.in_flight == 1
    await asyncio.sleep(0.1)
    assert gate.service_limiter.in_flight == 0 and gate.method_limiter.in_flight == 0


async def test_a_call_cancelled_in_the_queue_gives_its_method_bound_back():
    gate = admission(max_concurrent_rpcs=1, max_queued_rpcs=1, max_queue_wait_ms=5000,
                     limits={f"{SERVICE}/Resolve": 2}).gate(SERVICE, "Resolve")
    assert gate.try_enter()
    queued = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert gate.method_limiter.in_flight == 2
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert gate.method_limiter.in_flight == 1 and gate.service_limiter.queued == 0


def test_abandoned_work_is_drop_or_finish():
    assert ServerPolicy().abandoned_work == "drop"
    assert limits_from_policy(ServerPolicy(abandoned_work="finish")).abandoned_work == "finish"
    with pytest.raises(ValueError, match="abandoned_work"):
        ServerPolicy(abandoned_work="later")
    with pytest.raises(ValueError, match="abandoned_work must be one of drop, finish"):
        AdmissionLimits(abandoned_work="later")

"""A handler that fails after grpc-core has already ended its call (deadline passed) is counted, not logged as a crash."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpc._cython.cygrpc import ExecuteBatchError
from prometheus_client import CollectorRegistry

from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

METHOD = "/test.Svc/Call"


class EndedContext:
    """A servicer context whose call core has already ended: abort fails as grpc.aio's does then."""

    def __init__(self, remaining: float):
        self.remaining = remaining

    def invocation_metadata(self):
        return ()

    def time_remaining(self):
        return self.remaining

    def code(self):
        return None

    def peer(self):
        return "ipv4:127.0.0.1:1"

    async def abort(self, code, details):
        raise ExecuteBatchError("Failed \"execute_batch\"")


@pytest.mark.parametrize(("remaining", "code"), [(0.0, "DeadlineExceeded"), (0.5, "Canceled")])
async def test_a_dependency_expiry_after_the_call_ended_is_counted_under_its_code_quietly(remaining, code, caplog):
    async def handler(request, context):
        raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "Deadline Exceeded")

    metrics = RpcMetrics("server", registry=CollectorRegistry())
    interceptor = ServerInterceptor(metrics=metrics)

    async def continuation(details):
        return grpc.unary_unary_rpc_method_handler(handler)

    class Details:
        method = METHOD
        invocation_metadata = ()

    wrapped = await interceptor.intercept_service(continuation, Details)
    with caplog.at_level(logging.ERROR), pytest.raises(BaseException) as raised:
        await wrapped.unary_unary(b"", EndedContext(remaining))
    assert isinstance(raised.value, asyncio.CancelledError)  # grpc treats it as a cancelled handler
    assert not caplog.records
    handled = metrics.handled.labels("unary", "test.Svc", "Call", code)._value.get()
    assert handled == 1

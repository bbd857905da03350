"""The gateway's calls to the matching engine (``trading-engine``), each with an explicit deadline.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "Stock Trading | Order matching engine ... | <10ms p99
latency"). Every call has ``timeout_s`` (setting ``engine_timeout_s``, cut by the runtime to what is left of the
caller's deadline) and is timed in ``casemesh_trading_gateway_engine_call_seconds{method}``. The engine's answers
map as protos/casemesh/trading/v1/orders.proto wants them: INVALID_ARGUMENT, FAILED_PRECONDITION and NOT_FOUND
become the runtime's domain errors, with the engine's message (services/runtime/errors.py ``dependency_error``);
anything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED from its admission control, ...) is
:class:`EngineUnavailable`, answered UNAVAILABLE: the call may be retried (an order with the same client_order_id,
which is the same engine order).
"""

from __future__ import annotations

import time

import grpc

from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc, trading_pb2

from ...runtime.errors import Unavailable, dependency_error
from . import metrics

ENGINE = "trading-engine"


class EngineUnavailable(Unavailable):
    """The engine did not answer (or answered that it could not): UNAVAILABLE, the message says how to retry."""


class EngineClient:
    """SubmitOrder, CancelOrder and GetOrder of ``trading-engine``, ``timeout_s`` seconds each."""

    def __init__(self, stub: engine_pb2_grpc.MatchingEngineServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s
        self._seconds = {m: metrics.ENGINE_CALL_SECONDS.labels(m) for m in ("SubmitOrder", "CancelOrder", "GetOrder")}

    async def submit(self, request: engine_pb2.SubmitOrderRequest) -> engine_pb2.SubmitOrderResponse:
        """SubmitOrder: the order after matching and its trades (none for an order id the engine holds)."""
        return await self._call("SubmitOrder", self._stub.SubmitOrder, request,
                                "retry with the same client_order_id")

    async def cancel(self, order_id: str, account_id: str) -> trading_pb2.Order:
        """CancelOrder: the cancelled order. NotFound for an unknown order or another account's; FailedPrecondition
        when it is FILLED."""
        request = engine_pb2.CancelOrderRequest(order_id=order_id, account_id=account_id)
        return (await self._call("CancelOrder", self._stub.CancelOrder, request, "retry")).order

    async def get(self, order_id: str) -> trading_pb2.Order:
        """GetOrder: the order as it is now. NotFound."""
        request = engine_pb2.GetOrderRequest(order_id=order_id)
        return (await self._call("GetOrder", self._stub.GetOrder, request, "retry")).order

    async def _call(self, method: str, rpc, request, advice: str):
        started = time.perf_counter()
        try:
            return await rpc(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            mapped = dependency_error(error)
            if mapped is not error:
                raise mapped from None
            raise EngineUnavailable(f"{ENGINE} could not answer {method} ({error.code().name}: {error.details()}); "
                                    f"{advice}") from None
        finally:
            self._seconds[method].observe(time.perf_counter() - started)

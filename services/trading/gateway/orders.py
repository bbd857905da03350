"""The order gateway without gRPC: PlaceOrder, CancelOrder, GetOrder, ListInstruments.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). PlaceOrder is the order acknowledgement the
seed's "< 10 ms p99" is about, so its path holds no lock, no disk and one engine call:

1. validation (:mod:`.validation`; INVALID_ARGUMENT naming the field, NOT_FOUND for a symbol not listed);
2. the order id, ``ord_`` + HMAC of (account_id, client_order_id) (:mod:`.order_ids`): a retry is the same engine
   order, and the engine answers an order id it holds with the order as it is and no trades;
3. a retry of an order the gateway's risk state has seen (on the engine's log, or answered to this gateway) skips
   the risk checks, which its first attempt passed, and goes to the engine;
4. otherwise the risk checks (:mod:`.risk`: ``price_band``, ``max_notional``, ``max_open_orders``). When one refuses,
   the engine is asked (GetOrder) whether it holds the order id already: a retry whose first attempt the gateway
   never saw answered (the drop copy lags, a timed-out attempt, another gateway process) may fail a check now that
   its first attempt changed the state (its own resting order counts against ``max_open_orders``, the band moved),
   and must get its order, not a refusal. Only an order the engine does not hold is refused (FAILED_PRECONDITION
   ``"<check>: ..."``);
5. SubmitOrder (:mod:`.engine_client`): the engine's INVALID_ARGUMENT / NOT_FOUND pass through; its
   FAILED_PRECONDITION (the order id is held with a different order) is FAILED_PRECONDITION naming
   ``client_order_id`` (used for a different order); no answer is UNAVAILABLE ("retry with the same
   client_order_id").

CancelOrder and GetOrder go to the engine as they are; GetOrder answers NOT_FOUND for another account's order, with
the same message as for an unknown one.
"""

from __future__ import annotations

from typing import Protocol

from casemesh.trading.v1 import engine_pb2, orders_pb2, trading_pb2

from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from . import metrics, validation
from .engine_client import EngineUnavailable
from .order_ids import OrderIds
from .risk import Refused, RiskState, check
from .settings import GatewaySettings


class Engine(Protocol):
    """The matching engine's calls the gateway makes (:class:`.engine_client.EngineClient`; a fake in unit tests)."""

    async def submit(self, request: engine_pb2.SubmitOrderRequest) -> engine_pb2.SubmitOrderResponse: ...

    async def cancel(self, order_id: str, account_id: str) -> trading_pb2.Order: ...

    async def get(self, order_id: str) -> trading_pb2.Order: ...


class OrderGateway:
    """OrderEntryService's logic over ``engine`` and the risk state (module docstring)."""

    def __init__(self, settings: GatewaySettings, engine: Engine, risk: RiskState, ids: OrderIds) -> None:
        self.settings = settings
        self.risk = risk
        self._engine = engine
        self._ids = ids
        self._instruments = {i.symbol: i for i in settings.instruments}
        self._listing = orders_pb2.ListInstrumentsResponse(instruments=[
            trading_pb2.Instrument(symbol=i.symbol, currency_code=i.currency_code, tick_minor=i.tick_minor,
                                   reference_price_minor=i.reference_price_minor)
            for i in sorted(settings.instruments, key=lambda i: i.symbol)])

    async def place(self, request: orders_pb2.PlaceOrderRequest) -> orders_pb2.PlaceOrderResponse:
        """PlaceOrder (module docstring). Raises InvalidArgument, NotFound, FailedPrecondition (:class:`.risk.Refused`
        or a client_order_id used for another order), :class:`.engine_client.EngineUnavailable`."""
        try:
            order = validation.place_order(request, self._instruments, self.settings.max_order_quantity)
        except (InvalidArgument, NotFound):
            metrics.OUTCOME["invalid"].inc()
            raise
        order_id = self._ids.order_id(order.account_id, order.client_order_id)
        submit = engine_pb2.SubmitOrderRequest(
            order_id=order_id, client_order_id=order.client_order_id, account_id=order.account_id,
            symbol=order.symbol, side=order.side, type=order.type, price_minor=order.price_minor,
            quantity=order.quantity)
        risk = self.risk
        if risk.seen(order_id):
            return await self._submit(submit, "replayed")
        try:
            check(order, risk, self.settings)
        except Refused as refused:
            if await self._held(order_id):
                return await self._submit(submit, "replayed")
            metrics.REFUSAL[refused.check].inc()
            metrics.OUTCOME["refused"].inc()
            raise
        risk.reserve(order.account_id)
        try:
            return await self._submit(submit, "placed")
        finally:
            risk.release(order.account_id)

    async def cancel(self, request: orders_pb2.OrderEntryServiceCancelOrderRequest) -> trading_pb2.Order:
        """CancelOrder: the cancelled order. InvalidArgument, NotFound (another account's too), FailedPrecondition
        (FILLED), EngineUnavailable."""
        account_id, order_id = validation.cancel_order(request)
        return await self._engine.cancel(order_id, account_id)

    async def get(self, request: orders_pb2.OrderEntryServiceGetOrderRequest) -> trading_pb2.Order:
        """GetOrder: the account's order as it is now. InvalidArgument, NotFound (another account's too),
        EngineUnavailable."""
        account_id, order_id = validation.get_order(request)
        try:
            order = await self._engine.get(order_id)
        except NotFound:
            order = None
        if order is None or order.account_id != account_id:
            raise NotFound(f"order {order_id} of account {account_id} not found")
        return order

    def instruments(self) -> orders_pb2.ListInstrumentsResponse:
        """ListInstruments: the listed symbols in symbol order (from the settings)."""
        return self._listing

    async def _held(self, order_id: str) -> bool:
        """True when the engine holds ``order_id`` (an earlier attempt of this order reached it)."""
        try:
            await self._engine.get(order_id)
        except NotFound:
            return False
        except EngineUnavailable:
            metrics.OUTCOME["unavailable"].inc()
            raise
        return True

    async def _submit(self, submit: engine_pb2.SubmitOrderRequest, outcome: str) -> orders_pb2.PlaceOrderResponse:
        try:
            response = await self._engine.submit(submit)
        except EngineUnavailable:
            metrics.OUTCOME["unavailable"].inc()
            raise
        except FailedPrecondition as error:
            metrics.OUTCOME["conflict"].inc()
            raise FailedPrecondition(f"client_order_id: {submit.client_order_id} of account {submit.account_id} was "
                                     f"used for a different order ({error})") from None
        except (InvalidArgument, NotFound):
            metrics.OUTCOME["invalid"].inc()
            raise
        self.risk.placed(response.order)
        metrics.OUTCOME[outcome].inc()
        return orders_pb2.PlaceOrderResponse(order=response.order, trades=response.trades)

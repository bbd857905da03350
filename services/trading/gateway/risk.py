"""Pre-trade risk: what the gateway knows of the engine (a drop copy of its log), and the checks run on each order.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "Stock Trading | Order matching engine, order book,
market data, low-latency | <10ms p99 latency"). An exchange's order entry gateway refuses orders before they reach
the matching engine (SEC Rule 15c3-5 pre-trade controls; NASDAQ's price collars and fat-finger limits), using only
what it holds in memory, so the checks cost microseconds on the order's path.

:class:`RiskState` is fed every event of the engine's log from sequence 1 (an :class:`~..engine_feed.EngineFeed`,
the gateway's drop copy) and keeps:

- the last trade price per symbol (the price band's reference);
- the resting orders (id -> account, shares left) and their ids per account (open orders per account): an
  ``accepted`` limit order rests with its whole quantity, its trades (as maker or taker) take shares off, a
  ``cancelled`` event or the last share takes it out. Market orders never rest (their trades and the cancel of
  their rest follow their acceptance in the log);
- the ids of the newest ``remembered_order_ids`` orders accepted (the fast path of a retry).

The drop copy lags the engine by a few milliseconds, so the gateway also counts its own orders: an answer of
SubmitOrder whose order rests and whose acceptance the log has not reached yet (:meth:`RiskState.placed`) counts as
open until the log's ``accepted`` event takes over (it sets the order's shares from scratch, then its trades follow),
and orders between their checks and the engine's answer count as in flight (:meth:`RiskState.reserve`), so N
concurrent orders of one account cannot all pass ``max_open_orders``.

:func:`check` runs, in order: ``price_band`` (a limit price at most ``price_band_pct`` % from the reference: the last
trade, else the instrument's ``reference_price_minor``; market orders are not price-checked), ``max_notional``
(price x quantity, a market order at the reference), ``max_open_orders``. A refusal is :class:`Refused`
(FAILED_PRECONDITION, the message starting with the check's name).
"""

from __future__ import annotations

from collections import OrderedDict

from casemesh.trading.v1 import trading_pb2

from ...runtime.errors import FailedPrecondition
from .settings import GatewaySettings
from .validation import PlaceOrder

PRICE_BAND, MAX_NOTIONAL, MAX_OPEN_ORDERS = "price_band", "max_notional", "max_open_orders"
CHECKS = (PRICE_BAND, MAX_NOTIONAL, MAX_OPEN_ORDERS)
_RESTING = (trading_pb2.ORDER_STATUS_NEW, trading_pb2.ORDER_STATUS_PARTIALLY_FILLED)


class Refused(FailedPrecondition):
    """A risk check refused an order: FAILED_PRECONDITION ``"<check>: <why>"``."""

    def __init__(self, check: str, reason: str) -> None:
        self.check = check
        super().__init__(f"{check}: {reason}")


class RiskState:
    """The engine as the gateway's risk checks see it (module docstring). All methods are synchronous."""

    def __init__(self, remembered_order_ids: int) -> None:
        #: The last sequence applied from the log.
        self.sequence = 0
        self._last_trade: dict[str, int] = {}
        #: Resting order id -> [account_id, shares left].
        self._resting: dict[str, list] = {}
        self._open: dict[str, set[str]] = {}
        self._in_flight: dict[str, int] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered_order_ids

    # The drop copy.

    def apply(self, event) -> None:
        """Apply one event of the engine's log (``EngineEvent``), in sequence order (the feed's handler)."""
        kind = event.WhichOneof("kind")
        if kind == "trade":
            trade = event.trade
            self._last_trade[trade.symbol] = trade.price_minor
            self._fill(trade.maker_order_id, trade.quantity)
            self._fill(trade.taker_order_id, trade.quantity)
        elif kind == "accepted":
            order = event.accepted
            self._remember(order.order_id)
            if order.type == trading_pb2.ORDER_TYPE_LIMIT:
                self._rest(order.order_id, order.account_id, order.quantity)
        elif kind == "cancelled":
            self._remove(event.cancelled.order_id)
        self.sequence = event.sequence

    def placed(self, order) -> None:
        """The engine answered SubmitOrder with ``order`` (an ``Order``). When the log has not reached its acceptance
        yet, remember its id and, if it rests, count it open until then (the ``accepted`` event sets its shares from
        scratch, and its trades follow)."""
        if order.accepted_sequence > self.sequence:
            self._remember(order.order_id)
            if order.status in _RESTING:
                self._rest(order.order_id, order.account_id, order.quantity - order.filled_quantity)

    # What the checks read.

    def seen(self, order_id: str) -> bool:
        """True when the order is one of the newest ``remembered_order_ids`` the engine accepted."""
        return order_id in self._seen

    def reference_price(self, symbol: str, default: int) -> int:
        """The symbol's last trade price, else ``default`` (the instrument's reference price), minor units."""
        return self._last_trade.get(symbol, default)

    def open_orders(self, account_id: str) -> int:
        """The account's resting orders, plus its orders between their checks and the engine's answer."""
        return len(self._open.get(account_id, ())) + self._in_flight.get(account_id, 0)

    def reserve(self, account_id: str) -> None:
        """An order of the account passed its checks and goes to the engine: count it until :meth:`release`."""
        self._in_flight[account_id] = self._in_flight.get(account_id, 0) + 1

    def release(self, account_id: str) -> None:
        """The engine answered (or failed) the order :meth:`reserve` counted."""
        left = self._in_flight[account_id] - 1
        if left:
            self._in_flight[account_id] = left
        else:
            del self._in_flight[account_id]

    # Bookkeeping.

    def _remember(self, order_id: str) -> None:
        seen = self._seen
        if order_id not in seen:
            seen[order_id] = None
            if len(seen) > self._remembered:
                seen.popitem(last=False)

    def _rest(self, order_id: str, account_id: str, shares: int) -> None:
        self._resting[order_id] = [account_id, shares]
        self._open.setdefault(account_id, set()).add(order_id)

    def _fill(self, order_id: str, shares: int) -> None:
        resting = self._resting.get(order_id)
        if resting is not None:
            resting[1] -= shares
            if resting[1] <= 0:
                self._remove(order_id)

    def _remove(self, order_id: str) -> None:
        resting = self._resting.pop(order_id, None)
        if resting is None:
            return
        account = resting[0]
        ids = self._open[account]
        ids.discard(order_id)
        if not ids:
            del self._open[account]


def check(order: PlaceOrder, state: RiskState, settings: GatewaySettings) -> None:
    """Run the risk checks on a new order (module docstring); :class:`Refused` names the first that refuses it."""
    instrument = order.instrument
    reference = state.reference_price(instrument.symbol, instrument.reference_price_minor)
    if order.type == trading_pb2.ORDER_TYPE_LIMIT:
        price = order.price_minor
        band_pct = settings.price_band_pct
        if abs(price - reference) * 100 > band_pct * reference:
            raise Refused(PRICE_BAND, f"limit price {price} is more than {band_pct:g}% from {instrument.symbol}'s "
                                      f"reference price {reference} (the last trade, else the listing's reference)")
    else:
        price = reference
    notional = price * order.quantity
    if notional > settings.max_notional_minor:
        raise Refused(MAX_NOTIONAL, f"{order.quantity:,} x {price:,} = {notional:,} minor units is over the limit of "
                                    f"{settings.max_notional_minor:,}")
    open_orders = state.open_orders(order.account_id)
    if open_orders >= settings.max_open_orders:
        raise Refused(MAX_OPEN_ORDERS, f"account {order.account_id} has {open_orders:,} open orders; at most "
                                       f"{settings.max_open_orders:,}")

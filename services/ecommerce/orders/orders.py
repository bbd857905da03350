"""The checkout service without gRPC: Checkout (idempotency keys, the cart's lines, claims), GetOrder, ListOrders, and
the resumption of PENDING orders.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions", "Consistency: Inventory counts must be accurate (no overselling)"). The
invariant this module exists for: **one idempotency key makes at most one order, and one cart line is sold at most
once** — also when the buyer retries, double-clicks with two keys, or this service dies mid-checkout. The key
protocol is banking-transfers' (services/banking/transfers/transfers.py, after Stripe's idempotency keys).

Checkout (every write is fsynced before the next step):

1. validate (:mod:`.validation`: INVALID_ARGUMENT naming ``idempotency_key``, ``user_id`` or ``card_token``); a call of
   this process holds the (buyer, key) → ABORTED (retry it);
2. the key's order (found by (buyer, key) in :mod:`.store`): another card token → FAILED_PRECONDITION ``key_reused``;
   decided → that order (a replay); PENDING → its saga is resumed where it stands (:mod:`.saga`);
3. no order: one buyer's new checkouts claim lines one at a time (a lock per buyer): CartService.GetCart; lines whose
   reservation a CONFIRMED order took are dropped (sold: a ClearLines that was lost; they are cleared again, best
   effort); a line a PENDING order took → ABORTED (another checkout of this cart is in flight: retry, and it will see
   that order's outcome); nothing left → FAILED_PRECONDITION ``empty_cart``; the order, id ``ord_…`` derived from
   (buyer, key) (:mod:`.ids`), is written PENDING at step ``reserve`` with its lines and its claims on their
   reservations, before anything else is asked;
4. the saga runs (:meth:`.saga.Saga.run`): CONFIRMED or FAILED is the answer. A dependency that does not answer →
   UNAVAILABLE; the order stays PENDING and the retry with the same key (or :mod:`.recovery`) finishes it.

GetOrder returns any order, PENDING ones too (NOT_FOUND naming ``order_id``); ListOrders a buyer's orders newest first,
paged by ``services/runtime/page_tokens`` (listing ``orders``, scope the buyer, cursor its last order's creation time
and id).

Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`.calls.Unavailable` (UNAVAILABLE), as
protos/casemesh/ecommerce/v1/orders.proto lists them per RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from casemesh.ecommerce.v1 import orders_pb2

from ...runtime import page_tokens
from ...runtime.errors import Aborted, FailedPrecondition, NotFound
from ...runtime.keyed_locks import KeyedLocks
from ..contract import CURRENCY_MISMATCH, EMPTY_CART, KEY_REUSED
from . import ids, metrics, validation
from .calls import DependencyUnavailable, Refused
from .cart import Cart
from .gateway import Gateway
from .inventory import Inventory
from .saga import Saga
from .settings import OrderSettings
from .store import PENDING, RESERVE, Line, OrderRow, OrderStore, insert_order

log = logging.getLogger("casemesh.ecommerce.orders.orders")

Scope = tuple[str, str]
#: The page-token listing of ListOrders.
PAGE_KIND = "orders"


class Orders:
    """The service's domain (see the module docstring): ``store`` its records, the three services' clients, ``id_key``
    the key of :mod:`.ids`. ``clock()`` is seconds since the Unix epoch."""

    def __init__(self, settings: OrderSettings, store: OrderStore, cart: Cart, inventory: Inventory,
                 gateway: Gateway, *, id_key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.saga = Saga(settings, store, cart, inventory, gateway, clock)
        self._cart = cart
        self._id_key = id_key
        self._held: set[Scope] = set()
        self._buyers = KeyedLocks()

    def now_ms(self) -> int:
        """The clock in whole Unix milliseconds."""
        return self.saga.now_ms()

    async def start(self) -> int:
        """Set the PENDING gauge from the store; how many orders are PENDING."""
        pending = await self.store.count_pending()
        metrics.PENDING.set(pending)
        return pending

    async def close(self) -> None:
        """Close the store (queued writes finish first)."""
        await self.store.close()

    # -- keys -------------------------------------------------------------------------------------------------------

    def held(self, row: OrderRow) -> bool:
        """Whether a call of this process holds ``row``'s key."""
        return (row.user_id, row.idempotency_key) in self._held

    @contextlib.contextmanager
    def _claim(self, scope: Scope):
        """Hold (buyer, key) for the block; ABORTED while another call holds it (checked before anything awaits)."""
        if scope in self._held:
            raise Aborted("idempotency_key: a checkout with this key is in flight; retry it")
        self._held.add(scope)
        try:
            yield
        finally:
            self._held.discard(scope)

    # -- Checkout ---------------------------------------------------------------------------------------------------

    async def checkout(self, request: orders_pb2.CheckoutRequest) -> orders_pb2.CheckoutResponse:
        """Checkout (see the module docstring): the order CONFIRMED or FAILED. INVALID_ARGUMENT; FAILED_PRECONDITION
        ``empty_cart`` or ``key_reused``; ABORTED; :class:`.calls.Unavailable`."""
        v = validation.checkout(request)
        with self._claim((v.user_id, v.idempotency_key)):
            row = await self.store.by_key(v.user_id, v.idempotency_key)
            if row is None:
                row = await self._new_order(v)
            elif row.card_token != v.card_token:
                raise FailedPrecondition(f"{KEY_REUSED}: idempotency_key was used by order {row.order_id} for "
                                         "another card_token")
            elif row.state != PENDING:
                metrics.REPLAYS.inc()
                return orders_pb2.CheckoutResponse(order=row.to_proto())
            row = await self.saga.run(row)
        return orders_pb2.CheckoutResponse(order=row.to_proto())

    async def _new_order(self, v: validation.Checkout) -> OrderRow:
        """Claim the cart's lines for a new order, written PENDING (see the module docstring, step 3)."""
        async with self._buyers.hold(v.user_id):
            try:
                cart = await self._cart.get_cart(v.user_id)
            except Refused as refusal:
                raise DependencyUnavailable(f"ecommerce-cart refused GetCart: {refusal}") from None
            claims = await self.store.claims(line.reservation_id for line in cart.lines)
            for order_id, state in claims.values():
                if state == PENDING:
                    raise Aborted(f"another checkout of this cart, order {order_id}, is in flight; retry")
            if claims:  # sold by a CONFIRMED order whose ClearLines was lost
                await self._clear_sold(v.user_id, list(claims))
            kept = [line for line in cart.lines if line.reservation_id not in claims]
            if not kept:
                raise FailedPrecondition(f"{EMPTY_CART}: the cart of {v.user_id} has nothing to check out")
            currencies = {line.unit_price.currency_code for line in kept}
            if len(currencies) != 1:
                raise FailedPrecondition(f"{CURRENCY_MISMATCH}: the cart of {v.user_id} mixes {sorted(currencies)}")
            lines = [Line(line.product_id, line.quantity, line.unit_price.amount_minor, line.reservation_id)
                     for line in kept]
            row = OrderRow(ids.order_id(self._id_key, v.user_id, v.idempotency_key), v.user_id, v.idempotency_key,
                           v.card_token, tuple(lines), currencies.pop(),
                           sum(line.quantity * line.unit_price_minor for line in lines), PENDING, RESERVE, 0, "", 0,
                           self.now_ms(), 0)
            await asyncio.shield(self._insert(row))
        return row

    async def _insert(self, row: OrderRow) -> None:
        await self.store.write(insert_order(row))
        metrics.PENDING.inc()

    async def _clear_sold(self, user_id: str, reservation_ids: list[str]) -> None:
        """Take lines a CONFIRMED order sold out of the cart again; best effort (logged)."""
        log.warning("the cart of %s still holds the sold reservations %s; clearing them", user_id, reservation_ids)
        with contextlib.suppress(Refused, DependencyUnavailable):
            await self._cart.clear_lines(user_id, reservation_ids)

    # -- GetOrder, ListOrders ---------------------------------------------------------------------------------------

    async def get_order(self, request: orders_pb2.GetOrderRequest) -> orders_pb2.GetOrderResponse:
        """GetOrder: the order as stored. INVALID_ARGUMENT ``order_id``; NOT_FOUND; :class:`.store.StoreUnavailable`."""
        order_id = validation.order_id(request.order_id)
        row = await self.store.get(order_id)
        if row is None:
            raise NotFound(f"order_id: no order {order_id}")
        return orders_pb2.GetOrderResponse(order=row.to_proto())

    async def list_orders(self, request: orders_pb2.ListOrdersRequest) -> orders_pb2.ListOrdersResponse:
        """ListOrders: a page of a buyer's orders, newest first. INVALID_ARGUMENT ``user_id``, ``page_size`` or
        ``page_token``; :class:`.store.StoreUnavailable`."""
        v = validation.list_orders(request)
        before = None
        if v.page_token:
            position = page_tokens.decode(v.page_token, PAGE_KIND, v.user_id, {"t": int, "o": str})
            before = (position["t"], position["o"])
        rows = await self.store.by_user(v.user_id, v.page_size + 1, before)
        token = ""
        if len(rows) > v.page_size:
            rows = rows[:v.page_size]
            token = page_tokens.encode(PAGE_KIND, v.user_id, {"t": rows[-1].created_at_unix_ms,
                                                              "o": rows[-1].order_id})
        return orders_pb2.ListOrdersResponse(orders=[row.to_proto() for row in rows], next_page_token=token)

    # -- resumption -------------------------------------------------------------------------------------------------

    async def resume(self, row: OrderRow) -> OrderRow | None:
        """Finish (or compensate) the PENDING ``row`` unless a call holds its key or it was decided since: the
        decided row, or ``None``. :class:`.calls.Unavailable` (it stays PENDING)."""
        if self.held(row):
            return None
        with self._claim((row.user_id, row.idempotency_key)):
            current = await self.store.get(row.order_id)
            if current is None or current.state != PENDING:
                return None
            return await self.saga.run(current)


"""The carts without gRPC: SetItem, GetCart and ClearLines over the catalogue's and the inventory's clients.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 503, 512, 520 and 529:
"Shopping cart with real-time inventory checks", "Consistency: Inventory counts must be accurate (no overselling)",
"Cart Service: Redis for session, real-time inventory reservation", "Inventory reservation: Optimistic locking with
TTL"; ``reserve_stock(product_id, quantity, user_id, ttl=600)`` and ``release_reservation``, lines 541-585). What is in
a cart is held for the buyer: every line points at a HELD reservation of its units in ecommerce-inventory, so a
checkout of the cart finds them (until the reservation's TTL runs out, the inventory's ``reservation_ttl_s``).

Carts live in memory, like the seed's Redis sessions: a restart of this service empties them, and their reservations
run out with their TTL. A cart is an insertion-ordered map product → line (lines in first-added order; a line set
again keeps its place); an emptied cart is dropped. The calls of one buyer run one at a time (an ``asyncio.Lock`` per
user, ``services/runtime/keyed_locks.py``); GetCart reads without waiting (a cart only changes between awaits).

SetItem with a quantity (1 to 1,000), make before break:

1. GetProduct from the catalogue (NOT_FOUND naming ``product_id``): the line's unit price is the product's price now;
2. FAILED_PRECONDITION ``currency_mismatch`` when the product's currency is not that of the cart's other lines, then
   ``cart_full`` for a product not in a cart of 50 lines;
3. Reserve ``quantity`` units under a **new** reservation ID (``contract.new_reservation_id``, ``ttl_ms`` 0): the
   inventory's FAILED_PRECONDITION ``out_of_stock`` is answered as it is, the cart unchanged. Reserve without an
   answer (UNAVAILABLE, a deadline): UNAVAILABLE, the cart unchanged, and the new ID is released in the background
   (it may have been held for no line; a release that fails too is counted, the TTL reclaims it); the same when the
   call is cancelled while it waits for the Reserve (its caller gave up);
4. the line now holds the new reservation (``reserved_until_unix_ms`` its expiry);
5. only then the line's previous reservation, if any, is released: best effort, as the cart has changed already; a
   release without an answer is counted (``casemesh_ecommerce_cart_release_failures_total{kind="replaced"}``) and its
   TTL gives the units back; a refusal (the reservation was committed by a checkout meanwhile, or is gone) is not
   a failure: the cart no longer holds those units either way.

Setting a line to the quantity it has reserves the line's own reservation again instead (step 3 with its ID: the
inventory extends it to a full TTL, or holds its units anew if it expired), so a buyer holding the last units can
refresh them; a reservation released meanwhile (a failed checkout's compensation) is replaced by a new one.

A line's change is never a moment without units held (no other buyer can take them between release and reserve),
at the price that both reservations are held for the length of the call: a new quantity needs that many units
available besides the ones the line holds.

SetItem with quantity 0: Release the line's reservation, then remove the line (no line: nothing to do). The inventory
without an answer: UNAVAILABLE, the cart unchanged; a refusal (committed, or unknown): the line is removed all the
same.

ClearLines (ecommerce-orders, once an order took the lines): removes the lines holding the given reservation IDs,
without releasing them (the order commits or releases them); IDs not in the cart are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import cart_pb2, ecommerce_pb2

from ...runtime.errors import FailedPrecondition, NotFound, Unavailable
from ...runtime.keyed_locks import KeyedLocks
from .. import contract
from . import metrics, validation
from .catalog_client import Catalogue
from .inventory_client import Inventory, InventoryUnavailable, OutOfStock

log = logging.getLogger("casemesh.ecommerce.cart.carts")

#: The currency of an empty cart's zero total (cart.proto: "zero in USD for an empty cart").
EMPTY_CART_CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a cart: ``quantity`` units at ``unit_price_minor`` (minor units of ``currency_code``) each, held by
    ``reservation_id`` until ``reserved_until_unix_ms`` (Unix ms)."""

    product_id: str
    quantity: int
    currency_code: str
    unit_price_minor: int
    reservation_id: str
    reserved_until_unix_ms: int

    def to_proto(self) -> ecommerce_pb2.CartLine:
        """The ``casemesh.ecommerce.v1.CartLine`` of this line."""
        return ecommerce_pb2.CartLine(
            product_id=self.product_id, quantity=self.quantity,
            unit_price=money_pb2.Money(currency_code=self.currency_code, amount_minor=self.unit_price_minor),
            reservation_id=self.reservation_id, reserved_until_unix_ms=self.reserved_until_unix_ms)


def _outcome(error: Exception) -> str:
    """The ``set_item`` metric's outcome of a SetItem that failed with ``error``."""
    if isinstance(error, OutOfStock):
        return "out_of_stock"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, FailedPrecondition):
        reason = contract.failed_precondition_reason(str(error))
        return reason if reason in (contract.CART_FULL, contract.CURRENCY_MISMATCH) else "refused"
    if isinstance(error, Unavailable):
        return "unavailable"
    return "refused"


class Carts:
    """Every buyer's cart (see the module docstring), over ``catalogue`` and ``inventory`` (their clients, or fakes)."""

    def __init__(self, catalogue: Catalogue, inventory: Inventory) -> None:
        self._catalogue = catalogue
        self._inventory = inventory
        self._carts: dict[str, dict[str, Line]] = {}
        self._line_count = 0
        self._locks = KeyedLocks()
        self._background: set[asyncio.Task[None]] = set()
        self._gauges()

    # -- reads --------------------------------------------------------------------------------------------------------

    def cart(self, user_id: str) -> ecommerce_pb2.Cart:
        """``user_id``'s cart: lines in first-added order, total the sum of quantity times unit price (zero USD when
        empty)."""
        lines = list(self._carts.get(user_id, {}).values())
        currency = lines[0].currency_code if lines else EMPTY_CART_CURRENCY
        total = sum(line.quantity * line.unit_price_minor for line in lines)
        return ecommerce_pb2.Cart(user_id=user_id, lines=[line.to_proto() for line in lines],
                                  total=money_pb2.Money(currency_code=currency, amount_minor=total))

    def get_cart(self, request: cart_pb2.GetCartRequest) -> cart_pb2.GetCartResponse:
        """GetCart: the buyer's cart (empty when there is none)."""
        return cart_pb2.GetCartResponse(cart=self.cart(validation.user_id(request.user_id)))

    # -- writes -------------------------------------------------------------------------------------------------------

    async def set_item(self, request: cart_pb2.SetItemRequest) -> cart_pb2.SetItemResponse:
        """SetItem (see the module docstring)."""
        item = validation.set_item(request)
        async with self._locks.hold(item.user_id):
            try:
                if item.quantity:
                    await self._set(item)
                else:
                    await self._remove(item.user_id, item.product_id)
            except Exception as error:
                metrics.SET_ITEMS.labels(_outcome(error)).inc()
                raise
            metrics.SET_ITEMS.labels("set" if item.quantity else "removed").inc()
            return cart_pb2.SetItemResponse(cart=self.cart(item.user_id))

    async def clear_lines(self, request: cart_pb2.ClearLinesRequest) -> cart_pb2.ClearLinesResponse:
        """ClearLines: remove the lines holding the given reservations, without releasing them."""
        clear = validation.clear_lines(request)
        async with self._locks.hold(clear.user_id):
            lines = self._carts.get(clear.user_id, {})
            self._drop(clear.user_id, [product_id for product_id, line in lines.items()
                                       if line.reservation_id in clear.reservation_ids])
            return cart_pb2.ClearLinesResponse(cart=self.cart(clear.user_id))

    async def _set(self, item: validation.SetItem) -> None:
        product = await self._catalogue.get_product(item.product_id)
        price = product.price
        lines = self._carts.get(item.user_id, {})
        other = next((line for line in lines.values() if line.product_id != item.product_id), None)
        if other is not None and other.currency_code != price.currency_code:
            raise FailedPrecondition(f"{contract.CURRENCY_MISMATCH}: product {item.product_id!r} is priced in "
                                     f"{price.currency_code}, the cart's other lines in {other.currency_code}")
        previous = lines.get(item.product_id)
        if previous is None and len(lines) >= contract.MAX_CART_LINES:
            raise FailedPrecondition(f"{contract.CART_FULL}: the cart holds {contract.MAX_CART_LINES} lines, the "
                                     "most it may")
        if previous is not None and previous.quantity == item.quantity and await self._extend(item, previous, price):
            return
        reservation_id = contract.new_reservation_id()
        try:
            reservation = await self._inventory.reserve(reservation_id, item.product_id, item.quantity)
        except (InventoryUnavailable, asyncio.CancelledError):  # no answer, or the caller gave up waiting for it
            self._in_background(self._release_quietly(reservation_id, "abandoned"))
            raise
        lines = self._carts.setdefault(item.user_id, {})
        lines[item.product_id] = Line(item.product_id, item.quantity, price.currency_code, price.amount_minor,
                                      reservation_id, reservation.expires_at_unix_ms)
        self._line_count += previous is None
        self._gauges()
        if previous is not None:
            await self._release_quietly(previous.reservation_id, "replaced")

    async def _extend(self, item: validation.SetItem, line: Line, price: money_pb2.Money) -> bool:
        """Reserve the line's own reservation again (the same units: extended, or held anew if it expired); False
        when it was released (by a failed checkout's compensation), so the caller holds a new one."""
        try:
            reservation = await self._inventory.reserve(line.reservation_id, item.product_id, item.quantity)
        except FailedPrecondition as error:
            if contract.failed_precondition_reason(str(error)) != contract.RESERVATION_RELEASED:
                raise
            return False
        self._carts[item.user_id][item.product_id] = Line(item.product_id, item.quantity, price.currency_code,
                                                           price.amount_minor, line.reservation_id,
                                                           reservation.expires_at_unix_ms)
        return True

    async def _remove(self, user_id: str, product_id: str) -> None:
        line = self._carts.get(user_id, {}).get(product_id)
        if line is None:
            return
        # InventoryUnavailable propagates: UNAVAILABLE, the line kept (retry).
        with contextlib.suppress(FailedPrecondition, NotFound):  # committed by a checkout, or unknown: not held
            await self._inventory.release(line.reservation_id)
        self._drop(user_id, [product_id])

    def _drop(self, user_id: str, product_ids: Iterable[str]) -> None:
        lines = self._carts.get(user_id)
        if lines is None:
            return
        for product_id in product_ids:
            if lines.pop(product_id, None) is not None:
                self._line_count -= 1
        if not lines:
            del self._carts[user_id]
        self._gauges()

    def _gauges(self) -> None:
        metrics.CARTS.set(len(self._carts))
        metrics.LINES.set(self._line_count)

    # -- releases that no answer waits for ------------------------------------------------------------------------------

    async def _release_quietly(self, reservation_id: str, kind: str) -> None:
        """Release a reservation no line holds any more (``kind`` ``replaced``) or that may be held for no line
        (``abandoned``: its Reserve got no answer). A release without an answer is counted: the TTL gives the units
        back; a refusal (committed by a checkout meanwhile, never held, or gone) leaves nothing held for this cart."""
        try:
            await self._inventory.release(reservation_id)
        except (FailedPrecondition, NotFound):
            pass
        except Unavailable as error:
            metrics.RELEASE_FAILURES.labels(kind).inc()
            log.warning("the %s reservation %s was not released (its TTL will): %s", kind, reservation_id, error)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        # A fresh context: not bounded by the deadline of the request that spawned it.
        task = asyncio.create_task(work, name="ecommerce-cart-release", context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Wait for the background releases (each bounded by the inventory's timeout)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

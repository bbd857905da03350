"""The checkout saga: one order's steps and their compensations, each recorded durably before the next.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions", "Consistency: Inventory counts must be accurate (no overselling)",
``reserve_stock(..., ttl=600)``, confirm_reservation, release_reservation) and seed 003 "Amazon E-commerce"
(shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1270-1290: processOrder reserves, pays, confirms, and on a failure runs
the compensating transactions of what was done, in reverse). A saga (Garcia-Molina and Salem, "Sagas", SIGMOD 1987)
replaces one distributed transaction by local steps, each with a compensating step; here every step is a call to
another service that is idempotent by construction (the cart's reservation ids; payment idempotency keys derived from
the order, :mod:`.ids`), so a step re-run after a crash or a lost answer does nothing twice, and the order's row
(:mod:`.store`) says which step to run next. :meth:`Saga.run` drives a PENDING order from its recorded step:

1. ``reserve``: InventoryService.Reserve every line's reservation again (same product and units, ``ttl_ms`` the
   setting ``checkout_hold_ms``): a HELD one is extended, an EXPIRED one held anew if its units are there. A refusal
   (``out_of_stock``, ``reservation_released``, the id used otherwise) or a reservation already COMMITTED (not held for
   this order) → compensate, ``OUT_OF_STOCK``. All held → step ``pay``, with the earliest end of the holds;
2. ``pay``: PaymentGatewayService.Authorize (``capture=false``, merchant ``contract.MERCHANT_ID``, the order's total,
   ``customer_id`` the buyer, key ``<order_id>:authorize``): AUTHORIZED → step ``commit`` with the payment id;
   DECLINED, or a refusal (an unknown card token: nothing is held) → compensate, ``PAYMENT_DECLINED``;
3. ``commit``: when the earliest hold ends within ``rehold_margin_s`` (an order resumed after an outage), every line is
   held again first, so that none runs out between two commits (a refusal then → compensate,
   ``RESERVATION_EXPIRED``); then InventoryService.Commit of every line: a refusal (``reservation_expired``,
   ``reservation_released``) → compensate, ``RESERVATION_EXPIRED``; all committed → step ``capture``;
4. ``capture``: PaymentGatewayService.Capture (key ``<order_id>:capture``): CAPTURED → CONFIRMED (recorded), then
   CartService.ClearLines of the order's lines (best effort: a line left behind is dropped by the next checkout,
   whose claim finds it sold, :mod:`.orders`). A refusal (the acquirer would not capture) → compensate,
   ``PAYMENT_DECLINED``.

Compensation (the failure reason is recorded first, so a crash resumes the compensation, never the forward steps), in
reverse: Void of the authorisation when the order reached ``commit`` (key ``<order_id>:void``; a refusal means nothing
is held any more); Release of every line's reservation (RELEASED or EXPIRED: nothing held; NOT_FOUND: never held);
then FAILED, recorded with its claims dropped, and its lines taken out of the cart (ClearLines, best effort: a line
whose reservation was released holds nothing, and the cart's contract is that what it shows can be checked out; the
buyer adds the product again to hold it anew). The commit cannot be all-or-nothing across lines (each line is its own
call), so the saga makes a partial commit unlikely (every hold extended right before committing, and a cart line
belongs to one live order at a time) and undoes it when it happens anyway: a line of an order past ``commit`` whose
Release answers ``reservation_committed`` was committed by this order (only this order may commit its claimed
reservations), and its units go back to the stock by InventoryService.Restock (id ``<order_id>-<line>``, applied once),
counted in ``casemesh_ecommerce_orders_compensations_total{kind="restock"}`` and ``..._restocked_units_total``. The
order is FAILED with nothing held and nothing charged; the stock's ``stocked`` grows by the units sold and given back.

Any step whose service does not answer (:class:`.calls.DependencyUnavailable`) leaves the order PENDING at that step
(the caller answers UNAVAILABLE); the buyer's retry with the same key, or the recovery (:mod:`.recovery`), runs it
again. A refusal always wins over an outage within one step (the order will fail whatever the others answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from casemesh.ecommerce.v1 import ecommerce_pb2
from casemesh.payments.v1 import payments_pb2

from ..contract import MERCHANT_ID, RESERVATION_COMMITTED
from . import ids, metrics
from .calls import DependencyUnavailable, Refused
from .cart import Cart
from .gateway import Gateway
from .inventory import Inventory
from .settings import OrderSettings
from .store import (
    CAPTURE,
    COMMIT,
    CONFIRMED,
    FAILED,
    PAY,
    PENDING,
    RESERVE,
    Line,
    OrderRow,
    OrderStore,
    decide,
    progress,
)

log = logging.getLogger("casemesh.ecommerce.orders.saga")

T = TypeVar("T")
OUT_OF_STOCK = ecommerce_pb2.ORDER_FAILURE_OUT_OF_STOCK
RESERVATION_EXPIRED = ecommerce_pb2.ORDER_FAILURE_RESERVATION_EXPIRED
PAYMENT_DECLINED = ecommerce_pb2.ORDER_FAILURE_PAYMENT_DECLINED
HELD = ecommerce_pb2.RESERVATION_STATUS_HELD
COMMITTED = ecommerce_pb2.RESERVATION_STATUS_COMMITTED


def failure_name(reason: int) -> str:
    """``out_of_stock`` for ORDER_FAILURE_OUT_OF_STOCK."""
    return ecommerce_pb2.OrderFailure.Name(reason).removeprefix("ORDER_FAILURE_").lower()


async def each(calls: Sequence[Awaitable[T]]) -> list[T | Refused | DependencyUnavailable]:
    """Run ``calls`` side by side: each one's result, or its :class:`.calls.Refused` or
    :class:`.calls.DependencyUnavailable`; any other exception is raised as it is (after all of them ended)."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, (Refused, DependencyUnavailable)):
            raise outcome
    return outcomes


def refusals(outcomes: Sequence[object]) -> list[Refused]:
    """The refusals among ``outcomes``."""
    return [outcome for outcome in outcomes if isinstance(outcome, Refused)]


def raise_unavailable(outcomes: Sequence[object]) -> None:
    """Raise the first :class:`.calls.DependencyUnavailable` among ``outcomes``, if any."""
    for outcome in outcomes:
        if isinstance(outcome, DependencyUnavailable):
            raise outcome


class Saga:
    """Runs orders' sagas (see the module docstring) over ``store`` and the three services' clients. ``clock()`` is
    seconds since the Unix epoch."""

    def __init__(self, settings: OrderSettings, store: OrderStore, cart: Cart, inventory: Inventory,
                 gateway: Gateway, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self._cart = cart
        self._inventory = inventory
        self._gateway = gateway
        self._clock = clock
        self._rehold_margin_ms = int(settings.rehold_margin_s * 1000)

    def now_ms(self) -> int:
        """``clock()`` in whole Unix milliseconds."""
        return int(self._clock() * 1000)

    async def run(self, row: OrderRow) -> OrderRow:
        """Drive the PENDING ``row`` to CONFIRMED or FAILED from its recorded step, then take its lines out of the
        cart; the decided row.
        :class:`.calls.Unavailable` (a dependency or the store): the order stays PENDING where it got to."""
        while row.state == PENDING:
            if row.compensating:
                row = await self._timed("compensate", self._compensate(row))
            elif row.step == RESERVE:
                row = await self._timed("reserve", self._reserve(row))
            elif row.step == PAY:
                row = await self._timed("pay", self._pay(row))
            elif row.step == COMMIT:
                row = await self._timed("commit", self._commit(row))
            else:
                row = await self._timed("capture", self._capture(row))
        await self._clear_cart(row)
        return row

    @staticmethod
    async def _timed(step: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await work
        finally:
            metrics.STEP_SECONDS.labels(step).observe(time.perf_counter() - started)

    # -- records -------------------------------------------------------------------------------------------------------

    async def _advance(self, row: OrderRow, **changes) -> OrderRow:
        """``row`` with ``changes``, written (fsynced) before it is returned; a cancelled caller does not stop it."""
        row = replace(row, **changes)
        await asyncio.shield(self.store.write(progress(row)))
        return row

    async def _fail(self, row: OrderRow, reason: int, **changes) -> OrderRow:
        """Record that ``row`` is being compensated for ``reason`` (an ``OrderFailure``)."""
        log.info("order %s fails (%s) at step %s; compensating", row.order_id, failure_name(reason), row.step)
        return await self._advance(row, failure_reason=reason, **changes)

    async def _decide(self, row: OrderRow, state: str) -> OrderRow:
        """Record ``row``'s decision and count it."""
        row = replace(row, state=state, decided_at_unix_ms=self.now_ms())
        await asyncio.shield(self.store.write(decide(row)))
        metrics.PENDING.dec()
        if state == CONFIRMED:
            metrics.CHECKOUTS.labels("confirmed", "none").inc()
        else:
            metrics.CHECKOUTS.labels("failed", failure_name(row.failure_reason)).inc()
        return row

    # -- forward steps ---------------------------------------------------------------------------------------------

    async def _hold(self, lines: Sequence[Line]) -> list[ecommerce_pb2.Reservation | Refused | DependencyUnavailable]:
        """Reserve every line again for ``checkout_hold_ms`` (outcomes as :func:`each`)."""
        return await each([self._inventory.reserve(line.reservation_id, line.product_id, line.quantity,
                                                   self.settings.checkout_hold_ms) for line in lines])

    @staticmethod
    def _held_until(outcomes: Sequence[object]) -> int:
        """The earliest end (Unix ms) of the HELD reservations among ``outcomes``, 0 when none is HELD."""
        return min((o.expires_at_unix_ms for o in outcomes
                    if isinstance(o, ecommerce_pb2.Reservation) and o.status == HELD), default=0)

    def _refused(self, row: OrderRow, outcomes: Sequence[object], allowed: Sequence[int]) -> bool:
        """Whether a call of ``outcomes`` was refused or answered a reservation in a status not in ``allowed``
        (logged); else raise the first :class:`.calls.DependencyUnavailable`, if any. A refusal wins: the step fails
        whatever the calls without an answer did."""
        refused = [str(refusal) for refusal in refusals(outcomes)] + [
            f"reservation {o.reservation_id} is {ecommerce_pb2.ReservationStatus.Name(o.status)}" for o in outcomes
            if isinstance(o, ecommerce_pb2.Reservation) and o.status not in allowed]
        for refusal in refused:
            log.info("order %s at step %s: %s", row.order_id, row.step, refusal)
        if not refused:
            raise_unavailable(outcomes)
        return bool(refused)

    async def _reserve(self, row: OrderRow) -> OrderRow:
        outcomes = await self._hold(row.lines)
        if self._refused(row, outcomes, (HELD,)):  # a COMMITTED one is not held for this order
            return await self._fail(row, OUT_OF_STOCK)
        return await self._advance(row, step=PAY, held_until_unix_ms=self._held_until(outcomes))

    async def _pay(self, row: OrderRow) -> OrderRow:
        try:
            payment = await self._gateway.authorize(
                ids.payment_key(row.order_id, ids.AUTHORIZE), row.card_token, row.currency_code, row.total_minor,
                row.user_id, f"{MERCHANT_ID} order {row.order_id}")
        except Refused as refusal:  # nothing held: an unknown card token, or a payment the gateway will not take
            log.info("order %s: %s", row.order_id, refusal)
            return await self._fail(row, PAYMENT_DECLINED)
        if payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED:
            return await self._advance(row, step=COMMIT, payment_id=payment.payment_id)
        if payment.status == payments_pb2.PAYMENT_STATUS_DECLINED:
            return await self._fail(row, PAYMENT_DECLINED, payment_id=payment.payment_id)
        raise DependencyUnavailable(f"Authorize answered payment {payment.payment_id} "
                                    f"{payments_pb2.PaymentStatus.Name(payment.status)}; retry with the same key")

    async def _commit(self, row: OrderRow) -> OrderRow:
        if row.held_until_unix_ms - self.now_ms() < self._rehold_margin_ms:
            outcomes = await self._hold(row.lines)
            if self._refused(row, outcomes, (HELD, COMMITTED)):  # COMMITTED: by this order, before a crash
                return await self._fail(row, RESERVATION_EXPIRED)
            row = replace(row, held_until_unix_ms=self._held_until(outcomes))
        outcomes = await each([self._inventory.commit(line.reservation_id) for line in row.lines])
        if self._refused(row, outcomes, (COMMITTED,)):
            return await self._fail(row, RESERVATION_EXPIRED)
        return await self._advance(row, step=CAPTURE)

    async def _capture(self, row: OrderRow) -> OrderRow:
        try:
            payment = await self._gateway.capture(ids.payment_key(row.order_id, ids.CAPTURE), row.payment_id)
        except Refused as refusal:
            log.error("order %s: the stock is committed but the capture was refused: %s", row.order_id, refusal)
            return await self._fail(row, PAYMENT_DECLINED)
        if payment.status != payments_pb2.PAYMENT_STATUS_CAPTURED:
            raise DependencyUnavailable(f"Capture answered payment {payment.payment_id} "
                                        f"{payments_pb2.PaymentStatus.Name(payment.status)}; retry with the same key")
        return await self._decide(row, CONFIRMED)

    async def _clear_cart(self, row: OrderRow) -> None:
        """Take a decided order's lines out of the buyer's cart; best effort (logged)."""
        try:
            await self._cart.clear_lines(row.user_id, row.reservation_ids)
        except (Refused, DependencyUnavailable) as error:
            log.warning("order %s %s; its lines stay in the cart of %s: %s", row.order_id, row.state.lower(),
                        row.user_id, error)

    # -- compensation --------------------------------------------------------------------------------------------------

    async def _compensate(self, row: OrderRow) -> OrderRow:
        committing = row.step in (COMMIT, CAPTURE)  # the payment is authorised; every line was held for this order
        if committing:
            try:
                await self._gateway.void(ids.payment_key(row.order_id, ids.VOID), row.payment_id)
                metrics.COMPENSATIONS.labels("void").inc()
            except Refused as refusal:  # not AUTHORIZED (any more): nothing is held
                log.warning("order %s: %s", row.order_id, refusal)
        outcomes = await each([self._inventory.release(line.reservation_id) for line in row.lines])
        metrics.COMPENSATIONS.labels("release").inc(sum(
            1 for o in outcomes if isinstance(o, ecommerce_pb2.Reservation)
            and o.status == ecommerce_pb2.RESERVATION_STATUS_RELEASED))
        sold = [index for index, o in enumerate(outcomes) if isinstance(o, Refused) and o.reason == RESERVATION_COMMITTED]
        if sold and not committing:
            log.error("order %s: reservations %s were committed, not by this order; left as they are", row.order_id,
                      [row.lines[index].reservation_id for index in sold])
        elif sold:
            outcomes = [*outcomes, *await self._restock(row, sold)]
        raise_unavailable(outcomes)
        return await self._decide(row, FAILED)

    async def _restock(self, row: OrderRow, indexes: Sequence[int]) -> list[object]:
        """Give back the units of the lines ``indexes`` of ``row``, which this order committed; the outcomes (as
        :func:`each`)."""
        outcomes = await each([self._inventory.restock(ids.restock_id(row.order_id, index),
                                                       row.lines[index].product_id, row.lines[index].quantity)
                               for index in indexes])
        for index, outcome in zip(indexes, outcomes, strict=True):
            if isinstance(outcome, Refused):
                log.error("order %s: the restock of line %d was refused: %s", row.order_id, index, outcome)
            elif not isinstance(outcome, DependencyUnavailable):
                metrics.COMPENSATIONS.labels("restock").inc()
                metrics.RESTOCKED_UNITS.inc(row.lines[index].quantity)
                log.warning("order %s: line %d was committed before the order failed; its %d units were restocked",
                            row.order_id, index, row.lines[index].quantity)
        return outcomes

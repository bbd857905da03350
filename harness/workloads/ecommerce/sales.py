"""What one load process's shoppers bought, as the checkout's answers told them, and the checks of an answered order.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 512: "Consistency: Inventory
counts must be accurate (no overselling)"; line 521: "Order Service: Saga pattern for distributed transactions").
orders.proto: every order ends CONFIRMED "with its stock committed and its payment captured once, or FAILED with
nothing held and nothing charged", and "a retry with the same key returns the same order".

:class:`Sales` keeps, per product, the units of the orders answered CONFIRMED (their lines, as answered), every such
order (for the read back at the end: :mod:`.end_checks`), and the products a checkout of unknown outcome touched (no
answer and a code after which something may have been done, or still open when the run ended): those are
:meth:`Sales.uncertain`, left out of the end-of-run comparison of committed units with the orders seen. It also
collects the problems found in answers during the run (:func:`order_problems`, :func:`answers_problems`), which the
end-of-run ``orders_consistent`` sample reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from casemesh.ecommerce.v1 import ecommerce_pb2
from casemesh.services.ecommerce.contract import is_order_id, is_reservation_id

E = ecommerce_pb2
#: The lines of a cart or an order: (product_id, quantity), sorted.
Lines = tuple[tuple[str, int], ...]


def lines_of(lines: Iterable[E.CartLine] | Iterable[E.OrderLine]) -> Lines:
    """(product_id, quantity) of each line, sorted (lines of one product added up)."""
    units: Counter[str] = Counter()
    for line in lines:
        units[line.product_id] += line.quantity
    return tuple(sorted(units.items()))


def status_name(status: int) -> str:
    """``CONFIRMED`` for ORDER_STATUS_CONFIRMED (the number itself when unknown)."""
    try:
        return E.OrderStatus.Name(status).removeprefix("ORDER_STATUS_")
    except ValueError:
        return str(status)


def failure_name(reason: int) -> str:
    """``OUT_OF_STOCK`` for ORDER_FAILURE_OUT_OF_STOCK (the number itself when unknown)."""
    try:
        return E.OrderFailure.Name(reason).removeprefix("ORDER_FAILURE_")
    except ValueError:
        return str(reason)


def outcome_code(order: E.Order) -> str:
    """A checkout's outcome: ``CONFIRMED``, the failure reason of a FAILED order (``OUT_OF_STOCK``,
    ``RESERVATION_EXPIRED``, ``PAYMENT_DECLINED``), or the status of an order answered in another state."""
    if order.status == E.ORDER_STATUS_FAILED:
        return failure_name(order.failure_reason)
    return status_name(order.status)


def order_problems(order: E.Order, user_id: str, cart: Lines, currency: str) -> list[str]:
    """Problems of an answered order: its shape (ID, a decided status and its reason, a payment when CONFIRMED), its
    buyer, its lines against the ``cart`` the buyer saw before checking out, and its total against its lines."""
    problems: list[str] = []
    if not is_order_id(order.order_id):
        problems.append(f"order_id {order.order_id!r} is not ord_ and 24 base32 characters")
    if order.user_id != user_id:
        problems.append(f"the order of {user_id} is {order.user_id!r}'s")
    if order.status == E.ORDER_STATUS_CONFIRMED:
        if order.failure_reason != E.ORDER_FAILURE_UNSPECIFIED:
            problems.append(f"CONFIRMED with failure reason {failure_name(order.failure_reason)}")
        if not order.payment_id:
            problems.append("CONFIRMED without a payment")
        if not all(is_reservation_id(line.reservation_id) for line in order.lines):
            problems.append("CONFIRMED with a line without its reservation")
    elif order.status == E.ORDER_STATUS_FAILED:
        if order.failure_reason == E.ORDER_FAILURE_UNSPECIFIED:
            problems.append("FAILED without a reason")
    else:
        problems.append(f"answered {status_name(order.status)}: a checkout's answer is CONFIRMED or FAILED")
    if order.status in (E.ORDER_STATUS_CONFIRMED, E.ORDER_STATUS_FAILED) and order.decided_at_unix_ms == 0:
        problems.append(f"{status_name(order.status)} without a decision time")
    if lines_of(order.lines) != cart:
        problems.append(f"lines {list(lines_of(order.lines))}, the cart held {list(cart)}")
    total = sum(line.quantity * line.unit_price.amount_minor for line in order.lines)
    if (order.total.amount_minor, order.total.currency_code) != (total, currency):
        problems.append(f"total {order.total.amount_minor} {order.total.currency_code}, its lines make {total} "
                        f"{currency}")
    return problems


def answers_problems(orders: Sequence[E.Order]) -> list[str]:
    """Problems of the orders one idempotency key was answered with (a double click, a retry): more than one order ID
    or decision is a second order."""
    ids = sorted({o.order_id for o in orders})
    problems = [f"one key answered with {len(ids)} orders: {', '.join(ids)}"] if len(ids) > 1 else []
    decisions = sorted({outcome_code(o) for o in orders})
    if len(decisions) > 1:
        problems.append(f"one key answered {len(decisions)} outcomes: {', '.join(decisions)}")
    return problems


def read_back_problems(answered: E.Order, stored: E.Order) -> list[str]:
    """Problems of GetOrder's ``stored`` order against the CONFIRMED order the checkout ``answered``."""
    problems: list[str] = []
    if stored.status != E.ORDER_STATUS_CONFIRMED:
        problems.append(f"{answered.order_id} was answered CONFIRMED, GetOrder says {outcome_code(stored)}")
    if lines_of(stored.lines) != lines_of(answered.lines):
        problems.append(f"{answered.order_id}'s lines read back {list(lines_of(stored.lines))}, answered "
                        f"{list(lines_of(answered.lines))}")
    if stored.total != answered.total or stored.payment_id != answered.payment_id:
        problems.append(f"{answered.order_id}'s total or payment read back differ from the answer's")
    return problems


class Sales:
    """Per product, the units of the orders this process saw CONFIRMED; those orders; the products of checkouts of
    unknown outcome; the problems seen in answers.

    :meth:`begin` before a checkout (with its retries) and :meth:`end` after it, with the products of the cart: a
    checkout still open (a journey cancelled at the run's end) or ended without a known outcome makes them
    :meth:`uncertain`.
    """

    def __init__(self) -> None:
        self.units: Counter[str] = Counter()
        self.orders: dict[str, E.Order] = {}
        self.open: Counter[str] = Counter()
        self.unknown: set[str] = set()
        self.problems: list[str] = []

    def begin(self, products: Iterable[str]) -> None:
        for product in products:
            self.open[product] += 1

    def end(self, products: Iterable[str], known: bool) -> None:
        for product in products:
            self.open[product] -= 1
            if not self.open[product]:
                del self.open[product]
            if not known:
                self.unknown.add(product)

    def confirmed(self, order: E.Order) -> None:
        """An order answered CONFIRMED (counted once, however many answers carried it)."""
        if order.order_id in self.orders:
            return
        self.orders[order.order_id] = order
        for product, quantity in lines_of(order.lines):
            self.units[product] += quantity

    def problem(self, key: str, problems: Iterable[str]) -> None:
        """Problems found in the answers to checkout ``key``."""
        self.problems += [f"checkout {key}: {p}" for p in problems]

    def uncertain(self, product: str) -> bool:
        """True when a checkout of unknown outcome touched ``product`` (or one is still open)."""
        return product in self.unknown or product in self.open

"""ecommerce-orders' checkout saga (services/ecommerce/orders) over fakes: every failure point and its compensation,
idempotent retries, a dependency down or an answer lost at each call, a crash after each call (the next process's
recovery finishes or compensates the order), claims on cart lines, validation, the store's invariants, and a
hypothesis property over random schedules of faults, crashes and competing buyers: every order ends CONFIRMED with
its stock committed and its payment captured once, or FAILED with nothing held and nothing charged; no unit is sold
twice.

Plain fakes stand in for the three clients at the saga's interfaces (:class:`FakeCart`, :class:`FakeInventory`,
:class:`FakeGateway`), each with its service's contract (protos/casemesh/ecommerce/v1/{cart,inventory}.proto,
protos/casemesh/payments/v1/gateway.proto): reservations held, extended, expired, committed and released by id;
payments keyed by idempotency key per operation. gRPC and the service's status codes are in
tests/unit/test_ecommerce_orders_grpc.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import shutil
import sqlite3
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import ecommerce_pb2, orders_pb2
from casemesh.payments.v1 import payments_pb2
from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.orders import ids
from casemesh.services.ecommerce.orders.calls import DependencyUnavailable, Refused
from casemesh.services.ecommerce.orders.orders import Orders
from casemesh.services.ecommerce.orders.recovery import Recovery
from casemesh.services.ecommerce.orders.settings import OrderSettings
from casemesh.services.ecommerce.orders.store import OrderStore
from casemesh.services.runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)

EC = ecommerce_pb2
PAY = payments_pb2
HELD, COMMITTED, RELEASED, EXPIRED = (EC.RESERVATION_STATUS_HELD, EC.RESERVATION_STATUS_COMMITTED,
                                      EC.RESERVATION_STATUS_RELEASED, EC.RESERVATION_STATUS_EXPIRED)
CONFIRMED, FAILED, PENDING = EC.ORDER_STATUS_CONFIRMED, EC.ORDER_STATUS_FAILED, EC.ORDER_STATUS_PENDING
FP = grpc.StatusCode.FAILED_PRECONDITION
TOKEN = "tok_" + "a" * 24
DECLINING = "tok_" + "d" * 24
UNKNOWN_TOKEN = "tok_" + "u" * 24
TTL_MS = contract.DEFAULT_RESERVATION_TTL_S * 1000
PRICES = {"apple": 150, "pear": 275, "plum": 990}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


class Crash(Exception):
    """This process dies here: nothing after it runs (the test then starts a new :class:`Orders` on the same file)."""


# ----------------------------------------------------------------------------- the fakes


class Clock:
    """Seconds since the Unix epoch, moved by the tests."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


class Faults:
    """What the next calls of each method do: ``down`` (fails before doing anything), ``lost`` (done, the answer
    lost), ``crash`` (done, then this process dies), ``crash_before`` (dies before sending it); ``hooks`` run before a
    method's call (a concurrent change); ``calls`` counts the calls."""

    def __init__(self) -> None:
        self.plan: dict[str, list[str]] = defaultdict(list)
        self.hooks: dict[str, list] = defaultdict(list)
        self.calls: Counter[str] = Counter()
        self.always_down: set[str] = set()

    def before(self, method: str) -> str | None:
        self.calls[method] += 1
        for hook in self.hooks.pop(method, []):
            hook()
        action = self.plan[method].pop(0) if self.plan[method] else None
        if action == "down" or method in self.always_down:
            raise DependencyUnavailable(f"{method} is down")
        if action == "crash_before":
            raise Crash(method)
        return action

    @staticmethod
    def after(method: str, action: str | None) -> None:
        if action == "lost":
            raise DependencyUnavailable(f"{method}'s answer was lost")
        if action == "crash":
            raise Crash(method)


def faulty(method: str):
    """Run a fake's call under ``self.faults`` (see :class:`Faults`): a refusal is an answer, and can be lost too."""
    def wrap(function):
        @functools.wraps(function)
        async def call(self, *args):
            action = self.faults.before(method)
            try:
                result = await function(self, *args)
            finally:
                self.faults.after(method, action)
            return result
        return call
    return wrap


def refused(method: str, details: str, code: grpc.StatusCode = FP) -> Refused:
    return Refused(method, code, details)


@dataclass
class Held:
    product_id: str
    quantity: int
    status: int
    expires_at_unix_ms: int


class FakeInventory:
    """InventoryService's contract in memory (TTL against ``clock``)."""

    def __init__(self, clock: Clock, faults: Faults) -> None:
        self.clock = clock
        self.faults = faults
        self.stocked: Counter[str] = Counter()
        self.reservations: dict[str, Held] = {}
        self.restocks: dict[str, tuple[str, int]] = {}

    def _expire(self) -> None:
        for r in self.reservations.values():
            if r.status == HELD and r.expires_at_unix_ms <= self.clock.ms():
                r.status = EXPIRED

    def units(self, product_id: str, status: int) -> int:
        self._expire()
        return sum(r.quantity for r in self.reservations.values() if r.product_id == product_id and r.status == status)

    def available(self, product_id: str) -> int:
        return self.stocked[product_id] - self.units(product_id, HELD) - self.units(product_id, COMMITTED)

    def status(self, reservation_id: str) -> int:
        self._expire()
        return self.reservations[reservation_id].status

    def _proto(self, reservation_id: str) -> EC.Reservation:
        r = self.reservations[reservation_id]
        return EC.Reservation(reservation_id=reservation_id, product_id=r.product_id, quantity=r.quantity,
                              status=r.status, expires_at_unix_ms=r.expires_at_unix_ms if r.status == HELD else 0)

    @faulty("Reserve")
    async def reserve(self, reservation_id: str, product_id: str, quantity: int, ttl_ms: int) -> EC.Reservation:
        self._expire()
        r = self.reservations.get(reservation_id)
        until = self.clock.ms() + (ttl_ms or TTL_MS)
        if r is not None and (r.product_id, r.quantity) != (product_id, quantity):
            raise refused("Reserve", "reservation_id: used with another product or quantity")
        if r is not None and r.status == RELEASED:
            raise refused("Reserve", f"reservation_released: {reservation_id}")
        if r is not None and r.status == HELD:
            r.expires_at_unix_ms = until
        elif r is None or r.status == EXPIRED:
            if self.available(product_id) < quantity:
                raise refused("Reserve", f"out_of_stock: {self.available(product_id)} available")
            self.reservations[reservation_id] = Held(product_id, quantity, HELD, until)
        return self._proto(reservation_id)

    @faulty("Commit")
    async def commit(self, reservation_id: str) -> EC.Reservation:
        self._expire()
        r = self.reservations.get(reservation_id)
        if r is None:
            raise refused("Commit", f"no reservation {reservation_id}", grpc.StatusCode.NOT_FOUND)
        if r.status == EXPIRED:
            raise refused("Commit", f"reservation_expired: {reservation_id}")
        if r.status == RELEASED:
            raise refused("Commit", f"reservation_released: {reservation_id}")
        r.status = COMMITTED
        return self._proto(reservation_id)

    @faulty("Release")
    async def release(self, reservation_id: str) -> EC.Reservation:
        self._expire()
        r = self.reservations.get(reservation_id)
        if r is None:
            raise refused("Release", f"no reservation {reservation_id}", grpc.StatusCode.NOT_FOUND)
        if r.status == COMMITTED:
            raise refused("Release", f"reservation_committed: {reservation_id}")
        if r.status == HELD:
            r.status = RELEASED
        return self._proto(reservation_id)

    @faulty("Restock")
    async def restock(self, restock_id: str, product_id: str, quantity: int) -> EC.StockLevel:
        if restock_id in self.restocks:
            if self.restocks[restock_id] != (product_id, quantity):
                raise refused("Restock", "restock_id: used for another product or quantity")
        else:
            self.restocks[restock_id] = (product_id, quantity)
            self.stocked[product_id] += quantity
        return EC.StockLevel(product_id=product_id, stocked=self.stocked[product_id])

    def audit(self) -> list[str]:
        return [f"{p}: committed + held > stocked" for p in self.stocked
                if self.units(p, HELD) + self.units(p, COMMITTED) > self.stocked[p]]


@dataclass
class FakePayment:
    payment_id: str
    card_token: str
    amount_minor: int
    status: int
    captures: int = 0
    captured_minor: int = 0

    def proto(self) -> PAY.Payment:
        return PAY.Payment(payment_id=self.payment_id, merchant_id=contract.MERCHANT_ID, status=self.status,
                           amount=money_pb2.Money(currency_code="USD", amount_minor=self.amount_minor),
                           captured_minor=self.captured_minor)


class FakeGateway:
    """PaymentGatewayService's contract in memory: one payment per Authorize key, replays per (operation, key)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.tokens = {TOKEN: False, DECLINING: True}  # token → declines
        self.payments: dict[str, FakePayment] = {}
        self.keys: dict[tuple[str, str], tuple[tuple, str]] = {}
        self.refuse_captures = False
        self._ids = itertools.count(1)

    def _replay(self, operation: str, key: str, request: tuple) -> PAY.Payment | None:
        stored = self.keys.get((operation, key))
        if stored is None:
            return None
        if stored[0] != request:
            raise refused(operation, "idempotency_key: used for a different request")
        return self.payments[stored[1]].proto()

    @faulty("Authorize")
    async def authorize(self, idempotency_key: str, card_token: str, currency_code: str, amount_minor: int,
                        customer_id: str, description: str) -> PAY.Payment:
        assert idempotency_key.endswith(":authorize") and currency_code == "USD" and customer_id
        request = (card_token, amount_minor, customer_id, description)
        replay = self._replay("authorize", idempotency_key, request)
        if replay is not None:
            return replay
        if card_token not in self.tokens:
            raise refused("Authorize", f"card_token: no card {card_token}", grpc.StatusCode.NOT_FOUND)
        payment = FakePayment(f"pay_{next(self._ids):024d}", card_token, amount_minor,
                              PAY.PAYMENT_STATUS_DECLINED if self.tokens[card_token] else PAY.PAYMENT_STATUS_AUTHORIZED)
        self.payments[payment.payment_id] = payment
        self.keys[("authorize", idempotency_key)] = (request, payment.payment_id)
        return payment.proto()

    @faulty("Capture")
    async def capture(self, idempotency_key: str, payment_id: str) -> PAY.Payment:
        replay = self._replay("capture", idempotency_key, (payment_id,))
        if replay is None:
            payment = self.payments[payment_id]
            if payment.status != PAY.PAYMENT_STATUS_AUTHORIZED or self.refuse_captures:
                raise refused("Capture", f"payment_id: payment {payment_id} cannot be captured")
            payment.status, payment.captured_minor = PAY.PAYMENT_STATUS_CAPTURED, payment.amount_minor
            payment.captures += 1
            self.keys[("capture", idempotency_key)] = ((payment_id,), payment_id)
            replay = payment.proto()
        return replay

    @faulty("Void")
    async def void(self, idempotency_key: str, payment_id: str) -> PAY.Payment:
        replay = self._replay("void", idempotency_key, (payment_id,))
        if replay is None:
            payment = self.payments[payment_id]
            if payment.status not in (PAY.PAYMENT_STATUS_AUTHORIZED, PAY.PAYMENT_STATUS_VOIDED):
                raise refused("Void", f"payment_id: payment {payment_id} is not AUTHORIZED")
            payment.status = PAY.PAYMENT_STATUS_VOIDED
            self.keys[("void", idempotency_key)] = ((payment_id,), payment_id)
            replay = payment.proto()
        return replay


class FakeCart:
    """CartService's contract in memory; :meth:`add` reserves a line's units as SetItem does (a new reservation)."""

    def __init__(self, inventory: FakeInventory, faults: Faults) -> None:
        self.inventory = inventory
        self.faults = faults
        self.lines: dict[str, list[EC.CartLine]] = defaultdict(list)
        self._ids = itertools.count(1)

    async def add(self, user_id: str, product_id: str, quantity: int) -> str:
        reservation_id = contract.new_reservation_id()
        reservation = await self.inventory.reserve(reservation_id, product_id, quantity, 0)
        previous = [line for line in self.lines[user_id] if line.product_id == product_id]
        self.lines[user_id] = [line for line in self.lines[user_id] if line.product_id != product_id] + [
            EC.CartLine(product_id=product_id, quantity=quantity, reservation_id=reservation_id,
                        unit_price=money_pb2.Money(currency_code="USD", amount_minor=PRICES[product_id]),
                        reserved_until_unix_ms=reservation.expires_at_unix_ms)]
        for line in previous:
            await self.inventory.release(line.reservation_id)
        return reservation_id

    @faulty("GetCart")
    async def get_cart(self, user_id: str) -> EC.Cart:
        lines = list(self.lines.get(user_id, []))
        return EC.Cart(user_id=user_id, lines=lines, total=money_pb2.Money(
            currency_code="USD", amount_minor=sum(line.quantity * line.unit_price.amount_minor for line in lines)))

    @faulty("ClearLines")
    async def clear_lines(self, user_id: str, reservation_ids) -> None:
        self.lines[user_id] = [line for line in self.lines[user_id] if line.reservation_id not in reservation_ids]


@dataclass
class Shop:
    """The fakes, and an :class:`Orders` over a store in ``path`` once :meth:`open`; :meth:`restart` is a new
    process on the same file."""

    path: Path
    settings: OrderSettings = field(default_factory=OrderSettings)
    clock: Clock = field(default_factory=Clock)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.inventory = FakeInventory(self.clock, self.faults)
        self.gateway = FakeGateway(self.faults)
        self.cart = FakeCart(self.inventory, self.faults)
        #: The service's domain (:meth:`open`), or the one of a served component (the gRPC tests).
        self.orders: Orders | None = None

    async def open(self) -> None:
        """Start an :class:`Orders` on the store in ``path`` (a process of the service)."""
        self.orders = Orders(self.settings, OrderStore(self.path / "orders.sqlite3"), self.cart, self.inventory,
                             self.gateway, id_key=b"k" * 32, clock=self.clock)
        await self.orders.start()

    async def restart(self) -> None:
        await self.orders.close()
        await self.open()

    async def checkout(self, user_id: str, key: str = "key-1", token: str = TOKEN) -> EC.Order:
        return (await self.orders.checkout(orders_pb2.CheckoutRequest(
            idempotency_key=key, user_id=user_id, card_token=token))).order

    async def recover(self) -> bool:
        return await Recovery(self.orders).sweep(grace_ms=0)

    async def all_orders(self) -> list[EC.Order]:
        rows = await self.orders.store._rows("")
        return [row.to_proto() for row in rows]

    async def check_books(self) -> None:
        """Every order decided as the module docstring says; no unit sold twice; the inventory's audit holds."""
        assert not self.inventory.audit()
        sold: Counter[str] = Counter()
        for order in await self.all_orders():
            statuses = [self.inventory.reservations[line.reservation_id].status
                        if line.reservation_id in self.inventory.reservations else None for line in order.lines]
            payment = self.gateway.payments.get(order.payment_id)
            if order.status == CONFIRMED:
                assert statuses == [COMMITTED] * len(order.lines), order
                assert payment.status == PAY.PAYMENT_STATUS_CAPTURED and payment.captures == 1, order
                assert payment.captured_minor == order.total.amount_minor
                sold.update({line.product_id: line.quantity for line in order.lines})
            else:
                assert order.status == FAILED and order.failure_reason, order
                assert all(self.inventory.status(line.reservation_id) != HELD for line in order.lines
                           if line.reservation_id in self.inventory.reservations), order
                assert payment is None or payment.status in (PAY.PAYMENT_STATUS_VOIDED, PAY.PAYMENT_STATUS_DECLINED)
        restocked: Counter[str] = Counter()
        for product_id, quantity in self.inventory.restocks.values():
            restocked[product_id] += quantity
        for product_id in self.inventory.stocked:
            assert self.inventory.units(product_id, COMMITTED) == sold[product_id] + restocked[product_id], product_id
        assert not any(payment.captures > 1 for payment in self.gateway.payments.values())


@pytest.fixture
async def shop(tmp_path):
    shop = Shop(tmp_path)
    await shop.open()
    for product_id in PRICES:
        shop.inventory.stocked[product_id] = 10
    try:
        yield shop
    finally:
        await shop.orders.close()


async def make_shop(path: Path, **settings) -> Shop:
    shop = Shop(path, OrderSettings(**settings))
    await shop.open()
    for product_id in PRICES:
        shop.inventory.stocked[product_id] = 10
    return shop


# ----------------------------------------------------------------------------- the happy path, replays, keys


async def test_a_checkout_confirms_commits_captures_and_clears_the_cart(shop):
    confirmed = sample("casemesh_ecommerce_orders_checkouts_total", {"outcome": "confirmed", "reason": "none"})
    apple = await shop.cart.add("ann", "apple", 2)
    pear = await shop.cart.add("ann", "pear", 1)
    order = await shop.checkout("ann")
    assert order.status == CONFIRMED and order.failure_reason == 0
    assert order.order_id == ids.order_id(b"k" * 32, "ann", "key-1") and contract.is_order_id(order.order_id)
    assert [(line.product_id, line.quantity, line.unit_price.amount_minor, line.reservation_id)
            for line in order.lines] == [("apple", 2, 150, apple), ("pear", 1, 275, pear)]
    assert order.total == money_pb2.Money(currency_code="USD", amount_minor=2 * 150 + 275)
    assert order.created_at_unix_ms == order.decided_at_unix_ms == shop.clock.ms()
    payment = shop.gateway.payments[order.payment_id]
    assert (payment.status, payment.captured_minor, payment.captures) == (PAY.PAYMENT_STATUS_CAPTURED, 575, 1)
    assert shop.inventory.status(apple) == shop.inventory.status(pear) == COMMITTED
    assert not shop.cart.lines["ann"]
    assert sample("casemesh_ecommerce_orders_checkouts_total",
                  {"outcome": "confirmed", "reason": "none"}) == confirmed + 1
    assert sample("casemesh_ecommerce_orders_pending") == 0
    await shop.check_books()

    # The same key again: the same order, nothing asked again; another card with the key: key_reused.
    replays = sample("casemesh_ecommerce_orders_idempotent_replays_total")
    calls = sum(shop.faults.calls.values())
    assert await shop.checkout("ann") == order
    assert sum(shop.faults.calls.values()) == calls
    assert sample("casemesh_ecommerce_orders_idempotent_replays_total") == replays + 1
    with pytest.raises(FailedPrecondition) as error:
        await shop.checkout("ann", token="tok_" + "b" * 24)
    assert contract.failed_precondition_reason(str(error.value)) == contract.KEY_REUSED
    # The key is per buyer: bob's "key-1" is another order; his cart is empty.
    with pytest.raises(FailedPrecondition) as error:
        await shop.checkout("bob")
    assert contract.failed_precondition_reason(str(error.value)) == contract.EMPTY_CART
    assert len(await shop.all_orders()) == 1
    got = await shop.orders.get_order(orders_pb2.GetOrderRequest(order_id=order.order_id))
    assert got.order == order


async def test_the_checkout_hold_is_the_reserve_ttl(tmp_path):
    shop = await make_shop(tmp_path, checkout_hold_ms=60_000)
    try:
        apple = await shop.cart.add("ann", "apple", 1)
        shop.faults.plan["Authorize"] = ["down"]
        with pytest.raises(DependencyUnavailable):
            await shop.checkout("ann")
        assert shop.inventory.reservations[apple].expires_at_unix_ms == shop.clock.ms() + 60_000
        assert (await shop.all_orders())[0].status == PENDING
    finally:
        await shop.orders.close()


def test_settings():
    assert OrderSettings().checkout_hold_ms == 0
    for bad in ({"checkout_hold_ms": 500}, {"checkout_hold_ms": 3_600_001}, {"call_attempts": 0},
                {"recovery_interval_s": 10, "recovery_max_backoff_s": 5}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            OrderSettings(**bad)
    assert OrderSettings(checkout_hold_ms=1_000).checkout_hold_ms == 1_000


# ----------------------------------------------------------------------------- failures and compensations


async def test_out_of_stock_releases_the_other_lines_and_asks_no_payment(shop):
    failed = sample("casemesh_ecommerce_orders_checkouts_total", {"outcome": "failed", "reason": "out_of_stock"})
    apple = await shop.cart.add("ann", "apple", 4)
    shop.clock.now += TTL_MS / 1000 + 1  # ann's apples expire, and bob takes them
    await shop.cart.add("bob", "apple", 10)
    pear = await shop.cart.add("ann", "pear", 1)
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason, order.payment_id) == (FAILED, EC.ORDER_FAILURE_OUT_OF_STOCK, "")
    assert shop.faults.calls["Authorize"] == 0
    assert shop.inventory.status(pear) == RELEASED and shop.inventory.status(apple) == EXPIRED
    assert not shop.cart.lines["ann"]  # its lines hold nothing any more
    assert sample("casemesh_ecommerce_orders_checkouts_total",
                  {"outcome": "failed", "reason": "out_of_stock"}) == failed + 1
    await shop.check_books()


async def test_an_expired_line_is_held_anew_when_its_units_are_there(shop):
    apple = await shop.cart.add("ann", "apple", 4)
    shop.clock.now += TTL_MS / 1000 + 1
    assert shop.inventory.status(apple) == EXPIRED
    assert (await shop.checkout("ann")).status == CONFIRMED
    assert shop.inventory.status(apple) == COMMITTED
    await shop.check_books()


async def test_a_released_line_is_out_of_stock(shop):
    apple = await shop.cart.add("ann", "apple", 1)
    await shop.inventory.release(apple)
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_OUT_OF_STOCK)
    await shop.check_books()


async def test_a_declined_card_releases_the_reservations(shop):
    apple = await shop.cart.add("ann", "apple", 1)
    order = await shop.checkout("ann", token=DECLINING)
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_PAYMENT_DECLINED)
    assert shop.gateway.payments[order.payment_id].status == PAY.PAYMENT_STATUS_DECLINED
    assert shop.inventory.status(apple) == RELEASED and shop.faults.calls["Void"] == 0
    await shop.check_books()


async def test_an_unknown_card_token_is_declined_with_nothing_held(shop):
    apple = await shop.cart.add("ann", "apple", 1)
    order = await shop.checkout("ann", token=UNKNOWN_TOKEN)
    assert (order.status, order.failure_reason, order.payment_id) == (
        FAILED, EC.ORDER_FAILURE_PAYMENT_DECLINED, "")
    assert shop.inventory.status(apple) == RELEASED
    await shop.check_books()


async def test_a_reservation_taken_during_payment_voids_it(shop):
    """The holds run out while the payment is authorised, and another buyer takes the units: the re-hold before the
    commit finds them gone; nothing was committed, so the order voids and releases."""
    voids = sample("casemesh_ecommerce_orders_compensations_total", {"kind": "void"})
    apple = await shop.cart.add("ann", "apple", 6)
    pear = await shop.cart.add("ann", "pear", 1)

    def pause_and_sell() -> None:
        shop.clock.now += TTL_MS / 1000 + 1
        shop.inventory.reservations["rsv_other"] = Held("apple", 10, HELD, shop.clock.ms() + TTL_MS)

    shop.faults.hooks["Authorize"].append(pause_and_sell)
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_RESERVATION_EXPIRED)
    assert shop.gateway.payments[order.payment_id].status == PAY.PAYMENT_STATUS_VOIDED
    assert shop.inventory.status(apple) == EXPIRED and shop.inventory.status(pear) in (RELEASED, EXPIRED)
    assert shop.faults.calls["Commit"] == 0 and not shop.inventory.restocks
    assert sample("casemesh_ecommerce_orders_compensations_total", {"kind": "void"}) == voids + 1
    await shop.check_books()


async def test_holds_near_their_end_are_extended_before_the_commit(tmp_path):
    shop = await make_shop(tmp_path, checkout_hold_ms=10_000, rehold_margin_s=5)
    try:
        await shop.cart.add("ann", "apple", 1)
        shop.faults.hooks["Authorize"].append(lambda: setattr(shop.clock, "now", shop.clock.now + 6))
        reserves = shop.faults.calls["Reserve"]
        assert (await shop.checkout("ann")).status == CONFIRMED
        assert shop.faults.calls["Reserve"] == reserves + 2  # before the payment, and again before the commit
        await shop.cart.add("bob", "apple", 1)
        reserves = shop.faults.calls["Reserve"]
        assert (await shop.checkout("bob")).status == CONFIRMED
        assert shop.faults.calls["Reserve"] == reserves + 1  # the hold had 10 s left: straight to the commit
        await shop.check_books()
    finally:
        await shop.orders.close()


async def test_a_commit_refused_after_another_line_committed_restocks_it(shop):
    """The commit is not all-or-nothing across lines: the buyer's cart released one line (a SetItem) while the order
    was paying; the other line committed. The order fails, voids, and gives the committed units back (Restock)."""
    restocked = sample("casemesh_ecommerce_orders_restocked_units_total")
    apple = await shop.cart.add("ann", "apple", 3)
    pear = await shop.cart.add("ann", "pear", 2)
    shop.faults.hooks["Commit"].append(lambda: setattr(shop.inventory.reservations[pear], "status", RELEASED))
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_RESERVATION_EXPIRED)
    assert shop.gateway.payments[order.payment_id].status == PAY.PAYMENT_STATUS_VOIDED
    assert shop.inventory.status(apple) == COMMITTED
    assert shop.inventory.restocks == {ids.restock_id(order.order_id, 0): ("apple", 3)}
    assert shop.inventory.stocked["apple"] == 13 and shop.inventory.available("apple") == 10
    assert sample("casemesh_ecommerce_orders_restocked_units_total") == restocked + 3
    await shop.check_books()


async def test_a_refused_capture_voids_and_restocks_every_line(shop):
    await shop.cart.add("ann", "apple", 1)
    await shop.cart.add("ann", "plum", 2)
    shop.gateway.refuse_captures = True
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_PAYMENT_DECLINED)
    assert shop.gateway.payments[order.payment_id].status == PAY.PAYMENT_STATUS_VOIDED
    assert sorted(shop.inventory.restocks.values()) == [("apple", 1), ("plum", 2)]
    assert shop.inventory.available("apple") == shop.inventory.available("plum") == 10
    await shop.check_books()


async def test_a_committed_line_not_of_this_order_is_never_restocked(shop):
    """A reservation already COMMITTED when the order first holds it is not this order's: out of stock, and its
    compensation leaves it as it is."""
    apple = await shop.cart.add("ann", "apple", 1)
    await shop.inventory.commit(apple)
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_OUT_OF_STOCK)
    assert shop.inventory.status(apple) == COMMITTED and not shop.inventory.restocks


# ----------------------------------------------------------------------------- outages, lost answers, retries


FORWARD = ["GetCart", "Reserve", "Authorize", "Commit", "Capture"]


@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("action", ["down", "lost"])
async def test_an_outage_leaves_the_order_pending_and_the_retry_finishes_it(shop, method, action):
    await shop.cart.add("ann", "apple", 2)
    await shop.cart.add("ann", "pear", 1)
    shop.faults.plan[method] = [action]
    with pytest.raises(DependencyUnavailable):
        await shop.checkout("ann")
    orders = await shop.all_orders()
    if method == "GetCart":
        assert not orders  # nothing was recorded
    else:
        assert [order.status for order in orders] == [PENDING]
        assert sample("casemesh_ecommerce_orders_pending") == 1
        assert (await shop.orders.get_order(orders_pb2.GetOrderRequest(
            order_id=orders[0].order_id))).order.status == PENDING
    order = await shop.checkout("ann")
    assert order.status == CONFIRMED
    assert len(shop.gateway.payments) == 1
    assert sample("casemesh_ecommerce_orders_pending") == 0
    await shop.check_books()


@pytest.mark.parametrize("method", ["Void", "Release", "Restock"])
@pytest.mark.parametrize("action", ["down", "lost"])
async def test_an_outage_during_the_compensation_is_finished_by_the_retry(shop, method, action):
    await shop.cart.add("ann", "apple", 2)
    pear = await shop.cart.add("ann", "pear", 1)
    shop.faults.hooks["Commit"].append(lambda: setattr(shop.inventory.reservations[pear], "status", RELEASED))
    shop.faults.plan[method] = [action]
    with pytest.raises(DependencyUnavailable):
        await shop.checkout("ann")
    assert [order.status for order in await shop.all_orders()] == [PENDING]
    order = await shop.checkout("ann")
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_RESERVATION_EXPIRED)
    assert len(shop.inventory.restocks) == 1 and shop.inventory.available("apple") == 10
    assert shop.faults.calls["Commit"] == 2  # the compensation never goes forward again
    await shop.check_books()


async def test_a_cart_that_cannot_be_cleared_is_best_effort(shop):
    await shop.cart.add("ann", "apple", 1)
    shop.faults.plan["ClearLines"] = ["down"]
    assert (await shop.checkout("ann")).status == CONFIRMED
    assert shop.cart.lines["ann"]  # the sold line is still there...
    with pytest.raises(FailedPrecondition) as error:  # ...but the next checkout does not sell it again
        await shop.checkout("ann", key="key-2")
    assert contract.failed_precondition_reason(str(error.value)) == contract.EMPTY_CART
    assert not shop.cart.lines["ann"] and shop.faults.calls["ClearLines"] == 2
    await shop.cart.add("ann", "pear", 1)
    assert [line.product_id for line in (await shop.checkout("ann", key="key-3")).lines] == ["pear"]
    await shop.check_books()


async def test_the_same_key_in_flight_is_aborted(shop):
    await shop.cart.add("ann", "apple", 1)
    gate = asyncio.Event()
    original = shop.gateway.authorize

    async def slow(*args):
        await gate.wait()
        return await original(*args)

    shop.gateway.authorize = slow
    first = asyncio.create_task(shop.checkout("ann"))
    while shop.faults.calls["Reserve"] < 2:
        await asyncio.sleep(0.001)
    with pytest.raises(Aborted):
        await shop.checkout("ann")
    with pytest.raises(Aborted):  # another key, the same cart lines: the first checkout holds them
        await shop.checkout("ann", key="key-2")
    row = (await shop.orders.store.pending(shop.clock.ms()))[0]
    assert await shop.orders.resume(row) is None  # the recovery leaves it to the call
    gate.set()
    assert (await first).status == CONFIRMED
    with pytest.raises(FailedPrecondition):
        await shop.checkout("ann", key="key-2")
    await shop.check_books()


# ----------------------------------------------------------------------------- crashes and the recovery


CRASH_POINTS = [(method, action) for method in ["Reserve", "Authorize", "Commit", "Capture"]
                for action in ("crash_before", "crash")]


@pytest.mark.parametrize(("method", "action"), CRASH_POINTS)
@pytest.mark.parametrize("token", [TOKEN, DECLINING])
async def test_a_crash_at_any_call_is_finished_by_the_next_process(shop, method, action, token):
    recovered = sample("casemesh_ecommerce_orders_recovered_total", {"outcome": "confirmed"})
    await shop.cart.add("ann", "apple", 2)
    await shop.cart.add("ann", "plum", 1)
    shop.faults.plan[method] = [action]
    reached = True
    try:
        await shop.checkout("ann", token=token)
    except Crash:
        pass
    else:
        reached = False  # a declined card never gets to the commit
    await shop.restart()
    assert sample("casemesh_ecommerce_orders_pending") == (1 if reached else 0)
    assert await shop.recover()
    [order] = await shop.all_orders()
    if token == TOKEN:
        assert order.status == CONFIRMED
        assert sample("casemesh_ecommerce_orders_recovered_total", {"outcome": "confirmed"}) == recovered + 1
    else:
        assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_PAYMENT_DECLINED)
    assert sample("casemesh_ecommerce_orders_pending") == 0
    assert await shop.checkout("ann", token=token) == order  # the buyer's retry: the recovered answer
    await shop.check_books()


@pytest.mark.parametrize(("method", "action"), [(m, a) for m in ["Void", "Release", "Restock"]
                                                for a in ("crash_before", "crash")])
async def test_a_crash_during_the_compensation_is_compensated_by_the_next_process(shop, method, action):
    await shop.cart.add("ann", "apple", 2)
    pear = await shop.cart.add("ann", "pear", 1)
    shop.faults.hooks["Commit"].append(lambda: setattr(shop.inventory.reservations[pear], "status", RELEASED))
    shop.faults.plan[method] = [action]
    with pytest.raises(Crash):
        await shop.checkout("ann")
    await shop.restart()
    assert await shop.recover()
    [order] = await shop.all_orders()
    assert (order.status, order.failure_reason) == (FAILED, EC.ORDER_FAILURE_RESERVATION_EXPIRED)
    assert shop.faults.calls["Commit"] == 2
    await shop.check_books()


async def test_the_recovery_stops_at_an_outage_and_leaves_held_orders(shop):
    unavailable = sample("casemesh_ecommerce_orders_recovered_total", {"outcome": "unavailable"})
    for user in ("ann", "bob"):
        await shop.cart.add(user, "apple", 1)
    shop.faults.always_down.add("Authorize")
    for user in ("ann", "bob"):
        with pytest.raises(DependencyUnavailable):
            await shop.checkout(user)
    authorizes = shop.faults.calls["Authorize"]
    assert not await shop.recover()
    assert shop.faults.calls["Authorize"] == authorizes + 1  # stopped at the first
    assert sample("casemesh_ecommerce_orders_recovered_total", {"outcome": "unavailable"}) == unavailable + 1
    shop.faults.always_down.clear()
    # The grace: a young PENDING order is the buyer's retry's, not the recovery's.
    assert await Recovery(shop.orders).sweep() and len(await shop.orders.store.pending(shop.clock.ms())) == 2
    shop.clock.now += shop.settings.recovery_grace_s
    assert await Recovery(shop.orders).sweep()
    assert {order.status for order in await shop.all_orders()} == {CONFIRMED}
    await shop.check_books()


async def test_the_recovery_task_runs_at_start(shop):
    await shop.cart.add("ann", "apple", 1)
    shop.faults.plan["Capture"] = ["down"]
    with pytest.raises(DependencyUnavailable):
        await shop.checkout("ann")
    recovery = Recovery(shop.orders)
    recovery.start()
    try:
        for _ in range(500):
            if not await shop.orders.store.pending(shop.clock.ms()):
                break
            await asyncio.sleep(0.01)
    finally:
        await recovery.stop()
    assert [order.status for order in await shop.all_orders()] == [CONFIRMED]


# ----------------------------------------------------------------------------- validation, reads, the store


@pytest.mark.parametrize(("request_", "field"), [
    (orders_pb2.CheckoutRequest(user_id="ann", card_token=TOKEN), "idempotency_key"),
    (orders_pb2.CheckoutRequest(idempotency_key="k" * 256, user_id="ann", card_token=TOKEN), "idempotency_key"),
    (orders_pb2.CheckoutRequest(idempotency_key="a\nb", user_id="ann", card_token=TOKEN), "idempotency_key"),
    (orders_pb2.CheckoutRequest(idempotency_key="k", card_token=TOKEN), "user_id"),
    (orders_pb2.CheckoutRequest(idempotency_key="k", user_id="a b", card_token=TOKEN), "user_id"),
    (orders_pb2.CheckoutRequest(idempotency_key="k", user_id="ann"), "card_token"),
    (orders_pb2.CheckoutRequest(idempotency_key="k", user_id="ann", card_token="tok_" + "A" * 24), "card_token"),
])
async def test_checkout_validation(shop, request_, field):
    with pytest.raises(InvalidArgument) as error:
        await shop.orders.checkout(request_)
    assert error.value.field == field
    assert not await shop.all_orders() and shop.faults.calls["GetCart"] == 0


async def test_get_and_list_orders(shop):
    for bad in ("", "ord_x", "ord_" + "1" * 24):
        with pytest.raises(InvalidArgument) as error:
            await shop.orders.get_order(orders_pb2.GetOrderRequest(order_id=bad))
        assert error.value.field == "order_id"
    with pytest.raises(NotFound):
        await shop.orders.get_order(orders_pb2.GetOrderRequest(order_id="ord_" + "a" * 24))
    made = []
    for n in range(5):
        await shop.cart.add("ann", "apple", 1)
        made.append((await shop.checkout("ann", key=f"k{n}")).order_id)
        shop.clock.now += 1 if n != 2 else 0
    await shop.cart.add("bob", "pear", 1)
    await shop.checkout("bob")
    seen, token = [], ""
    while True:
        page = await shop.orders.list_orders(orders_pb2.ListOrdersRequest(user_id="ann", page_size=2,
                                                                          page_token=token))
        assert len(page.orders) <= 2
        seen += [order.order_id for order in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 5 and set(seen) == set(made)
    created = [(await shop.orders.get_order(orders_pb2.GetOrderRequest(order_id=i))).order.created_at_unix_ms
               for i in seen]
    assert created == sorted(created, reverse=True)
    assert len((await shop.orders.list_orders(orders_pb2.ListOrdersRequest(user_id="ann"))).orders) == 5
    for request_, name in ((orders_pb2.ListOrdersRequest(), "user_id"),
                           (orders_pb2.ListOrdersRequest(user_id="ann", page_size=101), "page_size"),
                           (orders_pb2.ListOrdersRequest(user_id="ann", page_size=-1), "page_size"),
                           (orders_pb2.ListOrdersRequest(user_id="ann", page_token="junk"), "page_token")):
        with pytest.raises(InvalidArgument) as error:
            await shop.orders.list_orders(request_)
        assert error.value.field == name
    ann_token = (await shop.orders.list_orders(orders_pb2.ListOrdersRequest(user_id="ann", page_size=1)))
    with pytest.raises(InvalidArgument):  # ann's token is not bob's
        await shop.orders.list_orders(orders_pb2.ListOrdersRequest(user_id="bob",
                                                                   page_token=ann_token.next_page_token))


async def test_the_schema_keeps_decided_orders_and_claims(shop):
    await shop.cart.add("ann", "apple", 1)
    order = await shop.checkout("ann")
    db = sqlite3.connect(shop.orders.store.path)
    try:
        for statement in (f"UPDATE orders SET state = 'FAILED', failure_reason = 1 WHERE order_id = '{order.order_id}'",
                          f"DELETE FROM orders WHERE order_id = '{order.order_id}'",
                          f"INSERT INTO claims VALUES ('{order.lines[0].reservation_id}', '{order.order_id}')"):
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(statement)
    finally:
        db.close()


def test_ids():
    key = b"x" * 32
    assert ids.order_id(key, "ann", "k") == ids.order_id(key, "ann", "k") != ids.order_id(key, "ann", "k2")
    assert ids.order_id(key, "ann", "k") != ids.order_id(b"y" * 32, "ann", "k")
    assert ids.order_id(key, "ab", "c") != ids.order_id(key, "a", "bc")  # user ids never hold the NUL separator
    assert contract.is_order_id(ids.order_id(key, "ann", "k"))
    assert ids.payment_key("ord_x", ids.CAPTURE) == "ord_x:capture"
    assert contract.is_id(ids.restock_id("ord_" + "a" * 24, 49))


# ----------------------------------------------------------------------------- the property


FAULT_METHODS = ["GetCart", "Reserve", "Authorize", "Commit", "Capture", "Void", "Release", "Restock", "ClearLines"]
FAULT = st.tuples(st.sampled_from(FAULT_METHODS), st.sampled_from(["down", "lost", "crash", "crash_before"]))


async def _schedule(folder: Path, buyers, faults, concurrent_changes: int) -> None:
    shop = await make_shop(folder)
    try:
        for product_id in PRICES:
            shop.inventory.stocked[product_id] = 8
        users = [f"u{n}" for n in range(len(buyers))]
        for user, (lines, _) in zip(users, buyers, strict=True):
            for product_id, quantity in lines:
                with contextlib.suppress(Refused):  # out of stock in the cart already
                    await shop.cart.add(user, product_id, quantity)
        for method, action in faults:
            shop.faults.plan[method].append(action)
        for user in users[:concurrent_changes]:  # the buyer's SetItem releases a line while the order commits
            for line in shop.cart.lines[user][-1:]:
                held = shop.inventory.reservations[line.reservation_id]
                shop.faults.hooks["Commit"].append(
                    lambda held=held: setattr(held, "status", RELEASED) if held.status == HELD else None)
        for user, (_, declines) in zip(users, buyers, strict=True):
            for _ in range(3):  # the buyer's retries with the same key
                try:
                    await shop.checkout(user, token=DECLINING if declines else TOKEN)
                    break
                except (DependencyUnavailable, Aborted):
                    continue
                except Crash:
                    await shop.restart()
                except FailedPrecondition as error:  # an empty cart
                    assert contract.failed_precondition_reason(str(error)) == contract.EMPTY_CART
                    break
        shop.faults.plan.clear()
        shop.faults.hooks.clear()
        await shop.restart()
        assert await shop.recover()
        assert not await shop.orders.store.pending(shop.clock.ms())
        await shop.check_books()
    finally:
        await shop.orders.close()


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buyers=st.lists(st.tuples(st.lists(st.tuples(st.sampled_from(list(PRICES)), st.integers(1, 4)), min_size=1,
                                          max_size=3, unique_by=lambda line: line[0]), st.booleans()),
                       min_size=2, max_size=5),
       faults=st.lists(FAULT, max_size=6), concurrent_changes=st.integers(0, 2))
def test_every_order_ends_confirmed_and_paid_or_failed_and_undone(buyers, faults, concurrent_changes):
    folder = Path(tempfile.mkdtemp(prefix="ecommerce-orders-"))
    try:
        asyncio.run(_schedule(folder, buyers, faults, concurrent_changes))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""The shop's flash sale through real gRPC: buyers race for a few units and check out with their idempotency keys while
ecommerce-orders and then ecommerce-inventory are SIGKILLed and restarted; afterwards nothing is oversold and every
order is either confirmed and paid once or failed and undone.

CASE-STUDY.md point 5 for the e-commerce platform (seed 000 "E-commerce Platform (like Amazon)",
shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Scale: Handle 10x traffic during flash sales", "Consistency:
Inventory counts must be accurate (no overselling)", "Order Service: Saga pattern for distributed transactions"; seed
003 "Amazon E-commerce" lines 1270-1290, processOrder's compensating transactions). Buyers put one or two products in
their carts (SetItem reserves the units) and check out, some twice at once (a double click), retrying the same key on
UNAVAILABLE, ABORTED and DEADLINE_EXCEEDED as a shop's app would; a share pays with a card that the issuer always
declines. Afterwards, read through the public APIs only: the inventory's Audit finds no violation; each product's
committed units are exactly the CONFIRMED orders' units, and no more than its stock; every CONFIRMED order's payment
is CAPTURED for its total (one capture per payment, by the gateway's contract); every FAILED order holds no
reservation and its payment, if any, is VOIDED or DECLINED; every buyer's key made one order; and no order stays
PENDING once the orders service's recovery has run.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter, defaultdict

import grpc
import pytest

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import (
    cart_pb2,
    cart_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    ecommerce_pb2,
    inventory_pb2,
    inventory_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from casemesh.harness.mesh import Mesh
from casemesh.payments.v1 import (
    gateway_pb2,
    gateway_pb2_grpc,
    payments_pb2,
    vault_pb2,
    vault_pb2_grpc,
)
from casemesh.services.ecommerce import contract

from .waiting import eventually

SERVICES = ["ecommerce-inventory", "ecommerce-catalog", "ecommerce-cart", "ecommerce-orders", "payments-gateway",
            "payments-vault", "payments-fraud", "payments-psp-a", "payments-psp-b"]
SETTINGS = {
    # Fast issuers without random declines: the declines here are the test card's.
    "payments-psp-a": {"latency_median_ms": 2, "decline_rate": 0.0},
    "payments-psp-b": {"latency_median_ms": 2, "decline_rate": 0.0},
    # Every buyer pays with the same test card: never blocked as card testing or velocity.
    "payments-fraud": {"block_threshold": 101},
    # The recovery looks often, and soon after a dependency comes back.
    "ecommerce-orders": {"recovery_grace_s": 1, "recovery_interval_s": 0.5, "recovery_max_backoff_s": 1},
}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
EC = ecommerce_pb2
PRODUCTS = {"tee": 1_999, "mug": 1_250, "cap": 2_400}  # unit prices, minor units of USD
STOCK = 15
BUYERS = 30
APPROVED_CARD, DECLINED_CARD = "4242424242424242", "4000000000000002"  # services/payments/contract.py TEST_CARDS


async def _retried(call, request, rng: random.Random):
    """Send ``request`` until it has a final answer (or a refusal), retrying it unchanged with jittered backoff."""
    for attempt in range(300):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(0.5, 0.02 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_a_flash_sale_never_oversells_across_orders_and_inventory_kills(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES}
        orders = orders_pb2_grpc.CheckoutServiceStub(channels["ecommerce-orders"])
        carts = cart_pb2_grpc.CartServiceStub(channels["ecommerce-cart"])
        catalog = catalog_pb2_grpc.CatalogServiceStub(channels["ecommerce-catalog"])
        inventory = inventory_pb2_grpc.InventoryServiceStub(channels["ecommerce-inventory"])
        gateway = gateway_pb2_grpc.PaymentGatewayServiceStub(channels["payments-gateway"])
        vault = vault_pb2_grpc.CardVaultServiceStub(channels["payments-vault"])
        answers: dict[str, set[str]] = defaultdict(set)  # buyer (one key each) → order ids answered
        outcomes: Counter[str] = Counter()
        try:
            for product_id, price in PRODUCTS.items():
                await catalog.CreateProduct(catalog_pb2.CreateProductRequest(product=EC.Product(
                    product_id=product_id, title=f"Flash sale {product_id}", category="flash-sale",
                    price=money_pb2.Money(currency_code="USD", amount_minor=price))), timeout=10)
                await inventory.Restock(inventory_pb2.RestockRequest(restock_id=f"sale-{product_id}",
                                                                     product_id=product_id, quantity=STOCK), timeout=10)
            tokens = {number: (await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
                merchant_id=contract.MERCHANT_ID, card_number=number, exp_month=12, exp_year=2035, cvc="123"),
                timeout=10)).card_token for number in (APPROVED_CARD, DECLINED_CARD)}
            buyers = [f"buyer-{n:02d}" for n in range(BUYERS)]

            async def buyer(n: int, user_id: str) -> None:
                rng = random.Random(n)
                declines = n % 5 == 0
                # The sale's rush, spread over the kills; the declined buyers early, so that their units go back.
                await asyncio.sleep(rng.uniform(0, 0.5 if declines else 3))
                for product_id in rng.sample(sorted(PRODUCTS), rng.choice((1, 2))):
                    try:
                        await _retried(carts.SetItem, cart_pb2.SetItemRequest(
                            user_id=user_id, product_id=product_id, quantity=rng.randint(1, 3)), rng)
                    except grpc.aio.AioRpcError as error:  # sold out (held by other carts)
                        assert contract.failed_precondition_reason(error.details()) == contract.OUT_OF_STOCK, error
                card = DECLINED_CARD if declines else APPROVED_CARD
                request = orders_pb2.CheckoutRequest(idempotency_key=f"checkout-{user_id}", user_id=user_id,
                                                     card_token=tokens[card])
                sends = 2 if rng.random() < 0.25 else 1  # a double click: the same request twice at once
                try:
                    results = await asyncio.gather(*(_retried(orders.Checkout, request, rng) for _ in range(sends)))
                except grpc.aio.AioRpcError as error:  # nothing in the cart
                    assert contract.failed_precondition_reason(error.details()) == contract.EMPTY_CART, error
                    outcomes["empty_cart"] += 1
                    answers.setdefault(user_id, set())
                    return
                for result in results:
                    answers[user_id].add(result.order.order_id)
                    assert result.order.status in (EC.ORDER_STATUS_CONFIRMED, EC.ORDER_STATUS_FAILED), result
                outcomes[EC.OrderStatus.Name(results[0].order.status)] += 1

            clients = [asyncio.create_task(buyer(n, user_id)) for n, user_id in enumerate(buyers)]
            await eventually(lambda: len(answers) >= 6, "6 checkouts answered before the orders service's kill", 30)
            assert mesh.kill("ecommerce-orders", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["ecommerce-orders"])
            await eventually(lambda: len(answers) >= 14, "14 checkouts answered before the inventory's kill", 30)
            assert mesh.kill("ecommerce-inventory", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["ecommerce-inventory"])
            await asyncio.wait_for(asyncio.gather(*clients), 60)
            assert len(answers) == BUYERS
            assert all(len(ids) <= 1 for ids in answers.values()), answers  # one order per key
            assert outcomes["ORDER_STATUS_CONFIRMED"] >= 5 and outcomes["ORDER_STATUS_FAILED"] >= 3, outcomes

            # Every buyer's orders, as stored: none PENDING once the recovery has run.
            async def stored() -> list[EC.Order]:
                found = []
                for user_id in buyers:
                    listed = await _retried(orders.ListOrders, orders_pb2.ListOrdersRequest(user_id=user_id),
                                            random.Random(0))
                    found.extend(listed.orders)
                return found

            deadline = time.monotonic() + 20
            placed = await stored()
            while any(order.status == EC.ORDER_STATUS_PENDING for order in placed):
                assert time.monotonic() < deadline, [o.order_id for o in placed if o.status == EC.ORDER_STATUS_PENDING]
                await asyncio.sleep(0.2)
                placed = await stored()
            assert {order.order_id for order in placed} == set().union(*answers.values())

            # No oversell: committed units are exactly the confirmed orders' units, within the stock.
            audit = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=10)
            assert not audit.violations, audit.violations
            sold: Counter[str] = Counter()
            for order in placed:
                if order.status == EC.ORDER_STATUS_CONFIRMED:
                    for line in order.lines:
                        sold[line.product_id] += line.quantity
            levels = {level.product_id: level for level in audit.stock}
            for product_id in PRODUCTS:
                level = levels[product_id]
                assert level.stocked == STOCK and level.committed == sold[product_id] <= STOCK, (level, sold)

            # Paid once for what was sold; nothing charged or held for what was not.
            for order in placed:
                if order.payment_id:
                    payment = (await gateway.GetPayment(gateway_pb2.GetPaymentRequest(
                        merchant_id=contract.MERCHANT_ID, payment_id=order.payment_id), timeout=10)).payment
                    assert payment.amount.amount_minor == order.total.amount_minor, (order, payment)
                if order.status == EC.ORDER_STATUS_CONFIRMED:
                    assert payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED, (order, payment)
                    assert payment.captured_minor == order.total.amount_minor, (order, payment)
                    assert order.total.amount_minor == sum(line.quantity * PRODUCTS[line.product_id]
                                                           for line in order.lines)
                    continue
                assert order.failure_reason != EC.ORDER_FAILURE_UNSPECIFIED, order
                if order.payment_id:
                    assert payment.status in (payments_pb2.PAYMENT_STATUS_VOIDED,
                                              payments_pb2.PAYMENT_STATUS_DECLINED), (order, payment)
                for line in order.lines:
                    reservation = (await inventory.GetReservation(inventory_pb2.GetReservationRequest(
                        reservation_id=line.reservation_id), timeout=10)).reservation
                    assert reservation.status in (EC.RESERVATION_STATUS_RELEASED, EC.RESERVATION_STATUS_EXPIRED), (
                        order, reservation)
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            for channel in channels.values():
                await channel.close()

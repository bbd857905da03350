"""ecommerce-orders through real gRPC: the service built by its DEFINITION (settings, data folder, the runtime's
channels to the cart, the inventory and the payment gateway) in front of fake CartService, InventoryService and
PaymentGatewayService servicers on a grpc.aio server (every status code of protos/casemesh/ecommerce/v1/orders.proto,
the clients' mapping of their dependencies' codes, a dependency down or hanging, a restart that resumes a PENDING
order), and the real shop and payment services served by the runtime side by side: concurrent buyers with duplicated
calls, internal calls made under this service's identity, and no unit sold twice.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import CollectorRegistry

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
from casemesh.payments.v1 import (
    gateway_pb2,
    gateway_pb2_grpc,
    payments_pb2,
    vault_pb2,
    vault_pb2_grpc,
)
from casemesh.services.catalog import definitions
from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.orders import metrics, service
from casemesh.services.ecommerce.orders.calls import DependencyUnavailable, Refused
from casemesh.services.ecommerce.orders.settings import OrderSettings
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology

from ..integration.conftest import loopback_topology, start_mesh
from .test_ecommerce_saga import (
    DECLINING,
    PRICES,
    TOKEN,
    UNKNOWN_TOKEN,
    Clock,
    Shop,
    sample,
)

WAIT_S = 10.0
EC = ecommerce_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
FP = grpc.StatusCode.FAILED_PRECONDITION
#: Fast calls and retries; the recovery's periodic look far away (the tests say when it runs: at start).
SETTINGS = {"call_attempts": 2, "retry_backoff_s": 0.01, "gateway_timeout_s": 1.0, "recovery_interval_s": 60,
            "recovery_max_backoff_s": 60}


class RealClock(Clock):
    """The fakes' clock on the wall clock (the service's own)."""

    def __call__(self) -> float:
        return time.time()

    def ms(self) -> int:
        return int(time.time() * 1000)


async def _answer(context: grpc.aio.ServicerContext, work):
    """``work``'s result; a fake's refusal as its status code, an outage as UNAVAILABLE."""
    try:
        return await work
    except Refused as refusal:
        await context.abort(refusal.code, refusal.details)
    except DependencyUnavailable as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


class FakeCartService(cart_pb2_grpc.CartServiceServicer):
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    async def GetCart(self, request, context):
        return cart_pb2.GetCartResponse(cart=await _answer(context, self.shop.cart.get_cart(request.user_id)))

    async def ClearLines(self, request, context):
        await _answer(context, self.shop.cart.clear_lines(request.user_id, list(request.reservation_ids)))
        return cart_pb2.ClearLinesResponse()


class FakeInventoryService(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, shop: Shop) -> None:
        self.inventory = shop.inventory

    async def Reserve(self, request, context):
        return inventory_pb2.ReserveResponse(reservation=await _answer(context, self.inventory.reserve(
            request.reservation_id, request.product_id, request.quantity, request.ttl_ms)))

    async def Commit(self, request, context):
        return inventory_pb2.CommitResponse(reservation=await _answer(context, self.inventory.commit(
            request.reservation_id)))

    async def Release(self, request, context):
        return inventory_pb2.ReleaseResponse(reservation=await _answer(context, self.inventory.release(
            request.reservation_id)))

    async def Restock(self, request, context):
        return inventory_pb2.RestockResponse(stock=await _answer(context, self.inventory.restock(
            request.restock_id, request.product_id, request.quantity)))


class FakeGatewayService(gateway_pb2_grpc.PaymentGatewayServiceServicer):
    def __init__(self, shop: Shop) -> None:
        self.gateway = shop.gateway

    async def Authorize(self, request, context):
        assert request.merchant_id == contract.MERCHANT_ID and not request.capture
        return gateway_pb2.AuthorizeResponse(payment=await _answer(context, self.gateway.authorize(
            request.idempotency_key, request.card_token, request.amount.currency_code, request.amount.amount_minor,
            request.customer_id, request.description)))

    async def Capture(self, request, context):
        assert request.merchant_id == contract.MERCHANT_ID and request.amount_minor == 0
        return gateway_pb2.CaptureResponse(payment=await _answer(context, self.gateway.capture(
            request.idempotency_key, request.payment_id)))

    async def Void(self, request, context):
        return gateway_pb2.VoidResponse(payment=await _answer(context, self.gateway.void(
            request.idempotency_key, request.payment_id)))


def _server() -> grpc.aio.Server:
    return grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])


class Served:
    """The fakes behind one server, and ecommerce-orders built by its DEFINITION in front of them."""

    def __init__(self, tmp_path, shop: Shop, fakes_port: int) -> None:
        self.shop = shop
        self.topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                           **{name: Endpoint(address=f"127.0.0.1:{fakes_port}")
                                              for name in (service.CART, service.INVENTORY, service.GATEWAY)}},
                                 data_dir=str(tmp_path), settings={service.NAME: SETTINGS})
        self.context = RuntimeContext(self.topology).for_service(service.NAME)
        self.component = None
        self.server = None
        self.channel = None
        self.stub: orders_pb2_grpc.CheckoutServiceStub | None = None

    async def start(self) -> None:
        self.component = await service.DEFINITION.build(self.context)
        self.server = _server()
        self.component.register(self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        await self.component.start()
        self.shop.orders = self.component.orders
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = orders_pb2_grpc.CheckoutServiceStub(self.channel)

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(None)
        await self.component.stop()

    async def checkout(self, user_id: str, key: str = "key-1", token: str = TOKEN) -> EC.Order:
        return (await self.stub.Checkout(orders_pb2.CheckoutRequest(idempotency_key=key, user_id=user_id,
                                                                    card_token=token), timeout=WAIT_S)).order


@pytest.fixture
async def served(tmp_path):
    shop = Shop(tmp_path / "fakes", clock=RealClock())
    for product_id in PRICES:
        shop.inventory.stocked[product_id] = 10
    fakes = _server()
    cart_pb2_grpc.add_CartServiceServicer_to_server(FakeCartService(shop), fakes)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventoryService(shop), fakes)
    gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server(FakeGatewayService(shop), fakes)
    port = fakes.add_insecure_port("127.0.0.1:0")
    await fakes.start()
    running = Served(tmp_path, shop, port)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        await running.context.close()
        await fakes.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.grpc_services) == (
        "ecommerce-orders", ("ecommerce-cart", "ecommerce-inventory", "payments-gateway"),
        ("casemesh.ecommerce.v1.CheckoutService",))
    assert d.access.public == {"Checkout", "GetOrder", "ListOrders"} and not d.access.internal
    assert d.settings_model is OrderSettings and not d.optional_dependencies
    assert metrics.CHECKOUTS._name == "casemesh_ecommerce_orders_checkouts"
    assert metrics.PENDING._name == "casemesh_ecommerce_orders_pending"


async def test_status_codes(served, tmp_path):
    shop, stub = served.shop, served.stub
    assert (tmp_path / "ecommerce-orders" / "orders.sqlite3").is_file()
    for call, (code, field) in (
        (stub.Checkout(orders_pb2.CheckoutRequest(user_id="ann", card_token=TOKEN), timeout=WAIT_S),
         (INVALID, "idempotency_key:")),
        (stub.Checkout(orders_pb2.CheckoutRequest(idempotency_key="k", user_id="a/b", card_token=TOKEN),
                       timeout=WAIT_S), (INVALID, "user_id:")),
        (stub.Checkout(orders_pb2.CheckoutRequest(idempotency_key="k", user_id="ann", card_token="4242"),
                       timeout=WAIT_S), (INVALID, "card_token:")),
        (stub.Checkout(orders_pb2.CheckoutRequest(idempotency_key="k", user_id="ann", card_token=TOKEN),
                       timeout=WAIT_S), (FP, "empty_cart:")),
        (stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord_1"), timeout=WAIT_S), (INVALID, "order_id:")),
        (stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord_" + "a" * 24), timeout=WAIT_S),
         (grpc.StatusCode.NOT_FOUND, "order_id:")),
        (stub.ListOrders(orders_pb2.ListOrdersRequest(user_id=""), timeout=WAIT_S), (INVALID, "user_id:")),
        (stub.ListOrders(orders_pb2.ListOrdersRequest(user_id="ann", page_size=101), timeout=WAIT_S),
         (INVALID, "page_size:")),
        (stub.ListOrders(orders_pb2.ListOrdersRequest(user_id="ann", page_token="?"), timeout=WAIT_S),
         (INVALID, "page_token:")),
    ):
        got, details = await _code(call)
        assert (got, details.startswith(field)) == (code, True), details

    apple = await shop.cart.add("ann", "apple", 2)
    order = await served.checkout("ann")
    assert order.status == EC.ORDER_STATUS_CONFIRMED and order.lines[0].reservation_id == apple
    assert await served.checkout("ann") == order
    got = await stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order.order_id), timeout=WAIT_S)
    assert got.order == order
    listed = await stub.ListOrders(orders_pb2.ListOrdersRequest(user_id="ann"), timeout=WAIT_S)
    assert list(listed.orders) == [order] and not listed.next_page_token
    code, details = await _code(stub.Checkout(orders_pb2.CheckoutRequest(
        idempotency_key="key-1", user_id="ann", card_token=DECLINING), timeout=WAIT_S))
    assert code == FP and contract.failed_precondition_reason(details) == contract.KEY_REUSED

    # Refusals through gRPC are answers: the inventory's out_of_stock, the gateway's decline and unknown token.
    await shop.cart.add("bob", "pear", 1)
    await shop.cart.add("cat", "plum", 1)
    shop.inventory.reservations[shop.cart.lines["bob"][0].reservation_id].status = EC.RESERVATION_STATUS_RELEASED
    order = await served.checkout("bob")
    assert (order.status, order.failure_reason) == (EC.ORDER_STATUS_FAILED, EC.ORDER_FAILURE_OUT_OF_STOCK)
    order = await served.checkout("cat", token=UNKNOWN_TOKEN)
    assert (order.status, order.failure_reason) == (EC.ORDER_STATUS_FAILED, EC.ORDER_FAILURE_PAYMENT_DECLINED)
    await shop.cart.add("dan", "plum", 1)
    order = await served.checkout("dan", token=DECLINING)
    assert shop.gateway.payments[order.payment_id].status == payments_pb2.PAYMENT_STATUS_DECLINED
    await shop.check_books()


async def test_a_dependency_down_or_hanging_answers_unavailable_and_the_retry_finishes(served):
    shop = served.shop
    await shop.cart.add("ann", "apple", 1)
    reserves = sample("casemesh_ecommerce_orders_dependency_calls_total", {"method": "Reserve",
                                                                          "code": "UNAVAILABLE"})
    shop.faults.always_down.add("Reserve")
    code, details = await _code(served.stub.Checkout(orders_pb2.CheckoutRequest(
        idempotency_key="k", user_id="ann", card_token=TOKEN), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "Reserve" in details
    assert sample("casemesh_ecommerce_orders_dependency_calls_total",
                  {"method": "Reserve", "code": "UNAVAILABLE"}) == reserves + SETTINGS["call_attempts"]
    order_id = (await served.stub.ListOrders(orders_pb2.ListOrdersRequest(user_id="ann"),
                                             timeout=WAIT_S)).orders[0].order_id
    got = await served.stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id), timeout=WAIT_S)
    assert got.order.status == EC.ORDER_STATUS_PENDING
    shop.faults.always_down.clear()

    # A gateway that hangs past gateway_timeout_s: UNAVAILABLE (DEADLINE_EXCEEDED); the retry finishes, paid once.
    gate = asyncio.Event()
    authorize = shop.gateway.authorize

    async def hanging(*args):
        await gate.wait()
        return await authorize(*args)

    shop.gateway.authorize = hanging
    code, details = await _code(served.stub.Checkout(orders_pb2.CheckoutRequest(
        idempotency_key="k", user_id="ann", card_token=TOKEN), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "DEADLINE_EXCEEDED" in details
    gate.set()
    shop.gateway.authorize = authorize
    order = await served.checkout("ann", key="k")
    assert order.order_id == order_id and order.status == EC.ORDER_STATUS_CONFIRMED
    assert len(shop.gateway.payments) == 1
    await shop.check_books()


async def test_a_restart_resumes_a_pending_order(served):
    shop = served.shop
    await shop.cart.add("ann", "apple", 1)
    shop.faults.always_down.add("Capture")
    code, _ = await _code(served.stub.Checkout(orders_pb2.CheckoutRequest(
        idempotency_key="k", user_id="ann", card_token=TOKEN), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
    await served.stop()
    shop.faults.always_down.clear()
    await served.start()  # the recovery looks at every PENDING order at start
    for _ in range(500):
        orders = (await served.stub.ListOrders(orders_pb2.ListOrdersRequest(user_id="ann"), timeout=WAIT_S)).orders
        if orders[0].status != EC.ORDER_STATUS_PENDING:
            break
        await asyncio.sleep(0.01)
    assert orders[0].status == EC.ORDER_STATUS_CONFIRMED
    assert sample("casemesh_ecommerce_orders_pending") == 0
    await shop.check_books()


async def test_concurrent_buyers_with_double_taps_never_oversell(served):
    shop = served.shop
    shop.inventory.stocked["apple"] = 6
    buyers = [f"b{n}" for n in range(12)]
    for n, buyer in enumerate(buyers):
        # Every buyer holds one apple but the last six: their holds ran out and the units went to others.
        if n < 6:
            await shop.cart.add(buyer, "apple", 1)
        else:
            shop.cart.lines[buyer].append(EC.CartLine(
                product_id="apple", quantity=1, reservation_id=contract.new_reservation_id(),
                unit_price=money_pb2.Money(currency_code="USD", amount_minor=PRICES["apple"])))

    async def buy(buyer: str) -> EC.Order:
        for _ in range(200):
            try:
                return await served.checkout(buyer, token=DECLINING if buyer == "b0" else TOKEN)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.ABORTED, error.details()
                await asyncio.sleep(0.01)
        raise AssertionError(f"{buyer} never answered")

    answers = await asyncio.gather(*(buy(buyer) for buyer in buyers for _ in range(2)))
    for n in range(len(buyers)):
        assert answers[2 * n] == answers[2 * n + 1]
    confirmed = [order for order in answers[::2] if order.status == EC.ORDER_STATUS_CONFIRMED]
    # Five holders pay; b0's card is declined, and a buyer without a hold may get the unit it gives back.
    assert 5 <= len(confirmed) == shop.inventory.units("apple", EC.RESERVATION_STATUS_COMMITTED) <= 6
    await shop.check_books()


# ----------------------------------------------------------------------------- the real services


SHOP = ["ecommerce-inventory", "ecommerce-catalog", "ecommerce-cart", "ecommerce-orders", "payments-gateway",
        "payments-vault", "payments-fraud", "payments-psp-a", "payments-psp-b"]


async def test_the_real_services_side_by_side(tmp_path):
    """The shop and the payment gateway served by the runtime: the orders service calls the inventory's internal
    Reserve, Commit and Release and the cart's internal ClearLines as ``ecommerce-orders``; buyers race for a few
    units, sending every checkout twice at once; no unit is sold twice and every order is paid as it says."""
    topology = loopback_topology(SHOP, data_dir=tmp_path, settings={
        "payments-fraud": {"block_threshold": 101},  # one test card pays every order: never blocked as card testing
        "payments-psp-a": {"latency_median_ms": 1, "decline_rate": 0.0},
        "payments-psp-b": {"latency_median_ms": 1, "decline_rate": 0.0}})
    running, stop, task = await start_mesh(definitions(SHOP), topology)
    try:
        orders = orders_pb2_grpc.CheckoutServiceStub(running.anonymous_channel("ecommerce-orders"))
        cart = cart_pb2_grpc.CartServiceStub(running.anonymous_channel("ecommerce-cart"))
        catalog = catalog_pb2_grpc.CatalogServiceStub(running.anonymous_channel("ecommerce-catalog"))
        inventory = inventory_pb2_grpc.InventoryServiceStub(running.anonymous_channel("ecommerce-inventory"))
        gateway = gateway_pb2_grpc.PaymentGatewayServiceStub(running.anonymous_channel("payments-gateway"))
        vault = vault_pb2_grpc.CardVaultServiceStub(running.anonymous_channel("payments-vault"))
        await catalog.CreateProduct(catalog_pb2.CreateProductRequest(product=EC.Product(
            product_id="mug", title="Mug", category="home", price=money_pb2.Money(currency_code="USD",
                                                                                  amount_minor=1_250))),
            timeout=WAIT_S)
        await inventory.Restock(inventory_pb2.RestockRequest(restock_id="r1", product_id="mug", quantity=5),
                                timeout=WAIT_S)
        token = (await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
            merchant_id=contract.MERCHANT_ID, card_number="4242424242424242", exp_month=12, exp_year=2035,
            cvc="123"), timeout=WAIT_S)).card_token
        buyers = [f"buyer{n}" for n in range(8)]
        in_cart = []
        for buyer in buyers:
            try:
                await cart.SetItem(cart_pb2.SetItemRequest(user_id=buyer, product_id="mug", quantity=1),
                                   timeout=WAIT_S)
                in_cart.append(buyer)
            except grpc.aio.AioRpcError as error:
                assert error.code() == FP and contract.failed_precondition_reason(error.details()) == "out_of_stock"
        assert len(in_cart) == 5

        async def buy(buyer: str) -> EC.Order:
            for _ in range(200):
                try:
                    return (await orders.Checkout(orders_pb2.CheckoutRequest(
                        idempotency_key="k", user_id=buyer, card_token=token), timeout=WAIT_S)).order
                except grpc.aio.AioRpcError as error:
                    assert error.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE), error.details()
                    await asyncio.sleep(0.02)
            raise AssertionError(f"{buyer} never answered")

        answers = await asyncio.gather(*(buy(buyer) for buyer in in_cart for _ in range(2)))
        assert all(order.status == EC.ORDER_STATUS_CONFIRMED for order in answers), answers
        assert {order.order_id for order in answers} == {order.order_id for order in answers[::2]}
        for order in answers[::2]:
            payment = (await gateway.GetPayment(gateway_pb2.GetPaymentRequest(
                merchant_id=contract.MERCHANT_ID, payment_id=order.payment_id), timeout=WAIT_S)).payment
            assert payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED
            assert payment.captured_minor == order.total.amount_minor == 1_250
            assert not (await cart.GetCart(cart_pb2.GetCartRequest(user_id=order.user_id), timeout=WAIT_S)).cart.lines
        audit = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not audit.violations
        [mug] = [level for level in audit.stock if level.product_id == "mug"]
        assert (mug.stocked, mug.committed, mug.held, mug.available) == (5, 5, 0, 0)
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

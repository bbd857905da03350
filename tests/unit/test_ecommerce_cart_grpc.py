"""ecommerce-cart through real gRPC: the runtime serves a fake InventoryService (the inventory's contract in memory,
its Reserve and Release internal to ``ecommerce-cart`` as the real one declares them, so the cart's calls must carry
its identity), the real catalogue, and the cart in the catalogue's process (one address, as the default topology
has them): every status code of protos/casemesh/ecommerce/v1/cart.proto, ClearLines refused to anyone but
ecommerce-orders, the inventory down or hanging, the catalogue unreachable, and many concurrent buyers on a scarce
product: no unit held twice, every line's units held, none held for no line. The last test serves the real
ecommerce-inventory instead and checks the same through its GetReservation and Audit.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from casemesh.ecommerce.v1 import cart_pb2, cart_pb2_grpc, catalog_pb2_grpc, inventory_pb2, inventory_pb2_grpc
from casemesh.harness.mesh import free_port
from casemesh.services.ecommerce.cart import metrics, service
from casemesh.services.ecommerce.cart.catalog_client import CatalogUnavailable
from casemesh.services.ecommerce.cart.settings import CartSettings
from casemesh.services.ecommerce.catalog import service as catalog_service
from casemesh.services.ecommerce.inventory import service as inventory_service
from casemesh.services.runtime.authorization import Access
from casemesh.services.runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from casemesh.services.runtime.topology import Endpoint, Topology

from ..integration.conftest import start_mesh
from .test_ecommerce_cart import HELD, FakeInventory, Held, set_item
from .test_ecommerce_catalog import create

WAIT_S = 10.0
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVENTORY_FULL_NAME = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name


class FakeInventoryService(inventory_pb2_grpc.InventoryServiceServicer):
    """Reserve and Release over :class:`FakeInventory` (its domain errors mapped by the runtime's interceptor);
    records every ``ttl_ms`` asked."""

    def __init__(self, inventory: FakeInventory) -> None:
        self.inventory = inventory
        self.ttls: list[int] = []

    async def Reserve(self, request, context):
        self.ttls.append(request.ttl_ms)
        return inventory_pb2.ReserveResponse(reservation=await self.inventory.reserve(
            request.reservation_id, request.product_id, request.quantity))

    async def Release(self, request, context):
        return inventory_pb2.ReleaseResponse(reservation=await self.inventory.release(request.reservation_id))


def fake_inventory_definition(servicer: FakeInventoryService) -> ServiceDefinition:
    async def build(context: RuntimeContext) -> StatelessComponent:
        return StatelessComponent(servicer, inventory_pb2_grpc.add_InventoryServiceServicer_to_server)

    return ServiceDefinition(name=service.INVENTORY, grpc_services=(INVENTORY_FULL_NAME,), dependencies=(),
                             build=build, access=Access(internal={"Reserve": (service.NAME,),
                                                                  "Release": (service.NAME,)}))


@pytest.fixture
async def shop(tmp_path):
    """(fake inventory, its servicer, the running mesh): the catalogue and the cart at one address."""
    inventory = FakeInventory()
    servicer = FakeInventoryService(inventory)
    shared = f"127.0.0.1:{free_port()}"
    topology = Topology(services={service.INVENTORY: Endpoint(address=f"127.0.0.1:{free_port()}"),
                                  catalog_service.NAME: Endpoint(address=shared),
                                  service.NAME: Endpoint(address=shared)},
                        data_dir=str(tmp_path), settings={service.NAME: {"inventory_timeout_s": 0.5}})
    running, stop, task = await start_mesh(
        [fake_inventory_definition(servicer), catalog_service.DEFINITION, service.DEFINITION], topology)
    try:
        yield inventory, servicer, running
    finally:
        if inventory.gate is not None:
            inventory.gate.set()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _products(running, *specs: tuple[str, str, int]) -> None:
    catalog = catalog_pb2_grpc.CatalogServiceStub(running.anonymous_channel(catalog_service.NAME))
    for product_id, currency, amount in specs:
        await catalog.CreateProduct(create(product_id=product_id, currency=currency, amount=amount), timeout=WAIT_S)


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.grpc_services) == (
        "ecommerce-cart", ("ecommerce-catalog", "ecommerce-inventory"), ("casemesh.ecommerce.v1.CartService",))
    assert d.access.public == {"SetItem", "GetCart"} and d.access.internal == {"ClearLines": ("ecommerce-orders",)}
    assert d.settings_model is CartSettings and not d.optional_dependencies
    assert metrics.SET_ITEMS._name == "casemesh_ecommerce_cart_set_item"


async def test_status_codes(shop):
    inventory, servicer, running = shop
    await _products(running, ("mug", "USD", 1_250), ("pen", "USD", 199), ("croissant", "EUR", 300))
    inventory.stock.update(mug=10, pen=2, croissant=10)
    stub = cart_pb2_grpc.CartServiceStub(running.anonymous_channel(service.NAME))  # a buyer: no identity
    orders = cart_pb2_grpc.CartServiceStub(running.channel(service.NAME))  # the test identity stands in for orders

    cart = (await stub.SetItem(set_item("ann", "mug", 2), timeout=WAIT_S)).cart
    (line,) = cart.lines
    assert cart.total.amount_minor == 2_500 and inventory.held()[line.reservation_id] == Held("mug", 2, HELD)
    assert servicer.ttls == [0]  # the inventory's default TTL
    for call, expected in (
        (stub.SetItem(set_item("", "mug", 1), timeout=WAIT_S), (INVALID, "user_id:")),
        (stub.SetItem(set_item("ann", "m/g", 1), timeout=WAIT_S), (INVALID, "product_id:")),
        (stub.SetItem(set_item("ann", "mug", 1_001), timeout=WAIT_S), (INVALID, "quantity:")),
        (stub.SetItem(set_item("ann", "ghost", 1), timeout=WAIT_S), (grpc.StatusCode.NOT_FOUND, "product_id:")),
        (stub.SetItem(set_item("ann", "pen", 3), timeout=WAIT_S), (PRECONDITION, "out_of_stock:")),
        (stub.SetItem(set_item("ann", "croissant", 1), timeout=WAIT_S), (PRECONDITION, "currency_mismatch:")),
        (stub.GetCart(cart_pb2.GetCartRequest(user_id="a" * 65), timeout=WAIT_S), (INVALID, "user_id:")),
        (orders.ClearLines(cart_pb2.ClearLinesRequest(user_id="ann"), timeout=WAIT_S),
         (INVALID, "reservation_ids:")),
        (orders.ClearLines(cart_pb2.ClearLinesRequest(user_id="ann", reservation_ids=["rsv_x"]), timeout=WAIT_S),
         (INVALID, "reservation_ids[0]:")),
        (stub.ClearLines(cart_pb2.ClearLinesRequest(user_id="ann", reservation_ids=[line.reservation_id]),
                         timeout=WAIT_S), (grpc.StatusCode.PERMISSION_DENIED, "")),
    ):
        code, details = await _code(call)
        assert (code, details.startswith(expected[1])) == (expected[0], True), details
    assert (await stub.GetCart(cart_pb2.GetCartRequest(user_id="ann"), timeout=WAIT_S)).cart == cart

    # the inventory down: UNAVAILABLE, the cart unchanged
    inventory.down = True
    code, details = await _code(stub.SetItem(set_item("ann", "mug", 3), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "ecommerce-inventory" in details
    inventory.down = False
    # the inventory hangs past inventory_timeout_s (0.5 s): UNAVAILABLE naming the deadline
    inventory.gate = asyncio.Event()
    code, details = await _code(stub.SetItem(set_item("ann", "mug", 3), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "DEADLINE_EXCEEDED" in details
    inventory.gate.set()
    inventory.gate = None
    await asyncio.sleep(0)
    assert (await stub.GetCart(cart_pb2.GetCartRequest(user_id="ann"), timeout=WAIT_S)).cart == cart

    cleared = (await orders.ClearLines(cart_pb2.ClearLinesRequest(user_id="ann", reservation_ids=[
        line.reservation_id]), timeout=WAIT_S)).cart
    assert not cleared.lines and cleared.total.currency_code == "USD"
    assert line.reservation_id in inventory.held()  # not released: the order took it


async def test_many_buyers_on_a_scarce_product(shop):
    inventory, _, running = shop
    await _products(running, ("drop", "USD", 5_000), ("pen", "USD", 199))
    inventory.stock.update(drop=25, pen=1_000)
    stub = cart_pb2_grpc.CartServiceStub(running.anonymous_channel(service.NAME))
    rng = random.Random(5)
    buyers = [f"buyer{n}" for n in range(20)]

    async def buyer(user: str, plan: list[tuple[str, int]]) -> None:
        for product_id, quantity in plan:
            try:
                await stub.SetItem(set_item(user, product_id, quantity), timeout=WAIT_S)
            except grpc.aio.AioRpcError as error:
                assert error.code() == PRECONDITION and error.details().startswith("out_of_stock:"), error.details()

    plans = {user: [(rng.choice(("drop", "drop", "pen")), rng.randint(0, 4)) for _ in range(6)] for user in buyers}
    await asyncio.gather(*(buyer(user, plan) for user, plan in plans.items()))

    held = inventory.held()
    in_carts: set[str] = set()
    drop_units = 0
    for user in buyers:
        cart = (await stub.GetCart(cart_pb2.GetCartRequest(user_id=user), timeout=WAIT_S)).cart
        assert len({line.product_id for line in cart.lines}) == len(cart.lines)
        for line in cart.lines:
            assert held[line.reservation_id] == Held(line.product_id, line.quantity, HELD)
            in_carts.add(line.reservation_id)
            drop_units += line.quantity if line.product_id == "drop" else 0
    assert set(held) == in_carts  # no reservation held for no line
    assert drop_units == 25 - inventory.available("drop") <= 25


async def test_an_unreachable_catalogue_is_unavailable(tmp_path):
    """The cart alone, the catalogue's address closed: UNAVAILABLE, nothing reserved."""
    topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                  service.CATALOG: Endpoint(address=f"127.0.0.1:{free_port()}"),
                                  service.INVENTORY: Endpoint(address=f"127.0.0.1:{free_port()}")},
                        data_dir=str(tmp_path), settings={service.NAME: {"catalog_timeout_s": 0.5}})
    context = RuntimeContext(topology).for_service(service.NAME)
    component = await service.DEFINITION.build(context)
    try:
        with pytest.raises(CatalogUnavailable, match="ecommerce-catalog"):
            await component.carts.set_item(set_item("ann", "mug", 1))
        assert not component.carts.cart("ann").lines
    finally:
        await component.stop()
        await context.close()


async def test_with_the_real_inventory(tmp_path):
    """ecommerce-inventory, the catalogue and the cart served by the runtime: concurrent buyers on a scarce product,
    then the inventory's Audit: no oversell, and the units held are exactly the carts' lines."""
    shared = f"127.0.0.1:{free_port()}"
    topology = Topology(services={service.INVENTORY: Endpoint(address=f"127.0.0.1:{free_port()}"),
                                  catalog_service.NAME: Endpoint(address=shared),
                                  service.NAME: Endpoint(address=shared)}, data_dir=str(tmp_path))
    running, stop, task = await start_mesh(
        [inventory_service.DEFINITION, catalog_service.DEFINITION, service.DEFINITION], topology)
    try:
        await _products(running, ("drop", "USD", 5_000), ("pen", "USD", 199))
        inventory = inventory_pb2_grpc.InventoryServiceStub(running.anonymous_channel(service.INVENTORY))
        for product_id, units in (("drop", 25), ("pen", 1_000)):
            await inventory.Restock(inventory_pb2.RestockRequest(restock_id=f"r-{product_id}", product_id=product_id,
                                                                 quantity=units), timeout=WAIT_S)
        stub = cart_pb2_grpc.CartServiceStub(running.anonymous_channel(service.NAME))
        rng = random.Random(9)
        buyers = [f"buyer{n}" for n in range(20)]

        async def buyer(user: str) -> None:
            for _ in range(6):
                try:
                    await stub.SetItem(set_item(user, rng.choice(("drop", "drop", "pen")), rng.randint(0, 4)),
                                       timeout=WAIT_S)
                except grpc.aio.AioRpcError as error:
                    assert error.code() == PRECONDITION and error.details().startswith("out_of_stock:")

        await asyncio.gather(*(buyer(user) for user in buyers))
        held: dict[str, int] = {"drop": 0, "pen": 0}
        reservations = 0
        for user in buyers:
            for line in (await stub.GetCart(cart_pb2.GetCartRequest(user_id=user), timeout=WAIT_S)).cart.lines:
                got = (await inventory.GetReservation(inventory_pb2.GetReservationRequest(
                    reservation_id=line.reservation_id), timeout=WAIT_S)).reservation
                assert (got.status, got.product_id, got.quantity) == (HELD, line.product_id, line.quantity)
                assert got.expires_at_unix_ms == line.reserved_until_unix_ms
                held[line.product_id] += line.quantity
                reservations += 1
        audit = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not audit.violations and audit.held_reservations == reservations
        assert {level.product_id: level.held for level in audit.stock} == held and held["drop"] <= 25
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

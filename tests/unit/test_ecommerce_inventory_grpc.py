"""The e-commerce inventory's servicer through real gRPC: served by the runtime (DEFINITION, its settings and data
folder), called as ``ecommerce-cart`` and ``ecommerce-orders`` for the internal RPCs and anonymously for the public
ones; every status code of protos/casemesh/ecommerce/v1/inventory.proto with the contract's FAILED_PRECONDITION
reasons; who may call what; many concurrent buyers of a flash sale never oversell and the audit finds nothing; the
sweeper expires reservations nobody asks about (its metric counts them); an inventory whose file is gone answers
UNAVAILABLE and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import grpc
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.inventory.inventory import Inventory
from casemesh.services.ecommerce.inventory.service import DEFINITION, NAME, InventoryServicer
from casemesh.services.ecommerce.inventory.store import FILE_NAME, InventoryStore
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
HELD = ecommerce_pb2.RESERVATION_STATUS_HELD
COMMITTED = ecommerce_pb2.RESERVATION_STATUS_COMMITTED
RELEASED = ecommerce_pb2.RESERVATION_STATUS_RELEASED
EXPIRED = ecommerce_pb2.RESERVATION_STATUS_EXPIRED


def _reserve(reservation_id: str, product_id: str = "p1", quantity: int = 1,
             ttl_ms: int = 0) -> inventory_pb2.ReserveRequest:
    return inventory_pb2.ReserveRequest(reservation_id=reservation_id, product_id=product_id, quantity=quantity,
                                        ttl_ms=ttl_ms)


def _restock(restock_id: str, product_id: str, quantity: int) -> inventory_pb2.RestockRequest:
    return inventory_pb2.RestockRequest(restock_id=restock_id, product_id=product_id, quantity=quantity)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _reason(call) -> str:
    code, details = await _code(call)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    return contract.failed_precondition_reason(details)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Running:
    """The inventory served by the runtime, and stubs as the cart, as the orders service and as anyone."""

    def __init__(self, running, topology) -> None:
        self.running = running
        self.cart_context = RuntimeContext(topology, secret=TEST_SECRET).for_service("ecommerce-cart")
        self.orders_context = RuntimeContext(topology, secret=TEST_SECRET).for_service("ecommerce-orders")
        self.cart = inventory_pb2_grpc.InventoryServiceStub(self.cart_context.channel(NAME))
        self.orders = inventory_pb2_grpc.InventoryServiceStub(self.orders_context.channel(NAME))
        self.public = inventory_pb2_grpc.InventoryServiceStub(running.anonymous_channel(NAME))

    async def close(self) -> None:
        await self.cart_context.close()
        await self.orders_context.close()
        await self.running.close()


@contextlib.asynccontextmanager
async def served(tmp_path, **settings):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: settings})
    running, stop, task = await start_mesh([DEFINITION], topology)
    stubs = Running(running, topology)
    try:
        yield stubs
    finally:
        await stubs.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def test_the_definition():
    assert DEFINITION.name == NAME == "ecommerce-inventory" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.ecommerce.v1.InventoryService",)
    assert DEFINITION.access.public == {"Restock", "GetStock", "GetReservation", "Audit"}
    assert dict(DEFINITION.access.internal) == {"Reserve": ("ecommerce-cart", "ecommerce-orders"),
                                                "Release": ("ecommerce-cart", "ecommerce-orders"),
                                                "Commit": ("ecommerce-orders",)}


async def test_the_inventory_through_the_runtime(tmp_path):
    async with served(tmp_path, reservation_ttl_s=60) as mesh:
        cart, orders, public = mesh.cart, mesh.orders, mesh.public
        ids = [contract.new_reservation_id() for _ in range(5)]
        stock = (await public.Restock(_restock("r1", "tv", 3), timeout=WAIT_S)).stock
        assert (stock.product_id, stock.stocked, stock.held, stock.committed, stock.available) == ("tv", 3, 0, 0, 3)
        assert (await public.Restock(_restock("r1", "tv", 3), timeout=WAIT_S)).stock == stock
        assert await _reason(public.Restock(_restock("r1", "tv", 4), timeout=WAIT_S)) == contract.KEY_REUSED

        held = (await cart.Reserve(_reserve(ids[0], "tv", 2), timeout=WAIT_S)).reservation
        assert (held.reservation_id, held.product_id, held.quantity, held.status) == (ids[0], "tv", 2, HELD)
        assert held.expires_at_unix_ms > 0
        again = (await orders.Reserve(_reserve(ids[0], "tv", 2, ttl_ms=120_000), timeout=WAIT_S)).reservation
        assert again.status == HELD and again.expires_at_unix_ms > held.expires_at_unix_ms  # extended
        assert await _reason(cart.Reserve(_reserve(ids[1], "tv", 2), timeout=WAIT_S)) == contract.OUT_OF_STOCK
        assert await _reason(cart.Reserve(_reserve(ids[0], "tv", 1), timeout=WAIT_S)) == contract.KEY_REUSED
        stock = (await public.GetStock(inventory_pb2.GetStockRequest(product_id="tv"), timeout=WAIT_S)).stock
        assert (stock.stocked, stock.held, stock.committed, stock.available) == (3, 2, 0, 1)

        committed = (await orders.Commit(inventory_pb2.CommitRequest(reservation_id=ids[0]),
                                         timeout=WAIT_S)).reservation
        assert (committed.status, committed.expires_at_unix_ms) == (COMMITTED, 0)
        assert (await orders.Commit(inventory_pb2.CommitRequest(reservation_id=ids[0]),
                                    timeout=WAIT_S)).reservation == committed
        assert (await cart.Reserve(_reserve(ids[0], "tv", 2), timeout=WAIT_S)).reservation == committed
        assert await _reason(cart.Release(inventory_pb2.ReleaseRequest(reservation_id=ids[0]),
                                          timeout=WAIT_S)) == contract.RESERVATION_COMMITTED

        await cart.Reserve(_reserve(ids[1], "tv", 1), timeout=WAIT_S)
        released = (await cart.Release(inventory_pb2.ReleaseRequest(reservation_id=ids[1]),
                                       timeout=WAIT_S)).reservation
        assert released.status == RELEASED
        assert (await orders.Release(inventory_pb2.ReleaseRequest(reservation_id=ids[1]),
                                     timeout=WAIT_S)).reservation == released
        assert await _reason(orders.Commit(inventory_pb2.CommitRequest(reservation_id=ids[1]),
                                           timeout=WAIT_S)) == contract.RESERVATION_RELEASED
        assert await _reason(cart.Reserve(_reserve(ids[1], "tv", 1), timeout=WAIT_S)) == contract.RESERVATION_RELEASED

        for call in (orders.Commit(inventory_pb2.CommitRequest(reservation_id=ids[4]), timeout=WAIT_S),
                     cart.Release(inventory_pb2.ReleaseRequest(reservation_id=ids[4]), timeout=WAIT_S),
                     public.GetReservation(inventory_pb2.GetReservationRequest(reservation_id=ids[4]),
                                           timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.NOT_FOUND
        assert (await public.GetReservation(inventory_pb2.GetReservationRequest(reservation_id=ids[0]),
                                            timeout=WAIT_S)).reservation == committed
        never = (await public.GetStock(inventory_pb2.GetStockRequest(product_id="radio"), timeout=WAIT_S)).stock
        assert (never.product_id, never.stocked, never.available) == ("radio", 0, 0)

        bad = (
            (cart.Reserve(_reserve("", "tv"), timeout=WAIT_S), "reservation_id:"),
            (cart.Reserve(_reserve("rsv_ABC", "tv"), timeout=WAIT_S), "reservation_id:"),
            (cart.Reserve(_reserve(ids[2], "t v"), timeout=WAIT_S), "product_id:"),
            (cart.Reserve(_reserve(ids[2], "tv", 0), timeout=WAIT_S), "quantity:"),
            (cart.Reserve(_reserve(ids[2], "tv", 1_001), timeout=WAIT_S), "quantity:"),
            (cart.Reserve(_reserve(ids[2], "tv", 1, ttl_ms=999), timeout=WAIT_S), "ttl_ms:"),
            (cart.Reserve(_reserve(ids[2], "tv", 1, ttl_ms=3_600_001), timeout=WAIT_S), "ttl_ms:"),
            (orders.Commit(inventory_pb2.CommitRequest(reservation_id="x"), timeout=WAIT_S), "reservation_id:"),
            (cart.Release(inventory_pb2.ReleaseRequest(), timeout=WAIT_S), "reservation_id:"),
            (public.GetReservation(inventory_pb2.GetReservationRequest(), timeout=WAIT_S), "reservation_id:"),
            (public.GetStock(inventory_pb2.GetStockRequest(), timeout=WAIT_S), "product_id:"),
            (public.Restock(_restock("", "tv", 1), timeout=WAIT_S), "restock_id:"),
            (public.Restock(_restock("r2", "", 1), timeout=WAIT_S), "product_id:"),
            (public.Restock(_restock("r2", "tv", 0), timeout=WAIT_S), "quantity:"),
            (public.Restock(_restock("r2", "tv", 1_000_001), timeout=WAIT_S), "quantity:"),
        )
        for call, field in bad:
            code, details = await _code(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(field), (code, details)

        # Who may call what: Reserve and Release are the cart's and the orders'; Commit only the orders'.
        for call in (public.Reserve(_reserve(ids[2], "tv"), timeout=WAIT_S),
                     public.Release(inventory_pb2.ReleaseRequest(reservation_id=ids[1]), timeout=WAIT_S),
                     public.Commit(inventory_pb2.CommitRequest(reservation_id=ids[1]), timeout=WAIT_S),
                     cart.Commit(inventory_pb2.CommitRequest(reservation_id=ids[1]), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED

        audit = await public.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not audit.violations and audit.held_reservations == 0
        assert [(s.product_id, s.stocked, s.held, s.committed, s.available) for s in audit.stock] == [
            ("tv", 3, 0, 2, 1)]


async def test_a_flash_sale_never_oversells(tmp_path):
    async with served(tmp_path) as mesh:
        products = {"flash-a": 15, "flash-b": 8}
        for product, units in products.items():
            await mesh.public.Restock(_restock(f"r-{product}", product, units), timeout=WAIT_S)
        rng = random.Random(3)
        outcomes: list[tuple[str, int, str]] = []

        async def buyer(n: int) -> None:
            stub = mesh.cart if n % 2 else mesh.orders
            product = rng.choice(sorted(products))
            reservation_id = contract.new_reservation_id()
            quantity = rng.randint(1, 3)
            try:
                await stub.Reserve(_reserve(reservation_id, product, quantity), timeout=WAIT_S)
            except grpc.aio.AioRpcError as error:
                assert contract.failed_precondition_reason(error.details()) == contract.OUT_OF_STOCK, error
                outcomes.append((product, quantity, "out_of_stock"))
                return
            if rng.random() < 0.3:
                await stub.Release(inventory_pb2.ReleaseRequest(reservation_id=reservation_id), timeout=WAIT_S)
                outcomes.append((product, quantity, "released"))
            else:
                await mesh.orders.Commit(inventory_pb2.CommitRequest(reservation_id=reservation_id), timeout=WAIT_S)
                outcomes.append((product, quantity, "committed"))

        await asyncio.gather(*(buyer(n) for n in range(80)))
        audit = await mesh.public.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not audit.violations and audit.held_reservations == 0
        for level in audit.stock:
            sold = sum(q for p, q, what in outcomes if p == level.product_id and what == "committed")
            assert level.committed == sold <= products[level.product_id] == level.stocked
            assert level.available == level.stocked - sold
        assert {what for _, _, what in outcomes} == {"committed", "released", "out_of_stock"}


async def test_the_sweeper_expires_what_nobody_asks_about(tmp_path):
    swept_before = _sample("casemesh_ecommerce_inventory_reservation_expiries_total", trigger="sweep")
    async with served(tmp_path, sweep_interval_ms=20) as mesh:
        await mesh.public.Restock(_restock("r1", "p1", 10), timeout=WAIT_S)
        for _ in range(3):
            await mesh.cart.Reserve(_reserve(contract.new_reservation_id(), "p1", 2, ttl_ms=1_000), timeout=WAIT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while _sample("casemesh_ecommerce_inventory_reservation_expiries_total", trigger="sweep") < swept_before + 3:
            assert loop.time() < deadline, "the sweeper did not expire the reservations"
            await asyncio.sleep(0.05)
        assert _sample("casemesh_ecommerce_inventory_units_held") == 0
        audit = await mesh.public.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert (audit.held_reservations, audit.expired_reservations, list(audit.violations)) == (0, 3, [])


async def test_an_inventory_whose_file_is_gone_answers_unavailable(tmp_path):
    inventory = Inventory(InventoryStore(tmp_path / FILE_NAME))
    await inventory.start()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(inventory), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    held, spare = contract.new_reservation_id(), contract.new_reservation_id()
    try:
        await stub.Restock(_restock("r1", "p1", 5), timeout=WAIT_S)
        await stub.Reserve(_reserve(held, "p1", 2), timeout=WAIT_S)
        await inventory.close()  # the disk is gone
        for call in (stub.Restock(_restock("r2", "p1", 5), timeout=WAIT_S),
                     stub.Reserve(_reserve(spare, "p1", 1), timeout=WAIT_S),
                     stub.Reserve(_reserve(held, "p1", 2), timeout=WAIT_S),
                     stub.Commit(inventory_pb2.CommitRequest(reservation_id=held), timeout=WAIT_S),
                     stub.Release(inventory_pb2.ReleaseRequest(reservation_id=held), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE
        stock = (await stub.GetStock(inventory_pb2.GetStockRequest(product_id="p1"), timeout=WAIT_S)).stock
        assert (stock.stocked, stock.held, stock.committed) == (5, 2, 0)  # nothing changed
        reservation = (await stub.GetReservation(inventory_pb2.GetReservationRequest(reservation_id=held),
                                                 timeout=WAIT_S)).reservation
        assert reservation.status == HELD
        assert not (await stub.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)).violations
    finally:
        await channel.close()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await inventory.close()

"""A flash sale through real gRPC while the inventory is SIGKILLed and restarted: nothing is oversold, no acknowledged
commit is lost, and nothing stays held once its TTL has passed.

CASE-STUDY.md point 5 for e-commerce (seed 000 "E-commerce Platform (like Amazon)", shared/seeds/000_69ff90d97cf45f9b.txt
line 511: "Scale: Handle 10x traffic during flash sales", line 512: "Consistency: Inventory counts must be accurate (no
overselling)", line 529: "Inventory reservation: Optimistic locking with TTL"). Three products of 20 units each; many
buyers, as the cart and the orders service would, reserve 1 to 3 units (some with a TTL of a second or two), then
commit, release, abandon the reservation to its TTL, or commit too late; every call is retried with the same
reservation ID on UNAVAILABLE and DEADLINE_EXCEEDED, as the contract allows. The inventory is SIGKILLed mid-run and
restarted, and again once the buyers are done. Afterwards, through the public API only: the audit finds nothing wrong;
each product's committed units are exactly the units whose Commit a buyer saw succeed (none lost, none invented) and at
most its stock; each of those reservations reads back COMMITTED, each commit tried after the TTL was refused as
``reservation_expired``, and once the TTLs have passed no unit is held.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter

import grpc
import pytest

from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.harness.mesh import Mesh
from casemesh.services.ecommerce import contract
from casemesh.services.runtime.identity import service_identity

from ..caller_identity import identified_channel
from .waiting import eventually

NAME = "ecommerce-inventory"
SETTINGS = {NAME: {"sweep_interval_ms": 100}}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
PRODUCTS = {"flash-tv": 20, "flash-phone": 20, "flash-console": 20}
CLIENTS, ROUNDS_EACH = 20, 12
SHORT_TTL_MS = (1_000, 2_000)
LONG_TTL_MS = 60_000
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
COMMITTED = ecommerce_pb2.RESERVATION_STATUS_COMMITTED
EXPIRED = ecommerce_pb2.RESERVATION_STATUS_EXPIRED
RELEASED = ecommerce_pb2.RESERVATION_STATUS_RELEASED


async def _retried(call, request, rng: random.Random):
    """Send ``request`` until it has a final answer (a response or a non-retryable error), retrying the same request
    with jittered backoff."""
    for attempt in range(200):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(1.0, 0.05 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


def _reason(error: grpc.aio.AioRpcError) -> str:
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    return contract.failed_precondition_reason(error.details() or "")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_a_flash_sale_never_oversells_nor_loses_a_commit_across_inventory_kills(tmp_path):
    async with Mesh([NAME], tmp_path, restart=None, settings=SETTINGS) as mesh:
        address = mesh.topology.endpoint(NAME).address
        channels = [grpc.aio.insecure_channel(address, options=FAST_RECONNECT),
                    identified_channel(address, mesh.secret, identity=service_identity("ecommerce-cart"),
                                       options=FAST_RECONNECT),
                    identified_channel(address, mesh.secret, identity=service_identity("ecommerce-orders"),
                                       options=FAST_RECONNECT)]
        public, cart, orders = (inventory_pb2_grpc.InventoryServiceStub(channel) for channel in channels)
        committed: dict[str, tuple[str, int]] = {}  # reservation → (product, units): Commit answered COMMITTED
        released: set[str] = set()
        abandoned: set[str] = set()  # left to their short TTL
        too_late: set[str] = set()  # Commit after the TTL: refused
        outcomes: Counter[str] = Counter()
        try:
            for product, units in PRODUCTS.items():
                await public.Restock(inventory_pb2.RestockRequest(restock_id=f"sale-{product}", product_id=product,
                                                                  quantity=units), timeout=10)

            async def buyer(n: int) -> None:
                rng = random.Random(n)
                for _ in range(ROUNDS_EACH):
                    reservation_id = "rsv_" + "".join(rng.choice(BASE32) for _ in range(24))
                    product = rng.choice(sorted(PRODUCTS))
                    short = rng.random() < 0.4
                    request = inventory_pb2.ReserveRequest(
                        reservation_id=reservation_id, product_id=product, quantity=rng.randint(1, 3),
                        ttl_ms=rng.choice(SHORT_TTL_MS) if short else LONG_TTL_MS)
                    try:
                        await _retried(rng.choice((cart, orders)).Reserve, request, rng)
                    except grpc.aio.AioRpcError as error:
                        assert _reason(error) == contract.OUT_OF_STOCK, error
                        outcomes["out_of_stock"] += 1
                        await asyncio.sleep(rng.uniform(0, 0.05))
                        continue
                    roll = rng.random()
                    if short and roll < 0.3:
                        abandoned.add(reservation_id)
                    elif short and roll < 0.4:
                        await asyncio.sleep(request.ttl_ms / 1_000 + 0.2)  # the TTL has run out
                        try:
                            await _retried(orders.Commit, inventory_pb2.CommitRequest(reservation_id=reservation_id),
                                           rng)
                            raise AssertionError(f"{reservation_id} was committed after its TTL")
                        except grpc.aio.AioRpcError as error:
                            assert _reason(error) == contract.RESERVATION_EXPIRED, error
                        too_late.add(reservation_id)
                    elif roll < 0.75:
                        try:
                            answer = await _retried(orders.Commit, inventory_pb2.CommitRequest(
                                reservation_id=reservation_id), rng)
                        except grpc.aio.AioRpcError as error:  # a short TTL ran out while the inventory was down
                            assert short and _reason(error) == contract.RESERVATION_EXPIRED, error
                            too_late.add(reservation_id)
                            continue
                        assert answer.reservation.status == COMMITTED, answer
                        committed[reservation_id] = (product, request.quantity)
                    else:
                        answer = await _retried(rng.choice((cart, orders)).Release, inventory_pb2.ReleaseRequest(
                            reservation_id=reservation_id), rng)
                        assert answer.reservation.status in (RELEASED, EXPIRED), answer
                        released.add(reservation_id)
                    await asyncio.sleep(rng.uniform(0, 0.05))

            def decided() -> int:
                return len(committed) + len(released) + len(abandoned) + len(too_late) + outcomes["out_of_stock"]

            buyers = [asyncio.create_task(buyer(n)) for n in range(CLIENTS)]
            await eventually(lambda: decided() >= 60, "60 reservations decided before the inventory's kill", 60)
            assert mesh.kill(NAME, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services([NAME])
            await asyncio.wait_for(asyncio.gather(*buyers), 120)
            assert committed and released and abandoned and outcomes["out_of_stock"], (
                len(committed), len(released), len(abandoned), outcomes)
            assert mesh.kill(NAME, signal.SIGKILL) == -signal.SIGKILL  # and once more, all quiet
            await mesh.start_services([NAME])

            audit = await public.Audit(inventory_pb2.AuditRequest(), timeout=10)
            assert not audit.violations, audit
            sold = Counter()
            for product, units in committed.values():
                sold[product] += units
            assert {s.product_id: s.committed for s in audit.stock} == {p: sold[p] for p in PRODUCTS}
            for level in audit.stock:
                assert level.committed + level.held <= level.stocked == PRODUCTS[level.product_id], level
            for reservation_id in committed:
                reservation = (await public.GetReservation(inventory_pb2.GetReservationRequest(
                    reservation_id=reservation_id), timeout=10)).reservation
                assert reservation.status == COMMITTED, reservation

            async def nothing_held() -> bool:
                audit = await public.Audit(inventory_pb2.AuditRequest(), timeout=10)
                return audit.held_reservations == 0 and all(s.held == 0 for s in audit.stock)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not await nothing_held():  # every TTL is at most two seconds: soon, whatever the machine's load
                assert loop.time() < deadline, "units still held after every TTL has passed"
                await asyncio.sleep(0.2)
            for reservation_id in abandoned | too_late:
                reservation = (await public.GetReservation(inventory_pb2.GetReservationRequest(
                    reservation_id=reservation_id), timeout=10)).reservation
                assert reservation.status == EXPIRED, reservation
            final = await public.Audit(inventory_pb2.AuditRequest(), timeout=10)
            assert not final.violations, final
            assert {s.product_id: s.available for s in final.stock} == {p: PRODUCTS[p] - sold[p] for p in PRODUCTS}
        finally:
            for task in locals().get("buyers", []):
                task.cancel()
            for channel in channels:
                await channel.close()

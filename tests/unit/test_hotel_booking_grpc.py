"""hotel-booking through real gRPC: the service built by its DEFINITION (settings, data folder, the runtime's channels)
in front of fake RoomInventoryService and PaymentGatewayService servers (every status code of
protos/casemesh/hotel/v1/booking.proto, the clients' mapping of their dependencies' codes: ABORTED version conflicts,
``no_availability``, ``hold_expired``, a gateway that is down, hangs or has the key in flight), and the real
hotel-inventory and hotel-booking served by the runtime side by side, in both lock modes: many concurrent guests
with duplicated calls book the same nights, and no night is sold beyond its rooms.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
import pytest
from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import booking_pb2, booking_pb2_grpc, hotel_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.payments.v1 import gateway_pb2, gateway_pb2_grpc
from casemesh.services.hotel.booking import metrics, service
from casemesh.services.hotel.booking.calls import DependencyUnavailable
from casemesh.services.hotel.booking.inventory import HoldLost, NoAvailability, VersionConflict
from casemesh.services.hotel.booking.payments import PaymentRefused
from casemesh.services.hotel.booking.settings import BookingSettings
from casemesh.services.hotel.inventory import service as inventory_service
from casemesh.services.runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from casemesh.services.runtime.errors import Aborted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology
from prometheus_client import CollectorRegistry

from ..integration.conftest import loopback_topology, start_mesh
from .test_hotel_saga import HOTEL, RATE, ROOM_TYPE, FakeGateway, FakeInventory, create_request

WAIT_S = 10.0
HB = hotel_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class FakeInventoryService(inventory_pb2_grpc.RoomInventoryServiceServicer):
    """RoomInventoryService over :class:`FakeInventory`, answering as hotel-inventory does: ABORTED for a version
    conflict, FAILED_PRECONDITION ``no_availability`` / ``hold_expired``, NOT_FOUND, UNAVAILABLE when down."""

    def __init__(self, inventory: FakeInventory) -> None:
        self.inventory = inventory

    @staticmethod
    async def _answer(context, work):
        try:
            return await work
        except VersionConflict as error:
            await context.abort(grpc.StatusCode.ABORTED, f"a night's version moved ({error}); retry")
        except (NoAvailability, HoldLost) as error:
            code = grpc.StatusCode.NOT_FOUND if str(error).startswith("no hold") else \
                grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(error))
        except DependencyUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def GetAvailability(self, request, context):
        return await self._answer(context, self.inventory.availability(
            request.hotel_id, request.room_type_id, request.check_in, request.nights))

    async def HoldRooms(self, request, context):
        return inventory_pb2.HoldRoomsResponse(hold=await self._answer(context, self.inventory.hold(
            request.hold_id, request.hotel_id, request.room_type_id, request.check_in, request.nights, request.rooms,
            request.ttl_ms)))

    async def ConfirmHold(self, request, context):
        return inventory_pb2.ConfirmHoldResponse(hold=await self._answer(context, self.inventory.confirm(
            request.hold_id)))

    async def ReleaseHold(self, request, context):
        hold = await self._answer(context, self.inventory.release(request.hold_id))
        if hold is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"hold_id: no hold {request.hold_id}")
        return inventory_pb2.ReleaseHoldResponse(hold=hold)


class FakeGatewayService(gateway_pb2_grpc.PaymentGatewayServiceServicer):
    """PaymentGatewayService over :class:`FakeGateway` (a refusal with its code; UNAVAILABLE when down; ``gate``:
    Authorize waits for it, as a gateway whose acquirers hang)."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.gate: asyncio.Event | None = None
        self.requests: list[gateway_pb2.AuthorizeRequest] = []

    @staticmethod
    async def _answer(context, work):
        try:
            return await work
        except PaymentRefused as error:
            await context.abort(error.code, error.details)
        except DependencyUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def Authorize(self, request, context):
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        return gateway_pb2.AuthorizeResponse(payment=await self._answer(context, self.gateway.authorize(
            request.idempotency_key, request.card_token, request.amount, request.customer_id, request.description)))

    async def Capture(self, request, context):
        return gateway_pb2.CaptureResponse(payment=await self._answer(context, self.gateway.capture(
            request.idempotency_key, request.payment_id)))

    async def Void(self, request, context):
        return gateway_pb2.VoidResponse(payment=await self._answer(context, self.gateway.void(
            request.idempotency_key, request.payment_id)))


def _server() -> grpc.aio.Server:
    return grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])


class Served:
    """The fakes, the booking stub and the component."""

    def __init__(self, inventory, gateway, gateway_service, stub, component) -> None:
        self.inventory: FakeInventory = inventory
        self.gateway: FakeGateway = gateway
        self.gateway_service: FakeGatewayService = gateway_service
        self.stub: booking_pb2_grpc.BookingServiceStub = stub
        self.component = component


@pytest.fixture
async def served(tmp_path):
    """hotel-booking built by its DEFINITION over the fake inventory and gateway; gateway calls of 0.5 s, inventory
    calls of 30 s, at most 2 conflict retries; no recovery within a test."""
    inventory, gateway = FakeInventory(rooms=2), FakeGateway()
    gateway_service = FakeGatewayService(gateway)
    dependencies = _server()
    inventory_pb2_grpc.add_RoomInventoryServiceServicer_to_server(FakeInventoryService(inventory), dependencies)
    gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server(gateway_service, dependencies)
    port = dependencies.add_insecure_port("127.0.0.1:0")
    await dependencies.start()
    topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                  service.INVENTORY: Endpoint(address=f"127.0.0.1:{port}"),
                                  service.GATEWAY: Endpoint(address=f"127.0.0.1:{port}")},
                        data_dir=str(tmp_path), settings={service.NAME: {
                            "gateway_timeout_s": 0.5, "inventory_timeout_s": 30, "max_conflict_retries": 2, "conflict_backoff_base_ms": 1,
                            "conflict_backoff_cap_ms": 2, "recovery_interval_s": 3_600,
                            "recovery_max_backoff_s": 3_600, "recovery_grace_s": 3_600, "hold_ttl_ms": 60_000}})
    context = RuntimeContext(topology).for_service(service.NAME)
    component = await service.DEFINITION.build(context)
    server = _server()
    component.register(server)
    booking_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await component.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{booking_port}")
    try:
        yield Served(inventory, gateway, gateway_service, booking_pb2_grpc.BookingServiceStub(channel), component)
    finally:
        if gateway_service.gate is not None:
            gateway_service.gate.set()
        await channel.close()
        await server.stop(None)
        await component.stop()
        await context.close()
        await dependencies.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.grpc_services) == (
        "hotel-booking", ("hotel-inventory", "payments-gateway"), ("casemesh.hotel.v1.BookingService",))
    assert d.access.public == {"CreateBooking", "GetBooking", "CancelBooking", "CheckIn"} and not d.access.internal
    assert d.settings_model is BookingSettings and not d.optional_dependencies
    assert inventory_service.INTERNAL_METHODS["HoldRooms"] == (service.NAME,)
    assert metrics.BOOKINGS._name == "casemesh_hotel_booking_bookings"
    assert 0 in metrics.RETRY_BUCKETS and 8 in metrics.RETRY_BUCKETS


async def test_status_codes(served, tmp_path):
    stub, card = served.stub, served.gateway.card()
    assert (tmp_path / "hotel-booking" / "bookings.sqlite3").is_file()
    for request, field in ((create_request(""), "idempotency_key"), (create_request(guest_id="a b"), "guest_id"),
                           (create_request(hotel_id=""), "hotel_id"), (create_request(room_type_id="x" * 65),
                                                                       "room_type_id"),
                           (create_request(check_in="2030-13-01"), "check_in"), (create_request(nights=31), "nights"),
                           (create_request(rooms=-1), "rooms"), (create_request(card_token="4242"), "card_token")):
        code, details = await _code(stub.CreateBooking(request, timeout=WAIT_S))
        assert code == INVALID and details.startswith(f"{field}: "), (field, details)
    for call, request in ((stub.GetBooking, booking_pb2.GetBookingRequest), (stub.CancelBooking,
                          booking_pb2.CancelBookingRequest), (stub.CheckIn, booking_pb2.CheckInRequest)):
        code, details = await _code(call(request(booking_id="bk_1"), timeout=WAIT_S))
        assert code == INVALID and details.startswith("booking_id: ")
        code, _ = await _code(call(request(booking_id="bk_" + "a" * 24), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
    code, details = await _code(stub.CreateBooking(create_request(room_type_id="suite", card_token=card),
                                                   timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND and details.startswith("room_type_id: ")

    booking = (await stub.CreateBooking(create_request(card_token=card, rooms=2), timeout=WAIT_S)).booking
    assert booking.status == HB.BOOKING_STATUS_CONFIRMED and booking.total.amount_minor == RATE * 2 * 2
    assert served.inventory.ttls == [60_000]
    request = served.gateway_service.requests[0]
    assert (request.merchant_id, request.capture, request.customer_id, request.idempotency_key) == (
        "casemesh-hotels", False, "guest-1", f"{booking.booking_id}:authorize")
    assert (await stub.CreateBooking(create_request(card_token=card, rooms=2), timeout=WAIT_S)).booking == booking
    assert (await stub.GetBooking(booking_pb2.GetBookingRequest(booking_id=booking.booking_id),
                                  timeout=WAIT_S)).booking == booking
    code, details = await _code(stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("key_reused: ")

    full = (await stub.CreateBooking(create_request("k2", card_token=card), timeout=WAIT_S)).booking
    assert (full.status, full.failure_reason) == (HB.BOOKING_STATUS_FAILED, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    for call, request in ((stub.CancelBooking, booking_pb2.CancelBookingRequest),
                          (stub.CheckIn, booking_pb2.CheckInRequest)):
        code, details = await _code(call(request(booking_id=full.booking_id), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "not CONFIRMED" in details

    checked_in = (await stub.CheckIn(booking_pb2.CheckInRequest(booking_id=booking.booking_id),
                                     timeout=WAIT_S)).booking
    assert checked_in.status == HB.BOOKING_STATUS_CHECKED_IN
    assert served.gateway.payments[booking.payment_id].captured_minor == booking.total.amount_minor
    code, _ = await _code(stub.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=booking.booking_id),
                                             timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    other = (await stub.CreateBooking(create_request("k3", check_in="2030-07-01", card_token=card),
                                      timeout=WAIT_S)).booking
    cancelled = (await stub.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=other.booking_id),
                                          timeout=WAIT_S)).booking
    assert cancelled.status == HB.BOOKING_STATUS_CANCELLED
    assert served.inventory.holds[other.hold_id].status == HB.HOLD_STATUS_RELEASED


async def test_the_clients_map_their_dependencies_codes(served):
    stub, card = served.stub, served.gateway.card()
    served.inventory.faults.add("hold", VersionConflict("v1"), VersionConflict("v2"))
    booking = (await stub.CreateBooking(create_request("conflicts", card_token=card, nights=1),
                                        timeout=WAIT_S)).booking
    assert booking.status == HB.BOOKING_STATUS_CONFIRMED and booking.conflict_retries == 2

    served.inventory.faults.add("hold", *(VersionConflict(f"v{n}") for n in range(3)))
    lost = (await stub.CreateBooking(create_request("contention", card_token=card, check_in="2030-08-01"),
                                     timeout=WAIT_S)).booking
    assert (lost.status, lost.failure_reason, lost.conflict_retries) == (
        HB.BOOKING_STATUS_FAILED, HB.BOOKING_FAILURE_CONTENTION, 2)

    declined = (await stub.CreateBooking(create_request("declined", card_token=served.gateway.card(False),
                                                        check_in="2030-08-01"), timeout=WAIT_S)).booking
    assert (declined.status, declined.failure_reason) == (HB.BOOKING_STATUS_FAILED,
                                                          HB.BOOKING_FAILURE_PAYMENT_DECLINED)
    assert served.inventory.holds[declined.hold_id].status == HB.HOLD_STATUS_RELEASED
    unknown = (await stub.CreateBooking(create_request("unknown-card", card_token="tok_" + "q" * 24,
                                                       check_in="2030-08-01"), timeout=WAIT_S)).booking
    assert unknown.failure_reason == HB.BOOKING_FAILURE_PAYMENT_DECLINED and not unknown.payment_id

    served.inventory.faults.add("confirm", served.inventory.expire_all)
    expired = (await stub.CreateBooking(create_request("expired", card_token=card, check_in="2030-08-01"),
                                        timeout=WAIT_S)).booking
    assert (expired.status, expired.failure_reason) == (HB.BOOKING_STATUS_FAILED, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    assert served.gateway.payments[expired.payment_id].status == 6  # VOIDED

    served.gateway.faults.down = True  # every attempt of the runtime channel's retry policy too
    code, _ = await _code(stub.CreateBooking(create_request("later", card_token=card, check_in="2030-09-01"),
                                             timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
    served.gateway.faults.down = False
    served.gateway.faults.add("authorize", Aborted("idempotency_key: in flight"))
    code, _ = await _code(stub.CreateBooking(create_request("later", card_token=card, check_in="2030-09-01"),
                                             timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE  # the gateway's ABORTED: the key in flight there, retry later
    pending = await served.component.saga.store.by_key("guest-1", "later")
    assert (pending.status, pending.step) == ("PENDING", "authorize")
    later = (await stub.CreateBooking(create_request("later", card_token=card, check_in="2030-09-01"),
                                      timeout=WAIT_S)).booking
    assert later.status == HB.BOOKING_STATUS_CONFIRMED and later.booking_id == pending.booking_id


async def test_a_hanging_gateway_times_out_and_the_retry_finishes(served):
    stub, card = served.stub, served.gateway.card()
    served.gateway_service.gate = asyncio.Event()
    code, _ = await _code(stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S))
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    served.gateway_service.gate.set()
    booking = (await stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S)).booking
    assert booking.status == HB.BOOKING_STATUS_CONFIRMED
    assert len(served.gateway.payments) == 1 and len(served.inventory.holds) == 1


async def test_the_same_key_twice_at_once_is_one_booking(served):
    stub, card = served.stub, served.gateway.card()
    served.inventory.gate = asyncio.Event()
    first = asyncio.ensure_future(stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S))
    while not served.inventory.faults.tried["hold"]:  # the first call waits at HoldRooms
        await asyncio.sleep(0.01)
    code, details = await _code(stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S))
    assert code == grpc.StatusCode.ABORTED and details.startswith("idempotency_key: ")
    served.inventory.gate.set()
    booking = (await first).booking
    assert booking.status == HB.BOOKING_STATUS_CONFIRMED and len(served.gateway.payments) == 1
    assert (await stub.CreateBooking(create_request(card_token=card), timeout=WAIT_S)).booking == booking


# ----------------------------------------------------------------------------- the real inventory


class _GatewayComponent(StatelessComponent):
    def __init__(self, gateway: FakeGateway) -> None:
        super().__init__(FakeGatewayService(gateway), gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server)


def _fake_gateway_definition(gateway: FakeGateway) -> ServiceDefinition:
    async def build(context: RuntimeContext) -> _GatewayComponent:
        return _GatewayComponent(gateway)

    return ServiceDefinition(name=service.GATEWAY, grpc_services=("casemesh.payments.v1.PaymentGatewayService",),
                             dependencies=(), build=build)  # a test double: every method open


@pytest.mark.parametrize("lock_mode", ["pessimistic", "optimistic"])
async def test_concurrent_guests_never_overbook_the_real_inventory(tmp_path, lock_mode):
    """The real hotel-inventory and hotel-booking served by the runtime (HoldRooms, ConfirmHold and ReleaseHold as
    ``hotel-booking``); 24 guests, each key sent twice at once, book overlapping stays of a 4-room type; some cancel.
    No night holds more confirmed rooms than exist, the inventory's audit finds nothing, and every key is one booking
    whose payment matches its status."""
    gateway = FakeGateway()
    names = [inventory_service.NAME, service.NAME, service.GATEWAY]
    topology = loopback_topology(names, data_dir=tmp_path, settings={
        inventory_service.NAME: {"lock_mode": lock_mode},
        service.NAME: {"max_conflict_retries": 20, "conflict_backoff_cap_ms": 20}})
    running, stop, task = await start_mesh([inventory_service.DEFINITION, service.DEFINITION,
                                            _fake_gateway_definition(gateway)], topology)
    try:
        inventory = inventory_pb2_grpc.RoomInventoryServiceStub(running.anonymous_channel(inventory_service.NAME))
        stub = booking_pb2_grpc.BookingServiceStub(running.anonymous_channel(service.NAME))
        await inventory.AddRoomType(inventory_pb2.AddRoomTypeRequest(room_type=HB.RoomType(
            hotel_id=HOTEL, room_type_id=ROOM_TYPE, name="Double", rooms=4,
            nightly_rate=money_pb2.Money(currency_code="EUR", amount_minor=RATE))), timeout=WAIT_S)
        rng = random.Random(3)
        cards = [gateway.card(approve=n % 6 != 5) for n in range(24)]
        plan = [create_request(f"key-{n}", guest_id=f"guest-{n}", check_in=f"2030-06-0{rng.randint(1, 3)}",
                               nights=rng.randint(1, 3), rooms=rng.randint(1, 2), card_token=cards[n])
                for n in range(24)]

        async def send(call, request):
            for _ in range(200):
                try:
                    return (await call(request, timeout=WAIT_S)).booking
                except grpc.aio.AioRpcError as error:
                    assert error.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE), error.details()
                    await asyncio.sleep(0.01)
            raise AssertionError(f"{request} never answered")

        answers = await asyncio.gather(*(send(stub.CreateBooking, r) for r in plan for _ in range(2)))
        bookings = {}
        for n in range(24):
            first, second = answers[2 * n], answers[2 * n + 1]
            assert first == second
            bookings[first.booking_id] = first
        confirmed = [b for b in bookings.values() if b.status == HB.BOOKING_STATUS_CONFIRMED]
        assert confirmed and len(confirmed) < 24
        for booking in confirmed[::3]:
            bookings[booking.booking_id] = await send(stub.CancelBooking, booking_pb2.CancelBookingRequest(
                booking_id=booking.booking_id))
        rooms = Counter()
        for booking in bookings.values():
            payment = gateway.payments.get(booking.payment_id)
            if booking.status == HB.BOOKING_STATUS_CONFIRMED:
                assert payment.status == 2 and payment.amount == booking.total  # AUTHORIZED
                for i in range(booking.nights):
                    rooms[(int(booking.check_in[-1]) + i)] += booking.rooms
            else:
                assert booking.status in (HB.BOOKING_STATUS_FAILED, HB.BOOKING_STATUS_CANCELLED), booking
                assert payment is None or payment.status in (5, 6)  # DECLINED or VOIDED
            if lock_mode == "pessimistic":
                assert booking.conflict_retries == 0
        assert max(rooms.values()) <= 4
        audit = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=WAIT_S)
        assert not audit.violations and audit.overbooked_room_nights == 0, audit
        assert audit.held_room_nights == 0 and audit.booked_room_nights == sum(rooms.values())
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


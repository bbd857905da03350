"""food-orders' input rules, as protos/casemesh/food/v1/orders.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``dropoff.lat_deg``, ``order_ids[2]``), the first bad one in the proto's field order. The shared rules are the
contract's (:mod:`services.food.contract`: the service area, the item and batch limits, the id prefixes), the
identifier rule (services/runtime/identifiers.py) and the geospatial checks (services/geo/validation.py).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import orders_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import is_id, required_id
from .. import contract
from .machine import COURIER_EVENTS, Event

__all__ = ["PlaceOrder", "Assignment", "required_id", "point", "items", "batch_id", "place_order", "assignment",
           "event", "limit"]

#: Length of a batch id: ``bat-`` and 26 characters.
BATCH_ID_LENGTH = len(contract.BATCH_ID_PREFIX) + 26


class PlaceOrder(NamedTuple):
    """A valid PlaceOrderRequest: ids, the dropoff (degrees) and the item count."""

    customer_id: str
    client_request_id: str
    restaurant_id: str
    dropoff: tuple[float, float]
    items: int


class Assignment(NamedTuple):
    """A valid AssignCourierRequest: the order ids (request order, each once), the courier and the batch."""

    order_ids: tuple[str, ...]
    courier_id: str
    batch_id: str


def point(field: str, message: geo_pb2.LatLng, present: bool) -> tuple[float, float]:
    """``(lat_deg, lng_deg)`` of a LatLng inside the food service area (:func:`services.geo.validation.point`)."""
    return geo.point(field, message, present, contract.SERVICE_AREA)


def items(field: str, value: int) -> int:
    """An item count, 1 to :data:`~services.food.contract.MAX_ITEMS`."""
    if not 1 <= value <= contract.MAX_ITEMS:
        raise InvalidArgument(field, f"{value} is not 1 to {contract.MAX_ITEMS} items")
    return value


def batch_id(field: str, value: str) -> str:
    """A batch id: ``bat-`` and 26 characters of [A-Za-z0-9_-]."""
    if not value:
        raise InvalidArgument(field, f"is required ({contract.BATCH_ID_PREFIX!r} and 26 characters)")
    if not (value.startswith(contract.BATCH_ID_PREFIX) and len(value) == BATCH_ID_LENGTH and is_id(value)):
        raise InvalidArgument(field, f"must be {contract.BATCH_ID_PREFIX!r} and 26 characters of A-Z, a-z, 0-9, "
                                     "'_' or '-'")
    return value


def place_order(request: orders_pb2.PlaceOrderRequest) -> PlaceOrder:
    """PlaceOrderRequest: ``customer_id``, ``client_request_id``, ``restaurant_id``, ``dropoff`` (required, inside
    the service area; ``dropoff.lat_deg`` / ``dropoff.lng_deg`` out of range), ``items`` (1 to 50)."""
    return PlaceOrder(
        required_id("customer_id", request.customer_id),
        required_id("client_request_id", request.client_request_id),
        required_id("restaurant_id", request.restaurant_id),
        point("dropoff", request.dropoff, request.HasField("dropoff")),
        items("items", request.items))


def assignment(request: orders_pb2.AssignCourierRequest) -> Assignment:
    """AssignCourierRequest: ``order_ids`` (1 to 10, each once; ``order_ids[i]`` an id), ``courier_id``,
    ``batch_id`` (``bat-`` and 26 characters)."""
    order_ids = tuple(request.order_ids)
    if not order_ids:
        raise InvalidArgument("order_ids", f"is required (1 to {contract.MAX_ASSIGN_ORDERS} order ids)")
    if len(order_ids) > contract.MAX_ASSIGN_ORDERS:
        raise InvalidArgument("order_ids", f"has {len(order_ids)} order ids; at most {contract.MAX_ASSIGN_ORDERS}")
    seen: dict[str, int] = {}
    for i, order_id in enumerate(order_ids):
        required_id(f"order_ids[{i}]", order_id)
        if order_id in seen:
            raise InvalidArgument("order_ids", f"order_ids[{i}] repeats order_ids[{seen[order_id]}] ({order_id})")
        seen[order_id] = i
    return Assignment(order_ids, required_id("courier_id", request.courier_id),
                      batch_id("batch_id", request.batch_id))


def event(value: int) -> Event:
    """UpdateOrderRequest.event: PICK_UP or DELIVER (UNSPECIFIED and unknown values refused, naming ``event``)."""
    found = COURIER_EVENTS.get(value)
    if found is None:
        raise InvalidArgument("event", f"{value} is not COURIER_EVENT_PICK_UP or COURIER_EVENT_DELIVER")
    return found


def limit(value: int) -> int:
    """ListOpenOrdersRequest.limit: 1 to :data:`~services.food.contract.MAX_OPEN_ORDERS_LIMIT`."""
    if not 1 <= value <= contract.MAX_OPEN_ORDERS_LIMIT:
        raise InvalidArgument("limit", f"{value} is not 1 to {contract.MAX_OPEN_ORDERS_LIMIT:,}")
    return value

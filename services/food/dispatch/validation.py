"""food-dispatch's input rules, as protos/casemesh/food/v1/dispatch.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``order.order_id``, ``order.pickup.lat_deg``, ``courier_id``). The rules are the contract's
(:mod:`services.food.contract`: the identifier rule and the service area) and the point check
(services/geo/validation.py).
"""

from __future__ import annotations

from casemesh.food.v1 import dispatch_pb2, food_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract


def dispatch_order(request: dispatch_pb2.DispatchOrderRequest) -> food_pb2.Order:
    """The order of a DispatchOrder: INVALID_ARGUMENT naming ``order`` (missing), ``order.order_id`` (not an id),
    ``order.pickup`` (missing, or outside the service area), ``order.pickup.lat_deg`` or ``order.pickup.lng_deg``
    (out of range), the first bad one in that order. The other fields are the order service's and taken as stored
    (an order whose dropoff is missing is dispatched, never batched)."""
    if not request.HasField("order"):
        raise InvalidArgument("order", "is required (the order as the order service stored it)")
    order = request.order
    required_id("order.order_id", order.order_id)
    geo.point("order.pickup", order.pickup, order.HasField("pickup"), contract.SERVICE_AREA)
    return order


def courier_id(request: dispatch_pb2.ReceiveAssignmentsRequest) -> str:
    """The ``courier_id`` of a ReceiveAssignments (1 to 64 characters of [A-Za-z0-9_-]); INVALID_ARGUMENT naming
    ``courier_id`` otherwise."""
    return required_id("courier_id", request.courier_id)

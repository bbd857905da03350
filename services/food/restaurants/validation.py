"""food-restaurants' input rules, as protos/casemesh/food/v1/restaurants.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``restaurants[2].point.lat_deg``, ``restaurants[0].kitchen_slots``). The shared rules are the contract's
(:mod:`services.food.contract`: the service area, the name, preparation-time, slot, batch and item limits), the
identifier rule (services/runtime/identifiers.py) and the point check (services/geo/validation.py).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from casemesh.food.v1 import restaurants_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract
from .store import RestaurantRecord

#: Control characters (Unicode category Cc: C0, DEL and C1), refused in names.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name(field: str, value: str) -> str:
    """A display name: 1 to 200 characters (code points), none of them a control character."""
    if not value:
        raise InvalidArgument(field, f"is required (1 to {contract.MAX_NAME_CHARS} characters)")
    if len(value) > contract.MAX_NAME_CHARS:
        raise InvalidArgument(field, f"has {len(value):,} characters; at most {contract.MAX_NAME_CHARS}")
    control = _CONTROL.search(value)
    if control is not None:
        raise InvalidArgument(field, f"holds a control character (U+{ord(control.group()):04X}) at "
                                     f"{control.start()}")
    return value


def seconds(field: str, value: float, least: float, most: float) -> float:
    """A finite number of seconds from ``least`` to ``most``."""
    if not (math.isfinite(value) and least <= value <= most):
        raise InvalidArgument(field, f"{value} is not {least:g} to {most:,g} seconds")
    return value


def restaurant(field: str, message: restaurants_pb2.Restaurant) -> RestaurantRecord:
    """A ``casemesh.food.v1.Restaurant`` at ``field`` (``restaurants[3]``): INVALID_ARGUMENT naming
    ``FIELD.restaurant_id``, ``FIELD.name``, ``FIELD.point``, ``FIELD.point.lat_deg``, ``FIELD.point.lng_deg``
    (missing, out of range, outside the service area), ``FIELD.prep_base_s`` (not 1 to 3,600), ``FIELD.prep_per_item_s``
    (not 0 to 600) or ``FIELD.kitchen_slots`` (not 1 to 50), the first bad one in that (the proto's) order."""
    restaurant_id = required_id(f"{field}.restaurant_id", message.restaurant_id)
    display = name(f"{field}.name", message.name)
    lat, lng = geo.point(f"{field}.point", message.point, message.HasField("point"), contract.SERVICE_AREA)
    base = seconds(f"{field}.prep_base_s", message.prep_base_s, 1.0, contract.MAX_PREP_BASE_S)
    per_item = seconds(f"{field}.prep_per_item_s", message.prep_per_item_s, 0.0, contract.MAX_PREP_PER_ITEM_S)
    if not 1 <= message.kitchen_slots <= contract.MAX_KITCHEN_SLOTS:
        raise InvalidArgument(f"{field}.kitchen_slots",
                              f"{message.kitchen_slots} is not 1 to {contract.MAX_KITCHEN_SLOTS} slots")
    return RestaurantRecord(restaurant_id, display, lat, lng, base, per_item, message.kitchen_slots)


def create(request: restaurants_pb2.CreateRestaurantsRequest) -> list[RestaurantRecord]:
    """The restaurants of a CreateRestaurants, all valid: INVALID_ARGUMENT naming ``restaurants`` (none, or over
    1,000), else the first bad field of the first bad restaurant (:func:`restaurant`), or
    ``restaurants[i].restaurant_id`` when restaurant ``i`` repeats the id of an earlier one."""
    count = len(request.restaurants)
    if not 1 <= count <= contract.MAX_BATCH:
        raise InvalidArgument("restaurants", f"holds {count:,} restaurants; 1 to {contract.MAX_BATCH:,}")
    records: list[RestaurantRecord] = []
    first: dict[str, int] = {}
    for i, message in enumerate(request.restaurants):
        restaurant_id = required_id(f"restaurants[{i}].restaurant_id", message.restaurant_id)
        earlier = first.setdefault(restaurant_id, i)
        if earlier != i:
            raise InvalidArgument(f"restaurants[{i}].restaurant_id",
                                  f"{restaurant_id!r} is restaurants[{earlier}]'s id too (each id at most once per "
                                  f"request)")
        records.append(restaurant(f"restaurants[{i}]", message))
    return records


def restaurant_id(value: str) -> str:
    """The ``restaurant_id`` of GetRestaurant or PrepareOrder: INVALID_ARGUMENT naming ``restaurant_id``."""
    return required_id("restaurant_id", value)


class OrderToPrepare(NamedTuple):
    """A valid PrepareOrder: the restaurant, the order service's order id, 1 to 50 items."""

    restaurant_id: str
    order_id: str
    items: int


def prepare(request: restaurants_pb2.PrepareOrderRequest) -> OrderToPrepare:
    """INVALID_ARGUMENT naming ``restaurant_id``, ``order_id`` or ``items`` (not 1 to 50), the first bad one."""
    rid = restaurant_id(request.restaurant_id)
    order_id = required_id("order_id", request.order_id)
    if not 1 <= request.items <= contract.MAX_ITEMS:
        raise InvalidArgument("items", f"{request.items} is not 1 to {contract.MAX_ITEMS} items")
    return OrderToPrepare(rid, order_id, request.items)

"""The food-delivery contract's rules that clients and servers both apply (part of the contract: protos/casemesh/food/v1).

Imported by the food-delivery services and by the food workload alike, and by nothing else of either side; a client
in another language applies the same rules, which the protos quote in their field comments.

- IDs (customer, restaurant, courier, client request): 1 to 64 characters of ``[A-Za-z0-9_-]``
  (services/runtime/identifiers.py). Order ids are ``ord-`` and 26 characters, batch ids ``bat-`` and 26.
- A point: latitude in [-90, 90], longitude in [-180, 180], both finite, and inside :data:`SERVICE_AREA` (San
  Francisco and its edges: services/geo/area.py).
- Restaurants: names 1 to :data:`MAX_NAME_CHARS` characters without control characters; ``prep_base_s`` 1 to
  :data:`MAX_PREP_BASE_S`, ``prep_per_item_s`` 0 to :data:`MAX_PREP_PER_ITEM_S`, ``kitchen_slots`` 1 to
  :data:`MAX_KITCHEN_SLOTS`; CreateRestaurants takes 1 to :data:`MAX_BATCH`.
- Orders: 1 to :data:`MAX_ITEMS` items; AssignCourier takes 1 to :data:`MAX_ASSIGN_ORDERS` orders; ListOpenOrders
  1 to :data:`MAX_OPEN_ORDERS_LIMIT`.
- **On time**: an order is delivered on time when ``delivered_at_unix_ms <= promised_at_unix_ms``
  (:func:`on_time`): the journey-defined measure of the case study.
- Couriers are drivers of the ride-sharing location service (protos/casemesh/rides/v1/location.proto): a courier's id
  is its driver id, and it reports AVAILABLE while it holds no order, BUSY while it does.
"""

from __future__ import annotations

from ..geo.area import SAN_FRANCISCO, ServiceArea
from ..runtime.identifiers import ID_PATTERN, is_id

__all__ = ["ID_PATTERN", "is_id", "ServiceArea", "SERVICE_AREA", "MAX_NAME_CHARS", "MAX_PREP_BASE_S",
           "MAX_PREP_PER_ITEM_S", "MAX_KITCHEN_SLOTS", "MAX_BATCH", "MAX_ITEMS", "MAX_ASSIGN_ORDERS",
           "MAX_OPEN_ORDERS_LIMIT", "ORDER_ID_PREFIX", "BATCH_ID_PREFIX", "on_time"]

#: San Francisco and its edges (services/geo/area.py).
SERVICE_AREA = SAN_FRANCISCO
MAX_NAME_CHARS = 200
MAX_PREP_BASE_S = 3_600.0
MAX_PREP_PER_ITEM_S = 600.0
MAX_KITCHEN_SLOTS = 50
MAX_BATCH = 1_000
MAX_ITEMS = 50
MAX_ASSIGN_ORDERS = 10
MAX_OPEN_ORDERS_LIMIT = 10_000
ORDER_ID_PREFIX = "ord-"
BATCH_ID_PREFIX = "bat-"


def on_time(delivered_at_unix_ms: int, promised_at_unix_ms: int) -> bool:
    """True when an order delivered at ``delivered_at_unix_ms`` met its promise (both ms since the Unix epoch)."""
    return 0 < delivered_at_unix_ms <= promised_at_unix_ms

"""The ride-sharing contract's rules that clients and servers both apply (part of the contract: protos/casemesh/rides/v1).

Imported by the ride-sharing services and by the rides workload alike, and by
nothing else of either side; a client in another language applies the same
rules, which the protos quote in their field comments.

- IDs (rider, driver, quote, ride, offer, client request): 1 to 64 characters
  of ``[A-Za-z0-9_-]``.
- A point: latitude in [-90, 90], longitude in [-180, 180], both finite, and
  inside the service area, :data:`DEFAULT_SERVICE_AREA` (San Francisco and
  its edges: the city where Uber started).
- FindNearbyDrivers: radius 1 to :data:`MAX_RADIUS_M` m, limit 1 to
  :data:`MAX_NEARBY_LIMIT`, at most :data:`MAX_EXCLUDED_DRIVERS` excluded.
- H3 resolutions 0 to 15 (the ``h3`` library's range).
- Heading in [0, 360) degrees.
"""

from __future__ import annotations

from ..geo.area import SAN_FRANCISCO, ServiceArea
from ..runtime.identifiers import ID_PATTERN, is_id

__all__ = ["ID_PATTERN", "is_id", "ServiceArea", "DEFAULT_SERVICE_AREA", "MAX_RADIUS_M", "MAX_NEARBY_LIMIT",
           "MAX_EXCLUDED_DRIVERS", "MAX_OPEN_RIDES_LIMIT", "MIN_H3_RESOLUTION", "MAX_H3_RESOLUTION"]

MAX_RADIUS_M = 50_000.0
MAX_NEARBY_LIMIT = 100
MAX_EXCLUDED_DRIVERS = 100
MAX_OPEN_RIDES_LIMIT = 10_000
MIN_H3_RESOLUTION = 0
MAX_H3_RESOLUTION = 15

#: San Francisco and its edges (services/geo/area.py, with the class ServiceArea).
DEFAULT_SERVICE_AREA = SAN_FRANCISCO

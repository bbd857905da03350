"""The proximity contract's rules that clients and servers both apply (part of the contract: protos/casemesh/proximity/v1).

Imported by the proximity services and by the proximity workload alike, and by nothing else of either side; a client
in another language applies the same rules, which the protos quote in their field comments.

- IDs (place, entity, fence): 1 to 64 characters of ``[A-Za-z0-9_-]`` (services/runtime/identifiers.py).
- A point: latitude in [-90, 90], longitude in [-180, 180], both finite, and inside :data:`SERVICE_AREA` (San
  Francisco and its edges: where Yelp started).
- Names: places 1 to :data:`MAX_NAME_CHARS` characters, fences 0 to that many; no control characters.
- Ratings: 0 to :data:`MAX_RATING_TENTHS` tenths of a star.
- Batches: CreatePlaces, StreamPositions and EvaluatePositions take 1 to :data:`MAX_BATCH` items.
- Search: radius 1 to :data:`MAX_RADIUS_M` m; SearchPlaces pages of 1 to :data:`MAX_PAGE_SIZE` (0 means
  :data:`DEFAULT_PAGE_SIZE`); FindNearbyEntities limit 1 to :data:`MAX_NEARBY_LIMIT`.
- Fences: radius :data:`MIN_FENCE_RADIUS_M` to :data:`MAX_FENCE_RADIUS_M` m; a watch names at most
  :data:`MAX_WATCHED_FENCES` fences. A point is inside a fence when :func:`inside_fence` says so: its great-circle
  distance (``h3.great_circle_distance``, the haversine on a sphere of radius 6,371.0088 km) to the centre is at most
  the radius. A client replaying positions against fences must use the same rule to expect the same events.
"""

from __future__ import annotations

import h3

from ..geo.area import SAN_FRANCISCO, ServiceArea
from ..runtime.identifiers import ID_PATTERN, is_id

__all__ = ["ID_PATTERN", "is_id", "ServiceArea", "SERVICE_AREA", "MAX_NAME_CHARS", "MAX_RATING_TENTHS", "MAX_BATCH",
           "MAX_RADIUS_M", "MAX_PAGE_SIZE", "DEFAULT_PAGE_SIZE", "MAX_NEARBY_LIMIT", "MIN_FENCE_RADIUS_M",
           "MAX_FENCE_RADIUS_M", "MAX_WATCHED_FENCES", "distance_m", "inside_fence"]

#: San Francisco and its edges (services/geo/area.py).
SERVICE_AREA = SAN_FRANCISCO
MAX_NAME_CHARS = 200
MAX_RATING_TENTHS = 50
MAX_BATCH = 1_000
MAX_RADIUS_M = 50_000.0
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_NEARBY_LIMIT = 100
MIN_FENCE_RADIUS_M = 10.0
MAX_FENCE_RADIUS_M = 50_000.0
MAX_WATCHED_FENCES = 100


def distance_m(a_lat_deg: float, a_lng_deg: float, b_lat_deg: float, b_lng_deg: float) -> float:
    """Great-circle distance between two points (degrees), in metres (``h3.great_circle_distance``)."""
    return h3.great_circle_distance((a_lat_deg, a_lng_deg), (b_lat_deg, b_lng_deg), unit="m")


def inside_fence(center_lat_deg: float, center_lng_deg: float, radius_m: float,
                 lat_deg: float, lng_deg: float) -> bool:
    """True when the point (degrees) is inside the circular fence: at most ``radius_m`` metres from its centre."""
    return distance_m(center_lat_deg, center_lng_deg, lat_deg, lng_deg) <= radius_m

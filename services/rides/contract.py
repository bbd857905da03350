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

import re
from dataclasses import dataclass

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_RADIUS_M = 50_000.0
MAX_NEARBY_LIMIT = 100
MAX_EXCLUDED_DRIVERS = 100
MAX_OPEN_RIDES_LIMIT = 10_000
MIN_H3_RESOLUTION = 0
MAX_H3_RESOLUTION = 15


def is_id(value: str) -> bool:
    """True when ``value`` is 1 to 64 characters of [A-Za-z0-9_-]."""
    return bool(ID_PATTERN.fullmatch(value))


@dataclass(frozen=True)
class ServiceArea:
    """A latitude/longitude box, in degrees (south < north, west < east; not across the antimeridian)."""

    south_deg: float
    west_deg: float
    north_deg: float
    east_deg: float

    def __post_init__(self) -> None:
        if not (-90 <= self.south_deg < self.north_deg <= 90 and -180 <= self.west_deg < self.east_deg <= 180):
            raise ValueError(f"not a service area (south < north in [-90, 90], west < east in [-180, 180]): {self}")

    def contains(self, lat_deg: float, lng_deg: float) -> bool:
        """True when the point is inside the box (edges included)."""
        return self.south_deg <= lat_deg <= self.north_deg and self.west_deg <= lng_deg <= self.east_deg

    def describe(self) -> str:
        """``[south, north] x [west, east]`` in degrees, for error messages."""
        return f"lat [{self.south_deg}, {self.north_deg}], lng [{self.west_deg}, {self.east_deg}]"


#: San Francisco and its edges: about 12 km north to south and 14 km west to east.
DEFAULT_SERVICE_AREA = ServiceArea(south_deg=37.70, west_deg=-122.52, north_deg=37.82, east_deg=-122.36)

"""rides-location's own metrics (``casemesh_rides_location_*``).

- ``casemesh_rides_location_updates_total``: positions received (every valid ReportLocations frame, OFFLINE ones
  included);
- ``casemesh_rides_location_drivers{status}`` (gauge): drivers in the index, ``available`` or ``busy``;
- ``casemesh_rides_location_search_cells`` (histogram): index cells read by one FindNearbyDrivers (the ring walk's
  cost: 1, 7, 19, 37, ... for 0, 1, 2, 3 full rings);
- ``casemesh_rides_location_search_seconds`` (histogram): time of the index search of one FindNearbyDrivers;
- ``casemesh_rides_location_update_delay_seconds`` (histogram): received_at - sent_at of a position whose
  ``sent_at_unix_ms`` is set (clamped at 0: the app's clock may run ahead);
- ``casemesh_rides_location_expired_total``: drivers removed because they had not reported for ``expiry_s``;
- ``casemesh_rides_location_streams`` (gauge): ReportLocations streams open;
- ``casemesh_rides_location_trackers`` (gauge): TrackDriver streams open.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from casemesh.rides.v1 import rides_pb2

UPDATES = Counter("casemesh_rides_location_updates", "Driver positions received (valid ReportLocations frames).")
DRIVERS = Gauge("casemesh_rides_location_drivers", "Drivers in the location index, by status.", ["status"])
#: Cells of k full rings: 3k(k+1)+1.
SEARCH_CELLS = Histogram("casemesh_rides_location_search_cells", "Index cells read by one FindNearbyDrivers.",
                         buckets=(1, 7, 19, 37, 61, 91, 127, 169, 217, 271, 397, 631, 1_027, 2_107, 4_681, 10_000))
SEARCH_SECONDS = Histogram("casemesh_rides_location_search_seconds", "Index search time of one FindNearbyDrivers.",
                           buckets=(0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                                    0.025, 0.05, 0.1, 0.25))
UPDATE_DELAY = Histogram("casemesh_rides_location_update_delay_seconds", "Delay from a position's sent_at (the app's "
                         "clock) to its receipt.", buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                            10))
EXPIRED = Counter("casemesh_rides_location_expired", "Drivers removed after expiry_s without a position.")
STREAMS = Gauge("casemesh_rides_location_streams", "ReportLocations streams open.")
TRACKERS = Gauge("casemesh_rides_location_trackers", "TrackDriver streams open.")

#: The gauge child of each indexed status (OFFLINE drivers are not in the index).
DRIVERS_BY_STATUS = {rides_pb2.DRIVER_STATUS_AVAILABLE: DRIVERS.labels("available"),
                     rides_pb2.DRIVER_STATUS_BUSY: DRIVERS.labels("busy")}

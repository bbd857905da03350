"""rides-trips' own metrics (``casemesh_rides_trips_*``).

- ``casemesh_rides_trips_rides_total{state}``: rides moved into each state (REQUESTED when stored), counted once
  the change is on disk;
- ``casemesh_rides_trips_active_rides`` (gauge): rides not over (REQUESTED, MATCHED, EN_ROUTE, IN_PROGRESS);
- ``casemesh_rides_trips_assign_total{outcome}``: AssignDriver calls: ``won`` (REQUESTED → MATCHED), ``retry``
  (the ride's own driver again), ``lost`` (ABORTED: another driver won), ``refused`` (any other error: cancelled,
  the driver busy, unknown ride, a bad request, not written);
- ``casemesh_rides_trips_match_seconds`` (histogram): requested_at → matched_at of each ride won; the seed's SLO is
  "Match rider with driver < 5 seconds" (seed 003, Non-Functional Requirements), so 5.0 is a bucket bound;
- ``casemesh_rides_trips_write_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_rides_trips_watchers`` (gauge): WatchRide streams open;
- ``casemesh_rides_trips_start_matching_failures_total``: StartMatching calls that failed (the ride was stored and
  answered; dispatch's sweep finds it);
- ``casemesh_rides_trips_tracking_errors_total``: TrackDriver streams that failed or ended while a ride's watchers
  still wanted the driver's positions (retried with backoff).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .machine import STATES, state_name

RIDES = Counter("casemesh_rides_trips_rides", "Rides moved into each state (REQUESTED: stored), once on disk.",
                ["state"])
ACTIVE_RIDES = Gauge("casemesh_rides_trips_active_rides", "Rides not over: REQUESTED, MATCHED, EN_ROUTE, IN_PROGRESS.")
ASSIGN_OUTCOMES = ("won", "retry", "lost", "refused")
ASSIGN = Counter("casemesh_rides_trips_assign", "AssignDriver calls by outcome (won, retry, lost: ABORTED, refused).",
                 ["outcome"])
#: Seconds from the request to the match; the seed's SLO is 5 s.
MATCH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)
MATCH_SECONDS = Histogram("casemesh_rides_trips_match_seconds", "Time from a ride's request to its match (a driver "
                          "won it), in seconds.", buckets=MATCH_BUCKETS)
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_rides_trips_write_seconds", "One group commit of ride changes to the SQLite file, "
                          "fsync included, in seconds.", buckets=WRITE_BUCKETS)
WATCHERS = Gauge("casemesh_rides_trips_watchers", "WatchRide streams open.")
START_MATCHING_FAILURES = Counter("casemesh_rides_trips_start_matching_failures", "StartMatching calls to "
                                  "rides-dispatch that failed (the ride is matched after dispatch's next sweep).")
TRACKING_ERRORS = Counter("casemesh_rides_trips_tracking_errors", "TrackDriver streams that failed or ended while a "
                          "ride's watchers wanted the driver's positions (retried with backoff).")

_STATE = {state: RIDES.labels(state_name(state)) for state in STATES}
_ASSIGN = {outcome: ASSIGN.labels(outcome) for outcome in ASSIGN_OUTCOMES}


def moved(state: int) -> None:
    """Count one ride moved into ``state``."""
    _STATE[state].inc()


def assign(outcome: str) -> None:
    """Count one AssignDriver under ``outcome`` (one of :data:`ASSIGN_OUTCOMES`)."""
    _ASSIGN[outcome].inc()

"""rides-dispatch's own metrics (``casemesh_rides_dispatch_*``).

- ``casemesh_rides_dispatch_offers_sent_total``: offers put on drivers' feeds;
- ``casemesh_rides_dispatch_offers_total{outcome}``: how offers ended: ``accepted`` (won the ride), ``declined``,
  ``expired`` (lapsed at the end of their phase), ``withdrawn`` (another driver won, or the ride was cancelled or
  given up), ``lost`` (a late accept: ABORTED, another driver won), ``refused`` (the accept was FAILED_PRECONDITION
  at the trip service: the ride cancelled, or the driver holds another ride);
- ``casemesh_rides_dispatch_phases`` (histogram): the phase in which each matched ride was won (1: the first
  batch of drivers);
- ``casemesh_rides_dispatch_matches_total{outcome}``: rides whose matching ended: ``matched``, ``no_driver``
  (released: nobody accepted within max_phases or max_match_s), ``cancelled`` (the rider cancelled meanwhile);
- ``casemesh_rides_dispatch_rides_matching`` (gauge): rides being matched;
- ``casemesh_rides_dispatch_feeds`` (gauge): ReceiveOffers streams open;
- ``casemesh_rides_dispatch_search_seconds`` (histogram): one LocationService.FindNearbyDrivers call;
- ``casemesh_rides_dispatch_search_errors_total``: FindNearbyDrivers calls that failed (retried);
- ``casemesh_rides_dispatch_sweep_recovered_total``: REQUESTED rides a sweep of ListOpenRides started matching
  (dispatch had not been told, or had restarted);
- ``casemesh_rides_dispatch_sweep_errors_total``: sweeps that could not list the open rides (retried next sweep).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OFFERS_SENT = Counter("casemesh_rides_dispatch_offers_sent", "Offers put on drivers' ReceiveOffers feeds.")
OFFER_OUTCOMES = ("accepted", "declined", "expired", "withdrawn", "lost", "refused")
OFFERS = Counter("casemesh_rides_dispatch_offers", "Offers by how they ended (accepted, declined, expired, withdrawn, "
                 "lost: a late accept, refused: the trip service said FAILED_PRECONDITION).", ["outcome"])
PHASES = Histogram("casemesh_rides_dispatch_phases", "The offer phase in which a matched ride was won.",
                   buckets=(1, 2, 3, 4, 5, 6, 8, 10, 20))
MATCH_OUTCOMES = ("matched", "no_driver", "cancelled")
MATCHES = Counter("casemesh_rides_dispatch_matches", "Rides whose matching ended, by outcome (matched, no_driver, "
                  "cancelled).", ["outcome"])
RIDES_MATCHING = Gauge("casemesh_rides_dispatch_rides_matching", "Rides being matched.")
FEEDS = Gauge("casemesh_rides_dispatch_feeds", "ReceiveOffers streams open.")
#: Seconds: an in-process ring walk takes well under a millisecond; a loaded location service, tens.
SEARCH_SECONDS = Histogram("casemesh_rides_dispatch_search_seconds", "One LocationService.FindNearbyDrivers call, in "
                           "seconds.", buckets=(0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
SEARCH_ERRORS = Counter("casemesh_rides_dispatch_search_errors", "FindNearbyDrivers calls that failed (retried).")
SWEEP_RECOVERED = Counter("casemesh_rides_dispatch_sweep_recovered", "REQUESTED rides a sweep of ListOpenRides "
                          "started matching.")
SWEEP_ERRORS = Counter("casemesh_rides_dispatch_sweep_errors", "Sweeps that could not list the open rides.")

_OFFER = {outcome: OFFERS.labels(outcome) for outcome in OFFER_OUTCOMES}
_MATCH = {outcome: MATCHES.labels(outcome) for outcome in MATCH_OUTCOMES}


def offer(outcome: str) -> None:
    """Count one offer ended under ``outcome`` (one of :data:`OFFER_OUTCOMES`)."""
    _OFFER[outcome].inc()


def match(outcome: str) -> None:
    """Count one ride's matching ended under ``outcome`` (one of :data:`MATCH_OUTCOMES`)."""
    _MATCH[outcome].inc()

"""The single-assignment invariant, checked by the client side: one ride, one driver; one driver, one ride at a time.

The property the ride-sharing case study exists to protect (seed 003 "Uber
Ride Matching", shared/seeds/003 lines 851-862, ``acceptRide``: "Atomic check and
set ... throw new Error('Ride already accepted by another driver')"; the
trip service's AssignDriver compare-and-set, trips.proto). What this load
process sees is checked as it happens:

- **a ride won by two drivers**: two AcceptOffer calls of different drivers of
  this process both answered OK for one ride;
- **a driver holding two rides**: an AcceptOffer answered OK while the driver
  holds another ride that the trip service still has active (the driver
  checks with GetRide first: a ride the rider cancelled under it is released
  before the new one is counted);
- **a rider seeing two drivers**: from MATCHED on, a rider's WatchRide must
  show one non-empty ``driver_id`` for its ride (in ride updates and in the
  driver positions forwarded to it), and it must be the driver of this
  process that won the ride when the winner is one of this process's drivers
  (with ``--workers N`` the winner may be another process's: then only the
  rider's own view is checked).

Each breach is one ``single_assignment`` sample with code ``DATA_LOSS`` at
once (and a warning naming the ride and the drivers); each ride that reaches
COMPLETED without a breach is one sample with code ``OK``. The measure's
latency is 0: it is a count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger("casemesh.workloads.rides")

#: The measure's name, and the codes of its samples.
SINGLE_ASSIGNMENT = "single_assignment"
OK = "OK"
DATA_LOSS = "DATA_LOSS"


class Assignments:
    """What this process's drivers won and its riders saw; ``observe(code)`` records one ``single_assignment`` sample.

    Plain bookkeeping on one event loop (no awaits inside), so the checks are
    atomic with respect to the journeys and drivers that call them.
    """

    def __init__(self, observe: Callable[[str], None]):
        self._observe = observe
        #: ride → the driver of this process that won it (kept for the run: a later second win is still caught).
        self.winners: dict[str, str] = {}
        #: driver → the rides it holds now (one, except after a breach).
        self.holding: dict[str, set[str]] = defaultdict(set)
        #: ride → the driver its rider saw (from MATCHED on), until the ride completes.
        self.seen: dict[str, str] = {}
        self.breached: set[str] = set()
        self.breaches = 0
        self.completed_ok = 0

    def breach(self, ride_id: str, what: str) -> None:
        """Record one breach of ``ride_id`` (a DATA_LOSS sample and a warning saying ``what``)."""
        self.breaches += 1
        self.breached.add(ride_id)
        log.warning("single assignment broken for %s: %s", ride_id, what)
        self._observe(DATA_LOSS)

    def won(self, ride_id: str, driver_id: str) -> None:
        """Driver ``driver_id`` of this process was answered OK to AcceptOffer for ``ride_id`` (rides it no longer
        holds must have been :meth:`released` first)."""
        winner = self.winners.setdefault(ride_id, driver_id)
        if winner != driver_id:
            self.breach(ride_id, f"won by {winner} and by {driver_id}")
        held = self.holding[driver_id] - {ride_id}
        if held:
            self.breach(ride_id, f"{driver_id} won it while holding {sorted(held)}")
        self.holding[driver_id].add(ride_id)

    def released(self, ride_id: str, driver_id: str) -> None:
        """``driver_id`` no longer holds ``ride_id`` (dropped off, or the ride was cancelled); idempotent."""
        rides = self.holding.get(driver_id)
        if rides is not None:
            rides.discard(ride_id)
            if not rides:
                del self.holding[driver_id]

    def rider_saw(self, ride_id: str, driver_id: str) -> None:
        """The rider's WatchRide showed ``driver_id`` for ``ride_id`` (a ride MATCHED or later, or a driver position);
        an empty ``driver_id`` on a matched ride is a breach, and so is a second driver."""
        if not driver_id:
            self.breach(ride_id, "matched without a driver_id")
            return
        first = self.seen.setdefault(ride_id, driver_id)
        if first != driver_id:
            self.breach(ride_id, f"its rider saw {first}, then {driver_id}")
            self.seen[ride_id] = driver_id  # one breach per change of driver, not per update after it

    def completed(self, ride_id: str) -> None:
        """The rider saw ``ride_id`` COMPLETED: its OK sample unless it was breached (the winner of this process, when
        there is one, must be the driver the rider saw)."""
        seen = self.seen.pop(ride_id, None)
        winner = self.winners.get(ride_id)
        if seen is None:
            self.breach(ride_id, "completed without its rider ever seeing a driver")
        elif winner is not None and winner != seen:
            self.breach(ride_id, f"won by {winner} of this process, but its rider saw {seen}")
        if ride_id in self.breached:
            return
        self.completed_ok += 1
        self._observe(OK)

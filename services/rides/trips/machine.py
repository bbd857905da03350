"""The trip state machine of a ride, as one table (protos/casemesh/rides/v1/rides.proto, ``RideState``).

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching",
Ride Matching Algorithm: a ride is created ``searching`` (REQUESTED here),
``acceptRide`` makes it ``accepted`` (MATCHED) with one driver; seed 000
(shared/seeds/000_69ff90d97cf45f9b.txt), "Ride-Sharing (like Uber)": the
driver then drives to the pickup and the trip runs to the dropoff::

    REQUESTED --ASSIGN--> MATCHED --DEPART--> EN_ROUTE --PICK_UP--> IN_PROGRESS --DROP_OFF--> COMPLETED
    REQUESTED | MATCHED | EN_ROUTE --CANCEL--> CANCELLED      (the rider: CANCEL_REASON_RIDER)
    REQUESTED --RELEASE--> CANCELLED                          (dispatch found no driver: CANCEL_REASON_NO_DRIVER)

:data:`TRANSITIONS` holds the moves; :data:`REPEATS` the states in which an
event is a retry of the one that led there, answered with the ride as it is
(trips.proto: "Repeating the event that led to the present state returns the
ride again"; "Cancelling a cancelled ride returns it again"; ReleaseRide
returns a ride in any other state unchanged; AssignDriver of the ride's own
driver returns it, MATCHED "or further on"). Whether an ASSIGN repeat is the
same driver's (a retry) or another's (ABORTED, the late accept) is the trip
service's check, not the table's. Anything else is :class:`TransitionRefused`
(FAILED_PRECONDITION, naming the event and the state).
"""

from __future__ import annotations

from enum import Enum

from casemesh.rides.v1 import rides_pb2, trips_pb2

REQUESTED = rides_pb2.RIDE_STATE_REQUESTED
MATCHED = rides_pb2.RIDE_STATE_MATCHED
EN_ROUTE = rides_pb2.RIDE_STATE_EN_ROUTE
IN_PROGRESS = rides_pb2.RIDE_STATE_IN_PROGRESS
COMPLETED = rides_pb2.RIDE_STATE_COMPLETED
CANCELLED = rides_pb2.RIDE_STATE_CANCELLED

#: Every state a ride can be in (UNSPECIFIED is never stored).
STATES = (REQUESTED, MATCHED, EN_ROUTE, IN_PROGRESS, COMPLETED, CANCELLED)
#: A driver holds at most one ride in these states (the store's partial unique index on driver_id).
ACTIVE = frozenset({MATCHED, EN_ROUTE, IN_PROGRESS})
#: A rider has at most one ride in these states (the store's partial unique index on rider_id).
OPEN = frozenset({REQUESTED, *ACTIVE})
#: Nothing moves a ride on from these.
TERMINAL = frozenset({COMPLETED, CANCELLED})


class Event(Enum):
    """What moves a ride: a trip service RPC, or a driver's TripEvent (UpdateTrip)."""

    ASSIGN = "assign"  # AssignDriver (dispatch: a driver accepted)
    DEPART = "depart"  # UpdateTrip TRIP_EVENT_DEPART
    PICK_UP = "pick_up"  # UpdateTrip TRIP_EVENT_PICK_UP
    DROP_OFF = "drop_off"  # UpdateTrip TRIP_EVENT_DROP_OFF
    CANCEL = "cancel"  # CancelRide (the rider)
    RELEASE = "release"  # ReleaseRide (dispatch: no driver accepted)


#: (state, event) → the state the event moves the ride to.
TRANSITIONS: dict[tuple[int, Event], int] = {
    (REQUESTED, Event.ASSIGN): MATCHED,
    (MATCHED, Event.DEPART): EN_ROUTE,
    (EN_ROUTE, Event.PICK_UP): IN_PROGRESS,
    (IN_PROGRESS, Event.DROP_OFF): COMPLETED,
    (REQUESTED, Event.CANCEL): CANCELLED,
    (MATCHED, Event.CANCEL): CANCELLED,
    (EN_ROUTE, Event.CANCEL): CANCELLED,
    (REQUESTED, Event.RELEASE): CANCELLED,
}

#: event → the states in which it is a repeat: the ride is returned unchanged.
REPEATS: dict[Event, frozenset[int]] = {
    Event.ASSIGN: frozenset({MATCHED, EN_ROUTE, IN_PROGRESS, COMPLETED}),
    Event.DEPART: frozenset({EN_ROUTE}),
    Event.PICK_UP: frozenset({IN_PROGRESS}),
    Event.DROP_OFF: frozenset({COMPLETED}),
    Event.CANCEL: frozenset({CANCELLED}),
    Event.RELEASE: frozenset(STATES) - {REQUESTED},
}

#: UpdateTrip's TripEvent → :class:`Event`.
TRIP_EVENTS: dict[int, Event] = {
    trips_pb2.TRIP_EVENT_DEPART: Event.DEPART,
    trips_pb2.TRIP_EVENT_PICK_UP: Event.PICK_UP,
    trips_pb2.TRIP_EVENT_DROP_OFF: Event.DROP_OFF,
}


class TransitionRefused(Exception):
    """``event`` does not apply to a ride in ``state`` (FAILED_PRECONDITION); the message names both."""

    def __init__(self, state: int, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"{event.name} does not apply to a ride in state {state_name(state)}")


def state_name(state: int) -> str:
    """``MATCHED`` for RIDE_STATE_MATCHED (error messages and metric labels)."""
    return rides_pb2.RideState.Name(state).removeprefix("RIDE_STATE_")


def decide(state: int, event: Event) -> int | None:
    """The state ``event`` moves a ride in ``state`` to, or ``None`` when it is a repeat (return the ride as it is).

    Raises :class:`TransitionRefused` when the event does not apply.
    """
    target = TRANSITIONS.get((state, event))
    if target is not None:
        return target
    if state in REPEATS[event]:
        return None
    raise TransitionRefused(state, event)

"""The state machine of an order, as one table (protos/casemesh/food/v1/food.proto, ``OrderState``).

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38, "Food Delivery": regional dispatch, ML ETA, surge
pricing): an order is placed with a restaurant, one courier is dispatched for it (alone or batched with another
order), picks the food up and delivers it::

    PLACED --ASSIGN--> ASSIGNED --PICK_UP--> PICKED_UP --DELIVER--> DELIVERED
    PLACED | ASSIGNED --CANCEL--> CANCELLED       (the customer, before pickup: CANCEL_REASON_CUSTOMER)
    PLACED --RELEASE--> CANCELLED                 (dispatch found no courier: CANCEL_REASON_NO_COURIER)

:data:`TRANSITIONS` holds the moves; :data:`REPEATS` the states in which an event is a retry of the one that led
there, answered with the order as it is (orders.proto: "Repeating the event that led to the present state returns
the order", "Cancelling a cancelled order returns it again", "Releasing a released order returns it"; AssignCourier
"Assigning again what is already assigned to this courier in this batch returns the orders"). Whether an ASSIGN
repeat is the same courier and batch (a retry) or not (ABORTED: the order was not dispatched twice) is the order
service's check, not the table's. Anything else is :class:`TransitionRefused` (FAILED_PRECONDITION, naming the
event and the state). The SQLite schema repeats the moves (:data:`MOVES`) in a trigger (``.store``).
"""

from __future__ import annotations

from enum import Enum

from casemesh.food.v1 import food_pb2, orders_pb2

PLACED = food_pb2.ORDER_STATE_PLACED
ASSIGNED = food_pb2.ORDER_STATE_ASSIGNED
PICKED_UP = food_pb2.ORDER_STATE_PICKED_UP
DELIVERED = food_pb2.ORDER_STATE_DELIVERED
CANCELLED = food_pb2.ORDER_STATE_CANCELLED

#: Every state an order can be in (UNSPECIFIED is never stored).
STATES = (PLACED, ASSIGNED, PICKED_UP, DELIVERED, CANCELLED)
#: A courier holds these orders; all of one courier's are in one batch (the store's claim and triggers).
ACTIVE = frozenset({ASSIGNED, PICKED_UP})
#: Orders not over: kept in memory.
OPEN = frozenset({PLACED, *ACTIVE})
#: Open orders that count as demand in surge pricing (waiting for a courier or for the food).
DEMAND = frozenset({PLACED, ASSIGNED})
#: Nothing moves an order on from these.
TERMINAL = frozenset({DELIVERED, CANCELLED})


class Event(Enum):
    """What moves an order: an order service RPC, or a courier's CourierEvent (UpdateOrder)."""

    ASSIGN = "assign"  # AssignCourier (dispatch)
    PICK_UP = "pick_up"  # UpdateOrder COURIER_EVENT_PICK_UP
    DELIVER = "deliver"  # UpdateOrder COURIER_EVENT_DELIVER
    CANCEL = "cancel"  # CancelOrder (the customer)
    RELEASE = "release"  # ReleaseOrder (dispatch: no courier)


#: (state, event) → the state the event moves the order to.
TRANSITIONS: dict[tuple[int, Event], int] = {
    (PLACED, Event.ASSIGN): ASSIGNED,
    (ASSIGNED, Event.PICK_UP): PICKED_UP,
    (PICKED_UP, Event.DELIVER): DELIVERED,
    (PLACED, Event.CANCEL): CANCELLED,
    (ASSIGNED, Event.CANCEL): CANCELLED,
    (PLACED, Event.RELEASE): CANCELLED,
}

#: event → the states in which it is a repeat: the order is returned unchanged.
REPEATS: dict[Event, frozenset[int]] = {
    Event.ASSIGN: frozenset({ASSIGNED, PICKED_UP, DELIVERED}),
    Event.PICK_UP: frozenset({PICKED_UP}),
    Event.DELIVER: frozenset({DELIVERED}),
    Event.CANCEL: frozenset({CANCELLED}),
    Event.RELEASE: frozenset({CANCELLED}),
}

#: Every (from, to) state change an order may make (the schema's trigger ``orders_moves`` allows only these).
MOVES: frozenset[tuple[int, int]] = frozenset((state, target) for (state, _), target in TRANSITIONS.items())

#: UpdateOrder's CourierEvent → :class:`Event`.
COURIER_EVENTS: dict[int, Event] = {
    orders_pb2.COURIER_EVENT_PICK_UP: Event.PICK_UP,
    orders_pb2.COURIER_EVENT_DELIVER: Event.DELIVER,
}


class TransitionRefused(Exception):
    """``event`` does not apply to an order in ``state`` (FAILED_PRECONDITION); the message names both."""

    def __init__(self, state: int, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"{event.name} does not apply to an order in state {state_name(state)}")


def state_name(state: int) -> str:
    """``ASSIGNED`` for ORDER_STATE_ASSIGNED (error messages and metric labels)."""
    return food_pb2.OrderState.Name(state).removeprefix("ORDER_STATE_")


def decide(state: int, event: Event) -> int | None:
    """The state ``event`` moves an order in ``state`` to, or ``None`` when it is a repeat (return the order as it
    is). Raises :class:`TransitionRefused` when the event does not apply."""
    target = TRANSITIONS.get((state, event))
    if target is not None:
        return target
    if state in REPEATS[event]:
        return None
    raise TransitionRefused(state, event)

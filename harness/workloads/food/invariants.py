"""The single-dispatch invariant, checked by the client side: no order is ever dispatched twice.

The property the food-delivery case study exists to protect (seed 001 #13 "Food Delivery",
shared/seeds/001_58dfc580020147d2.txt line 38: regional dispatch; orders.proto AssignCourier, the order service's
atomic compare-and-set: "no order is ever dispatched to two couriers, whatever dispatch does or how often it
restarts"). Regional dispatchers run independently and may race for one courier or one order; what this load process
sees is checked as it happens:

- **an order on two couriers, or in two batches**: an order id in the ReceiveAssignments feeds of two different
  couriers of this process, or under two batch ids (a feed repeating the same courier's same batch, as after a
  reconnect, is not a breach);
- **an order taken from its courier**: a courier's UpdateOrder refused PERMISSION_DENIED ("not this courier's") for
  an order its own feed assigned to it: the order service has it on another courier;
- **a customer seeing two couriers**: from ASSIGNED on, a customer's WatchOrder must show one non-empty
  ``courier_id`` (in order updates and in the courier positions forwarded to it), and it must be the courier of this
  process that the order was assigned to, when it was one of this process's (with ``--workers N`` the courier may be
  another process's: then only the customer's own view is checked).

Each breach is one ``single_dispatch`` sample with code ``DATA_LOSS`` at once (and a warning naming the order and
the couriers); each order its customer sees DELIVERED without a breach is one sample with code ``OK``. The measure's
latency is 0: it is a count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger("casemesh.workloads.food")

#: The measure's name, and the codes of its samples.
SINGLE_DISPATCH = "single_dispatch"
OK = "OK"
DATA_LOSS = "DATA_LOSS"


class Dispatches:
    """What this process's couriers were assigned and its customers saw; ``observe(code)`` records one
    ``single_dispatch`` sample.

    Plain bookkeeping on one event loop (no awaits inside), so the checks are atomic with respect to the journeys and
    couriers that call them.
    """

    def __init__(self, observe: Callable[[str], None]):
        self._observe = observe
        #: order → (courier, batch) of this process that it was assigned to (kept for the run: a later second
        #: assignment is still caught).
        self.assignments: dict[str, tuple[str, str]] = {}
        #: order → the courier its customer saw (from ASSIGNED on), until it is delivered.
        self.seen: dict[str, str] = {}
        self.breached: set[str] = set()
        self.breaches = 0
        self.delivered_ok = 0

    def breach(self, order_id: str, what: str) -> None:
        """Record one breach of ``order_id`` (a DATA_LOSS sample and a warning saying ``what``)."""
        self.breaches += 1
        self.breached.add(order_id)
        log.warning("single dispatch broken for %s: %s", order_id, what)
        self._observe(DATA_LOSS)

    def assigned(self, courier_id: str, batch_id: str, order_ids: Iterable[str]) -> None:
        """Courier ``courier_id`` of this process received batch ``batch_id`` holding ``order_ids`` on its feed."""
        for order_id in order_ids:
            first = self.assignments.setdefault(order_id, (courier_id, batch_id))
            if first[0] != courier_id:
                self.breach(order_id, f"assigned to {first[0]} (batch {first[1]}) and to {courier_id} (batch {batch_id})")
                self.assignments[order_id] = (courier_id, batch_id)  # one breach per change, not per repeat
            elif first[1] != batch_id:
                self.breach(order_id, f"assigned to {courier_id} in batch {first[1]} and in batch {batch_id}")
                self.assignments[order_id] = (courier_id, batch_id)

    def refused(self, order_id: str, courier_id: str, method: str) -> None:
        """The order service refused ``courier_id``'s ``method`` PERMISSION_DENIED: ``order_id``, assigned to it on its
        feed, is another courier's."""
        self.breach(order_id, f"assigned to {courier_id} on its feed, but {method} answered PERMISSION_DENIED "
                              f"(another courier has it)")

    def customer_saw(self, order_id: str, courier_id: str) -> None:
        """The customer's WatchOrder showed ``courier_id`` for ``order_id`` (ASSIGNED or later, or a courier position);
        an empty ``courier_id`` on an assigned order is a breach, and so is a second courier."""
        if not courier_id:
            self.breach(order_id, "assigned without a courier_id")
            return
        first = self.seen.setdefault(order_id, courier_id)
        if first != courier_id:
            self.breach(order_id, f"its customer saw {first}, then {courier_id}")
            self.seen[order_id] = courier_id  # one breach per change of courier, not per update after it

    def delivered(self, order_id: str) -> None:
        """The customer saw ``order_id`` DELIVERED: its OK sample unless it was breached (the courier of this process
        it was assigned to, when there is one, must be the courier the customer saw)."""
        seen = self.seen.pop(order_id, None)
        mine = self.assignments.get(order_id)
        if seen is None:
            self.breach(order_id, "delivered without its customer ever seeing a courier")
        elif mine is not None and mine[0] != seen:
            self.breach(order_id, f"assigned to {mine[0]} of this process, but its customer saw {seen}")
        if order_id in self.breached:
            return
        self.delivered_ok += 1
        self._observe(OK)

"""What dispatch knows of its couriers' assignments, in memory: who holds which batch, who has a call in flight.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery": regional dispatch with batching. The
record of truth is the order service (AssignCourier's compare-and-set refuses a courier who holds another batch, and a
batch that was picked up); this book only keeps dispatch from asking for what would be refused, and finds the
couriers a due order could join:

- **Holding**: set when AssignCourier gives a courier a batch (its orders, the courier's estimated arrival at the
  first restaurant), extended when an order joins it. A courier stays held until dispatch sees it free again:
  FindNearbyDrivers returns only AVAILABLE couriers, and the courier app reports BUSY as soon as it gets an assignment
  and AVAILABLE once it delivered its last order (services/food/contract.py), so a courier found AVAILABLE in a
  position the location service received at least ``free_grace_s`` after the assignment is done
  (:meth:`CourierBook.free_if_done`). The grace covers an AVAILABLE position already on its way when the assignment
  was made. Any mistake costs one refused AssignCourier (FAILED_PRECONDITION): dispatch then marks the courier held
  (an unknown batch) and tries the next one. A courier whose feed did not take the assignment (it was closed, or
  full) does not know it holds orders and goes on reporting AVAILABLE: its holding is kept (``notified`` False) until
  its next ReceiveAssignments gets the batch (:meth:`CourierBook.notified`), so that no order stays with a courier
  who was never told.
- **Batch candidates**: couriers holding exactly one order of a batch dispatch made, not yet (by the estimate)
  picked up. A refused join (FAILED_PRECONDITION: the batch was picked up, or is full) makes the courier's batch no
  longer a candidate.
- **Reserved**: couriers with an AssignCourier in flight, from any region: a region checks and reserves a courier
  with no suspension point in between, so two regions never both pick the same courier at once (no lock: the event
  loop runs one region's code at a time between awaits).

A restart of dispatch loses the book; its first sweep rebuilds it from the order service (ListOpenOrders with
``include_assigned``): each courier's ASSIGNED orders not yet picked up become its holding again, marked not notified
(:meth:`CourierBook.recovered`), because the assignment may have been committed while the courier's feed message (or
AssignCourier's answer) was lost with the old process. The courier's app reconnects its feed (the restart broke the
old one) and gets the whole batch first (it ignores orders it already holds); until then it is not free, even
reporting AVAILABLE. Batching starts empty again (a recovered batch is not a candidate). Holdings older than
``holding_ttl_s`` are forgotten (:meth:`CourierBook.prune`: a courier who went offline mid-delivery).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casemesh.food.v1 import food_pb2

from . import metrics


@dataclass(eq=False)
class Holding:
    """A courier's assignment as dispatch knows it.

    ``batch_id`` is empty and ``orders`` empty for a batch dispatch did not make (learnt from a refusal);
    ``since_s`` when dispatch assigned (or learnt of) it, ``arrive_s`` the estimated arrival at the first
    restaurant, ``pickup_s`` the estimated pickup there (the later of arrival and the food being ready): seconds on
    the dispatcher's clock. ``batchable``: an order may still join it; ``notified``: the courier's feed took the
    batch as it is.
    """

    courier_id: str
    batch_id: str
    since_s: float
    orders: list[food_pb2.Order] = field(default_factory=list)
    arrive_s: float = 0.0
    pickup_s: float = 0.0
    batchable: bool = False
    notified: bool = True


class CourierBook:
    """Holdings by courier id, and the couriers with an AssignCourier in flight."""

    def __init__(self) -> None:
        self._holdings: dict[str, Holding] = {}
        self._candidates: dict[str, Holding] = {}  # holdings an order may join
        self._reserved: set[str] = set()

    def __len__(self) -> int:
        return len(self._holdings)

    def holding(self, courier_id: str) -> Holding | None:
        """The courier's assignment as dispatch knows it, if any."""
        return self._holdings.get(courier_id)

    # -- calls in flight --------------------------------------------------------------------------------------------

    def reserved(self, courier_id: str) -> bool:
        """True while an AssignCourier for the courier is in flight."""
        return courier_id in self._reserved

    def reserve(self, courier_id: str) -> bool:
        """Mark an AssignCourier for the courier in flight; False when one is already."""
        if courier_id in self._reserved:
            return False
        self._reserved.add(courier_id)
        return True

    def unreserve(self, courier_id: str) -> None:
        """The courier's AssignCourier ended."""
        self._reserved.discard(courier_id)

    # -- what assignments did ---------------------------------------------------------------------------------------

    def assigned(self, courier_id: str, batch_id: str, order: food_pb2.Order, now_s: float, arrive_s: float,
                 pickup_s: float) -> Holding:
        """AssignCourier gave the courier a new batch of one ``order``; a batch candidate."""
        holding = Holding(courier_id, batch_id, now_s, [order], arrive_s, pickup_s, batchable=True)
        self._set(holding)
        return holding

    def joined(self, courier_id: str, order: food_pb2.Order) -> Holding | None:
        """``order`` joined the courier's batch: no longer a candidate (batches hold two orders)."""
        holding = self._holdings.get(courier_id)
        if holding is None:
            return None
        holding.orders.append(order)
        holding.batchable = False
        self._candidates.pop(courier_id, None)
        return holding

    def refused(self, courier_id: str, now_s: float) -> None:
        """AssignCourier refused the courier (FAILED_PRECONDITION): its batch takes no more orders, or it holds one
        dispatch did not know of (then it is held from now, an unknown batch)."""
        if courier_id not in self._holdings:
            self._set(Holding(courier_id, "", now_s))
        else:
            self.close_batch(courier_id)

    def close_batch(self, courier_id: str) -> None:
        """No more orders may join the courier's batch (it was picked up, or is full)."""
        holding = self._holdings.get(courier_id)
        if holding is not None:
            holding.batchable = False
        self._candidates.pop(courier_id, None)

    def recovered(self, courier_id: str, batch_id: str, orders: list[food_pb2.Order], now_s: float) -> Holding | None:
        """After a restart, the order service says the courier holds ``orders`` (ASSIGNED, not yet picked up) of
        ``batch_id``: held from ``now_s`` and not notified (its next feed gets the batch), never a batch candidate.
        Orders missing from a holding of that batch dispatch already knows are added to it (then not notified);
        a holding of another known batch (newer: dispatch assigned it since) is kept. The holding changed, or None."""
        holding = self._holdings.get(courier_id)
        if holding is None or not holding.batch_id:  # none, or one learnt from a refusal: this is it
            holding = Holding(courier_id, batch_id, now_s, list(orders), notified=False)
            self._set(holding)
            return holding
        if holding.batch_id != batch_id:
            return None
        known = {order.order_id for order in holding.orders}
        missing = [order for order in orders if order.order_id not in known]
        if not missing:
            return None
        holding.orders.extend(missing)
        holding.notified = False
        self.close_batch(courier_id)
        return holding

    def notified(self, courier_id: str, now_s: float) -> Holding | None:
        """The courier's reconnected feed got its batch (the holding, returned; None when it holds none dispatch
        knows): the grace before AVAILABLE means done runs from now."""
        holding = self._holdings.get(courier_id)
        if holding is None or not holding.orders:
            return None
        holding.notified = True
        holding.since_s = now_s
        return holding

    def free_if_done(self, courier_id: str, available_since_s: float, grace_s: float) -> bool:
        """The courier was found AVAILABLE in a position received at ``available_since_s``: True when it holds
        nothing, or its holding is older than that by ``grace_s`` and it was told of it (then forgotten: it
        delivered)."""
        holding = self._holdings.get(courier_id)
        if holding is None:
            return True
        if not holding.notified or available_since_s < holding.since_s + grace_s:
            return False
        self._forget(courier_id)
        return True

    def candidates(self) -> list[Holding]:
        """Holdings an order may join (one order, not refused), without a call in flight."""
        return [h for h in self._candidates.values() if h.courier_id not in self._reserved]

    def prune(self, older_than_s: float) -> int:
        """Forget holdings from before ``older_than_s``; how many."""
        old = [c for c, h in self._holdings.items() if h.since_s < older_than_s]
        for courier_id in old:
            self._forget(courier_id)
        return len(old)

    def _set(self, holding: Holding) -> None:
        self._holdings[holding.courier_id] = holding
        if holding.batchable:
            self._candidates[holding.courier_id] = holding
        else:
            self._candidates.pop(holding.courier_id, None)
        metrics.HOLDING.set(len(self._holdings))

    def _forget(self, courier_id: str) -> None:
        self._holdings.pop(courier_id, None)
        self._candidates.pop(courier_id, None)
        metrics.HOLDING.set(len(self._holdings))

"""Fan-out: every stored message (and every receipt) routed to its conversation's members, in order per conversation.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Real-time Messaging":
after ``# Persist to database``, "Try to deliver in real-time" (same server
→ direct, else ``redis.publish(f"user:{recipient_id}", ...)``), and
"Message Delivery Flow": "Push Message" to the recipient, "Delivered
Receipt" / "Read Receipt" back to the sender. Seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "WhatsApp Messaging": "Check if
recipient is online" → push, else "Queue for offline delivery". Here the
push is one ``PresenceService.Route`` call (topology name ``chat-router``)
per item, with every recipient in it (a group of up to 500 members is one
call: Route takes at most 500 ``user_ids``); the offline queue is the store
itself (SyncInbox returns everything beyond a user's delivered cursor), so
a message the router could not push is never lost, only delivered later.

Ordering: each conversation has its own FIFO of items, and at most one
worker routes a conversation at a time, one item after the other, so the
Route calls of a conversation are made in sequence order (a receipt after
the messages committed before it). Different conversations proceed in
parallel, up to ``concurrency`` workers; a worker routes at most
:data:`TURN` items of one conversation before it lets the others have a
turn. Nothing here is on the request path: SendMessage answers when the
message is durable, then the fan-out routes it.

When the router is down or slow (a call fails or times out after the
channel's own retries) the item is counted as ``failed`` for its recipients,
logged once per outage, and skipped: a failure is not retried here, so one
dead router never stalls a conversation; recipients get the message from
the offline queue (SyncInbox) on their next connection. Items beyond
``max_pending`` queued are dropped (counted) the same way: memory stays bounded.

The A/B knob is ``concurrency`` (setting ``fanout_concurrency``): 1 is a
single queue consumer for the whole service (what a plain
``queue.add(...)`` worker does: global order, head-of-line blocking of every
conversation behind the slowest Route); the default 64 lets a slow or busy
conversation delay only itself, at the price of up to 64 Route calls in
flight at the router (and, through it, at the gateways).

Metrics: ``casemesh_chat_fanout_width`` (histogram: recipients per routed
message), ``casemesh_chat_route_recipients_total{item, outcome}`` (item
``message``/``receipt``; outcome ``routed``: pushed to at least one session,
``offline``: no session, ``failed``: the Route call failed, ``dropped``: the
fan-out queue was full), ``casemesh_chat_route_delay_seconds`` (histogram:
message committed → its Route call answered, the server's share of delivery
latency) and ``casemesh_chat_route_pending`` (gauge: items queued).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from casemesh.chat.v1 import message_pb2, router_pb2

from ..contract import MAX_GROUP_MEMBERS

log = logging.getLogger("casemesh.chat.messages.fanout")

#: The router's topology name.
ROUTER = "chat-router"
#: Most items a worker routes of one conversation before it lets other conversations have a turn.
TURN = 32
#: Most users in one Route call (RouteRequest.user_ids: 1 to 500).
MAX_ROUTE_USERS = MAX_GROUP_MEMBERS

FANOUT_WIDTH = Histogram("casemesh_chat_fanout_width", "Recipients of one routed message (the conversation's members).",
                         buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500))
ROUTE_RECIPIENTS = Counter(
    "casemesh_chat_route_recipients",
    "Recipients of routed items by item (message, receipt) and outcome (routed: pushed to a session; offline: no "
    "session; failed: the Route call failed; dropped: the fan-out queue was full). Offline, failed and dropped "
    "recipients get messages from the offline queue (SyncInbox).", ["item", "outcome"])
ROUTE_DELAY = Histogram("casemesh_chat_route_delay_seconds",
                        "Seconds from a message's commit to the answer of its Route call.",
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0))
ROUTE_PENDING = Gauge("casemesh_chat_route_pending", "Items (messages and receipts) queued for routing.")


class RouterStub(Protocol):
    """What the fan-out needs of ``router_pb2_grpc.PresenceServiceStub``."""

    def Route(self, request: router_pb2.RouteRequest, *, timeout: float | None = None): ...  # noqa: N802


@dataclass(slots=True)
class _Item:
    user_ids: tuple[str, ...]
    message: message_pb2.ChatMessage | None
    receipt: message_pb2.Receipt | None
    queued_at: float  # time.monotonic()

    @property
    def kind(self) -> str:
        return "message" if self.message is not None else "receipt"


@dataclass
class FanoutStats:
    """Counts since start: Route calls made and failed, recipients by outcome."""

    calls: int = 0
    failed_calls: int = 0
    routed: int = 0
    offline: int = 0
    failed: int = 0
    dropped: int = 0


class Fanout:
    """Per-conversation ordered routing through ``router`` with ``concurrency`` workers.

    ``submit_*`` never wait (O(1)); :meth:`start` starts the workers and
    :meth:`stop` cancels them (queued items are left: their messages are in
    the offline queue). ``timeout_s`` bounds each Route call.
    """

    def __init__(self, router: RouterStub, *, concurrency: int = 64, max_pending: int = 100_000, timeout_s: float = 2.0) -> None:
        if concurrency < 1 or max_pending < 1:
            raise ValueError("concurrency and max_pending must be at least 1")
        self._router = router
        self._concurrency = concurrency
        self._max_pending = max_pending
        self._timeout_s = timeout_s
        self._queues: dict[str, deque[_Item]] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()  # conversations with items and no worker; each at most once
        self._workers: list[asyncio.Task] = []
        self._router_down = False
        self._idle = asyncio.Event()
        self._idle.set()
        #: Items queued, not yet routed.
        self.pending = 0
        self.stats = FanoutStats()

    async def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"chat-fanout-{i}") for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or being routed (tests, shutdown)."""
        await self._idle.wait()

    def submit_message(self, conversation_id: str, user_ids: tuple[str, ...], message: message_pb2.ChatMessage) -> None:
        """Queue ``message`` for ``user_ids`` behind the conversation's earlier items."""
        FANOUT_WIDTH.observe(len(user_ids))
        self._submit(conversation_id, _Item(user_ids, message, None, time.monotonic()))

    def submit_receipt(self, conversation_id: str, user_ids: tuple[str, ...], receipt: message_pb2.Receipt) -> None:
        """Queue ``receipt`` for ``user_ids`` behind the conversation's earlier items (nothing when no one is to be told)."""
        if user_ids:
            self._submit(conversation_id, _Item(user_ids, None, receipt, time.monotonic()))

    def _submit(self, conversation_id: str, item: _Item) -> None:
        if self.pending >= self._max_pending:
            self.stats.dropped += len(item.user_ids)
            ROUTE_RECIPIENTS.labels(item.kind, "dropped").inc(len(item.user_ids))
            return
        queue = self._queues.get(conversation_id)
        if queue is None:
            queue = self._queues[conversation_id] = deque()
            self._ready.put_nowait(conversation_id)
        queue.append(item)
        self.pending += 1
        self._idle.clear()
        ROUTE_PENDING.set(self.pending)

    async def _work(self) -> None:
        while True:
            conversation_id = await self._ready.get()
            queue = self._queues[conversation_id]
            for _ in range(TURN):
                if not queue:
                    break
                item = queue.popleft()
                try:
                    await self._route(item)
                finally:
                    self.pending -= 1
                    ROUTE_PENDING.set(self.pending)
            if queue:  # more came meanwhile, or its turn is over: to the back of the line
                self._ready.put_nowait(conversation_id)
            else:
                del self._queues[conversation_id]
                if not self._queues:
                    self._idle.set()

    async def _route(self, item: _Item) -> None:
        kind = item.kind
        for start in range(0, len(item.user_ids), MAX_ROUTE_USERS):
            users = item.user_ids[start:start + MAX_ROUTE_USERS]
            request = router_pb2.RouteRequest(user_ids=users, message=item.message, receipt=item.receipt)
            self.stats.calls += 1
            try:
                response = await self._router.Route(request, timeout=self._timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - AioRpcError (down, timed out, circuit open) or anything else
                self.stats.failed_calls += 1
                self.stats.failed += len(users)
                ROUTE_RECIPIENTS.labels(kind, "failed").inc(len(users))
                if not self._router_down:
                    self._router_down = True
                    log.warning("routing through %s failed (%s); recipients get their messages from the offline queue "
                                "until it is back", ROUTER, _describe(error))
                continue
            if self._router_down:
                self._router_down = False
                log.info("routing through %s works again", ROUTER)
            offline = len(response.offline_user_ids)
            self.stats.offline += offline
            self.stats.routed += len(users) - offline
            ROUTE_RECIPIENTS.labels(kind, "offline").inc(offline)
            ROUTE_RECIPIENTS.labels(kind, "routed").inc(len(users) - offline)
        if item.message is not None:
            ROUTE_DELAY.observe(time.monotonic() - item.queued_at)


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if callable(code):
        try:
            return f"{code().name}: {error.details()}"  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            pass
    return repr(error)

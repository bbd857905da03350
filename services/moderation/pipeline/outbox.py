"""The review outbox: items bound for human review are sent to the review service (ReviewService.Enqueue) until it has
accepted them.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "confidence routing, human review"). An item routed to
review (IN_REVIEW) or appealed (IN_APPEAL) is written with ``review_enqueued = 0`` in the same write as its change of
state (:mod:`.store`): the file is the outbox. :meth:`ReviewOutbox.send` sends it at once (the classifier worker after
routing, the servicer after an appeal; in a task of its own, so neither waits for the review service), and
:meth:`ReviewOutbox.run` sends every item still not accepted again every ``resend_interval_ms``: after a failed or
timed-out Enqueue, after the review service or this process restarted. Once Enqueue answered, the item is marked
``review_enqueued = 1`` (:meth:`.items.ItemBook.mark_enqueued`). Enqueue is idempotent per item and kind on the review
side, so a re-send of an item whose answer was lost (or whose mark was not written before a crash) queues nothing
twice. At most :data:`MAX_IN_FLIGHT` Enqueues are in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from casemesh.moderation.v1 import moderation_pb2 as m

from ...runtime.errors import Unavailable
from .clients import Review
from .items import IN_REVIEW, REVIEW_STATES, ItemBook
from .settings import PipelineSettings

log = logging.getLogger("casemesh.moderation.pipeline.outbox")

#: Most Enqueue calls in flight at once (the re-sender waits for a slot).
MAX_IN_FLIGHT = 64
_LOG_EVERY_S = 10.0


class ReviewOutbox:
    """Sends ``book``'s items bound for review to ``review`` (see the module docstring)."""

    def __init__(self, book: ItemBook, review: Review, settings: PipelineSettings) -> None:
        self._book = book
        self._review = review
        self._timeout_s = settings.review_timeout_ms / 1_000
        self._interval_s = settings.resend_interval_ms / 1_000
        self._in_flight: dict[str, asyncio.Task[bool]] = {}
        self._logged_at = -_LOG_EVERY_S
        #: Enqueue calls that failed (the item is sent again later).
        self.failures = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def send(self, item_id: str) -> asyncio.Task[bool] | None:
        """Send the item's task to the review service in a task of its own (none when one is in flight already, or at
        :data:`MAX_IN_FLIGHT`: the re-sender sends it later); the task answers whether it was accepted and marked."""
        if item_id in self._in_flight or len(self._in_flight) >= MAX_IN_FLIGHT:
            return self._in_flight.get(item_id)
        task = asyncio.create_task(self._send(item_id), name=f"moderation-enqueue-{item_id}")
        self._in_flight[item_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(item_id, None))
        return task

    async def _send(self, item_id: str) -> bool:
        item = self._book.find(item_id)
        if item is None or item.state not in REVIEW_STATES or item.review_enqueued:
            return False
        state = item.state
        kind = m.REVIEW_KIND_FIRST if state == IN_REVIEW else m.REVIEW_KIND_APPEAL
        try:
            await self._review.enqueue(item_id, item.text, item.probability, kind, item.appeal_reason, self._timeout_s)
            return await self._book.mark_enqueued(item_id, state)
        except Unavailable as error:  # the review service or our file: the re-sender tries again
            self.failures += 1
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = now
                log.warning("moderation-pipeline: item %s not accepted for review yet (%s); %d items waiting",
                            item_id, error, len(self._book.unenqueued()))
            return False

    async def resend_once(self) -> int:
        """Send every item not accepted yet (that has no Enqueue in flight), waiting for free slots; returns how many
        were sent."""
        sent = 0
        for item_id in self._book.unenqueued():
            while len(self._in_flight) >= MAX_IN_FLIGHT:
                await asyncio.wait(set(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED)
            if item_id not in self._in_flight and self.send(item_id) is not None:
                sent += 1
        return sent

    async def run(self) -> None:
        """Re-send forever, every ``resend_interval_ms`` (until cancelled)."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.resend_once()
            except Exception:  # a bug: logged, and the re-sender goes on
                log.exception("moderation-pipeline: re-sending items to review failed")

    async def close(self) -> None:
        """Cancel the Enqueues in flight (their items stay in the outbox, in the file)."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

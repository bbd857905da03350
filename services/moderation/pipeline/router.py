"""The classification worker pool: confidence routing of every PENDING item.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "AI classifiers (BERT/ResNet), confidence routing").
``classify_concurrency`` worker tasks take item IDs from one ``asyncio.Queue`` (fed by
:attr:`.items.ItemBook.on_pending`: every item SubmitItem stored, and every item found PENDING at start), ask
ClassifierService.Classify for the item's violation probability (timeout ``classify_timeout_ms``) and route it
(:meth:`.items.ItemBook.route`: APPROVED, REMOVED or IN_REVIEW with its audit entry, in one write). An item sent to
review goes to the review outbox at once (:class:`.outbox.ReviewOutbox`).

A worker holds its item until it is routed: a failed Classify (the classifier down, slow or overloaded) or a failed
write is counted (``casemesh_moderation_classify_failures_total`` for Classify) and tried again after a jittered
exponential backoff (``retry_backoff_ms`` doubling up to ``max_retry_backoff_ms``). The item stays PENDING meanwhile,
in memory and in the file: it is never dropped, and a restart queues it again. While the classifier is down the
queue grows, and SubmitItem refuses new items past ``max_pending`` (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time

from ...runtime.errors import Unavailable
from . import metrics
from .clients import Backoff, Classifier, DependencyUnavailable
from .items import IN_REVIEW, PENDING, ItemBook
from .outbox import ReviewOutbox
from .settings import PipelineSettings

log = logging.getLogger("casemesh.moderation.pipeline.router")

_LOG_EVERY_S = 10.0


class ClassifyPool:
    """The workers (see the module docstring); :meth:`start` them after the book's :meth:`~.items.ItemBook.start`
    queued the PENDING items, or before: the queue keeps them."""

    def __init__(self, book: ItemBook, classifier: Classifier, outbox: ReviewOutbox,
                 settings: PipelineSettings) -> None:
        self._book = book
        self._classifier = classifier
        self._outbox = outbox
        self._settings = settings
        self._timeout_s = settings.classify_timeout_ms / 1_000
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._logged_at = -_LOG_EVERY_S
        book.on_pending = self._queue.put_nowait

    @property
    def queued(self) -> int:
        """Item IDs waiting for a worker."""
        return self._queue.qsize()

    def start(self) -> None:
        for n in range(self._settings.classify_concurrency):
            self._workers.append(asyncio.create_task(self._work(), name=f"moderation-classify-{n}",
                                                     context=contextvars.Context()))

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            item_id = await self._queue.get()
            try:
                await self.classify(item_id)
            except Exception:  # a bug: logged; the item stays PENDING (a restart queues it again)
                log.exception("moderation-pipeline: classifying item %s failed", item_id)

    def _failed(self, item_id: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning("moderation-pipeline: item %s not routed yet (%s); %d items pending", item_id, error,
                        self._book.pending)

    async def classify(self, item_id: str) -> bool:
        """Classify and route the item, trying again until it is routed (or no longer PENDING); whether this call
        routed it."""
        backoff = Backoff(self._settings.retry_backoff_ms, self._settings.max_retry_backoff_ms)
        while True:
            item = self._book.find(item_id)
            if item is None or item.state != PENDING:
                return False
            try:
                probability, model_version = await self._classifier.classify(item.text, self._timeout_s)
            except DependencyUnavailable as error:
                metrics.CLASSIFY_FAILURES.inc()
                self._failed(item_id, error)
                await backoff.wait()
                continue
            try:
                routed = await self._book.route(item_id, probability, model_version)
            except Unavailable as error:  # the file: classify again later (the model may have changed meanwhile)
                self._failed(item_id, error)
                await backoff.wait()
                continue
            if routed is not None and routed.state == IN_REVIEW:
                self._outbox.send(item_id)
            return routed is not None

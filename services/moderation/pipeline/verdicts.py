"""The verdict consumer: reviewers' verdicts come back from the review service's outbox and decide their items.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "human review"). One loop long-polls
ReviewService.PullVerdicts(after_seq = the cursor, ``verdict_batch`` at most, ``wait_ms`` = ``verdict_wait_ms``;
timeout: the long poll plus ``review_timeout_ms``) and applies each batch (:meth:`.items.ItemBook.apply_verdicts`):
every verdict's change of state with its audit entry, and the cursor moved to the batch's last seq, in one write.
The next PullVerdicts passes that cursor, which acknowledges the batch (the review service deletes it).

Exactly once: a verdict is deleted by the review service only after the write that applied it is durable here; a
batch pulled again (this process crashed after the write but before its next pull, or the review service restarted
before the acknowledgement) finds its items decided already, and only moves the cursor. A failed pull or write is
tried again after a jittered exponential backoff (``retry_backoff_ms`` to ``max_retry_backoff_ms``); a verdict stays
in the review service's outbox meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ...runtime.errors import Unavailable
from .clients import Backoff, Review
from .items import ItemBook
from .settings import PipelineSettings

log = logging.getLogger("casemesh.moderation.pipeline.verdicts")

_LOG_EVERY_S = 10.0
#: The shortest pause between two empty polls when the long poll is off (``verdict_wait_ms`` 0), seconds.
_IDLE_S = 0.1


class VerdictConsumer:
    """Pulls ``review``'s verdicts into ``book`` (see the module docstring)."""

    def __init__(self, book: ItemBook, review: Review, settings: PipelineSettings) -> None:
        self._book = book
        self._review = review
        self._settings = settings
        self._timeout_s = (settings.verdict_wait_ms + settings.review_timeout_ms) / 1_000
        self._backoff = Backoff(settings.retry_backoff_ms, settings.max_retry_backoff_ms)
        self._logged_at = -_LOG_EVERY_S
        #: Pulls or writes that failed.
        self.failures = 0

    async def poll_once(self) -> int:
        """One PullVerdicts and the write of what it brought; how many verdicts. Raises ``Unavailable`` (the review
        service or the file: nothing applied, the cursor unmoved)."""
        verdicts = await self._review.pull(self._book.verdict_cursor, self._settings.verdict_batch,
                                           self._settings.verdict_wait_ms, self._timeout_s)
        await self._book.apply_verdicts(verdicts)
        return len(verdicts)

    async def run(self) -> None:
        """Pull and apply forever (until cancelled)."""
        while True:
            try:
                pulled = await self.poll_once()
            except Unavailable as error:
                self.failures += 1
                now = time.monotonic()
                if now - self._logged_at >= _LOG_EVERY_S:
                    self._logged_at = now
                    log.warning("moderation-pipeline: verdicts after %d not applied yet (%s)",
                                self._book.verdict_cursor, error)
                await self._backoff.wait()
                continue
            except Exception:  # a bug: logged, and the consumer goes on after a pause
                self.failures += 1
                log.exception("moderation-pipeline: applying verdicts failed")
                await self._backoff.wait()
                continue
            self._backoff.reset()
            if not pulled and self._settings.verdict_wait_ms < _IDLE_S * 1_000:
                await asyncio.sleep(_IDLE_S)

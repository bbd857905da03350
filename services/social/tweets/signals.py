"""Likes as real-time signals: social-tweets → reco-signals, in batches off the LikeTweet path.

Seed 001 (shared/seeds/001_58dfc580020147d2.txt, line 31, #19
"Recommendation Engine") names "real-time signals": what a user just did
moves their next recommendations before the model is trained again. A like
in the feed is such a signal. With ``record_signals`` on
(:class:`.settings.TweetSettings`), each acknowledged LikeTweet queues one
``casemesh.reco.v1.Interaction`` (the liker, the tweet ID in decimal as the
item ID, INTERACTION_KIND_LIKE) in a :class:`~casemesh.services.runtime.batch_buffer.BatchBuffer`,
and a background loop sends the queue to SignalService.RecordInteractions
every ``signal_flush_interval_ms``. The like never waits for reco-signals:
while it is down the signals wait (at most ``max_pending_signals``, then
dropped and counted) and are sent when it is back. Recording a (user, item,
LIKE) twice only updates its time at reco-signals, so a retried batch does no
harm.

Metrics: ``casemesh_social_like_signals_total{outcome}`` (``sent``,
``dropped``: buffer full), ``casemesh_social_like_signal_delay_seconds``
(histogram: like acknowledged → RecordInteractions OK; the pipeline's share of
the like-to-"For you" freshness).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from casemesh.reco.v1 import signals_pb2, signals_pb2_grpc

from ...runtime.batch_buffer import BatchBuffer
from .settings import TweetSettings

#: The recommendation engine's topology name this module sends to.
RECO_SIGNALS = "reco-signals"

SIGNALS = Counter("casemesh_social_like_signals", "Like signals by outcome: sent to reco-signals, or dropped (buffer full).",
                  ["outcome"])
SIGNAL_DELAY = Histogram("casemesh_social_like_signal_delay_seconds",
                         "Seconds from an acknowledged like to reco-signals' RecordInteractions OK.",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))


@dataclass(frozen=True, slots=True)
class LikeSignal:
    """One acknowledged like: who, which tweet, and when it was acknowledged (``time.monotonic()`` seconds)."""

    user_id: str
    tweet_id: int
    at_s: float


class LikeSignals:
    """The like-signal pipeline of one social-tweets: :meth:`add` on the request path, a flush loop to reco-signals."""

    def __init__(self, stub: signals_pb2_grpc.SignalServiceStub, settings: TweetSettings, *, call_timeout_s: float = 5.0) -> None:
        self._stub = stub
        self._timeout_s = call_timeout_s
        self.buffer: BatchBuffer[LikeSignal] = BatchBuffer(
            self._send, name="like-signals", noun="like signals", max_pending=settings.max_pending_signals,
            batch_size=settings.signal_batch_size, flush_interval_s=settings.signal_flush_interval_ms / 1000)

    def add(self, user_id: str, tweet_id: int) -> None:
        """Queue a like's signal (O(1), never waits); counted as dropped when the buffer is full."""
        if not self.buffer.add(LikeSignal(user_id, tweet_id, time.monotonic())):
            SIGNALS.labels("dropped").inc()

    async def _send(self, batch: list[LikeSignal]) -> None:
        request = signals_pb2.RecordInteractionsRequest(interactions=[
            signals_pb2.Interaction(user_id=s.user_id, item_id=str(s.tweet_id), kind=signals_pb2.INTERACTION_KIND_LIKE)
            for s in batch])
        await self._stub.RecordInteractions(request, timeout=self._timeout_s)
        now = time.monotonic()
        for signal in batch:
            SIGNAL_DELAY.observe(now - signal.at_s)
        SIGNALS.labels("sent").inc(len(batch))

    async def start(self) -> None:
        await self.buffer.start()

    async def stop(self) -> int:
        """Stop after a final send; returns the signals left unsent (reco-signals down at shutdown)."""
        return await self.buffer.stop()

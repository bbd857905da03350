"""Buffer click events off the redirect path and send them in batches.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt):
``redirect()`` calls ``increment_clicks_async(short_code)`` so that counting a
click never delays the redirect, and the requirements ask for "Analytics: click
counts, geographic data". Here Resolve calls :meth:`ClickBuffer.add` (O(1), no
await, never blocks), and a background loop sends batches to the analytics
service (casemesh.analytics.v1 RecordClicks). Stats are therefore eventually
consistent: a click is counted within about ``flush_interval_s``.

Memory is bounded: at most ``max_pending`` clicks are held (queued plus the
batch in flight); beyond that new clicks are dropped and counted. A batch
whose send fails is put back at the front of the queue and retried on the next
tick, so it is not lost (the in-flight batch already counts toward the bound).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..runtime.batch_buffer import BatchBuffer


@dataclass(frozen=True, slots=True)
class Click:
    """One successful redirect: the code, when (Unix seconds), and the visitor's country.

    ``country_code`` is ISO 3166-1 alpha-2 upper case, or empty for unknown.
    """

    code: str
    at_s: float
    country_code: str


class ClickBuffer(BatchBuffer[Click]):
    """Queue of clicks flushed to ``send(batch)`` by a background loop (:class:`~casemesh.services.runtime.batch_buffer.BatchBuffer`).

    Batches of at most ``batch_size`` clicks, every ``flush_interval_s``
    seconds or at once when a batch is full; at most ``max_pending`` held.
    """

    def __init__(
        self,
        send: Callable[[list[Click]], Awaitable[None]],
        max_pending: int = 100_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.1,
    ) -> None:
        super().__init__(send, name="click-buffer", noun="clicks", max_pending=max_pending, batch_size=batch_size,
                         flush_interval_s=flush_interval_s)

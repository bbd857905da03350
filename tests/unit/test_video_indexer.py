"""The catalogue's search indexer: batches off the publish path, rate-bounded, retried, flushed on stop."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casemesh.services.video.catalog.indexer import SearchIndexer
from casemesh.services.video.catalog.service import retryable
from casemesh.video.v1 import search_pb2 as pb


def doc(video_id: str, title: str = "title") -> pb.VideoDocument:
    return pb.VideoDocument(video_id=video_id, title=title, publish_time_unix_s=1.0)


class Sink:
    """Records batches with their send times; the first ``failures`` calls raise ``error``; ``gate`` holds calls."""

    def __init__(self, failures: int = 0, error: Exception | None = None):
        self.batches: list[list[str]] = []
        self.times: list[float] = []
        self.failures = failures
        self.error = error or ConnectionError("search unavailable")
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, batch):
        self.calls += 1
        self.times.append(asyncio.get_running_loop().time())
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise self.error
        self.batches.append([d.video_id for d in batch])

    @property
    def ids(self) -> list[str]:
        return [i for b in self.batches for i in b]


async def until(predicate, timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_burst_becomes_one_call_and_calls_are_spaced_by_the_interval():
    sink = Sink()
    indexer = SearchIndexer(sink, interval_s=0.1)
    await indexer.start()
    try:
        for i in range(5):
            assert indexer.add(doc(f"v{i}"))  # synchronous: the publish path never waits
        await until(lambda: sink.ids == [f"v{i}" for i in range(5)])
        assert sink.batches == [[f"v{i}" for i in range(5)]]
        indexer.add(doc("late1"))
        indexer.add(doc("late2"))
        await until(lambda: len(sink.batches) == 2)
        assert sink.batches[1] == ["late1", "late2"]
        assert sink.times[1] - sink.times[0] >= 0.1 - 0.005
    finally:
        assert await indexer.stop() == 0


async def test_batches_are_capped_and_a_queued_document_is_replaced_not_repeated():
    sink = Sink()
    indexer = SearchIndexer(sink, interval_s=0.01, batch_size=2)
    for i in range(5):
        indexer.add(doc(f"v{i}", "old"))
    indexer.add(doc("v1", "new"))
    await indexer.start()
    await until(lambda: len(sink.ids) == 5)
    await indexer.stop()
    assert sink.batches == [["v0", "v1"], ["v2", "v3"], ["v4"]]


async def test_retryable_failures_back_off_and_lose_nothing():
    sink = Sink(failures=3)
    indexer = SearchIndexer(sink, interval_s=0.02, max_backoff_s=0.05)
    await indexer.start()
    try:
        indexer.add(doc("a"))
        indexer.add(doc("b"))
        await until(lambda: sink.ids == ["a", "b"])
        assert indexer.send_failures == 3 and indexer.sent == 2 and indexer.dropped == 0
        gaps = [later - earlier for earlier, later in zip(sink.times, sink.times[1:])]
        assert gaps[0] >= 0.02 - 0.005 and gaps[1] >= 0.04 - 0.005 and gaps[2] >= 0.05 - 0.005  # 20, 40, 50 (capped)
    finally:
        await indexer.stop()


async def test_permanent_failures_drop_the_batch():
    sink = Sink(failures=1, error=ValueError("bad document"))
    dropped = []
    indexer = SearchIndexer(sink, interval_s=0.01, retryable=lambda exc: not isinstance(exc, ValueError),
                            on_dropped=dropped.append)
    await indexer.start()
    indexer.add(doc("bad"))
    await until(lambda: indexer.dropped == 1)
    indexer.add(doc("good"))
    await until(lambda: sink.ids == ["good"])
    await indexer.stop()
    assert dropped == [1]


async def test_the_queue_is_bounded():
    indexer = SearchIndexer(Sink(), max_pending=2)
    assert indexer.add(doc("a")) and indexer.add(doc("b"))
    assert not indexer.add(doc("c"))
    assert indexer.add(doc("a"))  # replacing a queued document needs no room
    assert (indexer.pending, indexer.dropped) == (2, 1)


async def test_stop_flushes_pending_documents():
    sink = Sink()
    indexer = SearchIndexer(sink, interval_s=3600)
    await indexer.start()
    indexer.add(doc("first"))
    await until(lambda: sink.ids == ["first"])
    indexer.add(doc("second"))  # the next call would wait an hour
    assert await indexer.stop() == 0
    assert sink.ids == ["first", "second"]


async def test_stop_gives_up_after_its_timeout_and_reports_what_is_left():
    sink = Sink(failures=1000)
    indexer = SearchIndexer(sink, interval_s=0.01)
    indexer.add(doc("a"))
    indexer.add(doc("b"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await indexer.stop(timeout_s=0.2) == 2
    assert loop.time() - started < 2.0


async def test_a_hanging_send_is_cut_by_the_stop_timeout_and_keeps_its_batch():
    sink = Sink()
    sink.gate = asyncio.Event()  # never set: the call hangs
    indexer = SearchIndexer(sink)
    indexer.add(doc("a"))
    assert await indexer.stop(timeout_s=0.1) == 1


class _RpcError(grpc.aio.AioRpcError):
    def __init__(self, code):
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


@pytest.mark.parametrize(("error", "expected"), [
    (_RpcError(grpc.StatusCode.UNAVAILABLE), True),
    (_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED), True),
    (_RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED), True),
    (_RpcError(grpc.StatusCode.INVALID_ARGUMENT), False),
    (_RpcError(grpc.StatusCode.UNKNOWN), False),
    (ConnectionError("reset"), True),
    (ValueError("bug"), False),
])
def test_which_failures_are_retried(error, expected):
    assert retryable(error) is expected

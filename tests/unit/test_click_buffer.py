"""Click buffering off the redirect path, batched sends, bounded memory, retries."""

import asyncio

import pytest

from casemesh.services.urlshortener.click_buffer import Click, ClickBuffer


class Sink:
    """Records batches; fails the first ``failures`` sends; ``gate`` holds sends in flight."""

    def __init__(self, failures: int = 0):
        self.batches: list[list[Click]] = []
        self.failures = failures
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, batch):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("analytics unavailable")
        self.batches.append(list(batch))

    @property
    def clicks(self):
        return [c for b in self.batches for c in b]


async def until(predicate, timeout_s=3.0):
    """Poll until predicate() holds; generous cap so a loaded machine does not flake."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def clicks(n, code="abc1234"):
    return [Click(code, 1_800_000_000.0 + i, "DE" if i % 2 else "") for i in range(n)]


async def test_full_batch_is_sent_without_waiting_for_the_interval():
    sink = Sink()
    buf = ClickBuffer(sink, batch_size=3, flush_interval_s=60)
    await buf.start()
    data = clicks(7)
    for c in data:
        assert buf.add(c) is True
    await until(lambda: buf.sent == 7)  # well before the 60 s tick
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    await buf.stop()
    assert sink.clicks == data  # order kept, nothing lost
    assert (buf.sent, buf.pending) == (7, 0)


async def test_partial_batch_is_sent_on_the_next_tick():
    sink = Sink()
    buf = ClickBuffer(sink, batch_size=500, flush_interval_s=0.02)
    await buf.start()
    buf.add(clicks(1)[0])
    await until(lambda: buf.sent == 1)
    assert buf.pending == 0
    await buf.stop()


async def test_stop_flushes_everything_in_batches():
    sink = Sink()
    buf = ClickBuffer(sink, batch_size=500, flush_interval_s=60)
    await buf.start()
    await asyncio.sleep(0)
    data = clicks(1234)
    for c in data:
        buf.add(c)
    assert await buf.stop() == 0
    assert sink.clicks == data
    assert all(len(b) <= 500 for b in sink.batches)
    assert (buf.sent, buf.pending, buf.dropped) == (1234, 0, 0)


async def test_stop_without_start_just_flushes():
    sink = Sink()
    buf = ClickBuffer(sink, batch_size=3)
    for c in clicks(7):
        buf.add(c)
    assert await buf.stop() == 0
    assert [len(b) for b in sink.batches] == [3, 3, 1]


async def test_drops_when_full_and_never_blocks():
    sink = Sink()
    buf = ClickBuffer(sink, max_pending=5, batch_size=5, flush_interval_s=60)
    results = [buf.add(c) for c in clicks(8)]
    assert results == [True] * 5 + [False] * 3
    assert (buf.pending, buf.dropped) == (5, 3)
    await buf.stop()
    assert buf.sent == 5
    assert buf.add(clicks(1)[0]) is True  # room again once sent


async def test_batch_in_flight_counts_toward_the_bound():
    sink = Sink()
    sink.gate = asyncio.Event()
    buf = ClickBuffer(sink, max_pending=4, batch_size=4, flush_interval_s=60)
    await buf.start()
    for c in clicks(4):
        buf.add(c)
    await until(lambda: sink.calls == 1)  # the batch of 4 is in flight
    assert buf.pending == 4
    assert buf.add(clicks(1)[0]) is False
    sink.gate.set()
    await until(lambda: buf.sent == 4)
    assert buf.add(clicks(1)[0]) is True
    await buf.stop()
    assert buf.sent == 5 and buf.dropped == 1


async def test_failed_send_is_retried_not_lost():
    sink = Sink(failures=2)
    buf = ClickBuffer(sink, batch_size=2, flush_interval_s=0.01)
    await buf.start()
    data = clicks(5)
    for c in data:
        buf.add(c)
    await until(lambda: buf.sent == 5)
    assert buf.send_failures == 2
    assert sink.clicks == data  # every click once, in order
    await buf.stop()


async def test_stop_reports_clicks_it_could_not_send():
    sink = Sink(failures=100)
    buf = ClickBuffer(sink, batch_size=2, flush_interval_s=60)
    await buf.start()
    for c in clicks(3):
        buf.add(c)
    assert await buf.stop() == 3
    assert buf.pending == 3 and buf.sent == 0 and buf.send_failures >= 1


async def test_failing_service_is_not_hammered():
    sink = Sink(failures=10**6)
    buf = ClickBuffer(sink, batch_size=1, flush_interval_s=60)
    await buf.start()
    buf.add(clicks(1)[0])  # a full batch: sent at once, and fails
    await until(lambda: buf.send_failures == 1)
    for c in clicks(50):  # each add would wake the loop if it did not back off
        buf.add(c)
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)
    assert sink.calls == 1  # the retry waits for the (60 s) interval...
    assert await buf.stop() == 51  # ...or for stop(), which tries once more
    assert sink.calls == 2


async def test_arguments_are_checked():
    sink = Sink()
    with pytest.raises(ValueError):
        ClickBuffer(sink, batch_size=0)
    with pytest.raises(ValueError):
        ClickBuffer(sink, max_pending=10, batch_size=20)
    with pytest.raises(ValueError):
        ClickBuffer(sink, flush_interval_s=0)
    buf = ClickBuffer(sink)
    await buf.start()
    with pytest.raises(RuntimeError):
        await buf.start()
    await buf.stop()


async def test_steady_traffic_is_sent_once_per_interval_not_back_to_back():
    sizes: list[int] = []

    async def slow_send(batch):
        sizes.append(len(batch))
        await asyncio.sleep(0.02)  # clicks keep arriving while a batch is in flight

    buffer = ClickBuffer(slow_send, flush_interval_s=0.1)
    await buffer.start()
    added = 0
    for _ in range(250):  # ~0.5 s of steady traffic: a click every ~2 ms
        buffer.add(Click("code1", 1.0, "DE"))
        added += 1
        await asyncio.sleep(0.002)
    assert await buffer.stop() == 0
    assert sum(sizes) == added
    # About one send per 100 ms interval plus the final flush; sending whatever arrived during
    # the previous send, back to back, would make ~25 tiny batches.
    assert len(sizes) <= 10

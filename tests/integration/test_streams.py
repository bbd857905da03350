"""Long-lived bidi streams in the harness (harness/streams.py) against a real gRPC server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import grpc
import pytest

from casemesh.harness.stats import RunStats
from casemesh.harness.streams import BidiStream, StreamRecorder, Streams

METHOD = "/test.v1.Chat/Connect"
FULL = "test.v1.Chat/Connect"


async def _echo(requests, context):
    """Echo every frame; b"end" ends the stream UNAVAILABLE; b"hang" stops reading and never ends."""
    async for frame in requests:
        if frame == b"end":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        if frame == b"hang":
            await asyncio.sleep(3600)
        yield frame


async def _ping(request, context):
    """Echo; b"slow" answers after a second."""
    if request == b"slow":
        await asyncio.sleep(1)
    return request


@pytest.fixture
async def channel():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.v1.Chat", {"Connect": grpc.stream_stream_rpc_method_handler(_echo),
                         "Ping": grpc.unary_unary_rpc_method_handler(_ping)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    await server.stop(0)


def _driver(started_at: float, warmup_s: float = 0.0):
    return SimpleNamespace(progress=SimpleNamespace(started_at=started_at), profile=SimpleNamespace(warmup_s=warmup_s),
                           stats=RunStats())


def _open(channel, recorder, *, record_first=True) -> BidiStream:
    return BidiStream(channel.stream_stream(METHOD), FULL, recorder, opened_at=time.perf_counter(), record_first=record_first)


async def test_frames_from_many_senders_all_arrive_and_a_closed_stream_is_recorded_ok(channel):
    driver = _driver(time.perf_counter())
    recorder = StreamRecorder(driver)
    stream = _open(channel, recorder)

    async def sender(k: int) -> None:
        for i in range(50):
            stream.send(f"{k}:{i}".encode())
            await asyncio.sleep(0)

    await asyncio.gather(*(sender(k) for k in range(10)))
    got = [await stream.recv() for _ in range(500)]
    # Every frame once, and each sender's frames in the order it sent them.
    assert sorted(got) == sorted(f"{k}:{i}".encode() for k in range(10) for i in range(50))
    for k in range(10):
        mine = [int(g.split(b":")[1]) for g in got if g.startswith(f"{k}:".encode())]
        assert mine == list(range(50))
    assert recorder.open_count == 1 and recorder.peak_open == 1
    reader = asyncio.create_task(stream.recv())
    assert await stream.close() == "OK" and await reader is None
    assert stream.ended and recorder.open_count == 0
    assert driver.stats.rpcs[FULL].count() == 1 and driver.stats.rpcs[FULL].errors() == {}
    assert driver.stats.first_message[FULL].count() == 1
    stream.send(b"late")  # ignored once ended
    assert await stream.recv() is None


async def test_a_stream_the_server_ends_reports_its_code(channel):
    driver = _driver(time.perf_counter())
    recorder = StreamRecorder(driver)
    streams = [_open(channel, recorder) for _ in range(3)]
    assert recorder.peak_open == 3
    streams[0].send(b"end")
    assert await streams[0].recv() is None and streams[0].code == "UNAVAILABLE"
    assert driver.stats.rpcs[FULL].errors() == {"UNAVAILABLE": 1}
    for stream in streams[1:]:
        reader = asyncio.create_task(stream.recv())
        assert await stream.close() == "OK"
        await reader
    assert recorder.open_count == 0


async def test_a_stream_the_server_ends_lets_go_of_its_request_iterator(channel):
    """gRPC's task that drains the request iterator into the call ends with the stream: waiting on the queue, it would
    be destroyed pending (and logged) once the stream is collected."""
    stream = _open(channel, StreamRecorder(_driver(time.perf_counter())))
    stream.send(b"end")
    assert await stream.recv() is None and stream.code == "UNAVAILABLE"
    poller = stream._call._async_request_poller
    done, _ = await asyncio.wait({poller}, timeout=5)  # not wait_for: the poller swallows a cancellation
    assert poller in done


async def test_streams_call_is_an_unrecorded_unary_call_with_the_runs_timeout(channel):
    driver = _driver(time.perf_counter())
    driver._methods = SimpleNamespace(get=lambda service, method: (channel.unary_unary(f"/test.v1.Chat/{method}"), FULL))
    driver._timeout_s = 0.2
    streams = Streams(driver, StreamRecorder(driver), (0, 1))
    assert await streams.call("chat", "Ping", b"hi") == b"hi"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await streams.call("chat", "Ping", b"slow")
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await streams.call("chat", "Ping", b"slow", timeout_s=5) == b"slow"
    assert driver.stats.rpcs == {} and driver.stats.journeys == {}


async def test_close_cancels_a_stream_the_server_does_not_end(channel):
    recorder = StreamRecorder(_driver(time.perf_counter()))
    stream = _open(channel, recorder)
    stream.send(b"hang")
    reader = asyncio.create_task(stream.recv())
    assert await stream.close(timeout_s=0.2) == "CANCELLED"
    assert await reader is None and recorder.open_count == 0


async def test_nothing_is_recorded_before_the_run_or_in_its_warm_up(channel):
    before = _driver(0.0)  # no run started yet
    recorder = StreamRecorder(before)
    stream = _open(channel, recorder, record_first=recorder.measuring(time.perf_counter()))
    stream.send(b"x")
    assert await stream.recv() == b"x"
    reader = asyncio.create_task(stream.recv())
    await stream.close()
    await reader
    assert before.stats.rpcs == {} and before.stats.first_message == {}

    warming = _driver(time.perf_counter(), warmup_s=3600)
    streams = Streams(warming, StreamRecorder(warming), (0, 1))
    streams.observe("delivery", 0.01, sent_at=time.perf_counter())
    assert "delivery" not in warming.stats.journeys


def test_observe_records_events_sent_in_the_measured_window_and_converts_clocks():
    driver = _driver(time.perf_counter() - 10, warmup_s=5)
    streams = Streams(driver, StreamRecorder(driver), (1, 2))
    assert streams.share == (1, 2)
    now = time.perf_counter()
    streams.observe("delivery", 0.02, sent_at=now)
    streams.observe("delivery", 0.03, "DATA_LOSS", sent_at=now)
    streams.observe("delivery", 0.04, sent_at=now - 8)  # sent in the warm-up: not recorded
    stats = driver.stats.journeys["delivery"]
    assert stats.count() == 2 and stats.errors() == {"DATA_LOSS": 1}
    wall = streams.wall_ns(now)
    assert abs(wall - time.time_ns()) < 1e9 and streams.perf_at(wall) == pytest.approx(now, abs=1e-6)

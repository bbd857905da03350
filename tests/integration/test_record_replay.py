"""Record and replay gRPC traffic end to end: the recording proxy in front of real servers, replay, divergences, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.recording import format as fmt
from casemesh.harness.recording import proxy as px
from casemesh.harness.recording.replay import CHANNEL_OPTIONS, Replayer, build_replay_result
from casemesh.services.catalog import definitions
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from .conftest import loopback_topology, start_mesh
from .profiles import latency_slo

SERVICE = "casemesh.urlshortener.v1.UrlShortenerService"
RESOLVE, SHORTEN = f"{SERVICE}/Resolve", f"{SERVICE}/Shorten"
CHECK, WATCH = "grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch"
CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@contextlib.asynccontextmanager
async def recording(upstream: str, path: Path, **options) -> AsyncIterator[px.RecordingProxy]:
    """A recording proxy in this event loop, in front of ``upstream``, writing ``path``; stopped (and the file closed) on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    started: list[px.RecordingProxy] = []
    writer = fmt.RecordingWriter(path, fmt.new_header(upstream=upstream, listen="127.0.0.1:0", recorder="test",
                                                      metadata_allow=list(options.get("metadata_allow", px.DEFAULT_METADATA_ALLOW)),
                                                      response_data=options.get("record_responses", False)))
    task = asyncio.create_task(px.record(listen="127.0.0.1:0", upstream=upstream, writer=writer, stop=stop,
                                         on_ready=lambda proxy: (started.append(proxy), ready.set()), **options))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield started[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def replay(path: Path, target: str, speed: float = 1.0):
    loaded = fmt.read_recording(path)
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        await channel.channel_ready()
        return loaded, await Replayer(loaded, channel, speed=speed, default_timeout_s=5).run()


def codes_by_method(stats) -> dict[str, Counter]:
    return {method: Counter({code: h.get_total_count() for code, h in calls.by_code.items()}) for method, calls in stats.rpcs.items()}


def recorded_codes(loaded: fmt.Recording) -> dict[str, Counter]:
    found: dict[str, Counter] = {}
    for c in loaded.calls:
        found.setdefault(c.method[1:], Counter())[fmt.status_name(c.status_code)] += 1
    return found


# -- a server casemesh did not start: plain grpc.aio, generic handlers and the standard health service ----


class ForeignServer(grpc.GenericRpcHandler):
    """Methods of every kind, handled as bytes: ``/test.v1.Lab/...``."""

    def __init__(self) -> None:
        self.deadlines_seen: list[float | None] = []
        self.answer_denied = False

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        name = details.method.rsplit("/", 1)[-1] if details.method.startswith("/test.v1.Lab/") else None
        if name == "Upper":
            async def upper(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                if self.answer_denied:
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "changed my mind")
                tenant = dict(context.invocation_metadata()).get("x-tenant", "none")
                context.set_trailing_metadata((("x-tenant-seen", tenant),))
                return request.upper()
            return grpc.unary_unary_rpc_method_handler(upper)
        if name == "Count":  # server stream: N messages for the request b"N"
            async def count(request: bytes, context: grpc.aio.ServicerContext):
                for i in range(int(request)):
                    yield str(i).encode() * (i + 1)
            return grpc.unary_stream_rpc_method_handler(count)
        if name == "Chat":  # bidirectional: each message back in upper case, with initial and trailing metadata
            async def chat(requests, context: grpc.aio.ServicerContext):
                await context.send_initial_metadata((("x-greeting", "hello"),))
                async for message in requests:
                    await context.write(message.upper())
                context.set_trailing_metadata((("x-bye", "ciao"),))
            return grpc.stream_stream_rpc_method_handler(chat)
        if name == "Sum":  # client stream
            async def total(requests, context: grpc.aio.ServicerContext) -> bytes:
                return str(sum([int(m) async for m in requests])).encode()
            return grpc.stream_unary_rpc_method_handler(total)
        if name == "Deny":
            async def deny(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not you", (("x-reason", "policy"),))
            return grpc.unary_unary_rpc_method_handler(deny)
        if name == "Slow":
            async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                self.deadlines_seen.append(context.time_remaining())
                await asyncio.sleep(0.2)
                return b"late"
            return grpc.unary_unary_rpc_method_handler(slow)
        return None  # UNIMPLEMENTED


@pytest.fixture
async def foreign() -> AsyncIterator[tuple[str, ForeignServer]]:
    handler = ForeignServer()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", handler
    finally:
        await server.stop(0)


async def test_proxy_relays_every_rpc_kind_metadata_status_and_deadlines_of_a_foreign_server(foreign, tmp_path):
    upstream, handler = foreign
    path = tmp_path / "foreign.cmrec"
    async with recording(upstream, path, record_responses=True) as proxy:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            upper = channel.unary_unary("/test.v1.Lab/Upper")
            call = upper(b"abc", metadata=(("x-tenant", "acme"), ("authorization", "Bearer s3cret")), timeout=5)
            assert await call == b"ABC"
            assert ("x-tenant-seen", "acme") in tuple(await call.trailing_metadata())

            assert [m async for m in channel.unary_stream("/test.v1.Lab/Count")(b"3", timeout=5)] == [b"0", b"11", b"222"]

            chat = channel.stream_stream("/test.v1.Lab/Chat")(timeout=5)
            await chat.write(b"ping")
            assert await chat.read() == b"PING"  # interleaved: the proxy relays each message as it comes
            await chat.write(b"pong")
            assert await chat.read() == b"PONG"
            await chat.done_writing()
            assert await chat.read() is grpc.aio.EOF and await chat.code() == grpc.StatusCode.OK
            assert ("x-greeting", "hello") in tuple(await chat.initial_metadata())
            assert ("x-bye", "ciao") in tuple(await chat.trailing_metadata())

            assert await channel.stream_unary("/test.v1.Lab/Sum")(iter([b"1", b"2", b"39"]), timeout=5) == b"42"

            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await channel.unary_unary("/test.v1.Lab/Deny")(b"", timeout=5)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and denied.value.details() == "not you"
            assert ("x-reason", "policy") in tuple(denied.value.trailing_metadata())

            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await channel.unary_unary("/test.v1.Nope/Nothing")(b"", timeout=5)
            assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED

            assert await channel.unary_unary("/test.v1.Lab/Slow")(b"", timeout=2.0) == b"late"
            with pytest.raises(grpc.aio.AioRpcError) as late:
                await channel.unary_unary("/test.v1.Lab/Slow")(b"", timeout=0.05)
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            await asyncio.sleep(0.1)
    # The caller's deadline reached the upstream (what it had left when the proxy got the call).
    assert handler.deadlines_seen[0] is not None and 1.0 < handler.deadlines_seen[0] <= 2.1
    assert handler.deadlines_seen[1] is not None and handler.deadlines_seen[1] <= 0.06

    loaded = fmt.read_recording(path)
    assert loaded.end is not None and loaded.end.call_count == 9
    by_method = {c.method: c for c in loaded.calls}
    assert len(by_method) == 8
    upper_call = by_method["/test.v1.Lab/Upper"]
    assert [(m.key, m.value) for m in upper_call.metadata] == [("x-tenant", b"acme")]  # never authorization
    assert upper_call.requests[0].data == b"abc" and upper_call.responses[0].data == b"ABC"
    assert upper_call.latency_us > 0 and 4_000_000 < upper_call.timeout_us <= 5_050_000
    count = by_method["/test.v1.Lab/Count"]
    assert [m.size_bytes for m in count.responses] == [1, 2, 3] and count.status_code == 0
    assert [m.data for m in by_method["/test.v1.Lab/Sum"].requests] == [b"1", b"2", b"39"]
    chat_call = by_method["/test.v1.Lab/Chat"]
    assert len(chat_call.requests) == 2 and chat_call.responses[0].offset_us <= chat_call.requests[1].offset_us
    deny = by_method["/test.v1.Lab/Deny"]
    assert fmt.status_name(deny.status_code) == "PERMISSION_DENIED" and deny.status_message == "not you"
    assert fmt.status_name(by_method["/test.v1.Nope/Nothing"].status_code) == "UNIMPLEMENTED"
    slow = [c for c in loaded.calls if c.method == "/test.v1.Lab/Slow"]
    assert [fmt.status_name(c.status_code) for c in slow] == ["OK", "DEADLINE_EXCEEDED"]
    # As the proxy saw it: gRPC's timeout header carries a few digits, rounded up, so a little over 50 ms is possible.
    assert slow[1].ended_by == fmt.pb.CALL_END_DEADLINE_EXCEEDED and 40_000 < slow[1].timeout_us <= 55_000
    watch_call = by_method["/" + WATCH]
    assert fmt.status_name(watch_call.status_code) == "CANCELLED" and watch_call.ended_by == fmt.pb.CALL_END_CLIENT_CANCELLED
    assert len(watch_call.responses) == 1

    # Replayed as generic stream-stream calls against the same server, every call ends as recorded,
    # including the deadline and the client's cancellation.
    _, outcome = await replay(path, upstream)
    assert outcome.divergence_count == 0, outcome.examples
    assert outcome.completed == 9 and codes_by_method(outcome.stats) == recorded_codes(loaded)
    assert outcome.stats.first_message["test.v1.Lab/Count"].count() == 1  # time to first message of the server stream
    assert outcome.stats.send_lag.get_total_count() == 9


async def test_replay_at_speed_2_takes_about_half_the_time(foreign, tmp_path):
    upstream, _ = foreign
    path = tmp_path / "paced.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream=upstream, listen="127.0.0.1:1", recorder="test", metadata_allow=[], response_data=False)) as writer:
        for i in range(11):  # one Check every 100 ms: 1.0 s from the first to the last
            writer.write_call(fmt.RecordedCall(method="/" + CHECK, start_offset_us=3_000_000 + i * 100_000, latency_us=500,
                                               requests=[fmt.RecordedMessage(offset_us=50, size_bytes=0, data=b"")]))
        writer.close(duration_us=5_000_000, stop_reason="signal")
    started = time.perf_counter()
    _, normal = await replay(path, upstream, speed=1)
    normal_s = time.perf_counter() - started
    started = time.perf_counter()
    _, fast = await replay(path, upstream, speed=2)
    fast_s = time.perf_counter() - started
    assert normal.divergence_count == fast.divergence_count == 0 and normal.completed == fast.completed == 11
    # Leading idle time (3 s before the first call) is skipped; the schedule is the span divided by the speed.
    assert normal.scheduled_s == pytest.approx(1.0) and fast.scheduled_s == pytest.approx(0.5)
    assert 0.95 <= normal_s < 2.0, normal_s
    assert 0.45 <= fast_s < 1.2, fast_s
    assert fast_s < 0.8 * normal_s


# -- the URL-shortener mesh --------------------------------------------------------------------------


async def test_record_the_mesh_then_replay_it_with_the_same_status_codes(mesh, tmp_path):
    upstream = mesh.address("urlshortener")
    path = tmp_path / "mesh.cmrec"
    async with recording(upstream, path) as proxy:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stub = pb_grpc.UrlShortenerServiceStub(channel)
            codes = []
            for i in range(3):
                created = await stub.Shorten(pb.ShortenRequest(long_url=f"https://example.com/{i}"), timeout=5,
                                             metadata=(("x-tenant", "t1"), ("authorization", "Bearer x")))
                codes.append(created.code)
                assert (await stub.Resolve(pb.ResolveRequest(code=created.code, country_code="DE"), timeout=5)).long_url.endswith(str(i))
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.Resolve(pb.ResolveRequest(code="Zz9Zz9Zz"), timeout=5)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await stub.Shorten(pb.ShortenRequest(long_url="not a url"), timeout=5)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            health_stub = health_pb2_grpc.HealthStub(channel)
            assert (await health_stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)).status == health_pb2.HealthCheckResponse.SERVING
            watch = health_stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=0.3)  # a server stream
            with contextlib.suppress(grpc.aio.AioRpcError):
                async for _ in watch:
                    pass
            watch_code = await watch.code()

    loaded = fmt.read_recording(path)
    assert loaded.header.upstream_address == upstream and loaded.end is not None
    assert recorded_codes(loaded) == {SHORTEN: Counter(OK=3, INVALID_ARGUMENT=1), RESOLVE: Counter(OK=3, NOT_FOUND=1),
                                      CHECK: Counter(OK=1), WATCH: Counter({watch_code.name: 1})}
    shortens = [c for c in loaded.calls if c.method == "/" + SHORTEN and c.status_code == 0]
    assert [pb.ShortenRequest.FromString(c.requests[0].data).long_url for c in shortens] == [f"https://example.com/{i}" for i in range(3)]
    assert all([(m.key, m.value) for m in c.metadata] == [("x-tenant", b"t1")] for c in shortens)
    assert all(len(c.responses) == 1 and c.responses[0].size_bytes > 0 and not c.responses[0].data for c in shortens)
    offsets = [c.start_offset_us for c in loaded.calls]
    assert offsets == sorted(offsets) and all(c.latency_us > 0 for c in loaded.calls)

    # The same services answer the replay as they answered the recording: unary methods work as
    # generic stream-stream calls, and every status code matches.
    _, outcome = await replay(path, upstream)
    assert outcome.divergence_count == 0, outcome.examples
    assert codes_by_method(outcome.stats) == recorded_codes(loaded)


async def test_replay_against_fresh_services_reports_divergences(mesh, tmp_path):
    upstream = mesh.address("urlshortener")
    direct = pb_grpc.UrlShortenerServiceStub(mesh.channel("urlshortener"))
    # Codes created behind the recorder's back, with custom aliases that fresh services do not have.
    aliases = [f"rec-alias-{i}" for i in range(3)]
    for alias in aliases:
        await direct.Shorten(pb.ShortenRequest(long_url="https://example.com/x", custom_alias=alias), timeout=5)
    path = tmp_path / "resolves.cmrec"
    async with recording(upstream, path) as proxy:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stub = pb_grpc.UrlShortenerServiceStub(channel)
            for alias in aliases:
                await stub.Resolve(pb.ResolveRequest(code=alias), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Resolve(pb.ResolveRequest(code="Zz9Zz9Zz"), timeout=5)

    chosen = definitions(["urlshortener", "idgen", "analytics"])
    fresh, stop, task = await start_mesh(chosen, loopback_topology([d.name for d in chosen], tmp_path / "fresh-data"))
    try:
        loaded, outcome = await replay(path, fresh.address("urlshortener"))
    finally:
        await fresh.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    assert outcome.divergences == {(RESOLVE, "OK", "NOT_FOUND"): 3}  # the miss was a miss both times
    assert [(e.index, e.method, e.expected, e.actual) for e in outcome.examples] == [(i, RESOLVE, "OK", "NOT_FOUND") for i in range(3)]
    assert outcome.examples[0].offset_s == 0.0 and outcome.examples[0].details

    result = build_replay_result(recording=loaded, outcome=outcome, verdicts=[], target="127.0.0.1:1",
                                 started_at=datetime.now(timezone.utc), speed=1.0, default_timeout_s=5, valid=True,
                                 invalid_reasons=[], fail_on_divergence=True)
    assert result["passed"] is False and result["schema_version"] == 1
    assert result["replay"]["divergences"]["count"] == 3
    assert result["replay"]["divergences"]["by_method"] == [{"method": RESOLVE, "expected": "OK", "actual": "NOT_FOUND", "count": 3}]
    assert result["rpcs"][RESOLVE]["errors"] == {"NOT_FOUND": 4} and result["journeys"] == {}
    json.dumps(result)  # JSON-ready


async def test_recording_stops_after_max_calls_or_duration(foreign, tmp_path):
    upstream, _ = foreign
    path = tmp_path / "limited.cmrec"
    stop = asyncio.Event()
    ports: list[int] = []
    writer = fmt.RecordingWriter(path, fmt.new_header(upstream=upstream, listen="127.0.0.1:0", recorder="test", metadata_allow=[], response_data=False))
    task = asyncio.create_task(px.record(listen="127.0.0.1:0", upstream=upstream, writer=writer, stop=stop, max_calls=2,
                                         on_ready=lambda proxy: ports.append(proxy.port)))
    while not ports:
        await asyncio.sleep(0.01)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        for _ in range(2):
            await channel.unary_unary("/test.v1.Lab/Upper")(b"x", timeout=5)
    assert await asyncio.wait_for(task, 5) == "max-calls"
    loaded = fmt.read_recording(path)
    assert len(loaded.calls) == 2 and loaded.end.stop_reason == "max-calls" and loaded.end.call_count == 2

    writer = fmt.RecordingWriter(tmp_path / "timed.cmrec", fmt.new_header(upstream=upstream, listen="x", recorder="t", metadata_allow=[], response_data=False))
    started = time.perf_counter()
    assert await px.record(listen="127.0.0.1:0", upstream=upstream, writer=writer, stop=asyncio.Event(), duration_s=0.3) == "duration"
    assert 0.25 <= time.perf_counter() - started < 5
    assert fmt.read_recording(tmp_path / "timed.cmrec").end.stop_reason == "duration"


# -- the commands ----------------------------------------------------------------------------------


async def test_record_and_replay_commands(foreign, tmp_path):
    upstream, handler = foreign
    path = tmp_path / "cli.cmrec"
    recorder = await asyncio.create_subprocess_exec(
        *CLI, "record", "--listen", "127.0.0.1:0", "--upstream", upstream, "--out", str(path), "--no-progress",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        line = (await asyncio.wait_for(recorder.stdout.readline(), 30)).decode()
        assert line.startswith("recording on 127.0.0.1:"), line
        port = line.split(" -> ")[0].rsplit(":", 1)[1]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for word in (b"a", b"b", b"c"):
                await channel.unary_unary("/test.v1.Lab/Upper")(word, timeout=5)
        recorder.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(recorder.communicate(), 30)
    finally:
        if recorder.returncode is None:
            recorder.kill()
            await recorder.wait()
    assert recorder.returncode == 0, err.decode()
    assert "stopped (signal)" in out.decode() and "3 calls written" in out.decode()
    assert fmt.read_recording(path).end.stop_reason == "signal"

    upper = "test.v1.Lab/Upper"
    (tmp_path / "ok.slo.yaml").write_text(latency_slo("upper-generous", upper, within_ms=2000))
    (tmp_path / "strict.slo.yaml").write_text(latency_slo("upper-impossible", upper, within_ms=0.001))

    async def replay_command(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(*CLI, "replay", str(path), "--target", upstream, "--no-progress", *args,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                       stdin=asyncio.subprocess.DEVNULL)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, out.decode(), err.decode()

    code, out, err = await replay_command("--slo", str(tmp_path / "ok.slo.yaml"), "--out", str(tmp_path / "ok"), "--speed", "2")
    assert code == 0, out + err
    result = json.loads((tmp_path / "ok" / "result.json").read_text())
    assert result["passed"] is True and result["valid"] is True and result["slos"][0]["name"] == "upper-generous"
    assert result["rpcs"][upper]["count"] == 3 and result["replay"]["speed"] == 2.0
    assert result["replay"]["divergences"]["count"] == 0 and result["profile"]["arrival"]["process"] == "replay"
    assert "no divergences" in out and "PASS" in out

    code, out, err = await replay_command("--slo", str(tmp_path / "strict.slo.yaml"), "--out", str(tmp_path / "strict"))
    assert code == 1, out + err
    assert json.loads((tmp_path / "strict" / "result.json").read_text())["slos"][0]["passed"] is False

    handler.answer_denied = True  # the target now answers differently
    code, out, err = await replay_command("--out", str(tmp_path / "diverged"), "--fail-on-divergence")
    assert code == 1, out + err
    assert "OK" in out and "PERMISSION_DENIED" in out and "recorded OK, got PERMISSION_DENIED" in out
    code, out, err = await replay_command("--out", str(tmp_path / "diverged-ok"))
    assert code == 0, out + err  # divergences alone do not fail a replay without --fail-on-divergence


runner = CliRunner()


def test_a_bad_recording_exits_2_naming_the_file_and_the_byte(tmp_path):
    path = tmp_path / "broken.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        writer.write_call(fmt.RecordedCall(method="/a.B/C"))
    path.write_bytes(path.read_bytes() + b"\x40partial")
    size_before = len(path.read_bytes()) - len(b"\x40partial")
    done = runner.invoke(app, ["replay", str(path), "--target", "127.0.0.1:1", "--out", str(tmp_path / "out")])
    assert done.exit_code == 2
    assert f"{path}: entry 2 at byte {size_before}:" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing sent


def test_replay_of_an_unreachable_target_exits_3(tmp_path):
    from casemesh.harness.mesh import free_port

    path = tmp_path / "one.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        writer.write_call(fmt.RecordedCall(method="/" + CHECK))
        writer.close(duration_us=1, stop_reason="signal")
    done = runner.invoke(app, ["replay", str(path), "--target", f"127.0.0.1:{free_port()}", "--out", str(tmp_path / "out"), "--no-progress"])
    assert done.exit_code == 3 and "unreachable" in done.stderr


def test_replay_refuses_journey_slos_and_bad_options(tmp_path):
    path = tmp_path / "one.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        writer.write_call(fmt.RecordedCall(method="/" + CHECK))
    journey_slo = latency_slo("journey-slo", CHECK, within_ms=10).replace(f"rpc: {CHECK}", "journey: resolve")
    (tmp_path / "journey.slo.yaml").write_text(journey_slo)
    done = runner.invoke(app, ["replay", str(path), "--target", "127.0.0.1:1", "--slo", str(tmp_path / "journey.slo.yaml")])
    assert done.exit_code == 2 and "measures RPCs, not journeys" in done.stderr
    (tmp_path / "other.slo.yaml").write_text(latency_slo("other", RESOLVE, within_ms=10))
    done = runner.invoke(app, ["replay", str(path), "--target", "127.0.0.1:1", "--slo", str(tmp_path / "other.slo.yaml")])
    assert done.exit_code == 2 and "never calls" in done.stderr
    done = runner.invoke(app, ["replay", str(path), "--target", "127.0.0.1:1", "--speed", "0"])
    assert done.exit_code == 2 and "--speed" in done.stderr
    done = runner.invoke(app, ["replay", str(path), "--target", "nowhere"])
    assert done.exit_code == 2 and "--target" in done.stderr


@pytest.mark.parametrize("listen", ["0.0.0.0:50060", "192.168.1.10:50060", "localhost:50060"])
def test_record_refuses_to_listen_beyond_loopback(tmp_path, listen):
    done = runner.invoke(app, ["record", "--listen", listen, "--upstream", "127.0.0.1:1", "--out", str(tmp_path / "r.cmrec")])
    assert done.exit_code == 2 and "--listen" in done.stderr and "loopback" in done.stderr
    assert not (tmp_path / "r.cmrec").exists()


def test_record_exits_3_when_the_listen_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = runner.invoke(app, ["record", "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:1", "--out", str(tmp_path / "r.cmrec")])
    assert done.exit_code == 3 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "r.cmrec").exists()


def test_to_profile_command(tmp_path):
    path = tmp_path / "shop.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        for i in range(4):
            writer.write_call(fmt.RecordedCall(method="/" + RESOLVE, start_offset_us=i * 250_000))
        writer.write_call(fmt.RecordedCall(method="/" + SHORTEN, start_offset_us=900_000))
    out = tmp_path / "profiles" / "shop.yaml"
    done = runner.invoke(app, ["recording", "to-profile", str(path), "--workload", "url-shortener", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "resolve 4, shorten 1" in done.stdout and (tmp_path / "profiles" / "shop.csv").is_file()
    assert "file: shop.csv" in out.read_text()
    done = runner.invoke(app, ["recording", "to-profile", str(path), "--workload", "nope", "--out", str(out)])
    assert done.exit_code == 2 and "url-shortener" in done.stderr
    done = runner.invoke(app, ["recording", "info", str(path)])
    assert done.exit_code == 0 and "5 calls" in done.stdout and "cut short" in done.stdout

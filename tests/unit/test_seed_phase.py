"""Seeding calls are marked ``casemesh-phase: seed`` (harness/phases.py), recorded as such, and left out of replays and profiles."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.driver import Driver
from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.recording import format as fmt
from casemesh.harness.recording.proxy import MetadataAllowList
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

SHORTEN = "/casemesh.urlshortener.v1.UrlShortenerService/Shorten"
RESOLVE = "/casemesh.urlshortener.v1.UrlShortenerService/Resolve"


class Phases(pb_grpc.UrlShortenerServiceServicer):
    def __init__(self) -> None:
        self.phases: list[str | None] = []

    async def Shorten(self, request, context):
        self.phases.append(dict(context.invocation_metadata()).get("casemesh-phase"))
        return pb.ShortenResponse(code=f"c{len(self.phases)}")


def shortener_profile(tmp_path: Path, seed: str, journey: str) -> Path:
    """A url-shortener profile against an external target: ``seed`` (YAML flow mapping), one ``journey``, 0.5 s at 20/s."""
    path = tmp_path / "p.yaml"
    path.write_text(f"""apiVersion: casemesh.dev/v1
kind: Profile
metadata: {{name: seed-test}}
workload: url-shortener
services: []
seed: {seed}
arrival: {{process: constant, rate_per_s: 20}}
warmup_s: 0
duration_s: 0.5
request_timeout_ms: 5000
journeys:
  - {{name: {journey}, weight: 1}}
""")
    return path


@contextlib.asynccontextmanager
async def driver_against(servicer: pb_grpc.UrlShortenerServiceServicer, profile: Path) -> AsyncIterator[Driver]:
    """A Driver of ``profile`` whose urlshortener is ``servicer``, served on 127.0.0.1 for the block."""
    server = grpc.aio.server()
    pb_grpc.add_UrlShortenerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Driver(load_profile(profile), {"urlshortener": channel})
    finally:
        await server.stop(0)


async def test_the_seeders_calls_carry_the_seed_phase_and_the_loads_do_not(tmp_path: Path):
    servicer = Phases()
    async with driver_against(servicer, shortener_profile(tmp_path, "{urls: 3}", "shorten")) as driver:
        await driver.seed()
        await asyncio.wait_for(driver.run(), 60)
    assert servicer.phases[:3] == ["seed"] * 3
    assert servicer.phases[3:] and set(servicer.phases[3:]) == {None}


class Refusing(pb_grpc.UrlShortenerServiceServicer):
    """Refuses every other Shorten with RESOURCE_EXHAUSTED and a 20 ms pushback, as admission control does."""

    def __init__(self) -> None:
        self.calls = 0

    async def Shorten(self, request, context):
        self.calls += 1
        if self.calls % 2:
            context.set_trailing_metadata((("grpc-retry-pushback-ms", "20"),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "at its limit (queue_full); retry after 20 ms")
        return pb.ShortenResponse(code=f"c{self.calls}")


async def test_seeding_waits_out_a_refusal_and_sends_again(tmp_path: Path):
    servicer = Refusing()
    async with driver_against(servicer, shortener_profile(tmp_path, "{urls: 4, concurrency: 1}", "resolve")) as driver:
        started = asyncio.get_running_loop().time()
        await driver.seed()
        elapsed = asyncio.get_running_loop().time() - started
    assert servicer.calls == 8 and driver.state.codes == ["c2", "c4", "c6", "c8"]  # every refusal sent again
    assert elapsed >= 4 * 0.02  # after the pushback each time


def test_the_recorder_keeps_the_phase_whatever_its_allow_list():
    assert MetadataAllowList([])("casemesh-phase")
    assert MetadataAllowList(["x-*"])("casemesh-phase")
    assert not MetadataAllowList([])("x-tenant")


def _recording(path: Path) -> Path:
    seed = [fmt.MetadataEntry(key="casemesh-phase", value=b"seed")]
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        for i in range(6):
            writer.write_call(fmt.RecordedCall(method=SHORTEN, start_offset_us=i * 1_000, metadata=seed))
        for i in range(4):
            writer.write_call(fmt.RecordedCall(method=RESOLVE, start_offset_us=100_000 + i * 250_000))
        writer.write_call(fmt.RecordedCall(method=SHORTEN, start_offset_us=900_000))
    return path


def test_to_profile_leaves_seeding_out_unless_asked(tmp_path: Path):
    path = _recording(tmp_path / "run.cmrec")
    loaded, left_out = fmt.without_seed(fmt.read_recording(path))
    assert left_out == 6 and [c.method for c in loaded.calls] == [RESOLVE] * 4 + [SHORTEN]
    runner = CliRunner()
    out = tmp_path / "profiles" / "run.yaml"
    done = runner.invoke(app, ["recording", "to-profile", str(path), "--workload", "url-shortener", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "left out 6 seeding calls" in done.stdout and "resolve 4, shorten 1" in done.stdout
    done = runner.invoke(app, ["recording", "to-profile", str(path), "--workload", "url-shortener", "--out", str(out), "--include-seed"])
    assert done.exit_code == 0 and "resolve 4, shorten 7" in done.stdout


def test_replay_of_a_recording_of_seeding_only_says_so(tmp_path: Path):
    path = tmp_path / "seed.cmrec"
    with fmt.RecordingWriter(path, fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)) as writer:
        writer.write_call(fmt.RecordedCall(method=SHORTEN, metadata=[fmt.MetadataEntry(key="casemesh-phase", value=b"seed")]))
    done = CliRunner().invoke(app, ["replay", str(path), "--target", "127.0.0.1:9"])
    assert done.exit_code == 2
    assert "no calls besides 1 seeding calls (--include-seed replays them)" in " ".join(done.stderr.split())

"""Killing idgen mid-run and restarting it loses no uniqueness; every failed Shorten has an honest status."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import urllib.request

import grpc

from casemesh.harness.mesh import Mesh
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

#: What a Shorten may answer across an idgen crash: OK, UNAVAILABLE or DEADLINE_EXCEEDED once the leased block is
#: used up and idgen is down, RESOURCE_EXHAUSTED if admission control sheds a call on a slow machine.
HONEST = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
LABELS = {"OK": "OK", "UNAVAILABLE": "Unavailable", "DEADLINE_EXCEEDED": "DeadlineExceeded", "RESOURCE_EXHAUSTED": "ResourceExhausted"}


class Shortener:
    """Shortens through the mesh, keeping every code and counting every status."""

    def __init__(self, channel: grpc.aio.Channel):
        self.stub = pb_grpc.UrlShortenerServiceStub(channel)
        self.codes: list[str] = []
        self.statuses: collections.Counter = collections.Counter()
        self.details: dict[grpc.StatusCode, str] = {}
        self._n = 0

    async def one(self) -> grpc.StatusCode:
        self._n += 1
        try:
            response = await self.stub.Shorten(pb.ShortenRequest(long_url=f"https://example.com/{self._n}"), timeout=10)
        except grpc.aio.AioRpcError as error:
            self.statuses[error.code()] += 1
            self.details.setdefault(error.code(), error.details())
            return error.code()
        self.codes.append(response.code)
        self.statuses[grpc.StatusCode.OK] += 1
        return grpc.StatusCode.OK

    async def many(self, n: int, concurrency: int = 16) -> None:
        for _ in range(0, n, concurrency):
            await asyncio.gather(*(self.one() for _ in range(concurrency)))


def metrics_text(mesh: Mesh, service: str) -> str:
    return urllib.request.urlopen(f"http://{mesh.topology.endpoint(service).metrics_address}/metrics", timeout=10).read().decode()


async def test_shorten_across_an_idgen_sigkill_and_restart(tmp_path):
    async with Mesh(["urlshortener", "idgen", "analytics"], tmp_path) as mesh:
        async with grpc.aio.insecure_channel(mesh.topology.endpoint("urlshortener").address) as channel:
            shortener = Shortener(channel)
            await shortener.many(320)  # two blocks of 256 leased: the shortener holds IDs the old idgen handed out
            assert shortener.statuses[grpc.StatusCode.OK] >= 256, shortener.details

            old_pid = mesh.pid("idgen")
            os.kill(old_pid, signal.SIGKILL)  # a crash, not a stop: the mesh's supervisor restarts it
            await shortener.many(320)  # the held block runs out while idgen is down or restarting
            deadline = time.monotonic() + 60
            while mesh.restarts["idgen"] < 1 or mesh.pid("idgen") == old_pid:
                assert time.monotonic() < deadline, f"idgen was not restarted:\n{mesh.log_tail('idgen')}"
                await asyncio.sleep(0.2)
            while await shortener.one() != grpc.StatusCode.OK:  # the shortener's channel reconnects
                assert time.monotonic() < deadline, f"Shorten did not recover: {shortener.statuses}"
                await asyncio.sleep(0.2)
            await shortener.many(800)  # several fresh leases from the restarted idgen

            assert set(shortener.statuses) <= HONEST, shortener.details
            assert len(shortener.codes) == len(set(shortener.codes)), "a code was handed out twice"
            assert len(shortener.codes) >= 1100
            # The restarted idgen went on above its durable mark: no generated code collided.
            text = metrics_text(mesh, "urlshortener")
            assert "casemesh_urlshortener_taken_codes_total 0.0" in text
            shorten = 'grpc_method="Shorten",grpc_service="casemesh.urlshortener.v1.UrlShortenerService"'
            assert f'grpc_code="Unknown",{shorten}' not in text
            # Every status the client saw was counted under the same code by the server.
            for code, count in shortener.statuses.items():
                label = LABELS[code.name]
                assert f'grpc_server_handled_total{{grpc_code="{label}",{shorten},grpc_type="unary"}} {float(count)}' in text
            for code in shortener.codes[::50]:
                assert (await shortener.stub.Resolve(pb.ResolveRequest(code=code))).long_url.startswith("https://example.com/")

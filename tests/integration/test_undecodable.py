"""Undecodable request bodies under real gRPC: INVALID_ARGUMENT naming the type, counted, logged once, no traceback.

The bytes ``0a 02 ff fe`` are field 1 (a string) holding two bytes that are
not UTF-8: every request type below has a string as field 1, so protobuf
refuses them.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.services.catalog import definitions

from .conftest import loopback_topology, start_mesh

BAD = b"\x0a\x02\xff\xfe"
SHORTENER = "casemesh.urlshortener.v1.UrlShortenerService"
STORAGE = "casemesh.video.v1.ObjectStoreService"


def handled(service: str, method: str, kind: str, code: str) -> float:
    labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("casemesh") or r.name.startswith("grpc")]


async def test_an_undecodable_unary_request_is_invalid_argument_counted_and_logged_once(mesh, caplog):
    caplog.set_level(logging.DEBUG)
    resolve = mesh.channel("urlshortener").unary_unary(f"/{SHORTENER}/Resolve")
    before = handled(SHORTENER, "Resolve", "unary", "InvalidArgument")
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await resolve(BAD, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == f"request body could not be decoded as casemesh.urlshortener.v1.ResolveRequest"
    assert handled(SHORTENER, "Resolve", "unary", "InvalidArgument") - before == 3

    records = server_records(caplog)
    warnings = [r for r in records if "could not be decoded" in r.getMessage()]
    assert len(warnings) == 1  # once per method per minute, however many arrive
    assert warnings[0].levelno == logging.WARNING and warnings[0].exc_info is None
    assert "ResolveRequest" in warnings[0].getMessage()
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]

    # The server goes on answering well-formed calls.
    from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
    from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

    stub = pb_grpc.UrlShortenerServiceStub(mesh.channel("urlshortener"))
    code = (await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/ok"), timeout=10)).code
    assert (await stub.Resolve(pb.ResolveRequest(code=code), timeout=10)).long_url == "https://example.com/ok"


@pytest.fixture
async def storage(tmp_path):
    """video-storage alone (a client-streaming and a server-streaming method), persisting under ``tmp_path``."""
    running, stop, task = await start_mesh(definitions(["video-storage"]), loopback_topology(["video-storage"], data_dir=tmp_path))
    try:
        yield running.channel("video-storage")
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_an_undecodable_message_in_a_client_stream_is_invalid_argument_and_counted(storage, caplog):
    caplog.set_level(logging.DEBUG)
    upload = storage.stream_unary(f"/{STORAGE}/UploadObject")
    before = handled(STORAGE, "UploadObject", "client_stream", "InvalidArgument")

    async def chunks():
        yield BAD

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload(chunks(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "request body could not be decoded as casemesh.video.v1.UploadObjectRequest"
    assert handled(STORAGE, "UploadObject", "client_stream", "InvalidArgument") - before == 1
    records = server_records(caplog)
    assert [r.levelno for r in records if "could not be decoded" in r.getMessage()] == [logging.WARNING]
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_undecodable_request_of_a_server_stream_is_invalid_argument_and_counted(storage, caplog):
    caplog.set_level(logging.DEBUG)
    read = storage.unary_stream(f"/{STORAGE}/ReadObject")
    before = handled(STORAGE, "ReadObject", "server_stream", "InvalidArgument")
    call = read(BAD, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "request body could not be decoded as casemesh.video.v1.ReadObjectRequest"
    assert handled(STORAGE, "ReadObject", "server_stream", "InvalidArgument") - before == 1
    records = server_records(caplog)
    assert [r.levelno for r in records if "could not be decoded" in r.getMessage()] == [logging.WARNING]
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]

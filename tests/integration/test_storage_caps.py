"""Issue 12's storage attacks over gRPC: a self-minted 1 TiB token stores nothing; a completed upload's token is dead.

The tokens are minted with the test mesh's secret, as anyone holding the
secret (or the old public constant) could: storage's own caps must hold even
for a genuine token.
"""

from __future__ import annotations

import time

import grpc
import pytest

from casemesh.services.catalog import definitions
from casemesh.services.runtime.secrets import UPLOAD_TOKEN
from casemesh.services.video.tokens import UploadGrant, UploadTokenSigner, raw_key
from casemesh.video.v1 import storage_pb2, storage_pb2_grpc

from ..caller_identity import TEST_SECRET
from .conftest import loopback_topology, start_mesh


def token(video_id: str, size: int) -> str:
    signer = UploadTokenSigner(TEST_SECRET.keyring(UPLOAD_TOKEN))
    return signer.sign(UploadGrant(video_id, raw_key(video_id), size, int(time.time() * 1000) + 60_000))


@pytest.fixture
async def storage(tmp_path):
    running, stop, task = await start_mesh(definitions(["video-storage"]), loopback_topology(["video-storage"], tmp_path))
    try:
        yield storage_pb2_grpc.ObjectStoreServiceStub(running.channel("video-storage")), tmp_path
    finally:
        await running.close()
        stop.set()
        await task


async def test_a_token_declaring_a_tebibyte_stores_nothing(storage):
    stub, data_dir = storage
    forged = token("neverCreated", 1 << 40)
    chunks = [storage_pb2.UploadObjectRequest(upload_token=forged, offset_bytes=o, data=b"x" * (1 << 20))
              for o in range(0, 4 << 20, 1 << 20)]  # the 4 MiB of the attack
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UploadObject(iter(chunks), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("upload_token: declares 1099511627776 bytes")
    assert not list((data_dir / "video-storage" / "raw").glob("neverCreated*"))


async def test_a_completed_upload_token_no_longer_gives_offsets_or_takes_bytes(storage):
    stub, _ = storage
    done = token("doneVideo", 10)
    stored = await stub.UploadObject(iter([storage_pb2.UploadObjectRequest(upload_token=done, data=b"0123456789")]),
                                     timeout=10)
    assert stored.stored_bytes == stored.expected_size_bytes == 10
    for call in (stub.GetUploadOffset(storage_pb2.GetUploadOffsetRequest(upload_token=done), timeout=10),
                 stub.UploadObject(iter([storage_pb2.UploadObjectRequest(upload_token=done, offset_bytes=10, data=b"x")]),
                                   timeout=10)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "already complete" in caught.value.details()

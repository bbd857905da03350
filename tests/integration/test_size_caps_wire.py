"""Size caps seen on the wire: an oversized request is refused before it is decoded."""

from __future__ import annotations

import grpc
import pytest

from casemesh.services.runtime.server import MAX_REQUEST_BYTES

ANALYTICS = "casemesh.analytics.v1.AnalyticsService"


async def test_a_request_over_the_message_limit_is_refused_before_decoding(mesh):
    record = mesh.channel("analytics").unary_unary(f"/{ANALYTICS}/RecordClicks")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await record(b"\x0a" + b"\xff" * (MAX_REQUEST_BYTES + 16), timeout=10)  # not even valid protobuf
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

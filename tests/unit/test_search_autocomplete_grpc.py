"""search-autocomplete through real gRPC, served by the runtime (DEFINITION, its settings): RecordQueries only for
``search-query``, Suggest for anyone, every INVALID_ARGUMENT of protos/casemesh/search/v1/query.proto naming its
field (nothing of a refused batch counted), suggestions after the background rebuild, and the metrics."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.search.v1 import query_pb2, query_pb2_grpc
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.search.autocomplete.service import DEFINITION, NAME
from casemesh.services.search.autocomplete.settings import AutocompleteSettings

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
QUERY = "search-query"


def test_the_definition():
    assert DEFINITION.name == NAME == "search-autocomplete" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.search.v1.AutocompleteService",)
    assert DEFINITION.access.public == {"Suggest"}
    assert dict(DEFINITION.access.internal) == {"RecordQueries": (QUERY,)}
    assert AutocompleteSettings() == AutocompleteSettings(rebuild_interval_ms=2_000, max_queries=100_000)


def _batch(*entries: tuple[str, int]) -> query_pb2.RecordQueriesRequest:
    return query_pb2.RecordQueriesRequest(queries=[query_pb2.QueryCount(query=q, count=c) for q, c in entries])


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(f"casemesh_search_autocomplete_{name}")


async def test_autocomplete_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"rebuild_interval_ms": 50}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    query_service = RuntimeContext(topology, secret=TEST_SECRET).for_service(QUERY)
    other_service = RuntimeContext(topology, secret=TEST_SECRET).for_service("search-indexer")
    try:
        record = query_pb2_grpc.AutocompleteServiceStub(query_service.channel(NAME))
        public = query_pb2_grpc.AutocompleteServiceStub(running.anonymous_channel(NAME))
        assert _gauge("distinct_queries") == 0 and _gauge("prefixes") == 0
        empty = await public.Suggest(query_pb2.SuggestRequest(prefix="new"), timeout=WAIT_S)
        assert (list(empty.suggestions), empty.index_built_at_unix_ms) == ([], 0)

        answer = await record.RecordQueries(_batch(("New York", 5), ("newton", 5), ("news", 9), ("new york  ", 1)),
                                            timeout=WAIT_S)
        assert answer.distinct_queries == 3
        for stub in (public, query_pb2_grpc.AutocompleteServiceStub(other_service.channel(NAME))):
            code, _ = await _code(stub.RecordQueries(_batch(("spam", 1_000)), timeout=WAIT_S))
            assert code == grpc.StatusCode.PERMISSION_DENIED
        for request, field in ((_batch(), "queries"), (_batch(*[("q", 1)] * 1_001), "queries"),
                               (_batch(("fine", 1), ("", 1)), "queries[1].query"),
                               (_batch(("x" * 513, 1)), "queries[0].query"),
                               (_batch(("fine", 1), ("news", 0)), "queries[1].count"),
                               (_batch(("news", 1_000_001)), "queries[0].count")):
            code, details = await _code(record.RecordQueries(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for request, field in ((query_pb2.SuggestRequest(), "prefix"),
                               (query_pb2.SuggestRequest(prefix="  "), "prefix"),
                               (query_pb2.SuggestRequest(prefix="x" * 33), "prefix"),
                               (query_pb2.SuggestRequest(prefix="n", limit=11), "limit")):
            code, details = await _code(public.Suggest(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details

        suggestions: list[tuple[str, int]] = []
        for _ in range(500):  # rebuilt every 50 ms
            answer = await public.Suggest(query_pb2.SuggestRequest(prefix="  NEW"), timeout=WAIT_S)
            suggestions = [(s.query, s.count) for s in answer.suggestions]
            if suggestions:
                break
            await asyncio.sleep(0.02)
        assert suggestions == [("news", 9), ("new york", 6), ("newton", 5)]  # nothing of the refused batches
        assert answer.index_built_at_unix_ms > 0
        spaced = await public.Suggest(query_pb2.SuggestRequest(prefix="new ", limit=1), timeout=WAIT_S)
        assert [(s.query, s.count) for s in spaced.suggestions] == [("new york", 6)]
        assert _gauge("distinct_queries") == 3
        assert _gauge("prefixes") == len({q[:n] for q in ("news", "new york", "newton") for n in range(1, len(q) + 1)})
        assert _gauge("rebuild_seconds_count") >= 1
        assert 0 <= _gauge("index_age_seconds") < 60
    finally:
        await query_service.close()
        await other_service.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

"""search-query through real gRPC, served by the runtime (DEFINITION, its settings) with search-autocomplete and a
fake search-shards (:class:`FakeShards` of test_search_query_scatter.py): every status code of
protos/casemesh/search/v1/query.proto's Search, a shard past its deadline giving a partial answer, no shard giving
UNAVAILABLE, and the query log reaching autocomplete's suggestions."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.search.v1 import query_pb2, query_pb2_grpc, shard_pb2, shard_pb2_grpc
from casemesh.services.runtime.component import ServiceDefinition, StatelessComponent
from casemesh.services.search.autocomplete.service import DEFINITION as AUTOCOMPLETE_DEFINITION
from casemesh.services.search.query.service import DEFINITION, NAME
from casemesh.services.search.query.settings import QuerySettings

from ..integration.conftest import loopback_topology, start_mesh
from .test_search_query_scatter import FakeShards, corpus

WAIT_S = 10.0
SHARDS = "search-shards"
AUTOCOMPLETE = "search-autocomplete"


def test_the_definition():
    assert DEFINITION.name == NAME == "search-query"
    assert DEFINITION.dependencies == (SHARDS, AUTOCOMPLETE) and DEFINITION.optional_dependencies == (AUTOCOMPLETE,)
    assert DEFINITION.grpc_services == ("casemesh.search.v1.SearchService",)
    assert DEFINITION.access.public == {"Search"} and not DEFINITION.access.internal


def test_the_settings():
    assert QuerySettings() == QuerySettings(shard_deadline_ms=250, pagerank_weight=1.0, query_log_flush_ms=1_000)
    assert QuerySettings(shard_deadline_ms=0).shard_deadline_ms == 0
    for bad in ({"shard_deadline_ms": -1}, {"pagerank_weight": -0.5}, {"pagerank_weight": math.inf},
                {"pagerank_weight": math.nan}, {"query_log_flush_ms": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            QuerySettings(**bad)


def _fake_shards_definition(fake: FakeShards) -> ServiceDefinition:
    async def build(context):
        return StatelessComponent(fake, shard_pb2_grpc.add_IndexShardServiceServicer_to_server)

    return ServiceDefinition(name=SHARDS, dependencies=(), build=build, grpc_services=(
        shard_pb2.DESCRIPTOR.services_by_name["IndexShardService"].full_name,))


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_search_through_the_runtime(tmp_path):
    fake = FakeShards(corpus(), 4)
    topology = loopback_topology([SHARDS, NAME, AUTOCOMPLETE], data_dir=tmp_path, settings={
        NAME: {"shard_deadline_ms": 1_000, "query_log_flush_ms": 50}, AUTOCOMPLETE: {"rebuild_interval_ms": 50}})
    running, stop, task = await start_mesh([_fake_shards_definition(fake), DEFINITION, AUTOCOMPLETE_DEFINITION],
                                           topology)
    try:
        search = query_pb2_grpc.SearchServiceStub(running.anonymous_channel(NAME))
        suggest = query_pb2_grpc.AutocompleteServiceStub(running.anonymous_channel(AUTOCOMPLETE))
        answer = await search.Search(query_pb2.SearchRequest(query="Search Engine", page_size=3), timeout=WAIT_S)
        assert len(answer.hits) == 3 and answer.next_page_token and answer.total_matches >= 3
        assert (answer.shards_total, answer.shards_answered, answer.partial) == (4, 4, False)
        assert list(answer.parsed_query.terms) == ["search", "engine"]
        second = await search.Search(query_pb2.SearchRequest(query="search engine", page_size=3,
                                                             page_token=answer.next_page_token), timeout=WAIT_S)
        assert not {h.url for h in second.hits} & {h.url for h in answer.hits}
        assert [h.score for h in answer.hits] + [h.score for h in second.hits] == sorted(
            [h.score for h in answer.hits] + [h.score for h in second.hits], reverse=True)

        for request, field in ((query_pb2.SearchRequest(), "query"),
                               (query_pb2.SearchRequest(query="x" * 513), "query"),
                               (query_pb2.SearchRequest(query="?!"), "query"),
                               (query_pb2.SearchRequest(query=" ".join(f"w{i}" for i in range(17))), "query"),
                               (query_pb2.SearchRequest(query=" ".join(f'"a{i} b"' for i in range(5))), "query"),
                               (query_pb2.SearchRequest(query="web", page_size=51), "page_size"),
                               (query_pb2.SearchRequest(query="web", page_size=-3), "page_size"),
                               (query_pb2.SearchRequest(query="web", page_token="garbage"), "page_token"),
                               (query_pb2.SearchRequest(query="web", page_token=answer.next_page_token),
                                "page_token")):
            code, details = await _code(search.Search(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details

        fake.delays[("search", 1)] = 30.0  # one shard sleeps past its 1 s deadline
        partial = await search.Search(query_pb2.SearchRequest(query="common", page_size=50), timeout=WAIT_S)
        assert (partial.partial, partial.shards_answered, partial.shards_total) == (True, 3, 4)
        others = {p.url for s in (0, 2, 3) for p in fake.shards[s]}
        assert {h.url for h in partial.hits} <= others and len(partial.hits) == min(50, len(others))
        assert partial.total_matches == len(others)
        assert REGISTRY.get_sample_value("casemesh_search_query_partial_results_total") >= 1

        for shard in range(4):
            fake.delays[("statistics", shard)] = 30.0
        code, details = await _code(search.Search(query_pb2.SearchRequest(query="common"), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE and "no index shard answered" in details, details
        fake.delays.clear()

        # The first pages' queries reach autocomplete: "search engine" twice (the second page is not logged). Five
        # shard calls in a row missed their deadline: the runtime's circuit breaker to search-shards is open for a
        # second (calls.circuit_breaker), during which Search answers UNAVAILABLE.
        for _ in range(500):
            try:
                await search.Search(query_pb2.SearchRequest(query="  SEARCH engine"), timeout=WAIT_S)
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                await asyncio.sleep(0.02)
        suggestions: list[tuple[str, int]] = []
        for _ in range(500):  # the log flushes every 50 ms, autocomplete rebuilds every 50 ms
            suggestions = [(s.query, s.count) for s in (await suggest.Suggest(
                query_pb2.SuggestRequest(prefix="Sea"), timeout=WAIT_S)).suggestions]
            if suggestions == [("search engine", 2)]:
                break
            await asyncio.sleep(0.02)
        assert suggestions == [("search engine", 2)]
        assert REGISTRY.get_sample_value("casemesh_search_query_log_queries_total", {"outcome": "sent"}) >= 2
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

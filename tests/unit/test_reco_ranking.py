"""reco-ranker: seed 003's weighted merge (rank), its settings, and the servicer against fake dependencies."""

from __future__ import annotations

import grpc
import pytest
from pydantic import ValidationError

from casemesh.reco.v1 import candidates_pb2, signals_pb2
from casemesh.reco.v1 import recommendations_pb2 as pb
from casemesh.services.reco.ranker.ranking import COLLABORATIVE, DEFAULT_WEIGHTS, EMBEDDING, TRENDING, rank
from casemesh.services.reco.ranker.service import RecommendationServicer
from casemesh.services.reco.ranker.settings import RankerSettings
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument

C, E, T = COLLABORATIVE, EMBEDDING, TRENDING


def test_default_weights_are_the_seeds():
    assert DEFAULT_WEIGHTS == {C: 0.4, E: 0.3, T: 0.2}
    assert RankerSettings().weights.by_source() == DEFAULT_WEIGHTS


def test_score_is_the_weighted_sum_of_source_scores():
    ranked = rank([("a", [C, T], [1.0, 0.5]), ("b", [E], [1.0]), ("c", [C, E, T], [0.5, 0.5, 1.0])], DEFAULT_WEIGHTS, 10)
    assert [(item, round(score, 9), sources) for item, score, sources in ranked] == [
        ("c", 0.55, (C, E, T)),  # 0.4 × 0.5 + 0.3 × 0.5 + 0.2 × 1
        ("a", 0.5, (C, T)),      # 0.4 × 1 + 0.2 × 0.5
        ("b", 0.3, (E,)),        # 0.3 × 1
    ]


def test_ties_go_to_the_smaller_item_id_whatever_the_input_order():
    pool = [("z", [T], [1.0]), ("m", [T], [1.0]), ("a", [T], [1.0]), ("best", [C], [1.0])]
    assert [item for item, _, _ in rank(pool, DEFAULT_WEIGHTS, 10)] == ["best", "a", "m", "z"]
    assert rank(list(reversed(pool)), DEFAULT_WEIGHTS, 10) == rank(pool, DEFAULT_WEIGHTS, 10)
    # Sources listed in another order give the same float.
    one_order = rank([("x", [C, E, T], [0.1, 0.7, 0.3])], DEFAULT_WEIGHTS, 1)
    assert one_order == rank([("x", [T, E, C], [0.3, 0.7, 0.1])], DEFAULT_WEIGHTS, 1)


def test_limit_cuts_the_best_first():
    pool = [(f"i{n:03d}", [C], [n / 100]) for n in range(100)]
    ranked = rank(pool, DEFAULT_WEIGHTS, 5)
    assert [item for item, _, _ in ranked] == ["i099", "i098", "i097", "i096", "i095"]
    assert rank(pool, DEFAULT_WEIGHTS, 0) == []
    assert len(rank(pool, DEFAULT_WEIGHTS, 1_000)) == 100


def test_a_weight_of_zero_drops_its_source():
    weights = {C: 0.4, E: 0.3, T: 0.0}
    ranked = rank([("trend-only", [T], [1.0]), ("both", [C, T], [0.5, 1.0]), ("emb", [E], [0.1])], weights, 10)
    assert [(item, round(score, 9), sources) for item, score, sources in ranked] == [
        ("both", 0.2, (C,)), ("emb", 0.03, (E,))]  # trending adds nothing and is not listed; trend-only is gone
    # Unknown and unspecified sources count as weight 0 too.
    assert rank([("x", [candidates_pb2.CANDIDATE_SOURCE_UNSPECIFIED, 99], [1.0, 1.0])], DEFAULT_WEIGHTS, 10) == []


def test_recent_items_are_removed():
    pool = [("seen", [C], [1.0]), ("new", [C], [0.5]), ("also-seen", [E], [1.0])]
    assert [item for item, _, _ in rank(pool, DEFAULT_WEIGHTS, 10, exclude=["seen", "also-seen"])] == ["new"]
    # 0.3 × 1 (also-seen) beats 0.4 × 0.5 (new).
    assert [item for item, _, _ in rank(pool, DEFAULT_WEIGHTS, 10, exclude={"seen"})] == ["also-seen", "new"]


def test_an_item_listed_twice_merges_its_sources():
    ranked = rank([("a", [C], [0.5]), ("a", [C, T], [1.0, 1.0]), ("a", [C], [0.25])], DEFAULT_WEIGHTS, 10)
    assert [(item, round(score, 9), sources) for item, score, sources in ranked] == [("a", 0.6, (C, T))]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        rank([("a", [C], [])], DEFAULT_WEIGHTS, 10)
    with pytest.raises(ValueError):
        rank([("a", [C], [1.0])], {C: -0.1}, 10)


def test_settings_bounds():
    assert RankerSettings().pool_size == 200 and RankerSettings().recent_signals == 50
    assert RankerSettings.model_validate({"weights": {"trending": 0}}).weights.by_source() == {C: 0.4, E: 0.3, T: 0.0}
    for bad in ({"pool_size": 0}, {"pool_size": 5_001}, {"recent_signals": -1}, {"recent_signals": 1_001},
                {"weights": {"embedding": -1}}, {"weights": {"collaborative": 0, "embedding": 0, "trending": 0}},
                {"call_timeout_ms": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            RankerSettings.model_validate(bad)


# The servicer against fake stubs: what it asks of its dependencies and how their failures come out.

def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeSignals:
    def __init__(self, items: list[str], error: grpc.aio.AioRpcError | None = None) -> None:
        self.items, self.error, self.requests = items, error, []

    async def ListRecentInteractions(self, request, timeout=None):
        self.requests.append(request)
        if self.error:
            raise self.error
        return signals_pb2.ListRecentInteractionsResponse(interactions=[
            signals_pb2.Interaction(user_id=request.user_id, item_id=i, kind=signals_pb2.INTERACTION_KIND_VIEW)
            for i in self.items[:request.limit]])


class FakeCandidates:
    def __init__(self, candidates: list[candidates_pb2.Candidate], error: grpc.aio.AioRpcError | None = None) -> None:
        self.candidates, self.error, self.requests = candidates, error, []

    async def GetCandidates(self, request, timeout=None):
        self.requests.append(request)
        if self.error:
            raise self.error
        return candidates_pb2.GetCandidatesResponse(candidates=self.candidates[:request.pool_size], model_version=7)


def servicer(signals: FakeSignals, candidates: FakeCandidates, **settings) -> RecommendationServicer:
    return RecommendationServicer(signals, candidates, RankerSettings(**settings))  # type: ignore[arg-type]


POOL = [candidates_pb2.Candidate(item_id=f"i{n}", sources=[C], scores=[1 - n / 100]) for n in range(30)]


async def test_servicer_sends_recent_signals_and_ranks_the_pool():
    signals = FakeSignals(["i0", "i5", "i0"])  # a view and a like of i0: one id
    candidates = FakeCandidates(POOL)
    response = await servicer(signals, candidates, recent_signals=10).GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u1", limit=3, pool_size=25), None)
    assert signals.requests[0].user_id == "u1" and signals.requests[0].limit == 10
    assert list(candidates.requests[0].recent_item_ids) == ["i0", "i5"] and candidates.requests[0].pool_size == 25
    # i0 came back from the (fake) candidates, but it is recent: removed again.
    assert [r.item_id for r in response.recommendations] == ["i1", "i2", "i3"]
    assert list(response.recommendations[0].sources) == [C]
    assert (response.candidates, response.recent_signals, response.model_version) == (25, 2, 7)


async def test_servicer_defaults_and_skips_signals_when_off():
    signals, candidates = FakeSignals(["i0"]), FakeCandidates(POOL)
    response = await servicer(signals, candidates, recent_signals=0, pool_size=12).GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u1"), None)
    assert signals.requests == []
    assert candidates.requests[0].pool_size == 12 and not candidates.requests[0].recent_item_ids
    assert len(response.recommendations) == 12 and response.recent_signals == 0  # limit 0 means 20; the pool has 12


async def test_servicer_validates_before_calling():
    signals, candidates = FakeSignals([]), FakeCandidates(POOL)
    for request, field in ((pb.GetRecommendationsRequest(user_id=""), "user_id"),
                           (pb.GetRecommendationsRequest(user_id="u", limit=101), "limit"),
                           (pb.GetRecommendationsRequest(user_id="u", pool_size=5_001), "pool_size")):
        with pytest.raises(InvalidArgument) as caught:
            await servicer(signals, candidates).GetRecommendations(request, None)
        assert caught.value.field == field
    assert signals.requests == [] and candidates.requests == []


async def test_no_model_passes_through_as_failed_precondition():
    candidates = FakeCandidates([], rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "no model has been trained"))
    with pytest.raises(FailedPrecondition, match="no model"):
        await servicer(FakeSignals([]), candidates).GetRecommendations(pb.GetRecommendationsRequest(user_id="u"), None)


async def test_an_unavailable_dependency_stays_an_rpc_error():
    signals = FakeSignals([], rpc_error(grpc.StatusCode.UNAVAILABLE, "down"))
    candidates = FakeCandidates(POOL)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await servicer(signals, candidates).GetRecommendations(pb.GetRecommendationsRequest(user_id="u"), None)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert candidates.requests == []

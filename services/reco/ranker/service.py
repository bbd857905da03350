"""``casemesh.reco.v1.RecommendationService`` (topology name ``reco-ranker``): "For you" recommendations.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt, "Recommendation System",
Netflix's ``getRecommendations(userId, limit = 20)``) with seed 001
(shared/seeds/001_58dfc580020147d2.txt, #19 "Recommendation Engine":
candidate generation, real-time signals). One GetRecommendations:

1. the user's newest interactions (SignalService.ListRecentInteractions on
   ``reco-signals``, ``recent_signals`` of them; the call is skipped when the
   setting is 0): the real-time signals, seed 003's ``getWatchHistory``;
2. a candidate pool of ``pool_size`` items (CandidateService.GetCandidates on
   ``reco-candidates``, given the recent item ids): seed 003's steps 3 to 5,
   collaborative filtering, embeddings in the content slot, trending;
3. the ranking stage (:func:`.ranking.rank`): seed 003's step 6, the weighted
   merge (``weights``: 0.4, 0.3, 0.2), and step 7, already-seen items removed,
   cut to ``limit``.

The candidate pool's size is this case study's A/B switch
(:class:`.settings.RankerSettings`: ``pool_size``): recall@k against latency.
Stateless.

Status codes: INVALID_ARGUMENT naming ``user_id``, ``limit`` (0 means 20; at
most 100) or ``pool_size`` (0 means the setting; at most 5,000);
FAILED_PRECONDITION when reco-candidates has no trained model (its status
passed through); UNAVAILABLE or DEADLINE_EXCEEDED when a dependency fails.
Metrics beyond the gRPC ones: ``casemesh_reco_ranked_candidates``
(histogram: candidates ranked per request) and ``casemesh_reco_recent_signals``
(histogram: recent items sent as real-time signals per request).
"""

from __future__ import annotations

import grpc
from prometheus_client import Histogram

from casemesh.reco.v1 import candidates_pb2, candidates_pb2_grpc, signals_pb2, signals_pb2_grpc
from casemesh.reco.v1 import recommendations_pb2 as pb
from casemesh.reco.v1 import recommendations_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ...runtime.errors import dependency_error
from ..validation import pool_size, recommendation_limit, validate_id
from .ranking import rank
from .settings import RankerSettings

NAME = "reco-ranker"
FULL_NAME = pb.DESCRIPTOR.services_by_name["RecommendationService"].full_name

RANKED = Histogram("casemesh_reco_ranked_candidates", "Candidates ranked per GetRecommendations.",
                   buckets=(0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000))
RECENT = Histogram("casemesh_reco_recent_signals", "Recent items sent as real-time signals per GetRecommendations.",
                   buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    """Reads the user's recent interactions, asks for candidates, ranks them."""

    def __init__(self, signals: signals_pb2_grpc.SignalServiceStub, candidates: candidates_pb2_grpc.CandidateServiceStub,
                 settings: RankerSettings) -> None:
        self._signals = signals
        self._candidates = candidates
        self._settings = settings
        self._weights = settings.weights.by_source()
        self._timeout_s = settings.call_timeout_ms / 1000

    async def _recent_items(self, user: str) -> list[str]:
        """The user's newest ``recent_signals`` items, newest first, each once (a view and a like of one item: one id)."""
        if not self._settings.recent_signals:
            return []
        recent = await self._signals.ListRecentInteractions(signals_pb2.ListRecentInteractionsRequest(
            user_id=user, limit=self._settings.recent_signals), timeout=self._timeout_s)
        return list(dict.fromkeys(i.item_id for i in recent.interactions))

    async def GetRecommendations(self, request: pb.GetRecommendationsRequest, context: grpc.aio.ServicerContext) -> pb.GetRecommendationsResponse:
        user = validate_id("user_id", request.user_id)
        limit = recommendation_limit(request.limit)
        size = pool_size(request.pool_size, default=self._settings.pool_size)
        try:
            recent = await self._recent_items(user)
            pool = await self._candidates.GetCandidates(candidates_pb2.GetCandidatesRequest(
                user_id=user, recent_item_ids=recent, pool_size=size), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        RANKED.observe(len(pool.candidates))
        RECENT.observe(len(recent))
        ranked = rank(((c.item_id, c.sources, c.scores) for c in pool.candidates), self._weights, limit, exclude=set(recent))
        return pb.GetRecommendationsResponse(
            recommendations=[pb.Recommendation(item_id=item, score=score, sources=sources) for item, score, sources in ranked],
            candidates=len(pool.candidates), recent_signals=len(recent), model_version=pool.model_version)


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, RankerSettings)
    servicer = RecommendationServicer(signals_pb2_grpc.SignalServiceStub(context.channel("reco-signals")),
                                      candidates_pb2_grpc.CandidateServiceStub(context.channel("reco-candidates")),
                                      settings)
    return StatelessComponent(servicer, pb_grpc.add_RecommendationServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("reco-signals", "reco-candidates"), build=build,
    settings_model=RankerSettings,
    access=Access(public={"GetRecommendations"}),
)

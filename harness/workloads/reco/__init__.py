"""The recommendation workload (shared/seeds/001 #19 "Recommendation Engine"; shared/seeds/003 Netflix getRecommendations)."""

from __future__ import annotations

from casemesh.reco.v1 import (candidates_pb2, candidates_pb2_grpc, recommendations_pb2, recommendations_pb2_grpc, signals_pb2,
                              signals_pb2_grpc)

from ..base import Journey, Workload, entrypoints
from .journeys import MEASURES, ForYouParams, NoParams, for_you, like_recommended, view
from .seeding import CANDIDATES, RANKER, SIGNALS, SeedParams, seed

_SERVICES = {
    RANKER: (recommendations_pb2, "RecommendationService", recommendations_pb2_grpc.RecommendationServiceStub),
    CANDIDATES: (candidates_pb2, "CandidateService", candidates_pb2_grpc.CandidateServiceStub),
    SIGNALS: (signals_pb2, "SignalService", signals_pb2_grpc.SignalServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

WORKLOAD = Workload(
    name="recommendations",
    description="Recommendation engine (shared/seeds/001 #19, shared/seeds/003 Netflix): 'For you' rows ranked from "
                "collaborative, embedding and trending candidates, likes as real-time signals, on a synthetic "
                "latent-genre dataset whose held-out part scores recall@k",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("for_you", "A user's 'For you' row: GetRecommendations, limit 20", ForYouParams, for_you),
            Journey("like_recommended", "Recommendations, a like of a live item (a recommended one when possible), "
                    "recommendations again with the like as a real-time signal (signal_to_recommendation)",
                    ForYouParams, like_recommended),
            Journey("view", "A user views one of their live items (RecordInteractions VIEW)", NoParams, view),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
)

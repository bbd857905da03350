"""The social feed's "For you" timeline, served by the recommendation engine (shared/seeds/001 #19; 003 "Twitter")."""

from __future__ import annotations

from casemesh.reco.v1 import candidates_pb2, candidates_pb2_grpc, recommendations_pb2, recommendations_pb2_grpc, signals_pb2, signals_pb2_grpc
from casemesh.social.v1 import timeline_pb2, timeline_pb2_grpc, tweets_pb2, tweets_pb2_grpc

from ..base import Journey, Workload, entrypoints
from ..reco.seeding import CANDIDATES, RANKER
from .journeys import MEASURES, ForYouParams, LikeParams, NoParams, for_you, like_from_for_you, view
from .seeding import SIGNALS, TIMELINE, TWEETS, SeedParams, seed

_SERVICES = {
    TIMELINE: (timeline_pb2, "TimelineService", timeline_pb2_grpc.TimelineServiceStub),
    TWEETS: (tweets_pb2, "TweetService", tweets_pb2_grpc.TweetServiceStub),
    SIGNALS: (signals_pb2, "SignalService", signals_pb2_grpc.SignalServiceStub),
    CANDIDATES: (candidates_pb2, "CandidateService", candidates_pb2_grpc.CandidateServiceStub),
    RANKER: (recommendations_pb2, "RecommendationService", recommendations_pb2_grpc.RecommendationServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

WORKLOAD = Workload(
    name="social-for-you",
    description="The social feed's 'For you' timeline (shared/seeds/001 #19, 003 'Twitter'): tweets ranked by the "
                "recommendation engine, likes from it as real-time signals (like_to_for_you), views",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("for_you", "A reader's 'For you' timeline: GetForYouTimeline, 20 tweets", ForYouParams, for_you),
            Journey("like_from_for_you", "'For you', a like of its top tweet (LikeTweet), 'For you' again until the "
                    "liked tweet has left it (like_to_for_you)", LikeParams, like_from_for_you),
            Journey("view", "A reader views one of their live tweets (RecordInteractions VIEW)", NoParams, view),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
)

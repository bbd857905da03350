"""The social-feed workload (Twitter; shared/seeds/000 "Social Media Feed", 003 "Twitter Feed System")."""

from __future__ import annotations

from casemesh.social.v1 import graph_pb2, graph_pb2_grpc, timeline_pb2, timeline_pb2_grpc, tweets_pb2, tweets_pb2_grpc

from ..base import Journey, Workload, entrypoints
from .journeys import FANOUT_FRESHNESS, HomeParams, NoParams, PostParams, follow, home_timeline, like, post_tweet, unfollow, user_timeline
from .seeding import GRAPH, TIMELINE, TWEETS, SeedParams, seed

_SERVICES = {
    GRAPH: (graph_pb2, "SocialGraphService", graph_pb2_grpc.SocialGraphServiceStub),
    TWEETS: (tweets_pb2, "TweetService", tweets_pb2_grpc.TweetServiceStub),
    TIMELINE: (timeline_pb2, "TimelineService", timeline_pb2_grpc.TimelineServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

WORKLOAD = Workload(
    name="social-feed",
    description="Social feed (shared/seeds/000, 003 'Twitter'): home timelines by hybrid fan-out, posts, likes, follows",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("home_timeline", "Read a home timeline page (cached pushes merged with celebrities pulled on read)", HomeParams, home_timeline),
            Journey("user_timeline", "Read an author's own tweets, newest first", NoParams, user_timeline),
            Journey("post_tweet", "Post a tweet; a follower re-reads their home timeline until it shows (fanout_freshness)", PostParams, post_tweet),
            Journey("like", "Like a recent tweet", NoParams, like),
            Journey("follow", "Follow a new user (preferential attachment)", NoParams, follow),
            Journey("unfollow", "Stop following someone", NoParams, unfollow),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=(FANOUT_FRESHNESS,),
)

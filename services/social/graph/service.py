"""``casemesh.social.v1.SocialGraphService`` (topology name ``social-graph``): the follow graph.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Twitter Feed System",
Data Model "Following Relationship (Graph)" and the User schema's
followersCount/followingCount. The store is :class:`.store.FollowGraph`.

Status codes: INVALID_ARGUMENT naming the field (a bad user ID, following
oneself, a bad page size or token); RESOURCE_EXHAUSTED when a user already
follows 5,000 users. Metrics beyond the gRPC ones:
``casemesh_social_follow_edges`` (gauge: edges in the graph).
"""

from __future__ import annotations

import grpc
from prometheus_client import Gauge

from casemesh.social.v1 import graph_pb2 as pb
from casemesh.social.v1 import graph_pb2_grpc as pb_grpc

from ...runtime import page_tokens
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ...runtime.errors import InvalidArgument
from ..limits import MAX_FOLLOWING
from ..validation import page_size, validate_user_id
from .store import FollowGraph

NAME = "social-graph"
FULL_NAME = pb.DESCRIPTOR.services_by_name["SocialGraphService"].full_name
EDGES = Gauge("casemesh_social_follow_edges", "Follow edges in the social graph.")

#: ListFollowers / ListFollowing page sizes: 0 means 1,000; at most 10,000.
DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000


def _edge(follower_id: str, followee_id: str) -> tuple[str, str]:
    validate_user_id("follower_id", follower_id)
    validate_user_id("followee_id", followee_id)
    if follower_id == followee_id:
        raise InvalidArgument("followee_id", "must differ from follower_id (a user cannot follow themselves)")
    return follower_id, followee_id


def _offset(kind: str, user_id: str, token: str) -> int:
    return page_tokens.decode(token, kind, user_id, {"o": int})["o"] if token else 0


def _next_token(kind: str, user_id: str, offset: int, returned: int, total: int) -> str:
    end = offset + returned
    return page_tokens.encode(kind, user_id, {"o": end}) if returned and end < total else ""


class SocialGraphServicer(pb_grpc.SocialGraphServiceServicer):
    """Validates, then reads or changes the :class:`FollowGraph`."""

    def __init__(self, graph: FollowGraph) -> None:
        self._graph = graph

    async def Follow(self, request: pb.FollowRequest, context: grpc.aio.ServicerContext) -> pb.FollowResponse:
        follower, followee = _edge(request.follower_id, request.followee_id)
        count = await self._graph.follow(follower, followee)
        EDGES.set(self._graph.edge_count)
        return pb.FollowResponse(followee_follower_count=count)

    async def FollowMany(self, request: pb.FollowManyRequest, context: grpc.aio.ServicerContext) -> pb.FollowManyResponse:
        follower = validate_user_id("follower_id", request.follower_id)
        if not request.followee_ids:
            raise InvalidArgument("followee_ids", "is required (at least one user)")
        if len(request.followee_ids) > MAX_FOLLOWING:
            raise InvalidArgument("followee_ids", f"has {len(request.followee_ids):,} users; at most {MAX_FOLLOWING:,}")
        for i, followee in enumerate(request.followee_ids):
            validate_user_id(f"followee_ids[{i}]", followee)
            if followee == follower:
                raise InvalidArgument(f"followee_ids[{i}]", "must differ from follower_id (a user cannot follow themselves)")
        added, following = await self._graph.follow_many(follower, list(request.followee_ids))
        EDGES.set(self._graph.edge_count)
        return pb.FollowManyResponse(added=added, following_count=following)

    async def Unfollow(self, request: pb.UnfollowRequest, context: grpc.aio.ServicerContext) -> pb.UnfollowResponse:
        follower, followee = _edge(request.follower_id, request.followee_id)
        count = await self._graph.unfollow(follower, followee)
        EDGES.set(self._graph.edge_count)
        return pb.UnfollowResponse(followee_follower_count=count)

    async def ListFollowers(self, request: pb.ListFollowersRequest, context: grpc.aio.ServicerContext) -> pb.ListFollowersResponse:
        user = validate_user_id("user_id", request.user_id)
        size = page_size(request.page_size, default=DEFAULT_PAGE, most=MAX_PAGE)
        offset = _offset("followers", user, request.page_token)
        page, total = await self._graph.followers(user, offset, size)
        return pb.ListFollowersResponse(follower_ids=page, follower_count=total,
                                        next_page_token=_next_token("followers", user, offset, len(page), total))

    async def ListFollowing(self, request: pb.ListFollowingRequest, context: grpc.aio.ServicerContext) -> pb.ListFollowingResponse:
        user = validate_user_id("user_id", request.user_id)
        size = page_size(request.page_size, default=DEFAULT_PAGE, most=MAX_PAGE)
        offset = _offset("following", user, request.page_token)
        page, total = await self._graph.following(user, offset, size)
        return pb.ListFollowingResponse(
            followees=[pb.Followee(user_id=u, follower_count=c) for u, c in page], following_count=total,
            next_page_token=_next_token("following", user, offset, len(page), total))

    async def GetFollowCounts(self, request: pb.GetFollowCountsRequest, context: grpc.aio.ServicerContext) -> pb.GetFollowCountsResponse:
        followers, following = await self._graph.counts(validate_user_id("user_id", request.user_id))
        return pb.GetFollowCountsResponse(follower_count=followers, following_count=following)


async def build(context: RuntimeContext) -> StatelessComponent:
    return StatelessComponent(SocialGraphServicer(FollowGraph()), pb_grpc.add_SocialGraphServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build,
    access=Access(public={"Follow", "FollowMany", "Unfollow", "ListFollowers", "ListFollowing", "GetFollowCounts"}),
)

"""``casemesh.photo.v1.PhotoFeedService`` (topology name ``photo-feed``): the photo feed, fan-out on read.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo
Storage": "Feed (photos from followed users)". A page is built at read time:
SocialGraphService.ListFollowing (the social feed's graph, reused through the
topology) gives the authors, and one PhotoService.ListRecentPhotos merges
their newest READY photos older than the page's cursor. Each photo id is
unique and ids are time-ordered, so pages are newest first and a photo
appears at most once across them. The social feed's case study measures the
push/pull trade-off; photos are read from the per-author index every time,
which at seed 003's 100:1 read/write ratio is the pull side of it.

Stateless. Status codes: INVALID_ARGUMENT naming ``user_id``, ``page_size``
or ``page_token``; UNAVAILABLE or DEADLINE_EXCEEDED when the graph or
photo-media fail. Metric beyond the gRPC ones: ``casemesh_photo_feed_authors``
(authors merged per page).
"""

from __future__ import annotations

import grpc
from prometheus_client import Histogram

from casemesh.photo.v1 import feed_pb2 as pb
from casemesh.photo.v1 import feed_pb2_grpc as pb_grpc
from casemesh.photo.v1 import media_pb2, media_pb2_grpc
from casemesh.social.v1 import graph_pb2, graph_pb2_grpc

from ...runtime import page_tokens
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ...runtime.errors import dependency_error
from ...social.limits import MAX_FOLLOWING
from ..sizes import DEFAULT_FEED_PAGE_SIZE, MAX_FEED_PAGE_SIZE
from ..validation import page_size, validate_photo_id, validate_user_id

NAME = "photo-feed"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PhotoFeedService"].full_name

#: Deadline of each call to the graph and to photo-media, seconds.
CALL_TIMEOUT_S = 2.0

FEED_AUTHORS = Histogram("casemesh_photo_feed_authors", "Authors merged into one photo-feed page.",
                         buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000))


class PhotoFeedServicer(pb_grpc.PhotoFeedServiceServicer):
    """Reads the follow list, then one merged ListRecentPhotos per page."""

    def __init__(self, graph: graph_pb2_grpc.SocialGraphServiceStub, media: media_pb2_grpc.PhotoServiceStub) -> None:
        self._graph = graph
        self._media = media

    async def GetPhotoFeed(self, request: pb.GetPhotoFeedRequest, context: grpc.aio.ServicerContext) -> pb.GetPhotoFeedResponse:
        user = validate_user_id("user_id", request.user_id)
        size = page_size(request.page_size, default=DEFAULT_FEED_PAGE_SIZE, most=MAX_FEED_PAGE_SIZE)
        before = ""
        if request.page_token:
            before = page_tokens.decode(request.page_token, "photo-feed", user, {"b": str})["b"]
            validate_photo_id(before, "page_token")
        try:
            following = await self._graph.ListFollowing(
                graph_pb2.ListFollowingRequest(user_id=user, page_size=MAX_FOLLOWING), timeout=CALL_TIMEOUT_S)
            authors = [f.user_id for f in following.followees]
            FEED_AUTHORS.observe(len(authors))
            if not authors:
                return pb.GetPhotoFeedResponse()
            recent = await self._media.ListRecentPhotos(
                media_pb2.ListRecentPhotosRequest(author_ids=authors, limit=size + 1, before_photo_id=before),
                timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        photos = list(recent.photos)
        more = len(photos) > size
        photos = photos[:size]
        token = page_tokens.encode("photo-feed", user, {"b": photos[-1].photo_id}) if more else ""
        return pb.GetPhotoFeedResponse(photos=photos, next_page_token=token)


async def build(context: RuntimeContext) -> StatelessComponent:
    servicer = PhotoFeedServicer(graph_pb2_grpc.SocialGraphServiceStub(context.channel("social-graph")),
                                 media_pb2_grpc.PhotoServiceStub(context.channel("photo-media")))
    return StatelessComponent(servicer, pb_grpc.add_PhotoFeedServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("social-graph", "photo-media"), build=build,
    access=Access(public={"GetPhotoFeed"}),
)

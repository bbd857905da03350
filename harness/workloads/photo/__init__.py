"""The photo-sharing workload (Instagram; shared/seeds/003 "Instagram Photo Storage")."""

from __future__ import annotations

from casemesh.photo.v1 import feed_pb2, feed_pb2_grpc, media_pb2, media_pb2_grpc
from casemesh.social.v1 import graph_pb2, graph_pb2_grpc
from casemesh.video.v1 import edge_pb2, edge_pb2_grpc, storage_pb2, storage_pb2_grpc

from ..base import Journey, Workload, entrypoints
from ..social.journeys import NoParams, follow  # the same users and graph: following works as in the social feed
from .journeys import MEASURES, FeedParams, GridParams, LoadParams, UploadParams, feed, load_photo, profile_grid, upload
from .seeding import EDGE, FEED, GRAPH, MEDIA, STORAGE, SeedParams, seed

_SERVICES = {
    MEDIA: (media_pb2, "PhotoService", media_pb2_grpc.PhotoServiceStub),
    FEED: (feed_pb2, "PhotoFeedService", feed_pb2_grpc.PhotoFeedServiceStub),
    GRAPH: (graph_pb2, "SocialGraphService", graph_pb2_grpc.SocialGraphServiceStub),
    STORAGE: (storage_pb2, "ObjectStoreService", storage_pb2_grpc.ObjectStoreServiceStub),
    EDGE: (edge_pb2, "EdgeService", edge_pb2_grpc.EdgeServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

WORKLOAD = Workload(
    name="photo-sharing",
    description="Photo sharing (shared/seeds/003 'Instagram'): uploads resized by Pillow, sizes from the object store "
                "through the CDN edge, feeds of followed users",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("feed", "Read a feed page, then load the MEDIUM images on screen", FeedParams, feed),
            Journey("load_photo", "Open one photo (new or popular) at MEDIUM or LARGE", LoadParams, load_photo),
            Journey("profile_grid", "Open a profile: its newest photos as THUMBNAILs", GridParams, profile_grid),
            Journey("upload_photo", "Upload a photo; a follower re-reads their feed until it shows (photo_visible)",
                    UploadParams, upload),
            Journey("follow", "Follow a new user (preferential attachment)", NoParams, follow),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
)

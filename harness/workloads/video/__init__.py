"""The video-platform workload (shared/seeds/004_718541f717f7b956.txt): playback, browsing, engagement, uploads."""

from __future__ import annotations

from casemesh.video.v1 import catalog_pb2_grpc, edge_pb2_grpc, playback_pb2_grpc, search_pb2_grpc, storage_pb2_grpc, upload_pb2_grpc
from casemesh.video.v1 import catalog_pb2, edge_pb2, playback_pb2, search_pb2, storage_pb2, upload_pb2

from ..base import Journey, Workload, entrypoints
from .catalogue import SeedParams, seed
from .journeys import (FIRST_SEGMENT_HIT, FIRST_SEGMENT_MISS, UPLOAD_PUBLISH, NoParams, PlaybackParams, PopularParams, UploadParams, comment, home_feed, like,
                       playback_start, search, upload)

_SERVICES = {
    "video-catalog": (catalog_pb2, "CatalogService", catalog_pb2_grpc.CatalogServiceStub),
    "video-playback": (playback_pb2, "PlaybackService", playback_pb2_grpc.PlaybackServiceStub),
    "video-edge": (edge_pb2, "EdgeService", edge_pb2_grpc.EdgeServiceStub),
    "video-search": (search_pb2, "SearchService", search_pb2_grpc.SearchServiceStub),
    "video-upload": (upload_pb2, "UploadService", upload_pb2_grpc.UploadServiceStub),
    "video-storage": (storage_pb2, "ObjectStoreService", storage_pb2_grpc.ObjectStoreServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

WORKLOAD = Workload(
    name="video",
    description="Video platform (shared/seeds/004_718541f717f7b956.txt): playback start through the CDN edge, browsing, likes, uploads",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("playback_start", "GetVideo → master playlist → ABR → variant playlist → first segment from the edge", PlaybackParams, playback_start),
            Journey("home_feed", "Read a viewer's home feed (subscriptions, then trending)", NoParams, home_feed),
            Journey("search", "Search videos by a title/tag word", NoParams, search),
            Journey("like", "Like a popular video", PopularParams, like),
            Journey("comment", "Comment on a popular video, then list its comments", PopularParams, comment),
            Journey("upload", "Initiate, stream the bytes to the object store, complete, wait until published", UploadParams, upload),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=(UPLOAD_PUBLISH, FIRST_SEGMENT_HIT, FIRST_SEGMENT_MISS),
)

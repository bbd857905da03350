"""``casemesh.video.v1.SearchService`` (topology name ``video-search``): search published videos by title and tag.

Seed 004, "Search Freshness": the catalogue sends each published video here
in batches (IndexVideos, the seed's "Elasticsearch bulk API"); SearchVideos
never touches the catalogue ("without touching the metadata DB from the
search path"). Mechanisms: ``tokenizer`` (one tokenizer for documents and
queries), ``index.VideoIndex`` (tantivy: inverted index, replace-on-reindex,
AND semantics, BM25 with k1 = 1.2, b = 0.75).

- SearchVideos: INVALID_ARGUMENT naming ``query`` (empty, blank or over 200
  characters), ``page_size`` (not 0..100) or ``page_token`` (not one this
  query returned). Paging is by offset, as the seed's ``page=N``, down to
  ``max_result_window`` hits (Elasticsearch's default 10,000); ``total_hits``
  counts every match. A query without any word (only punctuation) matches nothing.
- IndexVideos: INVALID_ARGUMENT naming ``documents`` or ``documents[i].FIELD``;
  returns once the batch is searchable (commit + reader reload, run in a
  worker thread so searches go on meanwhile); ``indexed`` counts distinct
  video ids (a repeated id is indexed once, the last version winning).

Metrics beyond the gRPC ones: ``casemesh_video_search_index_lag_seconds``
(histogram of now − publish time when a document becomes searchable: the
freshness SLI; documents without a publish time are not observed) and
``casemesh_video_search_documents_indexed_total``.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from prometheus_client import Counter, Histogram

from casemesh.video.v1 import search_pb2 as pb
from casemesh.video.v1 import search_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument
from ...runtime import page_tokens
from .index import IndexedVideo, VideoIndex
from .settings import SearchSettings
from .tokenizer import query_terms
from .validation import page_size, validate_documents, validate_query

NAME = "video-search"
FULL_NAME = pb.DESCRIPTOR.services_by_name["SearchService"].full_name

#: Freshness buckets in seconds: the seed's "~1 second" and "within a few seconds" sit in the middle.
LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

INDEX_LAG = Histogram(
    "casemesh_video_search_index_lag_seconds",
    "Seconds from a video's publish time to the moment it became searchable (seed 004, 'Search Freshness').",
    buckets=LAG_BUCKETS_S,
)
DOCUMENTS_INDEXED = Counter("casemesh_video_search_documents_indexed", "Documents added or replaced in the search index.")


class SearchServicer(pb_grpc.SearchServiceServicer):
    """Validates requests; the index does the work. ``clock`` gives Unix seconds (for the lag)."""

    def __init__(self, index: VideoIndex, settings: SearchSettings, clock=time.time):
        self._index = index
        self._settings = settings
        self._clock = clock
        self._writer = asyncio.Lock()  # one upsert at a time: the index has one writer

    async def SearchVideos(self, request: pb.SearchVideosRequest, context: grpc.aio.ServicerContext) -> pb.SearchVideosResponse:
        validate_query(request.query)
        size = page_size(request.page_size)
        terms = query_terms(request.query)
        scope = " ".join(terms)
        offset = 0
        if request.page_token:
            offset = page_tokens.decode(request.page_token, "search", scope, {"offset": int})["offset"]
        window = self._settings.max_result_window
        if offset >= window:
            raise InvalidArgument("page_token", f"points past the deepest pageable hit ({window})")
        total, hits = self._index.search(terms, offset, min(size, window - offset))
        end = offset + len(hits)
        token = page_tokens.encode("search", scope, {"offset": end}) if hits and end < min(total, window) else ""
        return pb.SearchVideosResponse(
            hits=[pb.SearchHit(video_id=h.video_id, title=h.title, score=h.score) for h in hits],
            total_hits=total, next_page_token=token,
        )

    async def IndexVideos(self, request: pb.IndexVideosRequest, context: grpc.aio.ServicerContext) -> pb.IndexVideosResponse:
        validate_documents(request.documents)
        videos = [IndexedVideo(d.video_id, d.title, tuple(d.tags)) for d in request.documents]
        published_at = {d.video_id: d.publish_time_unix_s for d in request.documents}
        async with self._writer:
            indexed = await asyncio.to_thread(self._index.upsert, videos)
        now = self._clock()
        for publish_s in published_at.values():
            if publish_s > 0:
                INDEX_LAG.observe(max(now - publish_s, 0.0))
        DOCUMENTS_INDEXED.inc(indexed)
        return pb.IndexVideosResponse(indexed=indexed)


class SearchComponent:
    """The servicer and its index (in memory: a restarted video-search is empty until videos are indexed again)."""

    def __init__(self, settings: SearchSettings):
        self.index = VideoIndex(writer_heap_bytes=settings.writer_heap_bytes)
        self.servicer = SearchServicer(self.index, settings)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_SearchServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def build(context: RuntimeContext) -> SearchComponent:
    return SearchComponent(context.settings(NAME, SearchSettings))


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=SearchSettings,
    access=Access(public={"SearchVideos"}, internal={"IndexVideos": ("video-catalog",)}),
)

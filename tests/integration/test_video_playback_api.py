"""The playback plane through real gRPC: playlists from the catalogue, segments from the edge, view starts counted.

Runs video-catalog, video-search, video-storage, video-playback and video-edge
in this process on 127.0.0.1. A published video is made directly (no upload
or transcode): its renditions are put into the object store with
PutRendition, and the catalogue takes it through CreateVideo → MarkProcessing
→ PublishVideo.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import pytest

from casemesh.services.catalog import definitions
from casemesh.services.video.ladder import LADDER, rendition_info
from casemesh.services.video.playback import hls
from casemesh.video.v1 import catalog_pb2, catalog_pb2_grpc, edge_pb2, edge_pb2_grpc
from casemesh.video.v1 import playback_pb2, playback_pb2_grpc, storage_pb2, storage_pb2_grpc
from casemesh.video.v1 import video_pb2 as pb

from .conftest import loopback_topology, start_mesh

SERVICES = ["video-catalog", "video-search", "video-storage", "video-playback", "video-edge"]
FAST_WAN = {"client_rtt_ms": 0, "client_bandwidth_kbps": 0, "origin_rtt_ms": 0, "origin_bandwidth_mbps": 0}
SEED = "ab" * 32
DURATION_S = 3.0  # 2 segments: 2 s and 1 s


class Clients:
    def __init__(self, mesh):
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(mesh.channel("video-catalog"))
        self.storage = storage_pb2_grpc.ObjectStoreServiceStub(mesh.channel("video-storage"))
        self.playback = playback_pb2_grpc.PlaybackServiceStub(mesh.channel("video-playback"))
        self.edge = edge_pb2_grpc.EdgeServiceStub(mesh.channel("video-edge"))

    async def create(self, title="A video") -> str:
        response = await self.catalog.CreateVideo(catalog_pb2.CreateVideoRequest(
            channel_id="chan1", title=title, duration_s=DURATION_S, tags=["test"]))
        return response.video.video_id

    async def publish(self, title="A video") -> tuple[str, int]:
        video_id = await self.create(title)
        generation = (await self.catalog.MarkProcessing(catalog_pb2.MarkProcessingRequest(video_id=video_id))).generation
        renditions = [rendition_info(rung, DURATION_S) for rung in LADDER]
        for info in renditions:
            await self.storage.PutRendition(storage_pb2.PutRenditionRequest(
                video_id=video_id, generation=generation, rendition=info, content_seed=SEED))
        await self.catalog.PublishVideo(catalog_pb2.PublishVideoRequest(
            video_id=video_id, generation=generation, renditions=renditions))
        return video_id, generation

    def stream(self, video_id, generation, rendition, start_index=0, count=1):
        return self.edge.StreamSegments(edge_pb2.StreamSegmentsRequest(
            video_id=video_id, generation=generation, rendition=rendition, start_index=start_index, count=count),
            timeout=20)


@contextlib.asynccontextmanager
async def video_mesh(tmp_path, settings=None, services=SERVICES, extra_endpoints=()):
    chosen = definitions(list(services))
    topology = loopback_topology([*services, *extra_endpoints], data_dir=tmp_path, settings=settings or {})
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield Clients(running) if set(services) == set(SERVICES) else running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def read_segment(call) -> tuple[bytes, set[int], list[edge_pb2.StreamSegmentsResponse]]:
    messages = [m async for m in call]
    return b"".join(m.data for m in messages), {m.cache_result for m in messages}, messages


async def test_playback_start_master_variant_and_first_segment_paced_then_hit(tmp_path):
    # the default WAN model: 40 ms client RTT, 8,000 kbit/s per stream, 80 ms / 200 Mbit/s origin
    async with video_mesh(tmp_path) as c:
        video_id, generation = await c.publish()

        master = await c.playback.GetMasterPlaylist(playback_pb2.GetMasterPlaylistRequest(video_id=video_id))
        assert (master.generation, master.max_age_s) == (generation, 60)
        variants = hls.parse_master(master.playlist).variants
        assert [v.bandwidth_bps for v in variants] == [500_000, 2_500_000, 5_000_000]
        rendition, gen = hls.parse_variant_uri(variants[-1].uri)
        assert (rendition, gen, variants[-1].width_px, variants[-1].height_px) == (pb.RENDITION_1080P, generation, 1920, 1080)

        variant = await c.playback.GetVariantPlaylist(playback_pb2.GetVariantPlaylistRequest(
            video_id=video_id, generation=gen, rendition=rendition))
        media = hls.parse_media(variant.playlist)
        assert [s.duration_s for s in media.segments] == [2.0, 1.0]
        index, segment_gen = hls.parse_segment_uri(media.segments[0].uri)
        assert (index, segment_gen) == (0, generation)

        started = time.perf_counter()
        data, results, messages = await read_segment(c.stream(video_id, segment_gen, rendition, index))
        elapsed = time.perf_counter() - started
        assert len(data) == 1_250_000  # 5 Mbit/s x 2 s / 8
        assert results == {edge_pb2.CACHE_RESULT_MISS}
        assert all(m.segment_size_bytes == 1_250_000 and m.segment_index == 0 for m in messages)
        assert max(len(m.data) for m in messages) == 65_536
        assert elapsed >= 1.2  # 1.25 MB at 8,000 kbit/s: paced (a lower bound only)
        origin = await c.storage.GetSegment(storage_pb2.GetSegmentRequest(
            video_id=video_id, generation=generation, rendition=rendition, index=0))
        assert data == origin.data

        call = c.stream(video_id, segment_gen, rendition, index)  # cached now: only the first chunk is needed
        first = await call.read()
        assert first.cache_result == edge_pb2.CACHE_RESULT_HIT and first.offset_bytes == 0
        call.cancel()


async def test_several_segments_in_one_stream_and_hits_after_the_first(tmp_path):
    async with video_mesh(tmp_path, {"video-edge": FAST_WAN}) as c:
        video_id, generation = await c.publish()
        data, results, messages = await read_segment(c.stream(video_id, generation, pb.RENDITION_360P, 0, 2))
        assert len(data) == 125_000 + 62_500 and results == {edge_pb2.CACHE_RESULT_MISS}
        assert [m.segment_index for m in messages][0] == 0 and messages[-1].segment_index == 1
        _, results, _ = await read_segment(c.stream(video_id, generation, pb.RENDITION_360P, 0, 2))
        assert results == {edge_pb2.CACHE_RESULT_HIT}


async def test_cache_size_zero_always_misses(tmp_path):
    async with video_mesh(tmp_path, {"video-edge": {**FAST_WAN, "cache_bytes": 0}}) as c:
        video_id, generation = await c.publish()
        for _ in range(3):
            data, results, _ = await read_segment(c.stream(video_id, generation, pb.RENDITION_720P))
            assert len(data) == 625_000 and results == {edge_pb2.CACHE_RESULT_MISS}


async def test_errors_name_the_field_and_map_to_status_codes(tmp_path):
    async with video_mesh(tmp_path, {"video-edge": FAST_WAN}) as c:
        video_id, generation = await c.publish()
        unpublished = await c.create("not yet")

        async def code_of(call):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            return error.value.code(), error.value.details()

        Master = playback_pb2.GetMasterPlaylistRequest
        Variant = playback_pb2.GetVariantPlaylistRequest
        assert (await code_of(c.playback.GetMasterPlaylist(Master(video_id="nosuchvideo"))))[0] == grpc.StatusCode.NOT_FOUND
        code, details = await code_of(c.playback.GetMasterPlaylist(Master(video_id=unpublished)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "not published" in details
        code, details = await code_of(c.playback.GetVariantPlaylist(Variant(video_id=video_id, generation=generation)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("rendition:")
        code, details = await code_of(c.playback.GetMasterPlaylist(Master(video_id="bad/id")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("video_id:")
        code, _ = await code_of(c.playback.GetVariantPlaylist(Variant(video_id=video_id, generation=generation + 5,
                                                                      rendition=pb.RENDITION_360P)))
        assert code == grpc.StatusCode.NOT_FOUND

        async def stream_code(**fields):
            request = edge_pb2.StreamSegmentsRequest(**{"video_id": video_id, "generation": generation,
                                                        "rendition": pb.RENDITION_360P, "count": 1, **fields})
            with pytest.raises(grpc.aio.AioRpcError) as error:
                [m async for m in c.edge.StreamSegments(request, timeout=10)]
            return error.value.code(), error.value.details()

        for fields, field in (({"count": 31}, "count"), ({"count": 0}, "count"), ({"start_index": -1}, "start_index"),
                              ({"generation": 0}, "generation"), ({"video_id": ""}, "video_id"),
                              ({"rendition": pb.RENDITION_UNSPECIFIED}, "rendition")):
            code, details = await stream_code(**fields)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), (fields, details)
        assert (await stream_code(start_index=2))[0] == grpc.StatusCode.NOT_FOUND  # past the last segment
        assert (await stream_code(video_id="nosuchvideo"))[0] == grpc.StatusCode.NOT_FOUND


async def test_view_starts_reach_the_catalogue_after_a_flush(tmp_path):
    settings = {"video-playback": {"view_flush_interval_s": 0.1},
                "video-catalog": {"view_snapshot_interval_s": 0.1},
                "video-edge": FAST_WAN}
    async with video_mesh(tmp_path, settings) as c:
        video_id, _ = await c.publish()
        other, _ = await c.publish("another")
        for vid in (video_id, video_id, video_id, other):
            await c.playback.GetMasterPlaylist(playback_pb2.GetMasterPlaylistRequest(video_id=vid))
        await c.playback.GetVariantPlaylist(playback_pb2.GetVariantPlaylistRequest(
            video_id=video_id, generation=1, rendition=pb.RENDITION_360P))  # not a view start

        async def views(vid):
            return (await c.catalog.GetVideo(catalog_pb2.GetVideoRequest(video_id=vid))).video.view_count

        deadline = time.monotonic() + 10
        while (await views(video_id), await views(other)) != (3, 1):
            assert time.monotonic() < deadline, "view starts did not reach the catalogue"
            await asyncio.sleep(0.05)


async def test_origin_unreachable_is_unavailable(tmp_path):
    # the edge alone; video-storage's address has nothing listening
    async with video_mesh(tmp_path, {"video-edge": FAST_WAN}, services=["video-edge"],
                          extra_endpoints=["video-storage"]) as running:
        edge = edge_pb2_grpc.EdgeServiceStub(running.channel("video-edge"))
        request = edge_pb2.StreamSegmentsRequest(video_id="abc", generation=1, rendition=pb.RENDITION_360P, count=1)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            [m async for m in edge.StreamSegments(request, timeout=10)]
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE

"""The playback read path without gRPC: the TTL video cache, generations, and the playlist errors."""

import asyncio

import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.video.ladder import LADDER, rendition_info
from casemesh.services.video.playback import hls
from casemesh.services.video.playback.playlists import Playlists
from casemesh.services.video.playback.validation import (validate_master_request, validate_rendition,
                                                           validate_variant_request)
from casemesh.services.video.playback.video_cache import VideoCache
from casemesh.video.v1 import video_pb2 as pb


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Catalog:
    """In-memory GetVideo: ``videos[id]``; counts calls; ``gate`` holds them."""

    def __init__(self):
        self.videos = {}
        self.calls = 0
        self.gate = None

    def publish(self, video_id, generation, duration_s=5.0, rungs=LADDER, status=pb.VIDEO_STATUS_PUBLISHED):
        self.videos[video_id] = pb.Video(
            video_id=video_id, status=status, generation=generation, duration_s=duration_s,
            renditions=[rendition_info(r, duration_s) for r in rungs] if status == pb.VIDEO_STATUS_PUBLISHED else [])

    async def __call__(self, video_id):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if video_id not in self.videos:
            raise NotFound(video_id)
        video = pb.Video()
        video.CopyFrom(self.videos[video_id])
        return video


@pytest.fixture
def setup():
    catalog, clock = Catalog(), Clock()
    return catalog, clock, Playlists(VideoCache(catalog, ttl_s=60, clock=clock))


async def test_master_and_variant_playlists_of_the_current_generation(setup):
    catalog, _, playlists = setup
    catalog.publish("v1", 2, duration_s=5.0)
    text, generation = await playlists.master("v1", 0)
    assert generation == 2
    assert [v.uri for v in hls.parse_master(text).variants][0] == "360p/index.m3u8?gen=2"
    media = hls.parse_media(await playlists.variant("v1", 2, pb.RENDITION_720P))
    assert [s.duration_s for s in media.segments] == [2.0, 2.0, 1.0]
    assert media.segments[0].uri == "seg-00000.ts?gen=2"


async def test_the_video_is_cached_for_the_ttl(setup):
    catalog, clock, playlists = setup
    catalog.publish("v1", 1)
    for _ in range(3):
        await playlists.master("v1", 0)
    assert catalog.calls == 1
    clock.now += 59
    await playlists.master("v1", 1)
    assert catalog.calls == 1
    clock.now += 2  # past the 60 s TTL
    await playlists.master("v1", 0)
    assert catalog.calls == 2


async def test_a_newer_generation_than_cached_refreshes_at_once(setup):
    catalog, _, playlists = setup
    catalog.publish("v1", 1)
    await playlists.master("v1", 0)
    catalog.publish("v1", 2)  # re-transcoded
    assert (await playlists.master("v1", 0))[1] == 1  # generation 0 takes the cached one (within the TTL)
    text, generation = await playlists.master("v1", 2)
    assert generation == 2 and "?gen=2" in text
    assert (await playlists.master("v1", 0))[1] == 2  # the cache now holds generation 2
    with pytest.raises(NotFound, match="no generation 1"):
        await playlists.variant("v1", 1, pb.RENDITION_360P)  # only the current generation is known
    with pytest.raises(NotFound, match="no generation 3"):
        await playlists.master("v1", 3)


async def test_unknown_and_unpublished_videos(setup):
    catalog, _, playlists = setup
    with pytest.raises(NotFound):
        await playlists.master("nope", 0)
    catalog.publish("v2", 0, status=pb.VIDEO_STATUS_PROCESSING)
    with pytest.raises(FailedPrecondition, match="PROCESSING"):
        await playlists.master("v2", 0)
    catalog.publish("v2", 1)  # published: not cached while unpublished, so playable at once
    assert (await playlists.master("v2", 0))[1] == 1


async def test_a_rendition_the_video_lacks_is_not_found(setup):
    catalog, _, playlists = setup
    catalog.publish("v3", 1, rungs=LADDER[:1])
    with pytest.raises(NotFound, match="1080p"):
        await playlists.variant("v3", 1, pb.RENDITION_1080P)


async def test_concurrent_misses_share_one_catalogue_call(setup):
    catalog, _, playlists = setup
    catalog.publish("v1", 1)
    catalog.gate = asyncio.Event()
    tasks = [asyncio.create_task(playlists.master("v1", 0)) for _ in range(5)]
    await asyncio.sleep(0.01)
    catalog.gate.set()
    assert {g for _, g in await asyncio.gather(*tasks)} == {1}
    assert catalog.calls == 1


def test_validation_names_the_field():
    for args, field in ((("", 0), "video_id"), (("a/b", 0), "video_id"), (("x" * 33, 0), "video_id"),
                        (("ok", -1), "generation")):
        with pytest.raises(InvalidArgument) as error:
            validate_master_request(*args)
        assert error.value.field == field
    for args, field in ((("ok", 0, pb.RENDITION_360P), "generation"), (("ok", 1, pb.RENDITION_UNSPECIFIED), "rendition"),
                        (("ok", 1, 99), "rendition")):
        with pytest.raises(InvalidArgument) as error:
            validate_variant_request(*args)
        assert error.value.field == field
    validate_master_request("Abc_-9", 0)
    validate_variant_request("Abc_-9", 1, pb.RENDITION_1080P)


def test_playback_refuses_photo_sizes_saying_so():
    for rendition in (pb.RENDITION_PHOTO_THUMBNAIL, pb.RENDITION_PHOTO_MEDIUM, pb.RENDITION_PHOTO_LARGE):
        with pytest.raises(InvalidArgument, match=f"got {rendition}: a photo size, not a ladder rung") as error:
            validate_rendition(rendition)
        assert error.value.field == "rendition"
        with pytest.raises(InvalidArgument, match="photo size") as error:
            validate_variant_request("p00000000000000000042", 1, rendition)
        assert error.value.field == "rendition"
    with pytest.raises(InvalidArgument, match="got 99: unknown"):
        validate_rendition(99)
    for rung in LADDER:
        validate_rendition(rung.rendition)

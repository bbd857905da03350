"""video-catalog's domain: life-cycle, generations, likes, comments, subscriptions, channel lists, home feed."""

from __future__ import annotations

import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime import page_tokens
from casemesh.services.video.catalog.comments import CommentStore
from casemesh.services.video.catalog.feed import FeedCursor
from casemesh.services.video.catalog.subscriptions import SubscriptionStore
from casemesh.services.video.catalog.validation import (
    page_size,
    validate_comment,
    validate_create,
    validate_publish,
    validate_views,
)
from casemesh.services.video.catalog.videos import VideoStore, manifest_url
from casemesh.services.video.ladder import BY_NAME, LADDER, rendition_info
from casemesh.video.v1 import video_pb2 as pb


class Clock:
    """A settable Unix clock."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def renditions(duration_s: float = 10.0, names=("360p", "720p", "1080p")):
    return [rendition_info(BY_NAME[name], duration_s) for name in names]


async def published(store: VideoStore, channel: str = "chan", title: str = "a video", generation: int = 1) -> str:
    video = await store.create(channel, title, "", ["tag"], 10.0)
    await store.mark_processing(video.video_id)
    await store.publish(video.video_id, generation, renditions())
    return video.video_id


# --- life-cycle, generations, manifest URLs ---------------------------------------------------


async def test_life_cycle_uploading_processing_published():
    clock = Clock()
    store = VideoStore(clock=clock)
    created = await store.create("chan-1", "My video", "desc", ["a", "b"], 61.5)
    assert created.status == pb.VIDEO_STATUS_UPLOADING
    assert created.generation == 0 and created.manifest_url == "" and not created.HasField("publish_time")
    assert len(created.video_id) == 11 and all(c.isalnum() or c in "-_" for c in created.video_id)
    assert created.create_time.seconds == int(clock.now)

    video, generation = await store.mark_processing(created.video_id)
    assert (video.status, generation) == (pb.VIDEO_STATUS_PROCESSING, 1)
    assert video.manifest_url == ""

    clock.now += 5
    result = await store.publish(created.video_id, 1, renditions(61.5))
    assert result.first_publication
    video = result.video
    assert video.status == pb.VIDEO_STATUS_PUBLISHED and video.generation == 1
    assert video.manifest_url == f"/v/{created.video_id}/master.m3u8?gen=1"
    assert video.publish_time.seconds == int(clock.now)
    assert [r.rendition for r in video.renditions] == [rung.rendition for rung in LADDER]
    assert video.renditions[0].segment_size_bytes == rendition_info(LADDER[0], 61.5).segment_size_bytes
    assert (await store.get(created.video_id)) == video


async def test_mark_processing_is_idempotent_and_never_reserves_twice():
    store = VideoStore()
    video_id = (await store.create("c", "t", "", [], 1.0)).video_id
    assert (await store.mark_processing(video_id))[1] == 1
    assert (await store.mark_processing(video_id))[1] == 1
    await store.publish(video_id, 1, renditions())
    video, generation = await store.mark_processing(video_id)  # a late CompleteUpload retry
    assert generation == 1 and video.status == pb.VIDEO_STATUS_PUBLISHED


async def test_publish_is_idempotent_per_generation_and_ignores_older_ones():
    store = VideoStore()
    video_id = await published(store)
    again = await store.publish(video_id, 1, renditions(names=("360p",)))  # redelivered job
    assert not again.first_publication
    assert again.video.generation == 1 and len(again.video.renditions) == 3  # unchanged

    retranscoded = await store.publish(video_id, 2, renditions(names=("360p", "720p")))
    assert not retranscoded.first_publication
    assert retranscoded.video.generation == 2
    assert retranscoded.video.manifest_url == manifest_url(video_id, 2) == f"/v/{video_id}/master.m3u8?gen=2"
    assert len(retranscoded.video.renditions) == 2

    stale = await store.publish(video_id, 1, renditions())  # an old job finishing late
    assert stale.video.generation == 2 and stale.video.manifest_url.endswith("?gen=2")
    assert (await store.get(video_id)).publish_time == retranscoded.video.publish_time  # first publication time kept


async def test_publish_refuses_an_upload_not_complete_and_unknown_ids():
    store = VideoStore()
    video_id = (await store.create("c", "t", "", [], 1.0)).video_id
    with pytest.raises(FailedPrecondition, match="UPLOADING"):
        await store.publish(video_id, 1, renditions())
    with pytest.raises(NotFound):
        await store.publish("nope", 1, renditions())
    with pytest.raises(NotFound):
        await store.mark_processing("nope")
    with pytest.raises(NotFound):
        await store.get("nope")


async def test_publish_keeps_its_own_copy_of_the_renditions():
    store = VideoStore()
    video = await store.create("c", "t", "", [], 1.0)
    await store.mark_processing(video.video_id)
    infos = renditions()
    await store.publish(video.video_id, 1, infos)
    infos[0].bandwidth_bps = 1
    assert (await store.get(video.video_id)).renditions[0].bandwidth_bps == LADDER[0].bandwidth_bps


# --- likes ------------------------------------------------------------------------------------


async def test_likes_count_once_per_user_and_need_a_published_video():
    store = VideoStore()
    draft = (await store.create("c", "t", "", [], 1.0)).video_id
    with pytest.raises(FailedPrecondition):
        await store.like(draft, "u1")
    with pytest.raises(NotFound):
        await store.like("missing", "u1")
    video_id = await published(store)
    assert await store.like(video_id, "u1") == 1
    assert await store.like(video_id, "u1") == 1
    assert await store.like(video_id, "u2") == 2
    assert (await store.get(video_id)).like_count == 2


# --- comments ---------------------------------------------------------------------------------


async def test_comments_page_newest_first_without_gaps_or_repeats():
    clock = Clock()
    comments = CommentStore(clock=clock)
    for i in range(25):
        clock.now += 1
        await comments.add("v1", f"user{i}", f"comment {i}")
    await comments.add("v2", "x", "elsewhere")

    seen, before, pages = [], None, 0
    while True:
        page, before = await comments.page("v1", before, 10)
        pages += 1
        seen += [c.text for c in page]
        if pages == 1:
            await comments.add("v1", "late", "added while paging")  # must not shift the pages
        if before is None:
            break
    assert pages == 3
    assert seen == [f"comment {i}" for i in reversed(range(25))]
    newest, _ = await comments.page("v1", None, 1)
    assert newest[0].text == "added while paging" and newest[0].video_id == "v1"
    assert newest[0].create_time.seconds == int(clock.now)
    assert await comments.count("v1") == 26
    assert (await comments.page("none", None, 10)) == ([], None)


def test_page_tokens_are_opaque_and_validated():
    token = page_tokens.encode("comments", "v1", {"before": 42})
    assert page_tokens.decode(token, "comments", "v1", {"before": int}) == {"before": 42}
    for bad in ("not a token", "e30", token + "x", "A" * 600):
        with pytest.raises(InvalidArgument) as caught:
            page_tokens.decode(bad, "comments", "v1", {"before": int})
        assert caught.value.field == "page_token"
    with pytest.raises(InvalidArgument, match="another listing"):
        page_tokens.decode(token, "comments", "v2", {"before": int})
    with pytest.raises(InvalidArgument, match="another listing"):
        page_tokens.decode(token, "channel", "v1", {"before": int})
    negative = page_tokens.encode("comments", "v1", {"before": -1})
    with pytest.raises(InvalidArgument):
        page_tokens.decode(negative, "comments", "v1", {"before": int})


# --- subscriptions ----------------------------------------------------------------------------


async def test_subscriptions_are_idempotent_and_read_your_writes():
    subs = SubscriptionStore()
    assert await subs.subscribe("u1", "c1") == 1
    assert await subs.channels("u1") == ["c1"]  # visible to the very next read
    assert await subs.subscribe("u1", "c1") == 1
    assert await subs.subscribe("u2", "c1") == 2
    await subs.subscribe("u1", "c0")
    assert await subs.channels("u1") == ["c0", "c1"]
    assert await subs.unsubscribe("u1", "c1") == 1
    assert await subs.unsubscribe("u1", "c1") == 1
    assert await subs.channels("u1") == ["c0"]
    assert await subs.unsubscribe("u9", "nobody") == 0
    assert await subs.subscriber_count("c1") == 1


# --- channel lists and the home feed ----------------------------------------------------------


async def test_channel_videos_lists_only_published_newest_first_in_pages():
    store = VideoStore()
    ids = [await published(store, "chan", f"v{i}") for i in range(5)]
    await store.create("chan", "draft", "", [], 1.0)
    page1, before = await store.channel_page("chan", None, 3)
    page2, end = await store.channel_page("chan", before, 3)
    assert [v.video_id for v in page1 + page2] == ids[::-1]
    assert end is None
    assert not page1[0].renditions and page1[0].manifest_url  # list view: no renditions
    assert (await store.channel_page("other", None, 3)) == ([], None)


async def make_feed_world():
    """Channels A and B with interleaved publishes, channel C unsubscribed, views set directly."""
    store = VideoStore(trending_size=10)
    order = {}
    for channel, title in [("A", "a1"), ("B", "b1"), ("C", "c1"), ("A", "a2"), ("B", "b2"), ("C", "c2"), ("A", "a3")]:
        order[title] = await published(store, channel, title)
    await store.add_views({order["c1"]: 50, order["c2"]: 70, order["a1"]: 99})
    return store, order


async def feed_titles(store, channels, size, per_channel=10):
    titles, cursor, pages = [], None, 0
    while True:
        videos, cursor = await store.feed_page(channels, cursor, size, per_channel)
        pages += 1
        titles += [v.title for v in videos]
        assert len(videos) <= size
        if cursor is None:
            return titles, pages


async def test_feed_merges_subscriptions_newest_first_then_trending_without_duplicates():
    store, _ = await make_feed_world()
    first, _ = await store.feed_page(["A", "B"], None, 100, 10)
    # Subscriptions merged by publish order (newest first), then trending by views minus those already shown.
    assert [v.title for v in first] == ["a3", "b2", "a2", "b1", "a1", "c2", "c1"]
    for size in (1, 2, 3, 5, 7):
        titles, _ = await feed_titles(store, ["A", "B"], size)
        assert titles == ["a3", "b2", "a2", "b1", "a1", "c2", "c1"], size


async def test_feed_without_subscriptions_is_trending_and_respects_the_per_channel_window():
    store, _ = await make_feed_world()
    titles, _ = await feed_titles(store, [], 2)
    assert titles[:3] == ["a1", "c2", "c1"]  # 99, 70, 50 views, then the unviewed ones newest first
    assert titles[3:] == ["a3", "b2", "a2", "b1"]
    # Only the newest video of each subscribed channel counts as "subscriptions"; the rest may trend.
    titles, _ = await feed_titles(store, ["A"], 10, per_channel=1)
    assert titles[0] == "a3" and titles[1:4] == ["a1", "c2", "c1"]
    assert len(titles) == len(set(titles)) == 7


async def test_feed_subscribe_then_publish_shows_at_once():
    store = VideoStore()
    subs = SubscriptionStore()
    await subs.subscribe("viewer", "creator")
    video_id = await published(store, "creator", "fresh")
    videos, _ = await store.feed_page(await subs.channels("viewer"), None, 20, 10)
    assert videos[0].video_id == video_id


async def test_feed_trending_paging_never_repeats_when_views_grow_between_pages():
    store = VideoStore(trending_size=50)
    ids = [await published(store, f"ch{i}", f"t{i}") for i in range(12)]
    await store.add_views({video_id: 10 * (i + 1) for i, video_id in enumerate(ids)})
    page, cursor = await store.feed_page([], None, 4, 10)
    assert cursor is not None and cursor.part == "t"
    shown = [v.video_id for v in page]
    await store.add_views({shown[-1]: 1000, ids[0]: 5})  # a shown video climbs; an unseen one too
    while cursor is not None:
        page, cursor = await store.feed_page([], cursor, 4, 10)
        shown += [v.video_id for v in page]
    assert len(shown) == len(set(shown))


async def test_feed_cursor_starts_trending_when_a_page_ends_with_the_last_subscription():
    store, _ = await make_feed_world()
    page, cursor = await store.feed_page(["A", "B"], None, 5, 10)
    assert [v.title for v in page] == ["a3", "b2", "a2", "b1", "a1"]
    assert cursor is not None and cursor.part == "t"
    rest, end = await store.feed_page(["A", "B"], cursor, 5, 10)
    assert [v.title for v in rest] == ["c2", "c1"] and end is None
    assert isinstance(cursor, FeedCursor)


async def test_trending_is_by_views_then_newest_and_bounded():
    store = VideoStore(trending_size=2)
    ids = [await published(store, "c", f"t{i}") for i in range(3)]
    assert [v.video_id for v in await store.trending()] == [ids[2], ids[1]]
    await store.add_views({ids[0]: 3})
    assert [v.video_id for v in await store.trending()] == [ids[0], ids[2]]


async def test_unpublished_videos_are_in_no_list():
    store = VideoStore()
    draft = await store.create("c", "t", "", [], 1.0)
    await store.mark_processing(draft.video_id)
    assert await store.trending() == []
    assert (await store.channel_page("c", None, 10)) == ([], None)
    assert (await store.feed_page(["c"], None, 10, 10)) == ([], None)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "field"), [
    (("", "t", "", [], 1.0), "channel_id"),
    (("bad channel", "t", "", [], 1.0), "channel_id"),
    (("c", "  ", "", [], 1.0), "title"),
    (("c", "x" * 101, "", [], 1.0), "title"),
    (("c", "t", "d" * 5001, [], 1.0), "description"),
    (("c", "t", "", ["t"] * 16, 1.0), "tags"),
    (("c", "t", "", ["ok", "has space"], 1.0), "tags[1]"),
    (("c", "t", "", ["x" * 31], 1.0), "tags[0]"),
    (("c", "t", "", [], 0.0), "duration_s"),
    (("c", "t", "", [], 43_200.5), "duration_s"),
    (("c", "t", "", [], float("nan")), "duration_s"),
])
def test_create_validation_names_the_field(args, field):
    with pytest.raises(InvalidArgument) as caught:
        validate_create(*args)
    assert caught.value.field == field


def test_publish_validation_names_the_field():
    good = renditions()
    validate_publish("abc", 1, good)
    cases = [
        (("", 1, good), "video_id"),
        (("a/b", 1, good), "video_id"),
        (("abc", 0, good), "generation"),
        (("abc", 1, []), "renditions"),
        (("abc", 1, [pb.RenditionInfo()]), "renditions[0].rendition"),
        (("abc", 1, good + [rendition_info(LADDER[0], 5.0)]), "renditions[3].rendition"),
    ]
    empty_sizes = pb.RenditionInfo()
    empty_sizes.CopyFrom(good[0])
    del empty_sizes.segment_size_bytes[:]
    cases.append((("abc", 1, [empty_sizes]), "renditions[0].segment_size_bytes"))
    for args, field in cases:
        with pytest.raises(InvalidArgument) as caught:
            validate_publish(*args)
        assert caught.value.field == field, args


def test_publish_refuses_photo_sizes_which_are_stored_but_not_played():
    good = renditions()
    for rendition in (pb.RENDITION_PHOTO_THUMBNAIL, pb.RENDITION_PHOTO_MEDIUM, pb.RENDITION_PHOTO_LARGE):
        photo = pb.RenditionInfo()
        photo.CopyFrom(good[0])  # otherwise valid: only the rendition is wrong
        photo.rendition = rendition
        for args, field in ((("abc", 1, [photo]), "renditions[0].rendition"),
                            (("abc", 1, good[:2] + [photo]), "renditions[2].rendition")):
            with pytest.raises(InvalidArgument, match="ladder") as caught:
                validate_publish(*args)
            assert caught.value.field == field, (rendition, field)


def test_other_validators():
    assert page_size(0) == 20 and page_size(100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidArgument, match="page_size"):
            page_size(bad)
    with pytest.raises(InvalidArgument) as caught:
        validate_comment("v", "u", " \n")
    assert caught.value.field == "text"
    with pytest.raises(InvalidArgument) as caught:
        validate_comment("v", "u", "x" * 10_001)
    assert caught.value.field == "text"
    for views in ([], [("", 1)], [("v", 0)], [("v", 1_000_000_001)]):
        with pytest.raises(InvalidArgument) as caught:
            validate_views(views)
        assert caught.value.field == "views"


async def test_ids_are_unique_and_collisions_retry():
    ids = iter(["same", "same", "other"])
    store = VideoStore(new_id=lambda: next(ids))
    first = await store.create("c", "t", "", [], 1.0)
    second = await store.create("c", "t", "", [], 1.0)
    assert (first.video_id, second.video_id) == ("same", "other")
    stuck = VideoStore(new_id=lambda: "x")
    await stuck.create("c", "t", "", [], 1.0)
    with pytest.raises(RuntimeError):
        await stuck.create("c", "t", "", [], 1.0)

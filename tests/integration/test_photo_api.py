"""Photo sharing through real gRPC: what a user relies on under concurrent clients, in both pre-generation modes, and
after bad input.

Runs photo-media, photo-resizer, photo-feed, social-graph, video-storage,
video-edge and idgen in this process on 127.0.0.1, the edge with a free WAN
and a 64 KiB cache (sizes are evicted and read again from the origin). The
main mesh pre-generates every size on upload (the default); a second one,
used by the lazy-mode tests only, makes every size on its first request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from casemesh.photo.v1 import feed_pb2, media_pb2, photo_pb2
from casemesh.services.catalog import definitions
from casemesh.services.runtime import page_tokens
from casemesh.video.v1 import edge_pb2, video_pb2

from .conftest import loopback_topology, start_mesh
from .photo_sharing import (EDGE_SETTINGS, MEDIA, READY, SERVICES, SIZE_VALUES, TIMEOUT_S, Client, check_size, colour,
                            make_photo, size_of)

pytestmark = pytest.mark.asyncio(loop_scope="module")

THUMBNAIL, MEDIUM, LARGE = photo_pb2.PHOTO_SIZE_THUMBNAIL, photo_pb2.PHOTO_SIZE_MEDIUM, photo_pb2.PHOTO_SIZE_LARGE
#: Originals of the concurrent run: wider and narrower than each size, landscape, portrait, square, an odd ratio.
DIMENSIONS = [(800, 600), (1200, 900), (640, 960), (1333, 777), (300, 500), (120, 90), (1080, 1080), (2000, 700)]
UNKNOWN_PHOTO = "p" + "9" * 20


@contextlib.asynccontextmanager
async def photo_mesh(data_dir, media_settings: dict):
    topology = loopback_topology(SERVICES, data_dir, settings={"video-edge": EDGE_SETTINGS, MEDIA: media_settings})
    running, stop, task = await start_mesh(definitions(SERVICES), topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory):
    """A client of the mesh that pre-generates every size on upload (the default)."""
    async with photo_mesh(tmp_path_factory.mktemp("photo-data"), {}) as mesh:
        yield Client(mesh.channel)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lazy_client(tmp_path_factory):
    """A client of a mesh that makes every size on its first request (``pregenerate_sizes: []``)."""
    async with photo_mesh(tmp_path_factory.mktemp("photo-lazy-data"), {"pregenerate_sizes": []}) as mesh:
        yield Client(mesh.channel)


# -- many concurrent clients --------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    """An acknowledged upload: its author and the original it was made from."""

    photo_id: str
    author: str
    index: int
    width_px: int
    height_px: int
    caption: str


@dataclass
class Population:
    """Users, who follows whom, the acknowledged uploads, and what readers saw wrong while uploads ran."""

    users: list[str]
    authors: list[str]
    following: dict[str, set[str]]
    photos: dict[str, Uploaded] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    #: Each author's listing once settled (set by the listing test), to compare after the bad-input tests.
    settled: dict[str, list[photo_pb2.Photo]] = field(default_factory=dict)


def _listing_violations(where: str, photos: list[photo_pb2.Photo], allowed_authors: set[str]) -> list[str]:
    """What is wrong with a listing at any moment: a repeat, not newest first, not READY, a size not ready, a stranger."""
    ids = [p.photo_id for p in photos]
    wrong = []
    if len(ids) != len(set(ids)):
        wrong.append(f"{where}: a photo listed twice: {ids}")
    if ids != sorted(ids, reverse=True):
        wrong.append(f"{where}: not newest first: {ids}")
    for p in photos:
        if p.status != READY or len(p.sizes) != 3 or not all(r.ready for r in p.sizes):
            wrong.append(f"{where}: {p.photo_id} listed while {photo_pb2.PhotoStatus.Name(p.status)} "
                         f"with sizes ready {[r.ready for r in p.sizes]}")
        if p.author_id not in allowed_authors:
            wrong.append(f"{where}: {p.photo_id} of {p.author_id}, who is not followed")
    return wrong


def users_following_nobody(population: Population) -> list[str]:
    return [u for u, f in population.following.items() if not f]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def population(client) -> Population:
    """20 users (15 of them authors) and a follow graph; 12 clients upload 60 photos while 3 others read feeds and
    profile grids (the readers note every listing that is wrong at the moment they read it)."""
    rng = random.Random(20)
    users = [f"pop-{i:02d}" for i in range(20)]
    authors = users[:15]
    following = {u: set(rng.sample([a for a in authors if a != u], rng.randint(1, 5))) for u in users[:17]}
    following.update({u: set() for u in users[17:]})  # three users follow nobody: their feeds stay empty
    following["pop-16"].add("pop-19")  # a followee who never posts
    await client.follow_all(following)
    pop = Population(users, authors, following)
    todo = iter(range(60))
    uploading = True

    async def uploader() -> None:
        for i in todo:
            author = authors[i % len(authors)]
            width, height = DIMENSIONS[i % len(DIMENSIONS)]
            data = make_photo(i, width, height, fmt="PNG" if i % 10 == 7 else "JPEG")
            caption = f"photo {i} by {author}"
            photo = await client.upload(author, data, caption, chunk_bytes=4096 if i % 3 == 0 else 1 << 20)
            assert photo.status in (photo_pb2.PHOTO_STATUS_PROCESSING, READY), photo
            assert (photo.author_id, photo.caption, photo.width_px, photo.height_px) == (author, caption, width, height)
            pop.photos[photo.photo_id] = Uploaded(photo.photo_id, author, i, width, height, caption)

    async def reader(seed: int) -> None:
        r = random.Random(seed)
        while uploading:
            user = r.choice(users)
            pop.violations += _listing_violations(f"{user}'s feed", await client.feed_all(user, page_size=r.randint(1, 9)),
                                                  following[user])
            author = r.choice(authors)
            pop.violations += _listing_violations(f"{author}'s photos", await client.user_photos(author, r.randint(1, 9)),
                                                  {author})
            pop.reads += 2

    readers = [asyncio.create_task(reader(seed)) for seed in range(3)]
    try:
        await asyncio.gather(*(uploader() for _ in range(12)))
    finally:
        uploading = False
        await asyncio.gather(*readers)
    return pop


async def test_every_acknowledged_photo_is_ready_and_listed_exactly_once_newest_first(client, population):
    await client.settle()
    assert len(population.photos) == 60 and population.reads > 0
    assert population.violations == []  # nothing wrong was ever listed while uploads ran
    by_author: dict[str, list[str]] = {}
    for up in population.photos.values():
        by_author.setdefault(up.author, []).append(up.photo_id)
    for author in population.authors:
        listed = await client.user_photos(author, page_size=3)
        assert [p.photo_id for p in listed] == sorted(by_author[author], reverse=True), author
        assert _listing_violations(author, listed, {author}) == []
        for p in listed:
            up = population.photos[p.photo_id]
            assert (p.caption, p.width_px, p.height_px) == (up.caption, up.width_px, up.height_px)
        population.settled[author] = listed
    for user in population.users:
        feed = await client.feed_all(user)
        expected = sorted((pid for pid, up in population.photos.items() if up.author in population.following[user]),
                          reverse=True)
        assert [p.photo_id for p in feed] == expected, f"{user}'s feed"
        assert _listing_violations(user, feed, population.following[user]) == []
    for user in users_following_nobody(population):
        assert await client.feed_all(user) == []
    status = await client.status()
    assert status.photos_ready >= 60 and status.renders_on_upload >= 180


async def test_every_size_streams_whole_matches_its_ref_and_its_photo(client, population):
    await client.settle()
    work: list[tuple[Uploaded, photo_pb2.SizeRef]] = []
    for up in population.photos.values():
        got = await client.get(up.photo_id)
        assert got.photo.status == READY and not got.HasField("ref")
        for size in SIZE_VALUES:
            ref = size_of(got.photo, size)
            again = await client.get(up.photo_id, size)  # asking for a pre-generated size renders nothing
            assert again.ref == ref and not again.rendered_now
            work.append((up, ref))
    first: dict[tuple[str, int], bytes] = {}
    results: list[set[int]] = []
    gate = asyncio.Semaphore(8)

    async def read(up: Uploaded, ref: photo_pb2.SizeRef) -> None:
        async with gate:
            data, cache = await client.stream_size(ref)
        what = f"photo {up.index} ({up.photo_id}) {photo_pb2.PhotoSize.Name(ref.size)}"
        check_size(data, ref, (up.width_px, up.height_px), colour(up.index), what)
        if (up.photo_id, ref.size) in first:
            assert data == first[up.photo_id, ref.size], f"{what}: other bytes on the second read"
            results.append(cache)
        else:
            first[up.photo_id, ref.size] = data

    await asyncio.gather(*(read(up, ref) for up, ref in work))
    assert sum(map(len, first.values())) > 4 * EDGE_SETTINGS["cache_bytes"]  # far more than the edge cache holds
    await asyncio.gather(*(read(up, ref) for up, ref in work))
    assert any(edge_pb2.CACHE_RESULT_MISS in cache for cache in results)  # some were evicted and read from the origin
    owners: dict[str, set[str]] = {}
    for up, ref in work:
        owners.setdefault(ref.sha256_hex, set()).add(up.photo_id)
    assert all(len(photos) == 1 for photos in owners.values())  # no two photos share bytes
    for up in population.photos.values():  # sizes of one photo differ unless the original was too narrow for them
        refs = [ref for u, ref in work if u is up]
        widths = {ref.width_px: ref.sha256_hex for ref in refs}
        assert len({ref.sha256_hex for ref in refs}) == len(widths), f"photo {up.index}: {refs}"


# -- sizes made on first request -------------------------------------------------


async def test_lazy_photo_is_ready_and_listed_at_complete(lazy_client):
    client = lazy_client
    await client.follow_all({"lazy-fan": {"lazy-author"}})
    before = await client.status()
    photo = await client.upload("lazy-author", make_photo(1, 1333, 777), "now")
    assert photo.status == READY
    for ref in photo.sizes:  # dimensions known, bytes not made yet
        assert not ref.ready and ref.size_bytes == 0 and ref.sha256_hex == "" and ref.object_id == photo.photo_id
    assert [(r.width_px, r.height_px) for r in photo.sizes] == [(150, 87), (640, 373), (1080, 630)]
    assert [p.photo_id for p in await client.user_photos("lazy-author")][0] == photo.photo_id  # no queue to wait for
    assert [p.photo_id for p in await client.feed_all("lazy-fan")][0] == photo.photo_id
    after = await client.status()
    assert after.photos_processing == 0 and after.photos_ready == before.photos_ready + 1
    assert after.renders_on_upload == 0 and after.renders_on_request == before.renders_on_request


async def test_lazy_concurrent_first_requests_share_one_render(lazy_client):
    client = lazy_client
    photo = await client.upload("lazy-herd", make_photo(2, 1200, 900))
    before = await client.status()
    answers = await asyncio.gather(*(client.get(photo.photo_id, MEDIUM) for _ in range(20)))
    assert sum(a.rendered_now for a in answers) == 1
    assert len({a.ref.sha256_hex for a in answers}) == 1 and all(a.ref.ready for a in answers)
    assert (await client.status()).renders_on_request == before.renders_on_request + 1
    ref = answers[0].ref
    check_size(await client.fetch_size(ref), ref, (1200, 900), colour(2), "lazy MEDIUM")
    again = await client.get(photo.photo_id, MEDIUM)
    assert not again.rendered_now and again.ref == ref
    listed = (await client.user_photos("lazy-herd"))[0]
    assert [r.ready for r in listed.sizes] == [False, True, False] and size_of(listed, MEDIUM) == ref

    # The two other sizes at once, ten requests each: one render per size.
    answers = await asyncio.gather(*(client.get(photo.photo_id, size) for size in [THUMBNAIL, LARGE] * 10))
    for size in (THUMBNAIL, LARGE):
        mine = [a for a in answers if a.ref.size == size]
        assert sum(a.rendered_now for a in mine) == 1 and len({a.ref.sha256_hex for a in mine}) == 1
        check_size(await client.fetch_size(mine[0].ref), mine[0].ref, (1200, 900), colour(2), f"lazy {size}")
    assert (await client.status()).renders_on_request == before.renders_on_request + 3


async def test_sizes_made_on_request_are_the_bytes_made_on_upload(client, lazy_client):
    data = make_photo(3, 1600, 1200)
    eager = await client.upload("same-bytes", data)
    lazy = await lazy_client.upload("same-bytes", data)
    await client.settle()
    eager = (await client.get(eager.photo_id)).photo
    for size in (LARGE, THUMBNAIL, MEDIUM):  # one size a call, in another order than the upload's one call
        ref = (await lazy_client.get(lazy.photo_id, size)).ref
        assert ref.sha256_hex == size_of(eager, size).sha256_hex
        assert (ref.width_px, ref.height_px, ref.size_bytes) == (size_of(eager, size).width_px,
                                                                 size_of(eager, size).height_px, size_of(eager, size).size_bytes)


# -- bad input ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def baseline(client) -> list[photo_pb2.Photo]:
    """Three settled photos of ``base-author`` (followed by ``base-fan``), before any bad input."""
    await client.follow_all({"base-fan": {"base-author"}})
    for i in range(3):
        await client.upload("base-author", make_photo(100 + i, 900, 600), f"base {i}")
    await client.settle()
    return await client.user_photos("base-author")


async def assert_unchanged(client: Client, baseline: list[photo_pb2.Photo]) -> None:
    assert await client.user_photos("base-author") == baseline
    assert await client.feed_all("base-fan") == baseline


async def _status_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_a_text_file_uploaded_as_a_photo_is_rejected_for_good(client, baseline):
    await client.follow_all({"text-fan": {"text-author"}})
    before = await client.status()
    data = b"Dear diary, this is not a photo.\n" * 300
    initiated = await client.initiate("text-author", data)
    await client.put(initiated.upload_token, data)
    pid = initiated.photo_id
    refused = await _status_error(client.complete(pid))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and pid in refused.details(), refused.details()
    for call in (client.complete(pid), client.get(pid), client.get(pid, MEDIUM)):
        refused = await _status_error(call)
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and "rejected" in refused.details(), refused.details()
    assert await client.user_photos("text-author") == [] and await client.feed_all("text-fan") == []
    after = await client.status()
    assert after.photos_rejected == before.photos_rejected + 1 and after.photos_ready == before.photos_ready
    await assert_unchanged(client, baseline)


async def test_complete_before_the_upload_finished_names_both_counts_then_succeeds(client, baseline):
    data = make_photo(110, 1200, 900, quality=95)
    half = len(data) // 2
    initiated = await client.initiate("partial-author", data)
    pid = initiated.photo_id
    refused = await _status_error(client.complete(pid))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and f"0 of {len(data)} bytes" in refused.details(), refused.details()
    stored = await client.put(initiated.upload_token, data[:half], chunk_bytes=4096)
    assert (stored.stored_bytes, stored.expected_size_bytes) == (half, len(data))
    refused = await _status_error(client.complete(pid))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and f"{half} of {len(data)} bytes" in refused.details(), refused.details()
    refused = await _status_error(client.get(pid))  # still uploading: not viewable
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert await client.user_photos("partial-author") == []

    stored = await client.put(initiated.upload_token, data, chunk_bytes=4096, start=half)  # resumed where it stopped
    assert stored.stored_bytes == len(data)
    photo = await client.complete(pid)
    assert photo.status in (photo_pb2.PHOTO_STATUS_PROCESSING, READY) and (photo.width_px, photo.height_px) == (1200, 900)
    assert (await client.complete(pid)).photo_id == pid  # completing again returns it as it is
    await client.settle()
    [listed] = await client.user_photos("partial-author")
    assert listed.photo_id == pid and listed.status == READY
    for ref in listed.sizes:
        check_size(await client.fetch_size(ref), ref, (1200, 900), colour(110), f"resumed upload {ref.size}")
    await assert_unchanged(client, baseline)


def _forge(token: str, **changes) -> str:
    """``token`` with its payload's fields changed (its MAC left as it was)."""
    version, kid, payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{version}.{kid}.{payload}.{mac}"


async def test_an_altered_upload_token_is_unauthenticated(client, baseline):
    data = make_photo(111, 640, 480)
    mine = await client.initiate("token-author", data)
    theirs = await client.initiate("token-victim", data)
    token = mine.upload_token
    mac_flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for forged in (_forge(token, k=theirs.object_key, v=theirs.photo_id),  # my grant, pointed at another photo's key
                   _forge(token, s=len(data) * 100),  # a larger size than declared
                   mac_flipped):
        refused = await _status_error(client.put(forged, data))
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused.details()
        assert forged not in refused.details()
    refused = await _status_error(client.complete(theirs.photo_id))  # nothing reached the other photo's key
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and f"0 of {len(data)}" in refused.details()
    await client.put(token, data)  # the genuine token still works
    assert (await client.complete(mine.photo_id)).photo_id == mine.photo_id
    await client.settle()
    await assert_unchanged(client, baseline)


def _feed(user="base-fan", page_size=0, page_token=""):
    return lambda c: c.feed.GetPhotoFeed(feed_pb2.GetPhotoFeedRequest(user_id=user, page_size=page_size,
                                                                     page_token=page_token), timeout=TIMEOUT_S)


def _grid(author="base-author", page_size=0, page_token=""):
    return lambda c: c.media.ListUserPhotos(media_pb2.ListUserPhotosRequest(author_id=author, page_size=page_size,
                                                                            page_token=page_token), timeout=TIMEOUT_S)


def _initiate(author="base-author", size=1000, caption=""):
    return lambda c: c.media.InitiatePhotoUpload(media_pb2.InitiatePhotoUploadRequest(
        author_id=author, caption=caption, file_size_bytes=size), timeout=TIMEOUT_S)


@pytest.mark.parametrize("call, field", [
    (lambda c: c.get(""), "photo_id"),
    (lambda c: c.get("p123"), "photo_id"),
    (lambda c: c.get("P" + "0" * 20), "photo_id"),
    (lambda c: c.get("p" + "0" * 19 + "x"), "photo_id"),
    (lambda c: c.get(UNKNOWN_PHOTO, 9), "size"),
    (lambda c: c.get(UNKNOWN_PHOTO, -1), "size"),
    (lambda c: c.complete("photo-1"), "photo_id"),
    (_initiate(size=(10 << 20) + 1), "file_size_bytes"),
    (_initiate(size=0), "file_size_bytes"),
    (_initiate(size=-5), "file_size_bytes"),
    (_initiate(author="bad id!"), "author_id"),
    (_initiate(author=""), "author_id"),
    (_initiate(caption="x" * 2201), "caption"),
    (_grid(page_size=61), "page_size"),
    (_grid(page_size=-1), "page_size"),
    (_grid(page_token="garbage"), "page_token"),
    (_grid(page_token=page_tokens.encode("user-photos", "base-author", {"b": "not-a-photo"})), "page_token"),
    (_grid(page_token=page_tokens.encode("user-photos", "someone-else", {"b": UNKNOWN_PHOTO})), "page_token"),
    (_grid(author="a/b"), "author_id"),
    (_feed(page_size=51), "page_size"),
    (_feed(page_size=-3), "page_size"),
    (_feed(page_token="%%%"), "page_token"),
    (_feed(page_token=page_tokens.encode("photo-feed", "someone-else", {"b": UNKNOWN_PHOTO})), "page_token"),
    (_feed(page_token=page_tokens.encode("user-photos", "base-fan", {"b": UNKNOWN_PHOTO})), "page_token"),
    (_feed(user=""), "user_id"),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_bad_input_is_invalid_argument_naming_the_field_and_loses_nothing(client, baseline, call, field):
    refused = await _status_error(call(client))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.details().startswith(f"{field}:"), refused.details()
    await assert_unchanged(client, baseline)


async def test_real_page_tokens_work_only_for_their_own_listing(client, baseline):
    page = await _grid(page_size=1)(client)
    assert len(page.photos) == 1 and page.next_page_token
    rest = await _grid(page_size=60, page_token=page.next_page_token)(client)
    assert [p.photo_id for p in [*page.photos, *rest.photos]] == [p.photo_id for p in baseline]
    for call in (_grid(author="someone-else", page_token=page.next_page_token), _feed(page_token=page.next_page_token)):
        refused = await _status_error(call(client))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.details().startswith("page_token:")
    feed_page = await _feed(page_size=1)(client)
    refused = await _status_error(_feed(user="text-fan", page_token=feed_page.next_page_token)(client))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.details().startswith("page_token:")


async def test_unknown_photos_are_not_found(client, baseline):
    uploading = await client.initiate("never-uploads", b"x" * 10)
    for call in (client.get(UNKNOWN_PHOTO), client.get(UNKNOWN_PHOTO, MEDIUM), client.complete(UNKNOWN_PHOTO),
                 client.get(uploading.photo_id), client.get(uploading.photo_id, THUMBNAIL)):
        refused = await _status_error(call)
        assert refused.code() == grpc.StatusCode.NOT_FOUND, refused.details()
    missing = photo_pb2.SizeRef(object_id=UNKNOWN_PHOTO, generation=1, rendition=video_pb2.RENDITION_PHOTO_MEDIUM)
    refused = await _status_error(client.fetch_size(missing))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    await assert_unchanged(client, baseline)


async def test_after_all_bad_input_the_earlier_photos_are_unchanged(client, baseline, population):
    await assert_unchanged(client, baseline)
    for photo in baseline:
        for ref in photo.sizes:
            assert hashlib.sha256(await client.fetch_size(ref)).hexdigest() == ref.sha256_hex
    for author, listed in population.settled.items():
        assert await client.user_photos(author, page_size=3) == listed

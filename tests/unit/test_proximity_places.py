"""proximity-places (services/proximity/places): the domain without gRPC, then the servicer over real gRPC on 127.0.0.1.

Validation errors name the proto field (``places[3].point.lat_deg``, the first bad place, a repeated id); a search
returns exactly the places a scan finds, nearest first, ties by id, and paging through it with the page tokens visits
each once (hypothesis, at several index resolutions, any category or one); a category search sees only its
category; a token of another search (centre, radius, category) or a malformed one is refused; CreatePlaces is
idempotent for identical places and all-or-nothing otherwise (ALREADY_EXISTS and RESOURCE_EXHAUSTED store nothing,
also on disk); concurrent creates of one id store it once; a cancelled caller's write still lands; what was
acknowledged is there after reopening the SQLite file, what was deleted is not; one failing write of a group commit
fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import sqlite3

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import places_pb2, places_pb2_grpc
from casemesh.services.proximity import contract
from casemesh.services.proximity.places import validation
from casemesh.services.proximity.places.catalog import Places, encode_token
from casemesh.services.proximity.places.service import DEFINITION, NAME, PlacesServicer
from casemesh.services.proximity.places.settings import PlacesSettings
from casemesh.services.proximity.places.store import PlaceRecord, PlaceStore, StoreUnavailable
from casemesh.services.proximity.places.validation import SearchQuery
from casemesh.services.runtime import page_tokens
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

RESTAURANT = places_pb2.PLACE_CATEGORY_RESTAURANT
CAFE = places_pb2.PLACE_CATEGORY_CAFE
MUSEUM = places_pb2.PLACE_CATEGORY_MUSEUM
ANY = places_pb2.PLACE_CATEGORY_UNSPECIFIED
SF = (37.7749, -122.4194)
WAIT_S = 5.0
AREA = contract.SERVICE_AREA


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m`` north and ``east_m`` east of (lat, lng), kept inside the service area."""
    new_lat = lat + math.degrees(north_m / 6_371_008.8)
    new_lng = lng + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(new_lat))))
    return (min(max(new_lat, AREA.south_deg), AREA.north_deg), min(max(new_lng, AREA.west_deg), AREA.east_deg))


def record(place_id: str, point: tuple[float, float] = SF, category: int = RESTAURANT, name: str = "",
           rating: int = 40) -> PlaceRecord:
    return PlaceRecord(place_id, name or f"Place {place_id}", category, point[0], point[1], rating)


def proto(place_id: str = "p1", name: str = "Tartine", category: int = CAFE, lat: float = SF[0],
          lng: float = SF[1], rating: int = 45, point: bool = True) -> places_pb2.Place:
    message = places_pb2.Place(place_id=place_id, name=name, category=category, rating_tenths=rating)
    if point:
        message.point.CopyFrom(geo_pb2.LatLng(lat_deg=lat, lng_deg=lng))
    return message


def make(tmp_path=None, **changes) -> Places:
    store = PlaceStore(tmp_path / "places.sqlite" if tmp_path is not None else None)
    return Places(PlacesSettings(**changes), store)


def query(center: tuple[float, float] = SF, radius_m: float = 1_000, category: int = ANY, page_size: int = 20,
          page_token: str = "") -> SearchQuery:
    return SearchQuery(center[0], center[1], radius_m, category, page_size, page_token)


def brute_force(places: list[PlaceRecord], center: tuple[float, float], radius_m: float,
                category: int) -> list[tuple[str, float]]:
    found = []
    for place in places:
        d = contract.distance_m(center[0], center[1], place.lat_deg, place.lng_deg)
        if d <= radius_m and category in (ANY, place.category):
            found.append((place.place_id, d))
    return sorted(found, key=lambda hit: (hit[1], hit[0]))


async def page_through(places: Places, first: SearchQuery) -> tuple[list[tuple[str, float]], int]:
    """Every page of a search, following next_page_token: the hits in order and the number of pages."""
    seen: list[tuple[str, float]] = []
    token = ""
    pages = 0
    while True:
        page = await places.search(first._replace(page_token=token))
        pages += 1
        assert pages <= len(places) + 1, "paging does not end"
        assert len(page.hits) <= first.page_size
        seen.extend((place.place_id, d) for place, d in page.hits)
        token = page.next_page_token
        if not token:
            return seen, pages
        assert len(page.hits) == first.page_size  # a page before the last is full


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("places", "field"), [
    ([], "places"),
    ([proto(place_id=f"p{i}") for i in range(1_001)], "places"),
    ([proto(place_id="")], "places[0].place_id"),
    ([proto(place_id="no spaces")], "places[0].place_id"),
    ([proto(place_id="x" * 65)], "places[0].place_id"),
    ([proto(place_id="a"), proto(place_id="b"), proto(place_id="a")], "places[2].place_id"),
    ([proto(name="")], "places[0].name"),
    ([proto(name="x" * 201)], "places[0].name"),
    ([proto(name="bell\x07")], "places[0].name"),
    ([proto(name="next line\x85")], "places[0].name"),
    ([proto(name="tab\there")], "places[0].name"),
    ([proto(category=ANY)], "places[0].category"),
    ([proto(category=99)], "places[0].category"),
    ([proto(point=False)], "places[0].point"),
    ([proto(lat=91)], "places[0].point.lat_deg"),
    ([proto(lng=float("nan"))], "places[0].point.lng_deg"),
    ([proto(lat=40.7, lng=-74.0)], "places[0].point"),  # New York: outside the service area
    ([proto(rating=-1)], "places[0].rating_tenths"),
    ([proto(rating=51)], "places[0].rating_tenths"),
    # The first bad place is named, with its first bad field in the proto's order.
    ([proto(place_id="a"), proto(place_id="b", name="", rating=99), proto(place_id="a")], "places[1].name"),
    ([proto(place_id="a"), proto(place_id="b"), proto(place_id="c", lat=37.0, rating=99)], "places[2].point"),
])
def test_create_validation_names_the_field(places, field):
    with pytest.raises(InvalidArgument) as error:
        validation.create(places_pb2.CreatePlacesRequest(places=places))
    assert error.value.field == field


def test_create_validation_accepts_the_limits():
    places = [proto(place_id=f"p-{i}_X", name="é" * 200, rating=50 if i % 2 else 0,
                    lat=AREA.north_deg if i % 2 else AREA.south_deg, lng=AREA.east_deg) for i in range(1_000)]
    records = validation.create(places_pb2.CreatePlacesRequest(places=places))
    assert len(records) == 1_000 and records[1] == PlaceRecord("p-1_X", "é" * 200, CAFE, AREA.north_deg,
                                                               AREA.east_deg, 50)
    assert records[1].to_proto() == places[1]


@pytest.mark.parametrize(("changes", "field"), [
    ({"center": None}, "center"),
    ({"center": (91.0, SF[1])}, "center.lat_deg"),
    ({"center": (SF[0], float("inf"))}, "center.lng_deg"),
    ({"center": (40.7, -74.0)}, "center"),
    ({"radius_m": 0.5}, "radius_m"),
    ({"radius_m": 50_001}, "radius_m"),
    ({"radius_m": float("nan")}, "radius_m"),
    ({"category": 11}, "category"),
    ({"category": -1}, "category"),
    ({"page_size": -1}, "page_size"),
    ({"page_size": 101}, "page_size"),
])
def test_search_validation_names_the_field(changes, field):
    request = places_pb2.SearchPlacesRequest(center=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=1_000)
    for key, value in changes.items():
        if key == "center":
            request.ClearField("center")
            if value is not None:
                request.center.CopyFrom(geo_pb2.LatLng(lat_deg=value[0], lng_deg=value[1]))
        else:
            setattr(request, key, value)
    with pytest.raises(InvalidArgument) as error:
        validation.search(request)
    assert error.value.field == field


def test_search_validation_defaults_and_limits():
    request = places_pb2.SearchPlacesRequest(center=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=1)
    assert validation.search(request) == query(radius_m=1, page_size=contract.DEFAULT_PAGE_SIZE)
    request.radius_m, request.page_size, request.category = 50_000, 100, MUSEUM
    assert validation.search(request) == query(radius_m=50_000, page_size=100, category=MUSEUM)
    with pytest.raises(InvalidArgument) as error:
        validation.place_id("")
    assert error.value.field == "place_id"


def test_settings_are_checked():
    assert PlacesSettings().index_resolution == 9 and PlacesSettings().shard_resolution == 5
    for bad in ({"shard_resolution": 9}, {"index_resolution": 13}, {"index_resolution": 3}, {"max_places": 0},
                {"commit_batch": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            PlacesSettings(**bad)
    assert PlacesSettings(index_resolution=5, shard_resolution=4).index_resolution == 5


def test_the_definition_makes_every_rpc_public():
    assert DEFINITION.name == NAME == "proximity-places"
    assert DEFINITION.access.public == {"CreatePlaces", "GetPlace", "DeletePlace", "SearchPlaces"}
    assert DEFINITION.settings_model is PlacesSettings


# ----------------------------------------------------------------------------- search


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Places on a grid of 300 m steps, up to three at a point: exact ties in distance.
    grid=st.lists(st.tuples(st.integers(-15, 15), st.integers(-15, 15), st.sampled_from([RESTAURANT, CAFE, MUSEUM])),
                  min_size=0, max_size=60),
    copies=st.integers(1, 3),
    shuffle=st.randoms(use_true_random=False),
    resolution=st.sampled_from([7, 8, 9]),
    center=st.tuples(st.floats(-2_000, 2_000), st.floats(-2_000, 2_000)) | st.just((0.0, 0.0)),
    radius_m=st.floats(1, 6_000),
    category=st.sampled_from([ANY, RESTAURANT, CAFE, MUSEUM]),
    page_size=st.integers(1, 8),
)
def test_paging_through_a_search_returns_the_scan_once_in_order(grid, copies, shuffle, resolution, center, radius_m,
                                                                category, page_size):
    ids = [f"p{n}" for n in range(len(grid) * copies)]
    shuffle.shuffle(ids)  # id order unrelated to creation order
    records = [record(ids[i * copies + c], offset(*SF, north * 300, east * 300), kind)
               for i, (north, east, kind) in enumerate(grid) for c in range(copies)]
    point = offset(*SF, *center)

    async def run():
        places = make(index_resolution=resolution, shard_resolution=resolution - 3)
        for start in range(0, len(records), 25):
            await places.create(records[start:start + 25])
        return await page_through(places, query(point, radius_m, category, page_size))

    seen, pages = asyncio.run(run())
    expected = brute_force(records, point, radius_m, category)
    assert seen == expected  # no place lost, none repeated, nearest first, ties by id
    assert pages == max(1, math.ceil(len(expected) / page_size))


async def test_a_category_search_sees_only_its_category_and_reads_only_its_own_index():
    places = make()
    rng = random.Random(4)
    dense = [record(f"r{i}", offset(*SF, rng.uniform(-300, 300), rng.uniform(-300, 300)), RESTAURANT)
             for i in range(300)]
    museum = record("m1", offset(*SF, 1_500, 0), MUSEUM)
    await places.create(dense)
    await places.create([museum, record("c1", offset(*SF, 50, 0), CAFE)])
    page = await places.search(query(radius_m=3_000, category=MUSEUM, page_size=5))
    assert [(p.place_id, round(d)) for p, d in page.hits] == [("m1", 1_500)] and page.next_page_token == ""
    page = await places.search(query(radius_m=3_000, category=CAFE, page_size=5))
    assert [p.place_id for p, _ in page.hits] == ["c1"]
    page = await places.search(query(radius_m=3_000, page_size=5))
    assert len(page.hits) == 5 and all(p.place_id != "m1" for p, _ in page.hits) and page.next_page_token
    assert places.index(MUSEUM).get("m1") is not None and places.index(MUSEUM).get("r1") is None
    assert len(places.index(ANY)) == 302 and len(places.index(RESTAURANT)) == 300
    everything, _ = await page_through(places, query(radius_m=3_000, page_size=100))
    assert len(everything) == 302 and everything[-1][0] == "m1"
    cells = REGISTRY.get_sample_value("casemesh_proximity_places_search_cells_count", {"category": "museum"})
    assert cells is not None and cells >= 1
    assert REGISTRY.get_sample_value("casemesh_proximity_places_indexed", {"category": "restaurant"}) == 300


async def test_an_empty_search_and_an_exact_page():
    places = make()
    page = await places.search(query())
    assert page.hits == [] and page.next_page_token == "" and page.cells_searched == 0
    await places.create([record(f"p{i}", offset(*SF, 10 * i, 0)) for i in range(4)])
    first = await places.search(query(page_size=2))
    assert [p.place_id for p, _ in first.hits] == ["p0", "p1"] and first.next_page_token
    second = await places.search(query(page_size=2, page_token=first.next_page_token))
    assert [p.place_id for p, _ in second.hits] == ["p2", "p3"] and second.next_page_token == ""


async def test_tokens_of_another_search_or_malformed_are_refused():
    places = make()
    await places.create([record(f"p{i}", offset(*SF, 10 * i, 0), CAFE) for i in range(5)])
    first = query(radius_m=1_000, category=CAFE, page_size=2)
    token = (await places.search(first)).next_page_token
    assert token
    others = [query(offset(*SF, 1, 0), 1_000, CAFE, 2),
              query(SF, 1_001, CAFE, 2), query(SF, 1_000, ANY, 2), query(SF, 1_000, RESTAURANT, 2)]
    for other in others:
        with pytest.raises(InvalidArgument) as error:
            await places.search(other._replace(page_token=token))
        assert error.value.field == "page_token"
    # Another page size is the same search: the token is good.
    assert [p.place_id for p, _ in (await places.search(first._replace(page_size=3, page_token=token))).hits] == \
        ["p2", "p3", "p4"]
    scope = f"{SF[0]!r},{SF[1]!r},{1_000.0!r},{CAFE}"
    bad_tokens = ["!!!", "x" * 600, page_tokens.encode("comments", scope, {"d": "1.0", "id": "p1"}),
                  page_tokens.encode("places", scope, {"d": "nan", "id": "p1"}),
                  page_tokens.encode("places", scope, {"d": "-1.0", "id": "p1"}),
                  page_tokens.encode("places", scope, {"d": "one", "id": "p1"}),
                  page_tokens.encode("places", scope, {"d": "1.0", "id": "not an id"}),
                  page_tokens.encode("places", scope, {"d": 1, "id": "p1"}),
                  page_tokens.encode("places", scope, {"id": "p1"})]
    for bad in bad_tokens:
        with pytest.raises(InvalidArgument) as error:
            await places.search(first._replace(page_token=bad))
        assert error.value.field == "page_token"
    good = encode_token(first, 10.0, "p1")  # a hand-made token of the same search moves the cursor only
    assert [p.place_id for p, _ in (await places.search(first._replace(page_token=good))).hits] == ["p2", "p3"]


# ----------------------------------------------------------------------------- writes


async def test_create_is_idempotent_for_identical_places():
    places = make()
    a, b, c = record("a"), record("b", offset(*SF, 100, 0)), record("c", offset(*SF, 200, 0))
    assert await places.create([a, b]) == 2
    assert await places.create([b, a]) == 0
    assert await places.create([a, b, c]) == 1
    assert places.get("c") == c and len(places) == 3
    seen, _ = await page_through(places, query(page_size=1))
    assert [place_id for place_id, _ in seen] == ["a", "b", "c"]


async def test_already_exists_names_the_id_and_stores_nothing(tmp_path):
    places = make(tmp_path)
    await places.create([record("a")])
    with pytest.raises(AlreadyExists) as error:
        await places.create([record("new1"), record("a", rating=10), record("new2")])
    assert "a" in str(error.value).split()
    with pytest.raises(AlreadyExists):
        await places.create([record("new1"), record("a", name="Other name")])
    for place_id in ("new1", "new2"):
        with pytest.raises(NotFound):
            places.get(place_id)
    assert [p.place_id for p, _ in (await places.search(query())).hits] == ["a"]
    await places.close()
    reopened = make(tmp_path)
    assert await reopened.load() == 1 and reopened.get("a") == record("a")
    await reopened.close()


async def test_max_places_refuses_the_whole_batch():
    places = make(max_places=3)
    assert await places.create([record("a"), record("b")]) == 2
    with pytest.raises(ResourceExhausted):
        await places.create([record("c"), record("d")])
    assert len(places) == 2
    assert await places.create([record("a"), record("c")]) == 1  # the existing one does not count twice
    assert await places.create([record("a")]) == 0


async def test_places_survive_a_reopen_and_deletes_too(tmp_path):
    places = make(tmp_path)
    created = [record(f"p{i}", offset(*SF, 37 * i, -20 * i), [RESTAURANT, CAFE, MUSEUM][i % 3], rating=i)
               for i in range(50)]
    assert await asyncio.gather(*(places.create(created[i:i + 10]) for i in range(0, 50, 10))) == [10] * 5
    assert (await places.delete("p7")).place_id == "p7"
    with pytest.raises(NotFound):
        await places.delete("p7")
    with pytest.raises(NotFound):
        places.get("p7")
    await places.close()

    reopened = make(tmp_path)
    assert await reopened.load() == 49
    assert reopened.get("p3") == created[3]
    with pytest.raises(NotFound):
        reopened.get("p7")
    remaining = [p for p in created if p.place_id != "p7"]
    for category in (ANY, CAFE):
        seen, _ = await page_through(reopened, query(radius_m=5_000, category=category, page_size=7))
        assert seen == brute_force(remaining, SF, 5_000, category)
    assert len(reopened.index(MUSEUM)) == len([p for p in remaining if p.category == MUSEUM])
    await reopened.close()
    with sqlite3.connect(tmp_path / "places.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM places").fetchone() == (49,)


async def test_concurrent_creates_of_one_id_store_it_once(tmp_path):
    places = make(tmp_path)
    identical = [places.create([record("same"), record(f"own{i}", offset(*SF, i, 0))]) for i in range(10)]
    assert sorted(await asyncio.gather(*identical)) == [1] * 9 + [2]
    rivals = await asyncio.gather(*(places.create([record("rival", rating=i)]) for i in range(10)),
                                  return_exceptions=True)
    assert sum(result == 1 for result in rivals) == 1
    assert all(isinstance(result, AlreadyExists) for result in rivals if result != 1)
    winner = places.get("rival")
    # Create, delete and create again, all at once: applied in call order, each after the other's write.
    results = await asyncio.gather(places.delete("rival"), places.create([record("rival", rating=3)]),
                                   places.delete("rival"), return_exceptions=True)
    assert results[0] == winner and results[1] == 1 and results[2].rating_tenths == 3
    await places.close()
    reopened = make(tmp_path)
    assert await reopened.load() == 11
    assert {p.place_id for p in [reopened.get("same")]} == {"same"}
    with pytest.raises(NotFound):
        reopened.get("rival")
    await reopened.close()


async def test_a_cancelled_callers_write_still_lands(tmp_path):
    places = make(tmp_path)
    task = asyncio.create_task(places.create([record("a"), record("b")]))
    await asyncio.sleep(0)  # the write is queued (waiting on the disk)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await places.close()  # waits for the writes under way
    assert places.get("a") == record("a") and places.index(ANY).get("b") is not None
    reopened = make(tmp_path)
    assert await reopened.load() == 2
    await reopened.close()


async def test_a_failed_write_leaves_nothing_visible(tmp_path):
    places = make(tmp_path)
    await places.create([record("a")])
    await places.store.close()
    with pytest.raises(StoreUnavailable):
        await places.create([record("b")])
    with pytest.raises(NotFound):
        places.get("b")
    with pytest.raises(StoreUnavailable):
        await places.delete("a")
    assert places.get("a") == record("a") and places.index(ANY).get("a") is not None
    assert not places._busy  # nothing left claimed: the next write is not blocked


async def test_one_bad_write_of_a_group_commit_fails_alone(tmp_path):
    store = PlaceStore(tmp_path / "places.sqlite")
    await store.insert([record("a")])
    results = await asyncio.gather(store.insert([record("b")]), store.insert([record("c"), record("a")]),
                                   store.insert([record("d")]), store.delete("b"), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], StoreUnavailable) and results[2:] == [None, None]
    assert sorted(p.place_id for p in await store.load()) == ["a", "d"]  # "c" went with its failed batch
    await store.close()


# ----------------------------------------------------------------------------- over gRPC


@contextlib.asynccontextmanager
async def served(places: Places):
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    places_pb2_grpc.add_PlacesServiceServicer_to_server(PlacesServicer(places), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield places_pb2_grpc.PlacesServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_over_grpc_create_get_search_delete_and_status_codes(tmp_path):
    places = make(tmp_path)
    async with served(places) as stub:
        batch = [proto(place_id=f"p{i}", lat=offset(*SF, 20 * i, 0)[0], category=CAFE if i % 2 else RESTAURANT)
                 for i in range(5)]
        created = await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=batch), timeout=WAIT_S)
        assert created.created == 5
        again = await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=batch[:2]), timeout=WAIT_S)
        assert again.created == 0
        got = await stub.GetPlace(places_pb2.GetPlaceRequest(place_id="p3"), timeout=WAIT_S)
        assert got.place == batch[3]

        center = geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1])
        first = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(center=center, radius_m=1_000, page_size=3),
                                        timeout=WAIT_S)
        assert [h.place.place_id for h in first.places] == ["p0", "p1", "p2"] and first.cells_searched >= 1
        assert first.places[1].distance_m == pytest.approx(20, abs=0.01) and first.next_page_token
        second = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(
            center=center, radius_m=1_000, page_size=3, page_token=first.next_page_token), timeout=WAIT_S)
        assert [h.place.place_id for h in second.places] == ["p3", "p4"] and second.next_page_token == ""
        cafes = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(center=center, radius_m=1_000, category=CAFE),
                                        timeout=WAIT_S)
        assert [h.place.place_id for h in cafes.places] == ["p1", "p3"]

        code, details = await _code(stub.SearchPlaces(places_pb2.SearchPlacesRequest(
            center=center, radius_m=1_000, category=CAFE, page_token=first.next_page_token), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("page_token")
        code, details = await _code(stub.SearchPlaces(places_pb2.SearchPlacesRequest(radius_m=1_000),
                                                      timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("center")
        bad = [proto(place_id="q0"), proto(place_id="q1", lat=95)]
        code, details = await _code(stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=bad), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("places[1].point.lat_deg")
        changed = [proto(place_id="q0"), proto(place_id="p2", name="Renamed")]
        code, details = await _code(stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=changed),
                                                      timeout=WAIT_S))
        assert code == grpc.StatusCode.ALREADY_EXISTS and "p2" in details
        code, _ = await _code(stub.GetPlace(places_pb2.GetPlaceRequest(place_id="q0"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(stub.GetPlace(places_pb2.GetPlaceRequest(place_id="bad id"), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("place_id")

        await stub.DeletePlace(places_pb2.DeletePlaceRequest(place_id="p0"), timeout=WAIT_S)
        code, _ = await _code(stub.DeletePlace(places_pb2.DeletePlaceRequest(place_id="p0"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        after = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(center=center, radius_m=1_000),
                                        timeout=WAIT_S)
        assert [h.place.place_id for h in after.places] == ["p1", "p2", "p3", "p4"]

        await places.store.close()  # the disk is gone: writes answer UNAVAILABLE, reads go on
        code, _ = await _code(stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=[proto(place_id="z")]),
                                                timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert (await stub.GetPlace(places_pb2.GetPlaceRequest(place_id="p1"), timeout=WAIT_S)).place == batch[1]

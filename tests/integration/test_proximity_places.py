"""Places search and location tracking through real gRPC: radius search by category with pagination, the places
surviving a restart, nearby entities, and bad input.

CASE-STUDY.md points 3 and 8 for the proximity service (seed 001 #29, shared/seeds/001_58dfc580020147d2.txt line 51:
"radius search ... real-time location updates"): a search returns exactly the places within the radius, nearest
first, and paging through it neither loses nor repeats a place; a bad request is INVALID_ARGUMENT naming the field
and stores nothing.
"""

from __future__ import annotations

import random

import grpc
import pytest

from casemesh.proximity.v1 import places_pb2, places_pb2_grpc, tracker_pb2, tracker_pb2_grpc
from casemesh.services.proximity.contract import distance_m

from .proximity import CENTRE, near, point, position, proximity_mesh

CATEGORIES = [places_pb2.PLACE_CATEGORY_RESTAURANT, places_pb2.PLACE_CATEGORY_CAFE, places_pb2.PLACE_CATEGORY_MUSEUM]


def _places(n: int, seed: int = 7) -> list[places_pb2.Place]:
    rng = random.Random(seed)
    return [places_pb2.Place(place_id=f"p{i:04d}", name=f"Place {i}", category=rng.choice(CATEGORIES),
                             point=near(rng.uniform(-3_000, 3_000), rng.uniform(-3_000, 3_000)),
                             rating_tenths=rng.randint(0, 50)) for i in range(n)]


def _brute_force(places, radius_m: float, category: int) -> list[str]:
    hits = [(distance_m(CENTRE[0], CENTRE[1], p.point.lat_deg, p.point.lng_deg), p.place_id) for p in places
            if category in (places_pb2.PLACE_CATEGORY_UNSPECIFIED, p.category)]
    return [place_id for d, place_id in sorted(hits) if d <= radius_m]


async def _all_pages(stub, radius_m: float, category: int, page_size: int) -> list[str]:
    found, token = [], ""
    while True:
        page = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(
            center=point(*CENTRE), radius_m=radius_m, category=category, page_size=page_size, page_token=token),
            timeout=10)
        assert len(page.places) <= page_size
        distances = [hit.distance_m for hit in page.places]
        assert distances == sorted(distances)
        found += [hit.place.place_id for hit in page.places]
        token = page.next_page_token
        if not token:
            return found


@pytest.mark.asyncio
async def test_search_pages_through_exactly_the_places_in_the_radius_and_survives_a_restart(tmp_path):
    places = _places(600)
    async with proximity_mesh(tmp_path) as mesh:
        stub = places_pb2_grpc.PlacesServiceStub(mesh.channel("proximity-places"))
        for start in range(0, len(places), 250):
            created = await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=places[start:start + 250]),
                                              timeout=10)
            assert created.created == len(places[start:start + 250])
        # A retried batch is no error and creates nothing.
        assert (await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=places[:10]), timeout=10)).created == 0
        for radius_m, category in ((1_500, places_pb2.PLACE_CATEGORY_UNSPECIFIED),
                                   (2_500, places_pb2.PLACE_CATEGORY_MUSEUM), (800, places_pb2.PLACE_CATEGORY_CAFE)):
            assert await _all_pages(stub, radius_m, category, 7) == _brute_force(places, radius_m, category)

        # A page token belongs to its search.
        first = await stub.SearchPlaces(places_pb2.SearchPlacesRequest(center=point(*CENTRE), radius_m=1_500,
                                                                       page_size=5), timeout=10)
        assert first.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SearchPlaces(places_pb2.SearchPlacesRequest(center=point(*CENTRE), radius_m=1_600, page_size=5,
                                                                   page_token=first.next_page_token), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in refused.value.details()

        # A bad batch stores nothing: the good places before the bad one are not created either.
        bad = [places_pb2.Place(place_id="new-1", name="Fine", category=places_pb2.PLACE_CATEGORY_BAR,
                                point=near(0, 0)),
               places_pb2.Place(place_id="new-2", name="Off the map", category=places_pb2.PLACE_CATEGORY_BAR,
                                point=point(91, -122.4))]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=bad), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "places[1].point.lat_deg" in refused.value.details()
        changed = places_pb2.Place()
        changed.CopyFrom(places[0])
        changed.name = "Renamed"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreatePlaces(places_pb2.CreatePlacesRequest(places=[bad[0], changed]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS and places[0].place_id in refused.value.details()
        for place_id in ("new-1", "new-2"):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetPlace(places_pb2.GetPlaceRequest(place_id=place_id), timeout=10)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert (await stub.GetPlace(places_pb2.GetPlaceRequest(place_id=places[0].place_id), timeout=10)).place == \
            places[0]
        await stub.DeletePlace(places_pb2.DeletePlaceRequest(place_id=places[1].place_id), timeout=10)

        for request, field in (
                (places_pb2.SearchPlacesRequest(radius_m=100), "center"),
                (places_pb2.SearchPlacesRequest(center=point(*CENTRE), radius_m=0), "radius_m"),
                (places_pb2.SearchPlacesRequest(center=point(*CENTRE), radius_m=100, page_size=101), "page_size"),
                (places_pb2.SearchPlacesRequest(center=point(*CENTRE), radius_m=100, category=99), "category"),
                (places_pb2.SearchPlacesRequest(center=point(37.9, -122.4), radius_m=100), "center")):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SearchPlaces(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in refused.value.details()

    # A restart (the same data folder) finds every place acknowledged, and not the deleted one.
    async with proximity_mesh(tmp_path) as mesh:
        stub = places_pb2_grpc.PlacesServiceStub(mesh.channel("proximity-places"))
        remaining = [p for p in places if p.place_id != places[1].place_id]
        assert await _all_pages(stub, 2_000, places_pb2.PLACE_CATEGORY_UNSPECIFIED, 50) == \
            _brute_force(remaining, 2_000, places_pb2.PLACE_CATEGORY_UNSPECIFIED)


@pytest.mark.asyncio
async def test_tracked_entities_are_found_nearby_and_a_bad_batch_ends_the_stream_naming_the_field(tmp_path):
    async with proximity_mesh(tmp_path) as mesh:
        stub = tracker_pb2_grpc.TrackerServiceStub(mesh.channel("proximity-tracker"))
        call = stub.StreamPositions(timeout=30)
        offsets = [(100 * i, 0) for i in range(10)]
        await call.write(tracker_pb2.StreamPositionsRequest(
            batch_id=1, positions=[position(f"e{i}", 1, near(*at)) for i, at in enumerate(offsets)]))
        assert (await call.read()).applied == 10
        # Newer positions apply; an older one is stale and skipped.
        await call.write(tracker_pb2.StreamPositionsRequest(batch_id=2, positions=[
            position("e0", 2, near(0, 50)), position("e1", 1, near(-5_000, 0))]))
        ack = await call.read()
        assert (ack.batch_id, ack.applied, ack.stale) == (2, 1, 1)
        # A bad batch ends the stream naming the field, and applies nothing of itself.
        await call.write(tracker_pb2.StreamPositionsRequest(batch_id=3, positions=[
            position("e2", 5, near(0, 0)), position("e3", 0, near(0, 0))]))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "positions[1].sequence" in refused.value.details()

        assert (await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="e2"), timeout=10)).position.sequence == 1
        nearby = await stub.FindNearbyEntities(tracker_pb2.FindNearbyEntitiesRequest(
            center=near(0, 0), radius_m=350, limit=3), timeout=10)
        assert [e.position.entity_id for e in nearby.entities] == ["e0", "e1", "e2"]
        assert nearby.entities[0].position.sequence == 2
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="nobody"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.FindNearbyEntities(tracker_pb2.FindNearbyEntitiesRequest(center=near(0, 0), radius_m=100,
                                                                                limit=0), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in refused.value.details()

"""proximity-places' input rules, as protos/casemesh/proximity/v1/places.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``places[3].point.lat_deg``). The shared rules are the contract's (:mod:`services.proximity.contract`: the service
area, the name and rating limits, the batch size, the radius and page size), the identifier rule
(services/runtime/identifiers.py) and the geospatial checks (services/geo/validation.py). The page token is checked
by the search itself (:meth:`.catalog.Places.search`), which knows the search it belongs to.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from casemesh.proximity.v1 import places_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract
from .store import PlaceRecord

UNSPECIFIED = places_pb2.PLACE_CATEGORY_UNSPECIFIED
#: The categories a place may have: every PlaceCategory value but UNSPECIFIED.
CATEGORIES: frozenset[int] = frozenset(
    value.number for value in places_pb2.PlaceCategory.DESCRIPTOR.values if value.number != UNSPECIFIED)
#: Control characters (Unicode category Cc: C0, DEL and C1), refused in names.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name(field: str, value: str) -> str:
    """A place's display name: 1 to 200 characters (code points), none of them a control character."""
    if not value:
        raise InvalidArgument(field, f"is required (1 to {contract.MAX_NAME_CHARS} characters)")
    if len(value) > contract.MAX_NAME_CHARS:
        raise InvalidArgument(field, f"has {len(value):,} characters; at most {contract.MAX_NAME_CHARS}")
    control = _CONTROL.search(value)
    if control is not None:
        raise InvalidArgument(field, f"holds a control character (U+{ord(control.group()):04X}) at "
                                     f"{control.start()}")
    return value


def place(field: str, message: places_pb2.Place) -> PlaceRecord:
    """A ``casemesh.proximity.v1.Place`` at ``field`` (``places[3]``): INVALID_ARGUMENT naming ``FIELD.place_id``,
    ``FIELD.name``, ``FIELD.category`` (UNSPECIFIED or unknown), ``FIELD.point``, ``FIELD.point.lat_deg``,
    ``FIELD.point.lng_deg`` (missing, out of range, outside the service area) or ``FIELD.rating_tenths`` (not 0 to
    50), the first bad one in that (the proto's) order."""
    place_id = required_id(f"{field}.place_id", message.place_id)
    display = name(f"{field}.name", message.name)
    if message.category not in CATEGORIES:
        reason = ("is required (not PLACE_CATEGORY_UNSPECIFIED)" if message.category == UNSPECIFIED
                  else f"{message.category} is not a PlaceCategory")
        raise InvalidArgument(f"{field}.category", reason)
    lat, lng = geo.point(f"{field}.point", message.point, message.HasField("point"), contract.SERVICE_AREA)
    if not 0 <= message.rating_tenths <= contract.MAX_RATING_TENTHS:
        raise InvalidArgument(f"{field}.rating_tenths",
                              f"{message.rating_tenths} is not 0 to {contract.MAX_RATING_TENTHS} tenths of a star")
    return PlaceRecord(place_id, display, message.category, lat, lng, message.rating_tenths)


def create(request: places_pb2.CreatePlacesRequest) -> list[PlaceRecord]:
    """The places of a CreatePlaces, all valid: INVALID_ARGUMENT naming ``places`` (none, or over 1,000), else the
    first bad field of the first bad place (:func:`place`), or ``places[i].place_id`` when place ``i`` repeats the
    id of an earlier one."""
    count = len(request.places)
    if not 1 <= count <= contract.MAX_BATCH:
        raise InvalidArgument("places", f"holds {count:,} places; 1 to {contract.MAX_BATCH:,}")
    records: list[PlaceRecord] = []
    first: dict[str, int] = {}
    for i, message in enumerate(request.places):
        place_id = required_id(f"places[{i}].place_id", message.place_id)
        earlier = first.setdefault(place_id, i)
        if earlier != i:
            raise InvalidArgument(f"places[{i}].place_id",
                                  f"{place_id!r} is places[{earlier}]'s id too (each id at most once per request)")
        records.append(place(f"places[{i}]", message))
    return records


def place_id(value: str) -> str:
    """The ``place_id`` of GetPlace or DeletePlace: INVALID_ARGUMENT naming ``place_id``."""
    return required_id("place_id", value)


class SearchQuery(NamedTuple):
    """A valid SearchPlaces request: centre (degrees), radius (metres), category (UNSPECIFIED: any), page size (1 to
    100) and the page token as sent (``""``: the first page; checked by the search)."""

    lat_deg: float
    lng_deg: float
    radius_m: float
    category: int
    page_size: int
    page_token: str = ""


def search(request: places_pb2.SearchPlacesRequest) -> SearchQuery:
    """INVALID_ARGUMENT naming ``center``, ``center.lat_deg``, ``center.lng_deg``, ``radius_m`` (not 1 to 50,000),
    ``category`` (not a known value) or ``page_size`` (not 0 to 100; 0 means 20)."""
    lat, lng = geo.point("center", request.center, request.HasField("center"), contract.SERVICE_AREA)
    radius_m = geo.radius("radius_m", request.radius_m, contract.MAX_RADIUS_M)
    if request.category != UNSPECIFIED and request.category not in CATEGORIES:
        raise InvalidArgument("category", f"{request.category} is not a PlaceCategory (UNSPECIFIED: any)")
    if not 0 <= request.page_size <= contract.MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"{request.page_size} is not 0 to {contract.MAX_PAGE_SIZE} "
                                           f"(0 means {contract.DEFAULT_PAGE_SIZE})")
    return SearchQuery(lat, lng, radius_m, request.category, request.page_size or contract.DEFAULT_PAGE_SIZE,
                       request.page_token)

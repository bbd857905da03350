from casemesh.common.v1 import geo_pb2 as _geo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlaceCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACE_CATEGORY_UNSPECIFIED: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_RESTAURANT: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_CAFE: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_BAR: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_GROCERY: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_SHOP: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_HOTEL: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_PHARMACY: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_GYM: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_FUEL: _ClassVar[PlaceCategory]
    PLACE_CATEGORY_MUSEUM: _ClassVar[PlaceCategory]
PLACE_CATEGORY_UNSPECIFIED: PlaceCategory
PLACE_CATEGORY_RESTAURANT: PlaceCategory
PLACE_CATEGORY_CAFE: PlaceCategory
PLACE_CATEGORY_BAR: PlaceCategory
PLACE_CATEGORY_GROCERY: PlaceCategory
PLACE_CATEGORY_SHOP: PlaceCategory
PLACE_CATEGORY_HOTEL: PlaceCategory
PLACE_CATEGORY_PHARMACY: PlaceCategory
PLACE_CATEGORY_GYM: PlaceCategory
PLACE_CATEGORY_FUEL: PlaceCategory
PLACE_CATEGORY_MUSEUM: PlaceCategory

class Place(_message.Message):
    __slots__ = ("place_id", "name", "category", "point", "rating_tenths")
    PLACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    RATING_TENTHS_FIELD_NUMBER: _ClassVar[int]
    place_id: str
    name: str
    category: PlaceCategory
    point: _geo_pb2.LatLng
    rating_tenths: int
    def __init__(self, place_id: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[_Union[PlaceCategory, str]] = ..., point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., rating_tenths: _Optional[int] = ...) -> None: ...

class CreatePlacesRequest(_message.Message):
    __slots__ = ("places",)
    PLACES_FIELD_NUMBER: _ClassVar[int]
    places: _containers.RepeatedCompositeFieldContainer[Place]
    def __init__(self, places: _Optional[_Iterable[_Union[Place, _Mapping]]] = ...) -> None: ...

class CreatePlacesResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: int
    def __init__(self, created: _Optional[int] = ...) -> None: ...

class GetPlaceRequest(_message.Message):
    __slots__ = ("place_id",)
    PLACE_ID_FIELD_NUMBER: _ClassVar[int]
    place_id: str
    def __init__(self, place_id: _Optional[str] = ...) -> None: ...

class GetPlaceResponse(_message.Message):
    __slots__ = ("place",)
    PLACE_FIELD_NUMBER: _ClassVar[int]
    place: Place
    def __init__(self, place: _Optional[_Union[Place, _Mapping]] = ...) -> None: ...

class DeletePlaceRequest(_message.Message):
    __slots__ = ("place_id",)
    PLACE_ID_FIELD_NUMBER: _ClassVar[int]
    place_id: str
    def __init__(self, place_id: _Optional[str] = ...) -> None: ...

class DeletePlaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SearchPlacesRequest(_message.Message):
    __slots__ = ("center", "radius_m", "category", "page_size", "page_token")
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    center: _geo_pb2.LatLng
    radius_m: float
    category: PlaceCategory
    page_size: int
    page_token: str
    def __init__(self, center: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., radius_m: _Optional[float] = ..., category: _Optional[_Union[PlaceCategory, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PlaceHit(_message.Message):
    __slots__ = ("place", "distance_m")
    PLACE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    place: Place
    distance_m: float
    def __init__(self, place: _Optional[_Union[Place, _Mapping]] = ..., distance_m: _Optional[float] = ...) -> None: ...

class SearchPlacesResponse(_message.Message):
    __slots__ = ("places", "next_page_token", "cells_searched")
    PLACES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CELLS_SEARCHED_FIELD_NUMBER: _ClassVar[int]
    places: _containers.RepeatedCompositeFieldContainer[PlaceHit]
    next_page_token: str
    cells_searched: int
    def __init__(self, places: _Optional[_Iterable[_Union[PlaceHit, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., cells_searched: _Optional[int] = ...) -> None: ...

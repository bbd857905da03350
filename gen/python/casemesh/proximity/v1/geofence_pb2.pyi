from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.proximity.v1 import proximity_pb2 as _proximity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FenceTransition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FENCE_TRANSITION_UNSPECIFIED: _ClassVar[FenceTransition]
    FENCE_TRANSITION_ENTER: _ClassVar[FenceTransition]
    FENCE_TRANSITION_EXIT: _ClassVar[FenceTransition]
FENCE_TRANSITION_UNSPECIFIED: FenceTransition
FENCE_TRANSITION_ENTER: FenceTransition
FENCE_TRANSITION_EXIT: FenceTransition

class Fence(_message.Message):
    __slots__ = ("fence_id", "name", "center", "radius_m")
    FENCE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    fence_id: str
    name: str
    center: _geo_pb2.LatLng
    radius_m: float
    def __init__(self, fence_id: _Optional[str] = ..., name: _Optional[str] = ..., center: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., radius_m: _Optional[float] = ...) -> None: ...

class FenceEvent(_message.Message):
    __slots__ = ("sequence", "fence_id", "transition", "position", "recorded_at_unix_ms")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    fence_id: str
    transition: FenceTransition
    position: _proximity_pb2.EntityPosition
    recorded_at_unix_ms: int
    def __init__(self, sequence: _Optional[int] = ..., fence_id: _Optional[str] = ..., transition: _Optional[_Union[FenceTransition, str]] = ..., position: _Optional[_Union[_proximity_pb2.EntityPosition, _Mapping]] = ..., recorded_at_unix_ms: _Optional[int] = ...) -> None: ...

class CreateFenceRequest(_message.Message):
    __slots__ = ("fence",)
    FENCE_FIELD_NUMBER: _ClassVar[int]
    fence: Fence
    def __init__(self, fence: _Optional[_Union[Fence, _Mapping]] = ...) -> None: ...

class CreateFenceResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: _Optional[bool] = ...) -> None: ...

class GetFenceRequest(_message.Message):
    __slots__ = ("fence_id",)
    FENCE_ID_FIELD_NUMBER: _ClassVar[int]
    fence_id: str
    def __init__(self, fence_id: _Optional[str] = ...) -> None: ...

class GetFenceResponse(_message.Message):
    __slots__ = ("fence",)
    FENCE_FIELD_NUMBER: _ClassVar[int]
    fence: Fence
    def __init__(self, fence: _Optional[_Union[Fence, _Mapping]] = ...) -> None: ...

class DeleteFenceRequest(_message.Message):
    __slots__ = ("fence_id",)
    FENCE_ID_FIELD_NUMBER: _ClassVar[int]
    fence_id: str
    def __init__(self, fence_id: _Optional[str] = ...) -> None: ...

class DeleteFenceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchFenceEventsRequest(_message.Message):
    __slots__ = ("fence_ids", "after_sequence", "from_now")
    FENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_NOW_FIELD_NUMBER: _ClassVar[int]
    fence_ids: _containers.RepeatedScalarFieldContainer[str]
    after_sequence: int
    from_now: bool
    def __init__(self, fence_ids: _Optional[_Iterable[str]] = ..., after_sequence: _Optional[int] = ..., from_now: _Optional[bool] = ...) -> None: ...

class WatchFenceEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: FenceEvent
    def __init__(self, event: _Optional[_Union[FenceEvent, _Mapping]] = ...) -> None: ...

class EvaluatePositionsRequest(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[_proximity_pb2.EntityPosition]
    def __init__(self, positions: _Optional[_Iterable[_Union[_proximity_pb2.EntityPosition, _Mapping]]] = ...) -> None: ...

class EvaluatePositionsResponse(_message.Message):
    __slots__ = ("applied", "stale", "events")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    applied: int
    stale: int
    events: int
    def __init__(self, applied: _Optional[int] = ..., stale: _Optional[int] = ..., events: _Optional[int] = ...) -> None: ...

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CandidateSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_SOURCE_UNSPECIFIED: _ClassVar[CandidateSource]
    CANDIDATE_SOURCE_COLLABORATIVE: _ClassVar[CandidateSource]
    CANDIDATE_SOURCE_EMBEDDING: _ClassVar[CandidateSource]
    CANDIDATE_SOURCE_TRENDING: _ClassVar[CandidateSource]
CANDIDATE_SOURCE_UNSPECIFIED: CandidateSource
CANDIDATE_SOURCE_COLLABORATIVE: CandidateSource
CANDIDATE_SOURCE_EMBEDDING: CandidateSource
CANDIDATE_SOURCE_TRENDING: CandidateSource

class Candidate(_message.Message):
    __slots__ = ("item_id", "sources", "scores")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    sources: _containers.RepeatedScalarFieldContainer[CandidateSource]
    scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, item_id: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[CandidateSource, str]]] = ..., scores: _Optional[_Iterable[float]] = ...) -> None: ...

class TrainModelRequest(_message.Message):
    __slots__ = ("factors", "iterations")
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    factors: int
    iterations: int
    def __init__(self, factors: _Optional[int] = ..., iterations: _Optional[int] = ...) -> None: ...

class TrainModelResponse(_message.Message):
    __slots__ = ("model_version", "users", "items", "interactions", "train_ms")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_MS_FIELD_NUMBER: _ClassVar[int]
    model_version: int
    users: int
    items: int
    interactions: int
    train_ms: float
    def __init__(self, model_version: _Optional[int] = ..., users: _Optional[int] = ..., items: _Optional[int] = ..., interactions: _Optional[int] = ..., train_ms: _Optional[float] = ...) -> None: ...

class GetCandidatesRequest(_message.Message):
    __slots__ = ("user_id", "recent_item_ids", "pool_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RECENT_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    recent_item_ids: _containers.RepeatedScalarFieldContainer[str]
    pool_size: int
    def __init__(self, user_id: _Optional[str] = ..., recent_item_ids: _Optional[_Iterable[str]] = ..., pool_size: _Optional[int] = ...) -> None: ...

class GetCandidatesResponse(_message.Message):
    __slots__ = ("candidates", "model_version")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    model_version: int
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., model_version: _Optional[int] = ...) -> None: ...

class GetModelStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelStatusResponse(_message.Message):
    __slots__ = ("model_version", "users", "items", "interactions", "factors", "train_time")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_TIME_FIELD_NUMBER: _ClassVar[int]
    model_version: int
    users: int
    items: int
    interactions: int
    factors: int
    train_time: _timestamp_pb2.Timestamp
    def __init__(self, model_version: _Optional[int] = ..., users: _Optional[int] = ..., items: _Optional[int] = ..., interactions: _Optional[int] = ..., factors: _Optional[int] = ..., train_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

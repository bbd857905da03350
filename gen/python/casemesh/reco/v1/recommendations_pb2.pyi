from casemesh.reco.v1 import candidates_pb2 as _candidates_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRecommendationsRequest(_message.Message):
    __slots__ = ("user_id", "limit", "pool_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    limit: int
    pool_size: int
    def __init__(self, user_id: _Optional[str] = ..., limit: _Optional[int] = ..., pool_size: _Optional[int] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("item_id", "score", "sources")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    sources: _containers.RepeatedScalarFieldContainer[_candidates_pb2.CandidateSource]
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., sources: _Optional[_Iterable[_Union[_candidates_pb2.CandidateSource, str]]] = ...) -> None: ...

class GetRecommendationsResponse(_message.Message):
    __slots__ = ("recommendations", "candidates", "recent_signals", "model_version")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    RECENT_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    candidates: int
    recent_signals: int
    model_version: int
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., candidates: _Optional[int] = ..., recent_signals: _Optional[int] = ..., model_version: _Optional[int] = ...) -> None: ...

from casemesh.ads.v1 import ads_pb2 as _ads_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignCap(_message.Message):
    __slots__ = ("campaign_id", "cap")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAP_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    cap: _ads_pb2.FrequencyCap
    def __init__(self, campaign_id: _Optional[str] = ..., cap: _Optional[_Union[_ads_pb2.FrequencyCap, _Mapping]] = ...) -> None: ...

class GetCountsRequest(_message.Message):
    __slots__ = ("user_key", "caps")
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    user_key: str
    caps: _containers.RepeatedCompositeFieldContainer[CampaignCap]
    def __init__(self, user_key: _Optional[str] = ..., caps: _Optional[_Iterable[_Union[CampaignCap, _Mapping]]] = ...) -> None: ...

class GetCountsResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("impression_id", "user_key", "campaign_id", "cap")
    IMPRESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAP_FIELD_NUMBER: _ClassVar[int]
    impression_id: str
    user_key: str
    campaign_id: str
    cap: _ads_pb2.FrequencyCap
    def __init__(self, impression_id: _Optional[str] = ..., user_key: _Optional[str] = ..., campaign_id: _Optional[str] = ..., cap: _Optional[_Union[_ads_pb2.FrequencyCap, _Mapping]] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("impression_id",)
    IMPRESSION_ID_FIELD_NUMBER: _ClassVar[int]
    impression_id: str
    def __init__(self, impression_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

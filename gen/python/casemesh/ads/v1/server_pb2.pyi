from casemesh.ads.v1 import ads_pb2 as _ads_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NoFillReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NO_FILL_REASON_UNSPECIFIED: _ClassVar[NoFillReason]
    NO_FILL_REASON_NO_CANDIDATES: _ClassVar[NoFillReason]
    NO_FILL_REASON_BUDGET: _ClassVar[NoFillReason]
    NO_FILL_REASON_FREQUENCY_CAPPED: _ClassVar[NoFillReason]
NO_FILL_REASON_UNSPECIFIED: NoFillReason
NO_FILL_REASON_NO_CANDIDATES: NoFillReason
NO_FILL_REASON_BUDGET: NoFillReason
NO_FILL_REASON_FREQUENCY_CAPPED: NoFillReason

class DecideRequest(_message.Message):
    __slots__ = ("request_id", "user_key", "country", "interests", "device")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    INTERESTS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_key: str
    country: str
    interests: _containers.RepeatedScalarFieldContainer[str]
    device: _ads_pb2.DeviceType
    def __init__(self, request_id: _Optional[str] = ..., user_key: _Optional[str] = ..., country: _Optional[str] = ..., interests: _Optional[_Iterable[str]] = ..., device: _Optional[_Union[_ads_pb2.DeviceType, str]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("ad", "no_fill_reason", "candidates", "bidders")
    AD_FIELD_NUMBER: _ClassVar[int]
    NO_FILL_REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    BIDDERS_FIELD_NUMBER: _ClassVar[int]
    ad: ServedAd
    no_fill_reason: NoFillReason
    candidates: int
    bidders: int
    def __init__(self, ad: _Optional[_Union[ServedAd, _Mapping]] = ..., no_fill_reason: _Optional[_Union[NoFillReason, str]] = ..., candidates: _Optional[int] = ..., bidders: _Optional[int] = ...) -> None: ...

class ServedAd(_message.Message):
    __slots__ = ("impression_id", "campaign_id", "creative", "cpm_price")
    IMPRESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATIVE_FIELD_NUMBER: _ClassVar[int]
    CPM_PRICE_FIELD_NUMBER: _ClassVar[int]
    impression_id: str
    campaign_id: str
    creative: _ads_pb2.Creative
    cpm_price: _money_pb2.Money
    def __init__(self, impression_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., creative: _Optional[_Union[_ads_pb2.Creative, _Mapping]] = ..., cpm_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class RecordClickRequest(_message.Message):
    __slots__ = ("impression_id",)
    IMPRESSION_ID_FIELD_NUMBER: _ClassVar[int]
    impression_id: str
    def __init__(self, impression_id: _Optional[str] = ...) -> None: ...

class RecordClickResponse(_message.Message):
    __slots__ = ("first",)
    FIRST_FIELD_NUMBER: _ClassVar[int]
    first: bool
    def __init__(self, first: _Optional[bool] = ...) -> None: ...

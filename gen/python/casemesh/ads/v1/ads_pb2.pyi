from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_TYPE_UNSPECIFIED: _ClassVar[DeviceType]
    DEVICE_TYPE_DESKTOP: _ClassVar[DeviceType]
    DEVICE_TYPE_MOBILE: _ClassVar[DeviceType]
    DEVICE_TYPE_TABLET: _ClassVar[DeviceType]
    DEVICE_TYPE_TV: _ClassVar[DeviceType]

class CampaignState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_STATE_UNSPECIFIED: _ClassVar[CampaignState]
    CAMPAIGN_STATE_ACTIVE: _ClassVar[CampaignState]
    CAMPAIGN_STATE_PAUSED: _ClassVar[CampaignState]
DEVICE_TYPE_UNSPECIFIED: DeviceType
DEVICE_TYPE_DESKTOP: DeviceType
DEVICE_TYPE_MOBILE: DeviceType
DEVICE_TYPE_TABLET: DeviceType
DEVICE_TYPE_TV: DeviceType
CAMPAIGN_STATE_UNSPECIFIED: CampaignState
CAMPAIGN_STATE_ACTIVE: CampaignState
CAMPAIGN_STATE_PAUSED: CampaignState

class Targeting(_message.Message):
    __slots__ = ("countries", "interests", "devices")
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    INTERESTS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    countries: _containers.RepeatedScalarFieldContainer[str]
    interests: _containers.RepeatedScalarFieldContainer[str]
    devices: _containers.RepeatedScalarFieldContainer[DeviceType]
    def __init__(self, countries: _Optional[_Iterable[str]] = ..., interests: _Optional[_Iterable[str]] = ..., devices: _Optional[_Iterable[_Union[DeviceType, str]]] = ...) -> None: ...

class FrequencyCap(_message.Message):
    __slots__ = ("max_impressions", "window_s")
    MAX_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    max_impressions: int
    window_s: int
    def __init__(self, max_impressions: _Optional[int] = ..., window_s: _Optional[int] = ...) -> None: ...

class Creative(_message.Message):
    __slots__ = ("headline", "landing_url")
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    LANDING_URL_FIELD_NUMBER: _ClassVar[int]
    headline: str
    landing_url: str
    def __init__(self, headline: _Optional[str] = ..., landing_url: _Optional[str] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("campaign_id", "advertiser_id", "targeting", "cpm_bid", "daily_budget", "frequency_cap", "creative", "state", "version", "created_at_unix_ms")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ADVERTISER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    CPM_BID_FIELD_NUMBER: _ClassVar[int]
    DAILY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_FIELD_NUMBER: _ClassVar[int]
    CREATIVE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    advertiser_id: str
    targeting: Targeting
    cpm_bid: _money_pb2.Money
    daily_budget: _money_pb2.Money
    frequency_cap: FrequencyCap
    creative: Creative
    state: CampaignState
    version: int
    created_at_unix_ms: int
    def __init__(self, campaign_id: _Optional[str] = ..., advertiser_id: _Optional[str] = ..., targeting: _Optional[_Union[Targeting, _Mapping]] = ..., cpm_bid: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., daily_budget: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., frequency_cap: _Optional[_Union[FrequencyCap, _Mapping]] = ..., creative: _Optional[_Union[Creative, _Mapping]] = ..., state: _Optional[_Union[CampaignState, str]] = ..., version: _Optional[int] = ..., created_at_unix_ms: _Optional[int] = ...) -> None: ...

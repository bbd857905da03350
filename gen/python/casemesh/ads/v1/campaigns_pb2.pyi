from casemesh.ads.v1 import ads_pb2 as _ads_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _ads_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_ads_pb2.Campaign, _Mapping]] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _ads_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_ads_pb2.Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _ads_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_ads_pb2.Campaign, _Mapping]] = ...) -> None: ...

class SetCampaignStateRequest(_message.Message):
    __slots__ = ("campaign_id", "state")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    state: _ads_pb2.CampaignState
    def __init__(self, campaign_id: _Optional[str] = ..., state: _Optional[_Union[_ads_pb2.CampaignState, str]] = ...) -> None: ...

class SetCampaignStateResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _ads_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_ads_pb2.Campaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("after_version", "page_size")
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_version: int
    page_size: int
    def __init__(self, after_version: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "more", "version")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[_ads_pb2.Campaign]
    more: bool
    version: int
    def __init__(self, campaigns: _Optional[_Iterable[_Union[_ads_pb2.Campaign, _Mapping]]] = ..., more: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

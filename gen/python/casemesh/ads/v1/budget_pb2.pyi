from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Eligibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ELIGIBILITY_UNSPECIFIED: _ClassVar[Eligibility]
    ELIGIBILITY_ELIGIBLE: _ClassVar[Eligibility]
    ELIGIBILITY_BUDGET_EXHAUSTED: _ClassVar[Eligibility]
    ELIGIBILITY_PACED: _ClassVar[Eligibility]
    ELIGIBILITY_PAUSED: _ClassVar[Eligibility]
    ELIGIBILITY_UNKNOWN: _ClassVar[Eligibility]
ELIGIBILITY_UNSPECIFIED: Eligibility
ELIGIBILITY_ELIGIBLE: Eligibility
ELIGIBILITY_BUDGET_EXHAUSTED: Eligibility
ELIGIBILITY_PACED: Eligibility
ELIGIBILITY_PAUSED: Eligibility
ELIGIBILITY_UNKNOWN: Eligibility

class CheckEligibilityRequest(_message.Message):
    __slots__ = ("campaign_ids",)
    CAMPAIGN_IDS_FIELD_NUMBER: _ClassVar[int]
    campaign_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, campaign_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckEligibilityResponse(_message.Message):
    __slots__ = ("eligibility",)
    ELIGIBILITY_FIELD_NUMBER: _ClassVar[int]
    eligibility: _containers.RepeatedScalarFieldContainer[Eligibility]
    def __init__(self, eligibility: _Optional[_Iterable[_Union[Eligibility, str]]] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("impression_id", "campaign_id", "price_milli_minor")
    IMPRESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_MILLI_MINOR_FIELD_NUMBER: _ClassVar[int]
    impression_id: str
    campaign_id: str
    price_milli_minor: int
    def __init__(self, impression_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., price_milli_minor: _Optional[int] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("spend",)
    SPEND_FIELD_NUMBER: _ClassVar[int]
    spend: CampaignSpend
    def __init__(self, spend: _Optional[_Union[CampaignSpend, _Mapping]] = ...) -> None: ...

class GetSpendRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class GetSpendResponse(_message.Message):
    __slots__ = ("spend",)
    SPEND_FIELD_NUMBER: _ClassVar[int]
    spend: CampaignSpend
    def __init__(self, spend: _Optional[_Union[CampaignSpend, _Mapping]] = ...) -> None: ...

class CampaignSpend(_message.Message):
    __slots__ = ("campaign_id", "day", "daily_budget", "spent_milli_minor", "impressions", "exhausted_at_unix_ms", "day_length_s")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    DAILY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SPENT_MILLI_MINOR_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DAY_LENGTH_S_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    day: int
    daily_budget: _money_pb2.Money
    spent_milli_minor: int
    impressions: int
    exhausted_at_unix_ms: int
    day_length_s: int
    def __init__(self, campaign_id: _Optional[str] = ..., day: _Optional[int] = ..., daily_budget: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., spent_milli_minor: _Optional[int] = ..., impressions: _Optional[int] = ..., exhausted_at_unix_ms: _Optional[int] = ..., day_length_s: _Optional[int] = ...) -> None: ...

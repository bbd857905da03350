from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthorizationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHORIZATION_STATE_UNSPECIFIED: _ClassVar[AuthorizationState]
    AUTHORIZATION_STATE_APPROVED: _ClassVar[AuthorizationState]
    AUTHORIZATION_STATE_DECLINED: _ClassVar[AuthorizationState]
    AUTHORIZATION_STATE_CAPTURED: _ClassVar[AuthorizationState]
    AUTHORIZATION_STATE_VOIDED: _ClassVar[AuthorizationState]

class SettlementKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTLEMENT_KIND_UNSPECIFIED: _ClassVar[SettlementKind]
    SETTLEMENT_KIND_CAPTURE: _ClassVar[SettlementKind]
    SETTLEMENT_KIND_REFUND: _ClassVar[SettlementKind]
AUTHORIZATION_STATE_UNSPECIFIED: AuthorizationState
AUTHORIZATION_STATE_APPROVED: AuthorizationState
AUTHORIZATION_STATE_DECLINED: AuthorizationState
AUTHORIZATION_STATE_CAPTURED: AuthorizationState
AUTHORIZATION_STATE_VOIDED: AuthorizationState
SETTLEMENT_KIND_UNSPECIFIED: SettlementKind
SETTLEMENT_KIND_CAPTURE: SettlementKind
SETTLEMENT_KIND_REFUND: SettlementKind

class AcquirerServiceAuthorizeRequest(_message.Message):
    __slots__ = ("reference", "merchant_id", "card_number", "exp_month", "exp_year", "amount")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXP_MONTH_FIELD_NUMBER: _ClassVar[int]
    EXP_YEAR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    reference: str
    merchant_id: str
    card_number: str
    exp_month: int
    exp_year: int
    amount: _money_pb2.Money
    def __init__(self, reference: _Optional[str] = ..., merchant_id: _Optional[str] = ..., card_number: _Optional[str] = ..., exp_month: _Optional[int] = ..., exp_year: _Optional[int] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class Authorization(_message.Message):
    __slots__ = ("reference", "psp_reference", "state", "amount", "captured_minor", "refunded_minor", "decline_code")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PSP_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    DECLINE_CODE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    psp_reference: str
    state: AuthorizationState
    amount: _money_pb2.Money
    captured_minor: int
    refunded_minor: int
    decline_code: str
    def __init__(self, reference: _Optional[str] = ..., psp_reference: _Optional[str] = ..., state: _Optional[_Union[AuthorizationState, str]] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., captured_minor: _Optional[int] = ..., refunded_minor: _Optional[int] = ..., decline_code: _Optional[str] = ...) -> None: ...

class AcquirerServiceAuthorizeResponse(_message.Message):
    __slots__ = ("authorization",)
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    authorization: Authorization
    def __init__(self, authorization: _Optional[_Union[Authorization, _Mapping]] = ...) -> None: ...

class AcquirerServiceCaptureRequest(_message.Message):
    __slots__ = ("reference", "amount_minor")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    reference: str
    amount_minor: int
    def __init__(self, reference: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class AcquirerServiceCaptureResponse(_message.Message):
    __slots__ = ("authorization",)
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    authorization: Authorization
    def __init__(self, authorization: _Optional[_Union[Authorization, _Mapping]] = ...) -> None: ...

class AcquirerServiceRefundRequest(_message.Message):
    __slots__ = ("reference", "refund_reference", "amount_minor")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REFUND_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    reference: str
    refund_reference: str
    amount_minor: int
    def __init__(self, reference: _Optional[str] = ..., refund_reference: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class AcquirerServiceRefundResponse(_message.Message):
    __slots__ = ("authorization",)
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    authorization: Authorization
    def __init__(self, authorization: _Optional[_Union[Authorization, _Mapping]] = ...) -> None: ...

class AcquirerServiceVoidRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class AcquirerServiceVoidResponse(_message.Message):
    __slots__ = ("authorization",)
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    authorization: Authorization
    def __init__(self, authorization: _Optional[_Union[Authorization, _Mapping]] = ...) -> None: ...

class GetAuthorizationRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class GetAuthorizationResponse(_message.Message):
    __slots__ = ("authorization",)
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    authorization: Authorization
    def __init__(self, authorization: _Optional[_Union[Authorization, _Mapping]] = ...) -> None: ...

class CloseBatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseBatchResponse(_message.Message):
    __slots__ = ("batch_id", "lines", "gross", "fees")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    GROSS_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    lines: int
    gross: _containers.RepeatedCompositeFieldContainer[_money_pb2.Money]
    fees: _containers.RepeatedCompositeFieldContainer[_money_pb2.Money]
    def __init__(self, batch_id: _Optional[str] = ..., lines: _Optional[int] = ..., gross: _Optional[_Iterable[_Union[_money_pb2.Money, _Mapping]]] = ..., fees: _Optional[_Iterable[_Union[_money_pb2.Money, _Mapping]]] = ...) -> None: ...

class GetSettlementFileRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class GetSettlementFileResponse(_message.Message):
    __slots__ = ("reference", "psp_reference", "kind", "refund_reference", "merchant_id", "amount", "fee", "booked_at_unix_ms")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PSP_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFUND_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    BOOKED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    reference: str
    psp_reference: str
    kind: SettlementKind
    refund_reference: str
    merchant_id: str
    amount: _money_pb2.Money
    fee: _money_pb2.Money
    booked_at_unix_ms: int
    def __init__(self, reference: _Optional[str] = ..., psp_reference: _Optional[str] = ..., kind: _Optional[_Union[SettlementKind, str]] = ..., refund_reference: _Optional[str] = ..., merchant_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., fee: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., booked_at_unix_ms: _Optional[int] = ...) -> None: ...

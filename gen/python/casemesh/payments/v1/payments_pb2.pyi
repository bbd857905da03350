from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_STATUS_UNSPECIFIED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_PENDING: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_AUTHORIZED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_CAPTURED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_REFUNDED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_DECLINED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_VOIDED: _ClassVar[PaymentStatus]

class DeclineReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECLINE_REASON_UNSPECIFIED: _ClassVar[DeclineReason]
    DECLINE_REASON_ISSUER: _ClassVar[DeclineReason]
    DECLINE_REASON_FRAUD: _ClassVar[DeclineReason]

class CardBrand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_BRAND_UNSPECIFIED: _ClassVar[CardBrand]
    CARD_BRAND_VISA: _ClassVar[CardBrand]
    CARD_BRAND_MASTERCARD: _ClassVar[CardBrand]
    CARD_BRAND_AMEX: _ClassVar[CardBrand]
    CARD_BRAND_OTHER: _ClassVar[CardBrand]

class AttemptState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_STATE_UNSPECIFIED: _ClassVar[AttemptState]
    ATTEMPT_STATE_SENT: _ClassVar[AttemptState]
    ATTEMPT_STATE_APPROVED: _ClassVar[AttemptState]
    ATTEMPT_STATE_DECLINED: _ClassVar[AttemptState]
    ATTEMPT_STATE_FAILED: _ClassVar[AttemptState]
    ATTEMPT_STATE_REVERSING: _ClassVar[AttemptState]
    ATTEMPT_STATE_REVERSED: _ClassVar[AttemptState]
PAYMENT_STATUS_UNSPECIFIED: PaymentStatus
PAYMENT_STATUS_PENDING: PaymentStatus
PAYMENT_STATUS_AUTHORIZED: PaymentStatus
PAYMENT_STATUS_CAPTURED: PaymentStatus
PAYMENT_STATUS_REFUNDED: PaymentStatus
PAYMENT_STATUS_DECLINED: PaymentStatus
PAYMENT_STATUS_VOIDED: PaymentStatus
DECLINE_REASON_UNSPECIFIED: DeclineReason
DECLINE_REASON_ISSUER: DeclineReason
DECLINE_REASON_FRAUD: DeclineReason
CARD_BRAND_UNSPECIFIED: CardBrand
CARD_BRAND_VISA: CardBrand
CARD_BRAND_MASTERCARD: CardBrand
CARD_BRAND_AMEX: CardBrand
CARD_BRAND_OTHER: CardBrand
ATTEMPT_STATE_UNSPECIFIED: AttemptState
ATTEMPT_STATE_SENT: AttemptState
ATTEMPT_STATE_APPROVED: AttemptState
ATTEMPT_STATE_DECLINED: AttemptState
ATTEMPT_STATE_FAILED: AttemptState
ATTEMPT_STATE_REVERSING: AttemptState
ATTEMPT_STATE_REVERSED: AttemptState

class Card(_message.Message):
    __slots__ = ("brand", "last4", "exp_month", "exp_year", "fingerprint")
    BRAND_FIELD_NUMBER: _ClassVar[int]
    LAST4_FIELD_NUMBER: _ClassVar[int]
    EXP_MONTH_FIELD_NUMBER: _ClassVar[int]
    EXP_YEAR_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    brand: CardBrand
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    def __init__(self, brand: _Optional[_Union[CardBrand, str]] = ..., last4: _Optional[str] = ..., exp_month: _Optional[int] = ..., exp_year: _Optional[int] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("acquirer", "reference", "state")
    ACQUIRER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    acquirer: str
    reference: str
    state: AttemptState
    def __init__(self, acquirer: _Optional[str] = ..., reference: _Optional[str] = ..., state: _Optional[_Union[AttemptState, str]] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("payment_id", "merchant_id", "amount", "captured_minor", "refunded_minor", "status", "decline_reason", "decline_code", "card", "acquirer", "attempts", "fraud_score", "description", "created_at_unix_ms", "updated_at_unix_ms")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    DECLINE_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FRAUD_SCORE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    merchant_id: str
    amount: _money_pb2.Money
    captured_minor: int
    refunded_minor: int
    status: PaymentStatus
    decline_reason: DeclineReason
    decline_code: str
    card: Card
    acquirer: str
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    fraud_score: int
    description: str
    created_at_unix_ms: int
    updated_at_unix_ms: int
    def __init__(self, payment_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., captured_minor: _Optional[int] = ..., refunded_minor: _Optional[int] = ..., status: _Optional[_Union[PaymentStatus, str]] = ..., decline_reason: _Optional[_Union[DeclineReason, str]] = ..., decline_code: _Optional[str] = ..., card: _Optional[_Union[Card, _Mapping]] = ..., acquirer: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., fraud_score: _Optional[int] = ..., description: _Optional[str] = ..., created_at_unix_ms: _Optional[int] = ..., updated_at_unix_ms: _Optional[int] = ...) -> None: ...

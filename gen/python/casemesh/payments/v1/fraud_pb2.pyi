from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FraudDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAUD_DECISION_UNSPECIFIED: _ClassVar[FraudDecision]
    FRAUD_DECISION_ALLOW: _ClassVar[FraudDecision]
    FRAUD_DECISION_REVIEW: _ClassVar[FraudDecision]
    FRAUD_DECISION_BLOCK: _ClassVar[FraudDecision]
FRAUD_DECISION_UNSPECIFIED: FraudDecision
FRAUD_DECISION_ALLOW: FraudDecision
FRAUD_DECISION_REVIEW: FraudDecision
FRAUD_DECISION_BLOCK: FraudDecision

class ScorePaymentRequest(_message.Message):
    __slots__ = ("payment_id", "merchant_id", "card_fingerprint", "customer_id", "amount")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    merchant_id: str
    card_fingerprint: str
    customer_id: str
    amount: _money_pb2.Money
    def __init__(self, payment_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., card_fingerprint: _Optional[str] = ..., customer_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class ScorePaymentResponse(_message.Message):
    __slots__ = ("score", "decision", "rules")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    score: int
    decision: FraudDecision
    rules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, score: _Optional[int] = ..., decision: _Optional[_Union[FraudDecision, str]] = ..., rules: _Optional[_Iterable[str]] = ...) -> None: ...

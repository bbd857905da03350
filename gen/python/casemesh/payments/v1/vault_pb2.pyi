from casemesh.payments.v1 import payments_pb2 as _payments_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenizeCardRequest(_message.Message):
    __slots__ = ("merchant_id", "card_number", "exp_month", "exp_year", "cvc")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXP_MONTH_FIELD_NUMBER: _ClassVar[int]
    EXP_YEAR_FIELD_NUMBER: _ClassVar[int]
    CVC_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    card_number: str
    exp_month: int
    exp_year: int
    cvc: str
    def __init__(self, merchant_id: _Optional[str] = ..., card_number: _Optional[str] = ..., exp_month: _Optional[int] = ..., exp_year: _Optional[int] = ..., cvc: _Optional[str] = ...) -> None: ...

class TokenizeCardResponse(_message.Message):
    __slots__ = ("card_token", "card")
    CARD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    card_token: str
    card: _payments_pb2.Card
    def __init__(self, card_token: _Optional[str] = ..., card: _Optional[_Union[_payments_pb2.Card, _Mapping]] = ...) -> None: ...

class DetokenizeCardRequest(_message.Message):
    __slots__ = ("merchant_id", "card_token")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    card_token: str
    def __init__(self, merchant_id: _Optional[str] = ..., card_token: _Optional[str] = ...) -> None: ...

class DetokenizeCardResponse(_message.Message):
    __slots__ = ("card_number", "card")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    card: _payments_pb2.Card
    def __init__(self, card_number: _Optional[str] = ..., card: _Optional[_Union[_payments_pb2.Card, _Mapping]] = ...) -> None: ...

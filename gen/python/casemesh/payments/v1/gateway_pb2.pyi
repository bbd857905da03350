from casemesh.common.v1 import money_pb2 as _money_pb2
from casemesh.payments.v1 import payments_pb2 as _payments_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthorizeRequest(_message.Message):
    __slots__ = ("idempotency_key", "merchant_id", "card_token", "amount", "capture", "description", "customer_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    merchant_id: str
    card_token: str
    amount: _money_pb2.Money
    capture: bool
    description: str
    customer_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., card_token: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., capture: _Optional[bool] = ..., description: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payments_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payments_pb2.Payment, _Mapping]] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("idempotency_key", "merchant_id", "payment_id", "amount_minor")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    merchant_id: str
    payment_id: str
    amount_minor: int
    def __init__(self, idempotency_key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class CaptureResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payments_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payments_pb2.Payment, _Mapping]] = ...) -> None: ...

class VoidRequest(_message.Message):
    __slots__ = ("idempotency_key", "merchant_id", "payment_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    merchant_id: str
    payment_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., payment_id: _Optional[str] = ...) -> None: ...

class VoidResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payments_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payments_pb2.Payment, _Mapping]] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("idempotency_key", "merchant_id", "payment_id", "amount_minor")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    merchant_id: str
    payment_id: str
    amount_minor: int
    def __init__(self, idempotency_key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class RefundResponse(_message.Message):
    __slots__ = ("refund_id", "amount", "payment")
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    refund_id: str
    amount: _money_pb2.Money
    payment: _payments_pb2.Payment
    def __init__(self, refund_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., payment: _Optional[_Union[_payments_pb2.Payment, _Mapping]] = ...) -> None: ...

class GetPaymentRequest(_message.Message):
    __slots__ = ("merchant_id", "payment_id")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    payment_id: str
    def __init__(self, merchant_id: _Optional[str] = ..., payment_id: _Optional[str] = ...) -> None: ...

class GetPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payments_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payments_pb2.Payment, _Mapping]] = ...) -> None: ...

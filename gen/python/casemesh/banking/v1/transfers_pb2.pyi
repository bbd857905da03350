from casemesh.banking.v1 import banking_pb2 as _banking_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_STATUS_UNSPECIFIED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_COMPLETED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_DECLINED: _ClassVar[TransferStatus]

class DeclineReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECLINE_REASON_UNSPECIFIED: _ClassVar[DeclineReason]
    DECLINE_REASON_INSUFFICIENT_FUNDS: _ClassVar[DeclineReason]
    DECLINE_REASON_DAILY_LIMIT: _ClassVar[DeclineReason]
    DECLINE_REASON_VELOCITY: _ClassVar[DeclineReason]
    DECLINE_REASON_NEW_PAYEE_AMOUNT: _ClassVar[DeclineReason]
TRANSFER_STATUS_UNSPECIFIED: TransferStatus
TRANSFER_STATUS_COMPLETED: TransferStatus
TRANSFER_STATUS_DECLINED: TransferStatus
DECLINE_REASON_UNSPECIFIED: DeclineReason
DECLINE_REASON_INSUFFICIENT_FUNDS: DeclineReason
DECLINE_REASON_DAILY_LIMIT: DeclineReason
DECLINE_REASON_VELOCITY: DeclineReason
DECLINE_REASON_NEW_PAYEE_AMOUNT: DeclineReason

class Transfer(_message.Message):
    __slots__ = ("transfer_id", "from_account_id", "to_account_id", "amount", "memo", "status", "decline_reason", "entry_sequence", "decided_at_unix_ms")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    from_account_id: str
    to_account_id: str
    amount: _money_pb2.Money
    memo: str
    status: TransferStatus
    decline_reason: DeclineReason
    entry_sequence: int
    decided_at_unix_ms: int
    def __init__(self, transfer_id: _Optional[str] = ..., from_account_id: _Optional[str] = ..., to_account_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., memo: _Optional[str] = ..., status: _Optional[_Union[TransferStatus, str]] = ..., decline_reason: _Optional[_Union[DeclineReason, str]] = ..., entry_sequence: _Optional[int] = ..., decided_at_unix_ms: _Optional[int] = ...) -> None: ...

class TransferServiceOpenAccountRequest(_message.Message):
    __slots__ = ("account_id", "owner", "initial_deposit")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    owner: str
    initial_deposit: _money_pb2.Money
    def __init__(self, account_id: _Optional[str] = ..., owner: _Optional[str] = ..., initial_deposit: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class TransferServiceOpenAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _banking_pb2.Account
    def __init__(self, account: _Optional[_Union[_banking_pb2.Account, _Mapping]] = ...) -> None: ...

class DepositRequest(_message.Message):
    __slots__ = ("idempotency_key", "account_id", "amount")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    account_id: str
    amount: _money_pb2.Money
    def __init__(self, idempotency_key: _Optional[str] = ..., account_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class DepositResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _banking_pb2.JournalEntry
    def __init__(self, entry: _Optional[_Union[_banking_pb2.JournalEntry, _Mapping]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("idempotency_key", "from_account_id", "to_account_id", "amount", "memo")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    from_account_id: str
    to_account_id: str
    amount: _money_pb2.Money
    memo: str
    def __init__(self, idempotency_key: _Optional[str] = ..., from_account_id: _Optional[str] = ..., to_account_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., memo: _Optional[str] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ("transfer",)
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    transfer: Transfer
    def __init__(self, transfer: _Optional[_Union[Transfer, _Mapping]] = ...) -> None: ...

class GetTransferRequest(_message.Message):
    __slots__ = ("transfer_id",)
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    def __init__(self, transfer_id: _Optional[str] = ...) -> None: ...

class GetTransferResponse(_message.Message):
    __slots__ = ("transfer",)
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    transfer: Transfer
    def __init__(self, transfer: _Optional[_Union[Transfer, _Mapping]] = ...) -> None: ...

from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_KIND_UNSPECIFIED: _ClassVar[AccountKind]
    ACCOUNT_KIND_CUSTOMER: _ClassVar[AccountKind]
    ACCOUNT_KIND_BANK_CASH: _ClassVar[AccountKind]
ACCOUNT_KIND_UNSPECIFIED: AccountKind
ACCOUNT_KIND_CUSTOMER: AccountKind
ACCOUNT_KIND_BANK_CASH: AccountKind

class Account(_message.Message):
    __slots__ = ("account_id", "kind", "owner", "currency_code", "balance", "entry_count", "opened_at_unix_ms")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    kind: AccountKind
    owner: str
    currency_code: str
    balance: _money_pb2.Money
    entry_count: int
    opened_at_unix_ms: int
    def __init__(self, account_id: _Optional[str] = ..., kind: _Optional[_Union[AccountKind, str]] = ..., owner: _Optional[str] = ..., currency_code: _Optional[str] = ..., balance: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., entry_count: _Optional[int] = ..., opened_at_unix_ms: _Optional[int] = ...) -> None: ...

class Posting(_message.Message):
    __slots__ = ("account_id", "amount")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    amount: _money_pb2.Money
    def __init__(self, account_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class JournalEntry(_message.Message):
    __slots__ = ("entry_id", "postings", "memo", "sequence", "posted_at_unix_ms")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POSTINGS_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    postings: _containers.RepeatedCompositeFieldContainer[Posting]
    memo: str
    sequence: int
    posted_at_unix_ms: int
    def __init__(self, entry_id: _Optional[str] = ..., postings: _Optional[_Iterable[_Union[Posting, _Mapping]]] = ..., memo: _Optional[str] = ..., sequence: _Optional[int] = ..., posted_at_unix_ms: _Optional[int] = ...) -> None: ...

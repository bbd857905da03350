from casemesh.banking.v1 import banking_pb2 as _banking_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpenAccountRequest(_message.Message):
    __slots__ = ("account_id", "owner", "currency_code")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    owner: str
    currency_code: str
    def __init__(self, account_id: _Optional[str] = ..., owner: _Optional[str] = ..., currency_code: _Optional[str] = ...) -> None: ...

class OpenAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _banking_pb2.Account
    def __init__(self, account: _Optional[_Union[_banking_pb2.Account, _Mapping]] = ...) -> None: ...

class PostEntryRequest(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _banking_pb2.JournalEntry
    def __init__(self, entry: _Optional[_Union[_banking_pb2.JournalEntry, _Mapping]] = ...) -> None: ...

class PostEntryResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _banking_pb2.JournalEntry
    def __init__(self, entry: _Optional[_Union[_banking_pb2.JournalEntry, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _banking_pb2.Account
    def __init__(self, account: _Optional[_Union[_banking_pb2.Account, _Mapping]] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("account_id", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_banking_pb2.JournalEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_banking_pb2.JournalEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReconcileResponse(_message.Message):
    __slots__ = ("balanced", "account_count", "entry_count", "sequence", "total_minor_by_currency", "discrepancies")
    class TotalMinorByCurrencyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BALANCED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_BY_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    DISCREPANCIES_FIELD_NUMBER: _ClassVar[int]
    balanced: bool
    account_count: int
    entry_count: int
    sequence: int
    total_minor_by_currency: _containers.ScalarMap[str, int]
    discrepancies: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, balanced: _Optional[bool] = ..., account_count: _Optional[int] = ..., entry_count: _Optional[int] = ..., sequence: _Optional[int] = ..., total_minor_by_currency: _Optional[_Mapping[str, int]] = ..., discrepancies: _Optional[_Iterable[str]] = ...) -> None: ...

from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReconcileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AcquirerSettlement(_message.Message):
    __slots__ = ("acquirer", "batch_id", "lines", "matched", "gross", "fees")
    ACQUIRER_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    GROSS_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    acquirer: str
    batch_id: str
    lines: int
    matched: int
    gross: _containers.RepeatedCompositeFieldContainer[_money_pb2.Money]
    fees: _containers.RepeatedCompositeFieldContainer[_money_pb2.Money]
    def __init__(self, acquirer: _Optional[str] = ..., batch_id: _Optional[str] = ..., lines: _Optional[int] = ..., matched: _Optional[int] = ..., gross: _Optional[_Iterable[_Union[_money_pb2.Money, _Mapping]]] = ..., fees: _Optional[_Iterable[_Union[_money_pb2.Money, _Mapping]]] = ...) -> None: ...

class Discrepancy(_message.Message):
    __slots__ = ("kind", "acquirer", "reference", "refund_reference", "file_amount_minor", "recorded_amount_minor")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REFUND_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FILE_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    kind: str
    acquirer: str
    reference: str
    refund_reference: str
    file_amount_minor: int
    recorded_amount_minor: int
    def __init__(self, kind: _Optional[str] = ..., acquirer: _Optional[str] = ..., reference: _Optional[str] = ..., refund_reference: _Optional[str] = ..., file_amount_minor: _Optional[int] = ..., recorded_amount_minor: _Optional[int] = ...) -> None: ...

class ReconcileResponse(_message.Message):
    __slots__ = ("report_id", "acquirers", "pending", "discrepancies", "report_path")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ACQUIRERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    DISCREPANCIES_FIELD_NUMBER: _ClassVar[int]
    REPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    acquirers: _containers.RepeatedCompositeFieldContainer[AcquirerSettlement]
    pending: int
    discrepancies: _containers.RepeatedCompositeFieldContainer[Discrepancy]
    report_path: str
    def __init__(self, report_id: _Optional[str] = ..., acquirers: _Optional[_Iterable[_Union[AcquirerSettlement, _Mapping]]] = ..., pending: _Optional[int] = ..., discrepancies: _Optional[_Iterable[_Union[Discrepancy, _Mapping]]] = ..., report_path: _Optional[str] = ...) -> None: ...

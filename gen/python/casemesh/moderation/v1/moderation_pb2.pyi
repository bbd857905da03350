from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STATE_UNSPECIFIED: _ClassVar[ItemState]
    ITEM_STATE_PENDING: _ClassVar[ItemState]
    ITEM_STATE_IN_REVIEW: _ClassVar[ItemState]
    ITEM_STATE_APPROVED: _ClassVar[ItemState]
    ITEM_STATE_REMOVED: _ClassVar[ItemState]
    ITEM_STATE_IN_APPEAL: _ClassVar[ItemState]

class DecidedBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECIDED_BY_UNSPECIFIED: _ClassVar[DecidedBy]
    DECIDED_BY_CLASSIFIER: _ClassVar[DecidedBy]
    DECIDED_BY_REVIEWER: _ClassVar[DecidedBy]
    DECIDED_BY_APPEAL: _ClassVar[DecidedBy]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_APPROVE: _ClassVar[Verdict]
    VERDICT_REMOVE: _ClassVar[Verdict]

class ReviewKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_KIND_UNSPECIFIED: _ClassVar[ReviewKind]
    REVIEW_KIND_FIRST: _ClassVar[ReviewKind]
    REVIEW_KIND_APPEAL: _ClassVar[ReviewKind]

class AuditEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_EVENT_UNSPECIFIED: _ClassVar[AuditEvent]
    AUDIT_EVENT_SUBMITTED: _ClassVar[AuditEvent]
    AUDIT_EVENT_AUTO_APPROVED: _ClassVar[AuditEvent]
    AUDIT_EVENT_AUTO_REMOVED: _ClassVar[AuditEvent]
    AUDIT_EVENT_SENT_TO_REVIEW: _ClassVar[AuditEvent]
    AUDIT_EVENT_REVIEW_APPROVED: _ClassVar[AuditEvent]
    AUDIT_EVENT_REVIEW_REMOVED: _ClassVar[AuditEvent]
    AUDIT_EVENT_APPEALED: _ClassVar[AuditEvent]
    AUDIT_EVENT_APPEAL_UPHELD: _ClassVar[AuditEvent]
    AUDIT_EVENT_APPEAL_REVERSED: _ClassVar[AuditEvent]
ITEM_STATE_UNSPECIFIED: ItemState
ITEM_STATE_PENDING: ItemState
ITEM_STATE_IN_REVIEW: ItemState
ITEM_STATE_APPROVED: ItemState
ITEM_STATE_REMOVED: ItemState
ITEM_STATE_IN_APPEAL: ItemState
DECIDED_BY_UNSPECIFIED: DecidedBy
DECIDED_BY_CLASSIFIER: DecidedBy
DECIDED_BY_REVIEWER: DecidedBy
DECIDED_BY_APPEAL: DecidedBy
VERDICT_UNSPECIFIED: Verdict
VERDICT_APPROVE: Verdict
VERDICT_REMOVE: Verdict
REVIEW_KIND_UNSPECIFIED: ReviewKind
REVIEW_KIND_FIRST: ReviewKind
REVIEW_KIND_APPEAL: ReviewKind
AUDIT_EVENT_UNSPECIFIED: AuditEvent
AUDIT_EVENT_SUBMITTED: AuditEvent
AUDIT_EVENT_AUTO_APPROVED: AuditEvent
AUDIT_EVENT_AUTO_REMOVED: AuditEvent
AUDIT_EVENT_SENT_TO_REVIEW: AuditEvent
AUDIT_EVENT_REVIEW_APPROVED: AuditEvent
AUDIT_EVENT_REVIEW_REMOVED: AuditEvent
AUDIT_EVENT_APPEALED: AuditEvent
AUDIT_EVENT_APPEAL_UPHELD: AuditEvent
AUDIT_EVENT_APPEAL_REVERSED: AuditEvent

class Item(_message.Message):
    __slots__ = ("item_id", "author_id", "text", "state", "decided_by", "violation_probability", "model_version", "submitted_at_unix_ms", "routed_at_unix_ms", "decided_at_unix_ms", "appealed")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ROUTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    APPEALED_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    author_id: str
    text: str
    state: ItemState
    decided_by: DecidedBy
    violation_probability: float
    model_version: str
    submitted_at_unix_ms: int
    routed_at_unix_ms: int
    decided_at_unix_ms: int
    appealed: bool
    def __init__(self, item_id: _Optional[str] = ..., author_id: _Optional[str] = ..., text: _Optional[str] = ..., state: _Optional[_Union[ItemState, str]] = ..., decided_by: _Optional[_Union[DecidedBy, str]] = ..., violation_probability: _Optional[float] = ..., model_version: _Optional[str] = ..., submitted_at_unix_ms: _Optional[int] = ..., routed_at_unix_ms: _Optional[int] = ..., decided_at_unix_ms: _Optional[int] = ..., appealed: _Optional[bool] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("seq", "at_unix_ms", "item_id", "event", "state_after", "actor", "violation_probability", "note")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATE_AFTER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at_unix_ms: int
    item_id: str
    event: AuditEvent
    state_after: ItemState
    actor: str
    violation_probability: float
    note: str
    def __init__(self, seq: _Optional[int] = ..., at_unix_ms: _Optional[int] = ..., item_id: _Optional[str] = ..., event: _Optional[_Union[AuditEvent, str]] = ..., state_after: _Optional[_Union[ItemState, str]] = ..., actor: _Optional[str] = ..., violation_probability: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

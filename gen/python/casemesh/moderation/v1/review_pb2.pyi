from casemesh.moderation.v1 import moderation_pb2 as _moderation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReviewTask(_message.Message):
    __slots__ = ("task_id", "item_id", "text", "violation_probability", "kind", "enqueued_at_unix_ms", "due_at_unix_ms", "lease_token", "lease_expires_at_unix_ms", "claims", "appeal_reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    APPEAL_REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    item_id: str
    text: str
    violation_probability: float
    kind: _moderation_pb2.ReviewKind
    enqueued_at_unix_ms: int
    due_at_unix_ms: int
    lease_token: str
    lease_expires_at_unix_ms: int
    claims: int
    appeal_reason: str
    def __init__(self, task_id: _Optional[str] = ..., item_id: _Optional[str] = ..., text: _Optional[str] = ..., violation_probability: _Optional[float] = ..., kind: _Optional[_Union[_moderation_pb2.ReviewKind, str]] = ..., enqueued_at_unix_ms: _Optional[int] = ..., due_at_unix_ms: _Optional[int] = ..., lease_token: _Optional[str] = ..., lease_expires_at_unix_ms: _Optional[int] = ..., claims: _Optional[int] = ..., appeal_reason: _Optional[str] = ...) -> None: ...

class EnqueueRequest(_message.Message):
    __slots__ = ("item_id", "text", "violation_probability", "kind", "appeal_reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    APPEAL_REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    text: str
    violation_probability: float
    kind: _moderation_pb2.ReviewKind
    appeal_reason: str
    def __init__(self, item_id: _Optional[str] = ..., text: _Optional[str] = ..., violation_probability: _Optional[float] = ..., kind: _Optional[_Union[_moderation_pb2.ReviewKind, str]] = ..., appeal_reason: _Optional[str] = ...) -> None: ...

class EnqueueResponse(_message.Message):
    __slots__ = ("task_id", "due_at_unix_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    due_at_unix_ms: int
    def __init__(self, task_id: _Optional[str] = ..., due_at_unix_ms: _Optional[int] = ...) -> None: ...

class ClaimTaskRequest(_message.Message):
    __slots__ = ("reviewer_id", "lease_ms")
    REVIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    reviewer_id: str
    lease_ms: int
    def __init__(self, reviewer_id: _Optional[str] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class ClaimTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: ReviewTask
    def __init__(self, task: _Optional[_Union[ReviewTask, _Mapping]] = ...) -> None: ...

class CompleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "lease_token", "reviewer_id", "verdict", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_token: str
    reviewer_id: str
    verdict: _moderation_pb2.Verdict
    note: str
    def __init__(self, task_id: _Optional[str] = ..., lease_token: _Optional[str] = ..., reviewer_id: _Optional[str] = ..., verdict: _Optional[_Union[_moderation_pb2.Verdict, str]] = ..., note: _Optional[str] = ...) -> None: ...

class CompleteTaskResponse(_message.Message):
    __slots__ = ("verdict_seq",)
    VERDICT_SEQ_FIELD_NUMBER: _ClassVar[int]
    verdict_seq: int
    def __init__(self, verdict_seq: _Optional[int] = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindStats(_message.Message):
    __slots__ = ("kind", "open", "claimed", "oldest_age_ms", "overdue")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    kind: _moderation_pb2.ReviewKind
    open: int
    claimed: int
    oldest_age_ms: int
    overdue: int
    def __init__(self, kind: _Optional[_Union[_moderation_pb2.ReviewKind, str]] = ..., open: _Optional[int] = ..., claimed: _Optional[int] = ..., oldest_age_ms: _Optional[int] = ..., overdue: _Optional[int] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("kinds", "verdicts_pending")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_PENDING_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedCompositeFieldContainer[KindStats]
    verdicts_pending: int
    def __init__(self, kinds: _Optional[_Iterable[_Union[KindStats, _Mapping]]] = ..., verdicts_pending: _Optional[int] = ...) -> None: ...

class PullVerdictsRequest(_message.Message):
    __slots__ = ("after_seq", "max_verdicts", "wait_ms")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    MAX_VERDICTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    max_verdicts: int
    wait_ms: int
    def __init__(self, after_seq: _Optional[int] = ..., max_verdicts: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class ReviewVerdict(_message.Message):
    __slots__ = ("seq", "task_id", "item_id", "kind", "verdict", "reviewer_id", "note", "completed_at_unix_ms")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    task_id: str
    item_id: str
    kind: _moderation_pb2.ReviewKind
    verdict: _moderation_pb2.Verdict
    reviewer_id: str
    note: str
    completed_at_unix_ms: int
    def __init__(self, seq: _Optional[int] = ..., task_id: _Optional[str] = ..., item_id: _Optional[str] = ..., kind: _Optional[_Union[_moderation_pb2.ReviewKind, str]] = ..., verdict: _Optional[_Union[_moderation_pb2.Verdict, str]] = ..., reviewer_id: _Optional[str] = ..., note: _Optional[str] = ..., completed_at_unix_ms: _Optional[int] = ...) -> None: ...

class PullVerdictsResponse(_message.Message):
    __slots__ = ("verdicts",)
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[ReviewVerdict]
    def __init__(self, verdicts: _Optional[_Iterable[_Union[ReviewVerdict, _Mapping]]] = ...) -> None: ...

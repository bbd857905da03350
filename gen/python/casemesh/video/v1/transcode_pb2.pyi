from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TranscodeJob(_message.Message):
    __slots__ = ("job_id", "video_id", "generation", "raw_key", "duration_s", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RAW_KEY_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    video_id: str
    generation: int
    raw_key: str
    duration_s: float
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., video_id: _Optional[str] = ..., generation: _Optional[int] = ..., raw_key: _Optional[str] = ..., duration_s: _Optional[float] = ..., attempt: _Optional[int] = ...) -> None: ...

class EnqueueJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TranscodeJob
    def __init__(self, job: _Optional[_Union[TranscodeJob, _Mapping]] = ...) -> None: ...

class EnqueueJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TranscodeJob
    def __init__(self, job: _Optional[_Union[TranscodeJob, _Mapping]] = ...) -> None: ...

class LeaseJobRequest(_message.Message):
    __slots__ = ("worker_id", "lease_ms", "wait_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    lease_ms: int
    wait_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., lease_ms: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class LeaseJobResponse(_message.Message):
    __slots__ = ("job", "lease_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    job: TranscodeJob
    lease_id: str
    def __init__(self, job: _Optional[_Union[TranscodeJob, _Mapping]] = ..., lease_id: _Optional[str] = ...) -> None: ...

class ExtendLeaseRequest(_message.Message):
    __slots__ = ("job_id", "lease_id", "lease_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    lease_ms: int
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class ExtendLeaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AckJobRequest(_message.Message):
    __slots__ = ("job_id", "lease_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...

class AckJobResponse(_message.Message):
    __slots__ = ("first_ack",)
    FIRST_ACK_FIELD_NUMBER: _ClassVar[int]
    first_ack: bool
    def __init__(self, first_ack: _Optional[bool] = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("ready", "leased", "done", "redeliveries")
    READY_FIELD_NUMBER: _ClassVar[int]
    LEASED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    REDELIVERIES_FIELD_NUMBER: _ClassVar[int]
    ready: int
    leased: int
    done: int
    redeliveries: int
    def __init__(self, ready: _Optional[int] = ..., leased: _Optional[int] = ..., done: _Optional[int] = ..., redeliveries: _Optional[int] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinRequest(_message.Message):
    __slots__ = ("hello", "ready", "progress", "finished", "failure")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    ready: WorkerReady
    progress: WorkerProgress
    finished: WorkerFinished
    failure: WorkerFailure
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., ready: _Optional[_Union[WorkerReady, _Mapping]] = ..., progress: _Optional[_Union[WorkerProgress, _Mapping]] = ..., finished: _Optional[_Union[WorkerFinished, _Mapping]] = ..., failure: _Optional[_Union[WorkerFailure, _Mapping]] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("host", "pid", "casemesh_version")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CASEMESH_VERSION_FIELD_NUMBER: _ClassVar[int]
    host: str
    pid: int
    casemesh_version: str
    def __init__(self, host: _Optional[str] = ..., pid: _Optional[int] = ..., casemesh_version: _Optional[str] = ...) -> None: ...

class WorkerReady(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerCounts(_message.Message):
    __slots__ = ("phase", "sent", "completed", "failed", "in_flight", "measured_sent")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MEASURED_SENT_FIELD_NUMBER: _ClassVar[int]
    phase: str
    sent: int
    completed: int
    failed: int
    in_flight: int
    measured_sent: int
    def __init__(self, phase: _Optional[str] = ..., sent: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., in_flight: _Optional[int] = ..., measured_sent: _Optional[int] = ...) -> None: ...

class WorkerProgress(_message.Message):
    __slots__ = ("counts", "stats_json")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    counts: WorkerCounts
    stats_json: str
    def __init__(self, counts: _Optional[_Union[WorkerCounts, _Mapping]] = ..., stats_json: _Optional[str] = ...) -> None: ...

class WorkerFinished(_message.Message):
    __slots__ = ("counts", "stats_json", "start_skew_ms", "cpu_s")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    START_SKEW_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_S_FIELD_NUMBER: _ClassVar[int]
    counts: WorkerCounts
    stats_json: str
    start_skew_ms: float
    cpu_s: float
    def __init__(self, counts: _Optional[_Union[WorkerCounts, _Mapping]] = ..., stats_json: _Optional[str] = ..., start_skew_ms: _Optional[float] = ..., cpu_s: _Optional[float] = ...) -> None: ...

class WorkerFailure(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("assignment", "start")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    start: StartSignal
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., start: _Optional[_Union[StartSignal, _Mapping]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("worker_index", "worker_count", "profile_yaml", "profile_files", "seed", "targets", "trace_ratio", "seeded_state", "plan_digest")
    class ProfileFilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TargetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_INDEX_FIELD_NUMBER: _ClassVar[int]
    WORKER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_YAML_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FILES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    TRACE_RATIO_FIELD_NUMBER: _ClassVar[int]
    SEEDED_STATE_FIELD_NUMBER: _ClassVar[int]
    PLAN_DIGEST_FIELD_NUMBER: _ClassVar[int]
    worker_index: int
    worker_count: int
    profile_yaml: str
    profile_files: _containers.ScalarMap[str, str]
    seed: int
    targets: _containers.ScalarMap[str, str]
    trace_ratio: float
    seeded_state: bytes
    plan_digest: str
    def __init__(self, worker_index: _Optional[int] = ..., worker_count: _Optional[int] = ..., profile_yaml: _Optional[str] = ..., profile_files: _Optional[_Mapping[str, str]] = ..., seed: _Optional[int] = ..., targets: _Optional[_Mapping[str, str]] = ..., trace_ratio: _Optional[float] = ..., seeded_state: _Optional[bytes] = ..., plan_digest: _Optional[str] = ...) -> None: ...

class StartSignal(_message.Message):
    __slots__ = ("start_unix_nanos",)
    START_UNIX_NANOS_FIELD_NUMBER: _ClassVar[int]
    start_unix_nanos: int
    def __init__(self, start_unix_nanos: _Optional[int] = ...) -> None: ...

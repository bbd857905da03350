from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FetchRequest(_message.Message):
    __slots__ = ("url", "crawl_id", "user_agent")
    URL_FIELD_NUMBER: _ClassVar[int]
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    url: str
    crawl_id: str
    user_agent: str
    def __init__(self, url: _Optional[str] = ..., crawl_id: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("http_status", "content_type", "body")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    content_type: str
    body: bytes
    def __init__(self, http_status: _Optional[int] = ..., content_type: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class GetWebRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWebResponse(_message.Message):
    __slots__ = ("host_count", "page_count", "home_pages", "disallowed_pages", "near_copy_pages", "seed", "min_interval_ms")
    HOST_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    HOME_PAGES_FIELD_NUMBER: _ClassVar[int]
    DISALLOWED_PAGES_FIELD_NUMBER: _ClassVar[int]
    NEAR_COPY_PAGES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    host_count: int
    page_count: int
    home_pages: _containers.RepeatedScalarFieldContainer[str]
    disallowed_pages: int
    near_copy_pages: int
    seed: int
    min_interval_ms: int
    def __init__(self, host_count: _Optional[int] = ..., page_count: _Optional[int] = ..., home_pages: _Optional[_Iterable[str]] = ..., disallowed_pages: _Optional[int] = ..., near_copy_pages: _Optional[int] = ..., seed: _Optional[int] = ..., min_interval_ms: _Optional[int] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("crawl_id",)
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    crawl_id: str
    def __init__(self, crawl_id: _Optional[str] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("fetches", "pages_ok", "duplicate_fetches", "robots_violations", "politeness_violations", "min_host_gap_ms", "near_copies_fetched", "hosts")
    FETCHES_FIELD_NUMBER: _ClassVar[int]
    PAGES_OK_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FETCHES_FIELD_NUMBER: _ClassVar[int]
    ROBOTS_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    POLITENESS_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    MIN_HOST_GAP_MS_FIELD_NUMBER: _ClassVar[int]
    NEAR_COPIES_FETCHED_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    fetches: int
    pages_ok: int
    duplicate_fetches: int
    robots_violations: int
    politeness_violations: int
    min_host_gap_ms: float
    near_copies_fetched: int
    hosts: int
    def __init__(self, fetches: _Optional[int] = ..., pages_ok: _Optional[int] = ..., duplicate_fetches: _Optional[int] = ..., robots_violations: _Optional[int] = ..., politeness_violations: _Optional[int] = ..., min_host_gap_ms: _Optional[float] = ..., near_copies_fetched: _Optional[int] = ..., hosts: _Optional[int] = ...) -> None: ...

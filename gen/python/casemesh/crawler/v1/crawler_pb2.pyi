from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CrawlState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CRAWL_STATE_UNSPECIFIED: _ClassVar[CrawlState]
    CRAWL_STATE_RUNNING: _ClassVar[CrawlState]
    CRAWL_STATE_DONE: _ClassVar[CrawlState]
    CRAWL_STATE_CANCELLED: _ClassVar[CrawlState]
CRAWL_STATE_UNSPECIFIED: CrawlState
CRAWL_STATE_RUNNING: CrawlState
CRAWL_STATE_DONE: CrawlState
CRAWL_STATE_CANCELLED: CrawlState

class StartCrawlRequest(_message.Message):
    __slots__ = ("crawl_id", "seed_urls", "max_pages", "max_depth", "index_pages")
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_URLS_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    INDEX_PAGES_FIELD_NUMBER: _ClassVar[int]
    crawl_id: str
    seed_urls: _containers.RepeatedScalarFieldContainer[str]
    max_pages: int
    max_depth: int
    index_pages: bool
    def __init__(self, crawl_id: _Optional[str] = ..., seed_urls: _Optional[_Iterable[str]] = ..., max_pages: _Optional[int] = ..., max_depth: _Optional[int] = ..., index_pages: _Optional[bool] = ...) -> None: ...

class StartCrawlResponse(_message.Message):
    __slots__ = ("crawl",)
    CRAWL_FIELD_NUMBER: _ClassVar[int]
    crawl: Crawl
    def __init__(self, crawl: _Optional[_Union[Crawl, _Mapping]] = ...) -> None: ...

class GetCrawlRequest(_message.Message):
    __slots__ = ("crawl_id",)
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    crawl_id: str
    def __init__(self, crawl_id: _Optional[str] = ...) -> None: ...

class GetCrawlResponse(_message.Message):
    __slots__ = ("crawl",)
    CRAWL_FIELD_NUMBER: _ClassVar[int]
    crawl: Crawl
    def __init__(self, crawl: _Optional[_Union[Crawl, _Mapping]] = ...) -> None: ...

class CancelCrawlRequest(_message.Message):
    __slots__ = ("crawl_id",)
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    crawl_id: str
    def __init__(self, crawl_id: _Optional[str] = ...) -> None: ...

class CancelCrawlResponse(_message.Message):
    __slots__ = ("crawl",)
    CRAWL_FIELD_NUMBER: _ClassVar[int]
    crawl: Crawl
    def __init__(self, crawl: _Optional[_Union[Crawl, _Mapping]] = ...) -> None: ...

class Crawl(_message.Message):
    __slots__ = ("crawl_id", "state", "pages_fetched", "pages_indexed", "fetch_errors", "robots_blocked", "exact_duplicates", "near_duplicates", "frontier_size", "hosts", "depth_reached", "started_at_unix_ms", "finished_at_unix_ms", "pages_per_second")
    CRAWL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGES_FETCHED_FIELD_NUMBER: _ClassVar[int]
    PAGES_INDEXED_FIELD_NUMBER: _ClassVar[int]
    FETCH_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ROBOTS_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    EXACT_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    NEAR_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_SIZE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    DEPTH_REACHED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    crawl_id: str
    state: CrawlState
    pages_fetched: int
    pages_indexed: int
    fetch_errors: int
    robots_blocked: int
    exact_duplicates: int
    near_duplicates: int
    frontier_size: int
    hosts: int
    depth_reached: int
    started_at_unix_ms: int
    finished_at_unix_ms: int
    pages_per_second: float
    def __init__(self, crawl_id: _Optional[str] = ..., state: _Optional[_Union[CrawlState, str]] = ..., pages_fetched: _Optional[int] = ..., pages_indexed: _Optional[int] = ..., fetch_errors: _Optional[int] = ..., robots_blocked: _Optional[int] = ..., exact_duplicates: _Optional[int] = ..., near_duplicates: _Optional[int] = ..., frontier_size: _Optional[int] = ..., hosts: _Optional[int] = ..., depth_reached: _Optional[int] = ..., started_at_unix_ms: _Optional[int] = ..., finished_at_unix_ms: _Optional[int] = ..., pages_per_second: _Optional[float] = ...) -> None: ...

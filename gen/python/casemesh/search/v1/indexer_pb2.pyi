from casemesh.search.v1 import search_pb2 as _search_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IndexPageRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _search_pb2.WebPage
    def __init__(self, page: _Optional[_Union[_search_pb2.WebPage, _Mapping]] = ...) -> None: ...

class IndexPageResponse(_message.Message):
    __slots__ = ("shard", "created", "page_count")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    shard: int
    created: bool
    page_count: int
    def __init__(self, shard: _Optional[int] = ..., created: _Optional[bool] = ..., page_count: _Optional[int] = ...) -> None: ...

class GetPageRequest(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class GetPageResponse(_message.Message):
    __slots__ = ("page", "pagerank", "shard")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    page: _search_pb2.WebPage
    pagerank: float
    shard: int
    def __init__(self, page: _Optional[_Union[_search_pb2.WebPage, _Mapping]] = ..., pagerank: _Optional[float] = ..., shard: _Optional[int] = ...) -> None: ...

class ComputePageRankRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ComputePageRankResponse(_message.Message):
    __slots__ = ("rank_pass",)
    RANK_PASS_FIELD_NUMBER: _ClassVar[int]
    rank_pass: PageRankPass
    def __init__(self, rank_pass: _Optional[_Union[PageRankPass, _Mapping]] = ...) -> None: ...

class PageRankPass(_message.Message):
    __slots__ = ("rank_version", "nodes", "edges", "iterations", "compute_ms", "finished_at_unix_ms")
    RANK_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    rank_version: int
    nodes: int
    edges: int
    iterations: int
    compute_ms: float
    finished_at_unix_ms: int
    def __init__(self, rank_version: _Optional[int] = ..., nodes: _Optional[int] = ..., edges: _Optional[int] = ..., iterations: _Optional[int] = ..., compute_ms: _Optional[float] = ..., finished_at_unix_ms: _Optional[int] = ...) -> None: ...

class GetIndexStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIndexStatsResponse(_message.Message):
    __slots__ = ("page_count", "link_count", "shard_count", "last_pass")
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LINK_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_PASS_FIELD_NUMBER: _ClassVar[int]
    page_count: int
    link_count: int
    shard_count: int
    last_pass: PageRankPass
    def __init__(self, page_count: _Optional[int] = ..., link_count: _Optional[int] = ..., shard_count: _Optional[int] = ..., last_pass: _Optional[_Union[PageRankPass, _Mapping]] = ...) -> None: ...

class ScanShardRequest(_message.Message):
    __slots__ = ("shard", "shard_count")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shard_count: int
    def __init__(self, shard: _Optional[int] = ..., shard_count: _Optional[int] = ...) -> None: ...

class ScanShardResponse(_message.Message):
    __slots__ = ("page", "pagerank", "rank_version")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_FIELD_NUMBER: _ClassVar[int]
    RANK_VERSION_FIELD_NUMBER: _ClassVar[int]
    page: _search_pb2.WebPage
    pagerank: float
    rank_version: int
    def __init__(self, page: _Optional[_Union[_search_pb2.WebPage, _Mapping]] = ..., pagerank: _Optional[float] = ..., rank_version: _Optional[int] = ...) -> None: ...

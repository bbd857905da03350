from casemesh.search.v1 import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutPageRequest(_message.Message):
    __slots__ = ("shard", "shard_count", "page", "pagerank")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shard_count: int
    page: _search_pb2.WebPage
    pagerank: float
    def __init__(self, shard: _Optional[int] = ..., shard_count: _Optional[int] = ..., page: _Optional[_Union[_search_pb2.WebPage, _Mapping]] = ..., pagerank: _Optional[float] = ...) -> None: ...

class PutPageResponse(_message.Message):
    __slots__ = ("created", "doc_count")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DOC_COUNT_FIELD_NUMBER: _ClassVar[int]
    created: bool
    doc_count: int
    def __init__(self, created: _Optional[bool] = ..., doc_count: _Optional[int] = ...) -> None: ...

class PageRankEntry(_message.Message):
    __slots__ = ("url", "pagerank")
    URL_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_FIELD_NUMBER: _ClassVar[int]
    url: str
    pagerank: float
    def __init__(self, url: _Optional[str] = ..., pagerank: _Optional[float] = ...) -> None: ...

class SetPageRanksRequest(_message.Message):
    __slots__ = ("shard", "shard_count", "ranks", "rank_version")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    RANK_VERSION_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shard_count: int
    ranks: _containers.RepeatedCompositeFieldContainer[PageRankEntry]
    rank_version: int
    def __init__(self, shard: _Optional[int] = ..., shard_count: _Optional[int] = ..., ranks: _Optional[_Iterable[_Union[PageRankEntry, _Mapping]]] = ..., rank_version: _Optional[int] = ...) -> None: ...

class SetPageRanksResponse(_message.Message):
    __slots__ = ("updated",)
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: int
    def __init__(self, updated: _Optional[int] = ...) -> None: ...

class GetTermStatisticsRequest(_message.Message):
    __slots__ = ("shard", "shard_count", "terms")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shard_count: int
    terms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shard: _Optional[int] = ..., shard_count: _Optional[int] = ..., terms: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTermStatisticsResponse(_message.Message):
    __slots__ = ("statistics",)
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    statistics: _search_pb2.CollectionStatistics
    def __init__(self, statistics: _Optional[_Union[_search_pb2.CollectionStatistics, _Mapping]] = ...) -> None: ...

class SearchShardRequest(_message.Message):
    __slots__ = ("shard", "shard_count", "query", "statistics", "top_k", "pagerank_weight")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shard_count: int
    query: _search_pb2.ParsedQuery
    statistics: _search_pb2.CollectionStatistics
    top_k: int
    pagerank_weight: float
    def __init__(self, shard: _Optional[int] = ..., shard_count: _Optional[int] = ..., query: _Optional[_Union[_search_pb2.ParsedQuery, _Mapping]] = ..., statistics: _Optional[_Union[_search_pb2.CollectionStatistics, _Mapping]] = ..., top_k: _Optional[int] = ..., pagerank_weight: _Optional[float] = ...) -> None: ...

class SearchShardResponse(_message.Message):
    __slots__ = ("hits", "matched")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_search_pb2.SearchHit]
    matched: int
    def __init__(self, hits: _Optional[_Iterable[_Union[_search_pb2.SearchHit, _Mapping]]] = ..., matched: _Optional[int] = ...) -> None: ...

class GetShardInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShardInfo(_message.Message):
    __slots__ = ("shard", "doc_count", "term_count", "rebuilding", "rank_version")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    DOC_COUNT_FIELD_NUMBER: _ClassVar[int]
    TERM_COUNT_FIELD_NUMBER: _ClassVar[int]
    REBUILDING_FIELD_NUMBER: _ClassVar[int]
    RANK_VERSION_FIELD_NUMBER: _ClassVar[int]
    shard: int
    doc_count: int
    term_count: int
    rebuilding: bool
    rank_version: int
    def __init__(self, shard: _Optional[int] = ..., doc_count: _Optional[int] = ..., term_count: _Optional[int] = ..., rebuilding: _Optional[bool] = ..., rank_version: _Optional[int] = ...) -> None: ...

class GetShardInfoResponse(_message.Message):
    __slots__ = ("shard_count", "shards")
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    shard_count: int
    shards: _containers.RepeatedCompositeFieldContainer[ShardInfo]
    def __init__(self, shard_count: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[ShardInfo, _Mapping]]] = ...) -> None: ...

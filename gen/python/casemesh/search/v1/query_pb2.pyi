from casemesh.search.v1 import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchRequest(_message.Message):
    __slots__ = ("query", "page_size", "page_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    page_size: int
    page_token: str
    def __init__(self, query: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "total_matches", "next_page_token", "shards_total", "shards_answered", "partial", "parsed_query")
    HITS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    PARSED_QUERY_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_search_pb2.SearchHit]
    total_matches: int
    next_page_token: str
    shards_total: int
    shards_answered: int
    partial: bool
    parsed_query: _search_pb2.ParsedQuery
    def __init__(self, hits: _Optional[_Iterable[_Union[_search_pb2.SearchHit, _Mapping]]] = ..., total_matches: _Optional[int] = ..., next_page_token: _Optional[str] = ..., shards_total: _Optional[int] = ..., shards_answered: _Optional[int] = ..., partial: _Optional[bool] = ..., parsed_query: _Optional[_Union[_search_pb2.ParsedQuery, _Mapping]] = ...) -> None: ...

class SuggestRequest(_message.Message):
    __slots__ = ("prefix", "limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    limit: int
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("query", "count")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    query: str
    count: int
    def __init__(self, query: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SuggestResponse(_message.Message):
    __slots__ = ("suggestions", "index_built_at_unix_ms")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    INDEX_BUILT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    index_built_at_unix_ms: int
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ..., index_built_at_unix_ms: _Optional[int] = ...) -> None: ...

class QueryCount(_message.Message):
    __slots__ = ("query", "count")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    query: str
    count: int
    def __init__(self, query: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class RecordQueriesRequest(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[QueryCount]
    def __init__(self, queries: _Optional[_Iterable[_Union[QueryCount, _Mapping]]] = ...) -> None: ...

class RecordQueriesResponse(_message.Message):
    __slots__ = ("distinct_queries",)
    DISTINCT_QUERIES_FIELD_NUMBER: _ClassVar[int]
    distinct_queries: int
    def __init__(self, distinct_queries: _Optional[int] = ...) -> None: ...

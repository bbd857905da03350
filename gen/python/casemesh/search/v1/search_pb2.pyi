from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebPage(_message.Message):
    __slots__ = ("url", "title", "body", "outlinks")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    OUTLINKS_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: str
    body: str
    outlinks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, url: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., outlinks: _Optional[_Iterable[str]] = ...) -> None: ...

class Phrase(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, terms: _Optional[_Iterable[str]] = ...) -> None: ...

class ParsedQuery(_message.Message):
    __slots__ = ("terms", "phrases")
    TERMS_FIELD_NUMBER: _ClassVar[int]
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedScalarFieldContainer[str]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    def __init__(self, terms: _Optional[_Iterable[str]] = ..., phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ...) -> None: ...

class TermStatistics(_message.Message):
    __slots__ = ("term", "doc_freq")
    TERM_FIELD_NUMBER: _ClassVar[int]
    DOC_FREQ_FIELD_NUMBER: _ClassVar[int]
    term: str
    doc_freq: int
    def __init__(self, term: _Optional[str] = ..., doc_freq: _Optional[int] = ...) -> None: ...

class CollectionStatistics(_message.Message):
    __slots__ = ("doc_count", "total_terms", "terms")
    DOC_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TERMS_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    doc_count: int
    total_terms: int
    terms: _containers.RepeatedCompositeFieldContainer[TermStatistics]
    def __init__(self, doc_count: _Optional[int] = ..., total_terms: _Optional[int] = ..., terms: _Optional[_Iterable[_Union[TermStatistics, _Mapping]]] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("url", "title", "snippet", "bm25", "pagerank", "score")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    BM25_FIELD_NUMBER: _ClassVar[int]
    PAGERANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: str
    snippet: str
    bm25: float
    pagerank: float
    score: float
    def __init__(self, url: _Optional[str] = ..., title: _Optional[str] = ..., snippet: _Optional[str] = ..., bm25: _Optional[float] = ..., pagerank: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

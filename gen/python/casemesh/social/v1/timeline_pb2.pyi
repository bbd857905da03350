from casemesh.social.v1 import tweet_pb2 as _tweet_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Ranking(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANKING_UNSPECIFIED: _ClassVar[Ranking]
    RANKING_CHRONOLOGICAL: _ClassVar[Ranking]
    RANKING_ENGAGEMENT: _ClassVar[Ranking]
RANKING_UNSPECIFIED: Ranking
RANKING_CHRONOLOGICAL: Ranking
RANKING_ENGAGEMENT: Ranking

class GetHomeTimelineRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token", "ranking")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    ranking: Ranking
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., ranking: _Optional[_Union[Ranking, str]] = ...) -> None: ...

class GetHomeTimelineResponse(_message.Message):
    __slots__ = ("tweets", "next_page_token", "pulled_authors")
    TWEETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PULLED_AUTHORS_FIELD_NUMBER: _ClassVar[int]
    tweets: _containers.RepeatedCompositeFieldContainer[_tweet_pb2.Tweet]
    next_page_token: str
    pulled_authors: int
    def __init__(self, tweets: _Optional[_Iterable[_Union[_tweet_pb2.Tweet, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., pulled_authors: _Optional[int] = ...) -> None: ...

class GetForYouTimelineRequest(_message.Message):
    __slots__ = ("user_id", "page_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class RecommendedTweet(_message.Message):
    __slots__ = ("tweet", "score")
    TWEET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    tweet: _tweet_pb2.Tweet
    score: float
    def __init__(self, tweet: _Optional[_Union[_tweet_pb2.Tweet, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class GetForYouTimelineResponse(_message.Message):
    __slots__ = ("tweets", "model_version", "recent_signals")
    TWEETS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECENT_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    tweets: _containers.RepeatedCompositeFieldContainer[RecommendedTweet]
    model_version: int
    recent_signals: int
    def __init__(self, tweets: _Optional[_Iterable[_Union[RecommendedTweet, _Mapping]]] = ..., model_version: _Optional[int] = ..., recent_signals: _Optional[int] = ...) -> None: ...

class GetFanoutStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetFanoutStatusResponse(_message.Message):
    __slots__ = ("applied_sequence", "pushed_entries", "skipped_celebrity_tweets", "cached_entries")
    APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PUSHED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_CELEBRITY_TWEETS_FIELD_NUMBER: _ClassVar[int]
    CACHED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    applied_sequence: int
    pushed_entries: int
    skipped_celebrity_tweets: int
    cached_entries: int
    def __init__(self, applied_sequence: _Optional[int] = ..., pushed_entries: _Optional[int] = ..., skipped_celebrity_tweets: _Optional[int] = ..., cached_entries: _Optional[int] = ...) -> None: ...

import datetime

from casemesh.social.v1 import tweet_pb2 as _tweet_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PostTweetRequest(_message.Message):
    __slots__ = ("author_id", "text")
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    author_id: str
    text: str
    def __init__(self, author_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PostTweetResponse(_message.Message):
    __slots__ = ("tweet", "sequence")
    TWEET_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    tweet: _tweet_pb2.Tweet
    sequence: int
    def __init__(self, tweet: _Optional[_Union[_tweet_pb2.Tweet, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class GetTweetsRequest(_message.Message):
    __slots__ = ("tweet_ids",)
    TWEET_IDS_FIELD_NUMBER: _ClassVar[int]
    tweet_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, tweet_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetTweetsResponse(_message.Message):
    __slots__ = ("tweets",)
    TWEETS_FIELD_NUMBER: _ClassVar[int]
    tweets: _containers.RepeatedCompositeFieldContainer[_tweet_pb2.Tweet]
    def __init__(self, tweets: _Optional[_Iterable[_Union[_tweet_pb2.Tweet, _Mapping]]] = ...) -> None: ...

class ListUserTweetsRequest(_message.Message):
    __slots__ = ("author_id", "page_size", "page_token")
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    author_id: str
    page_size: int
    page_token: str
    def __init__(self, author_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUserTweetsResponse(_message.Message):
    __slots__ = ("tweets", "next_page_token")
    TWEETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tweets: _containers.RepeatedCompositeFieldContainer[_tweet_pb2.Tweet]
    next_page_token: str
    def __init__(self, tweets: _Optional[_Iterable[_Union[_tweet_pb2.Tweet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRecentTweetsRequest(_message.Message):
    __slots__ = ("author_ids", "limit_per_author")
    AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PER_AUTHOR_FIELD_NUMBER: _ClassVar[int]
    author_ids: _containers.RepeatedScalarFieldContainer[str]
    limit_per_author: int
    def __init__(self, author_ids: _Optional[_Iterable[str]] = ..., limit_per_author: _Optional[int] = ...) -> None: ...

class ListRecentTweetsResponse(_message.Message):
    __slots__ = ("tweet_ids",)
    TWEET_IDS_FIELD_NUMBER: _ClassVar[int]
    tweet_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, tweet_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class LikeTweetRequest(_message.Message):
    __slots__ = ("tweet_id", "user_id")
    TWEET_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    tweet_id: int
    user_id: str
    def __init__(self, tweet_id: _Optional[int] = ..., user_id: _Optional[str] = ...) -> None: ...

class LikeTweetResponse(_message.Message):
    __slots__ = ("like_count",)
    LIKE_COUNT_FIELD_NUMBER: _ClassVar[int]
    like_count: int
    def __init__(self, like_count: _Optional[int] = ...) -> None: ...

class WatchTweetsRequest(_message.Message):
    __slots__ = ("from_sequence", "max_batch")
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    max_batch: int
    def __init__(self, from_sequence: _Optional[int] = ..., max_batch: _Optional[int] = ...) -> None: ...

class LoggedTweet(_message.Message):
    __slots__ = ("sequence", "tweet_id", "author_id", "create_time")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TWEET_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    tweet_id: int
    author_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., tweet_id: _Optional[int] = ..., author_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchTweetsResponse(_message.Message):
    __slots__ = ("entries", "log_end_sequence")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LOG_END_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LoggedTweet]
    log_end_sequence: int
    def __init__(self, entries: _Optional[_Iterable[_Union[LoggedTweet, _Mapping]]] = ..., log_end_sequence: _Optional[int] = ...) -> None: ...

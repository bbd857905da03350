from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowRequest(_message.Message):
    __slots__ = ("follower_id", "followee_id")
    FOLLOWER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_ID_FIELD_NUMBER: _ClassVar[int]
    follower_id: str
    followee_id: str
    def __init__(self, follower_id: _Optional[str] = ..., followee_id: _Optional[str] = ...) -> None: ...

class FollowResponse(_message.Message):
    __slots__ = ("followee_follower_count",)
    FOLLOWEE_FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    followee_follower_count: int
    def __init__(self, followee_follower_count: _Optional[int] = ...) -> None: ...

class FollowManyRequest(_message.Message):
    __slots__ = ("follower_id", "followee_ids")
    FOLLOWER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_IDS_FIELD_NUMBER: _ClassVar[int]
    follower_id: str
    followee_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, follower_id: _Optional[str] = ..., followee_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FollowManyResponse(_message.Message):
    __slots__ = ("added", "following_count")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_COUNT_FIELD_NUMBER: _ClassVar[int]
    added: int
    following_count: int
    def __init__(self, added: _Optional[int] = ..., following_count: _Optional[int] = ...) -> None: ...

class UnfollowRequest(_message.Message):
    __slots__ = ("follower_id", "followee_id")
    FOLLOWER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_ID_FIELD_NUMBER: _ClassVar[int]
    follower_id: str
    followee_id: str
    def __init__(self, follower_id: _Optional[str] = ..., followee_id: _Optional[str] = ...) -> None: ...

class UnfollowResponse(_message.Message):
    __slots__ = ("followee_follower_count",)
    FOLLOWEE_FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    followee_follower_count: int
    def __init__(self, followee_follower_count: _Optional[int] = ...) -> None: ...

class ListFollowersRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFollowersResponse(_message.Message):
    __slots__ = ("follower_ids", "next_page_token", "follower_count")
    FOLLOWER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    follower_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    follower_count: int
    def __init__(self, follower_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ..., follower_count: _Optional[int] = ...) -> None: ...

class ListFollowingRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Followee(_message.Message):
    __slots__ = ("user_id", "follower_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    follower_count: int
    def __init__(self, user_id: _Optional[str] = ..., follower_count: _Optional[int] = ...) -> None: ...

class ListFollowingResponse(_message.Message):
    __slots__ = ("followees", "next_page_token", "following_count")
    FOLLOWEES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_COUNT_FIELD_NUMBER: _ClassVar[int]
    followees: _containers.RepeatedCompositeFieldContainer[Followee]
    next_page_token: str
    following_count: int
    def __init__(self, followees: _Optional[_Iterable[_Union[Followee, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., following_count: _Optional[int] = ...) -> None: ...

class GetFollowCountsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetFollowCountsResponse(_message.Message):
    __slots__ = ("follower_count", "following_count")
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_COUNT_FIELD_NUMBER: _ClassVar[int]
    follower_count: int
    following_count: int
    def __init__(self, follower_count: _Optional[int] = ..., following_count: _Optional[int] = ...) -> None: ...

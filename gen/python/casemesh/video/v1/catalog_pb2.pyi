import datetime

from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetVideoRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class GetVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ...) -> None: ...

class LikeVideoRequest(_message.Message):
    __slots__ = ("video_id", "user_id")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    user_id: str
    def __init__(self, video_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class LikeVideoResponse(_message.Message):
    __slots__ = ("like_count",)
    LIKE_COUNT_FIELD_NUMBER: _ClassVar[int]
    like_count: int
    def __init__(self, like_count: _Optional[int] = ...) -> None: ...

class Comment(_message.Message):
    __slots__ = ("comment_id", "video_id", "user_id", "text", "create_time")
    COMMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    comment_id: str
    video_id: str
    user_id: str
    text: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, comment_id: _Optional[str] = ..., video_id: _Optional[str] = ..., user_id: _Optional[str] = ..., text: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddCommentRequest(_message.Message):
    __slots__ = ("video_id", "user_id", "text")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    user_id: str
    text: str
    def __init__(self, video_id: _Optional[str] = ..., user_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AddCommentResponse(_message.Message):
    __slots__ = ("comment",)
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    comment: Comment
    def __init__(self, comment: _Optional[_Union[Comment, _Mapping]] = ...) -> None: ...

class ListCommentsRequest(_message.Message):
    __slots__ = ("video_id", "page_size", "page_token")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    page_size: int
    page_token: str
    def __init__(self, video_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCommentsResponse(_message.Message):
    __slots__ = ("comments", "next_page_token")
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    comments: _containers.RepeatedCompositeFieldContainer[Comment]
    next_page_token: str
    def __init__(self, comments: _Optional[_Iterable[_Union[Comment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("user_id", "channel_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel_id: str
    def __init__(self, user_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("subscriber_count",)
    SUBSCRIBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    subscriber_count: int
    def __init__(self, subscriber_count: _Optional[int] = ...) -> None: ...

class UnsubscribeRequest(_message.Message):
    __slots__ = ("user_id", "channel_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel_id: str
    def __init__(self, user_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class UnsubscribeResponse(_message.Message):
    __slots__ = ("subscriber_count",)
    SUBSCRIBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    subscriber_count: int
    def __init__(self, subscriber_count: _Optional[int] = ...) -> None: ...

class ListChannelVideosRequest(_message.Message):
    __slots__ = ("channel_id", "page_size", "page_token")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    page_size: int
    page_token: str
    def __init__(self, channel_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListChannelVideosResponse(_message.Message):
    __slots__ = ("videos", "next_page_token")
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    videos: _containers.RepeatedCompositeFieldContainer[_video_pb2.Video]
    next_page_token: str
    def __init__(self, videos: _Optional[_Iterable[_Union[_video_pb2.Video, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetHomeFeedRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetHomeFeedResponse(_message.Message):
    __slots__ = ("videos", "next_page_token")
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    videos: _containers.RepeatedCompositeFieldContainer[_video_pb2.Video]
    next_page_token: str
    def __init__(self, videos: _Optional[_Iterable[_Union[_video_pb2.Video, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateVideoRequest(_message.Message):
    __slots__ = ("channel_id", "title", "description", "tags", "duration_s")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    duration_s: float
    def __init__(self, channel_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., duration_s: _Optional[float] = ...) -> None: ...

class CreateVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ...) -> None: ...

class MarkProcessingRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class MarkProcessingResponse(_message.Message):
    __slots__ = ("video", "generation")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    generation: int
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ..., generation: _Optional[int] = ...) -> None: ...

class PublishVideoRequest(_message.Message):
    __slots__ = ("video_id", "generation", "renditions")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    renditions: _containers.RepeatedCompositeFieldContainer[_video_pb2.RenditionInfo]
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., renditions: _Optional[_Iterable[_Union[_video_pb2.RenditionInfo, _Mapping]]] = ...) -> None: ...

class PublishVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ...) -> None: ...

class ViewCount(_message.Message):
    __slots__ = ("video_id", "count")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    count: int
    def __init__(self, video_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class RecordViewsRequest(_message.Message):
    __slots__ = ("views",)
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    views: _containers.RepeatedCompositeFieldContainer[ViewCount]
    def __init__(self, views: _Optional[_Iterable[_Union[ViewCount, _Mapping]]] = ...) -> None: ...

class RecordViewsResponse(_message.Message):
    __slots__ = ("accepted", "dropped")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    dropped: int
    def __init__(self, accepted: _Optional[int] = ..., dropped: _Optional[int] = ...) -> None: ...

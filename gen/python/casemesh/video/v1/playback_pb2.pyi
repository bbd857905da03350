from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetMasterPlaylistRequest(_message.Message):
    __slots__ = ("video_id", "generation")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class GetMasterPlaylistResponse(_message.Message):
    __slots__ = ("playlist", "generation", "max_age_s")
    PLAYLIST_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_S_FIELD_NUMBER: _ClassVar[int]
    playlist: str
    generation: int
    max_age_s: int
    def __init__(self, playlist: _Optional[str] = ..., generation: _Optional[int] = ..., max_age_s: _Optional[int] = ...) -> None: ...

class GetVariantPlaylistRequest(_message.Message):
    __slots__ = ("video_id", "generation", "rendition")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    rendition: _video_pb2.Rendition
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.Rendition, str]] = ...) -> None: ...

class GetVariantPlaylistResponse(_message.Message):
    __slots__ = ("playlist", "max_age_s")
    PLAYLIST_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_S_FIELD_NUMBER: _ClassVar[int]
    playlist: str
    max_age_s: int
    def __init__(self, playlist: _Optional[str] = ..., max_age_s: _Optional[int] = ...) -> None: ...

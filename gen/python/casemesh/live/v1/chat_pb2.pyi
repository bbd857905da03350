from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModerationOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODERATION_OUTCOME_UNSPECIFIED: _ClassVar[ModerationOutcome]
    MODERATION_OUTCOME_DELIVERED: _ClassVar[ModerationOutcome]
    MODERATION_OUTCOME_BLOCKED: _ClassVar[ModerationOutcome]
MODERATION_OUTCOME_UNSPECIFIED: ModerationOutcome
MODERATION_OUTCOME_DELIVERED: ModerationOutcome
MODERATION_OUTCOME_BLOCKED: ModerationOutcome

class OpenRoomRequest(_message.Message):
    __slots__ = ("stream_id", "broadcaster_id", "member_ids")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BROADCASTER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    broadcaster_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_id: _Optional[str] = ..., broadcaster_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class OpenRoomResponse(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class PostMessageRequest(_message.Message):
    __slots__ = ("stream_id", "user_id", "client_message_id", "text")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    user_id: str
    client_message_id: str
    text: str
    def __init__(self, stream_id: _Optional[str] = ..., user_id: _Optional[str] = ..., client_message_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PostMessageResponse(_message.Message):
    __slots__ = ("outcome", "conversation_id", "sequence", "matched_words")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_WORDS_FIELD_NUMBER: _ClassVar[int]
    outcome: ModerationOutcome
    conversation_id: str
    sequence: int
    matched_words: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, outcome: _Optional[_Union[ModerationOutcome, str]] = ..., conversation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., matched_words: _Optional[_Iterable[str]] = ...) -> None: ...

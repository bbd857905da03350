from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateDocumentRequest(_message.Message):
    __slots__ = ("document_id", "title", "initial_text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    title: str
    initial_text: str
    def __init__(self, document_id: _Optional[str] = ..., title: _Optional[str] = ..., initial_text: _Optional[str] = ...) -> None: ...

class CreateDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: Document
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("document_id", "include_state")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STATE_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    include_state: bool
    def __init__(self, document_id: _Optional[str] = ..., include_state: _Optional[bool] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("document", "state_update", "state_vector")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    STATE_VECTOR_FIELD_NUMBER: _ClassVar[int]
    document: Document
    state_update: bytes
    state_vector: bytes
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., state_update: _Optional[bytes] = ..., state_vector: _Optional[bytes] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "title", "created_at_unix_ms", "sequence", "text", "state_bytes", "editors")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EDITORS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    title: str
    created_at_unix_ms: int
    sequence: int
    text: str
    state_bytes: int
    editors: int
    def __init__(self, document_id: _Optional[str] = ..., title: _Optional[str] = ..., created_at_unix_ms: _Optional[int] = ..., sequence: _Optional[int] = ..., text: _Optional[str] = ..., state_bytes: _Optional[int] = ..., editors: _Optional[int] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class Signals(_message.Message):
    __slots__ = ("profanity_hits", "negative_valence", "compound_valence", "second_person_share")
    PROFANITY_HITS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_VALENCE_FIELD_NUMBER: _ClassVar[int]
    COMPOUND_VALENCE_FIELD_NUMBER: _ClassVar[int]
    SECOND_PERSON_SHARE_FIELD_NUMBER: _ClassVar[int]
    profanity_hits: int
    negative_valence: float
    compound_valence: float
    second_person_share: float
    def __init__(self, profanity_hits: _Optional[int] = ..., negative_valence: _Optional[float] = ..., compound_valence: _Optional[float] = ..., second_person_share: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("violation_probability", "model_version", "signals")
    VIOLATION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    violation_probability: float
    model_version: str
    signals: Signals
    def __init__(self, violation_probability: _Optional[float] = ..., model_version: _Optional[str] = ..., signals: _Optional[_Union[Signals, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model_version", "training_items", "held_out_items", "held_out_auc", "features", "coefficients", "intercept")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ITEMS_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_AUC_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    COEFFICIENTS_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    training_items: int
    held_out_items: int
    held_out_auc: float
    features: _containers.RepeatedScalarFieldContainer[str]
    coefficients: _containers.RepeatedScalarFieldContainer[float]
    intercept: float
    def __init__(self, model_version: _Optional[str] = ..., training_items: _Optional[int] = ..., held_out_items: _Optional[int] = ..., held_out_auc: _Optional[float] = ..., features: _Optional[_Iterable[str]] = ..., coefficients: _Optional[_Iterable[float]] = ..., intercept: _Optional[float] = ...) -> None: ...

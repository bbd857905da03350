"""moderation-classifier's input rules, as protos/casemesh/moderation/v1/classifier.proto states them.

Classify's ``text``: 1 to 5,000 characters (:func:`services.moderation.contract.is_text`); anything else is
:class:`~services.runtime.errors.InvalidArgument` naming ``text``. GetModel takes nothing.
"""

from __future__ import annotations

from casemesh.moderation.v1 import classifier_pb2

from ...runtime.errors import InvalidArgument
from .. import contract

__all__ = ["classify"]


def classify(request: classifier_pb2.ClassifyRequest) -> str:
    """ClassifyRequest: its text."""
    if not contract.is_text(request.text):
        rule = f"1 to {contract.MAX_TEXT_CHARS:,} characters"
        raise InvalidArgument("text", f"has {len(request.text):,} characters; {rule}" if request.text
                              else f"is required ({rule})")
    return request.text

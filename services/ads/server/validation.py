"""ads-server's input rules, as protos/casemesh/ads/v1/server.proto and ads.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the proto's comments do
(``request_id``, ``user_key``, ``country``, ``interests``, ``interests[i]``; ``impression_id``), the first bad one in
the proto's field order. The shared rules are the contract's (:mod:`services.ads.contract`). A device value the
contract does not know is taken as unknown (it matches only the campaigns that target every device).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.ads.v1 import ads_pb2, server_pb2

from ...runtime.errors import InvalidArgument
from .. import contract

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
_DEVICES = frozenset(ads_pb2.DeviceType.values())


class AdRequest(NamedTuple):
    """A valid DecideRequest."""

    request_id: str
    user_key: str
    country: str
    interests: tuple[str, ...]
    device: int


def _id(field: str, value: str) -> str:
    if not contract.is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}" if value else f"is required ({_ID_RULE})")
    return value


def decide(request: server_pb2.DecideRequest) -> AdRequest:
    """DecideRequest: ``request_id``, ``user_key``, ``country`` (ISO 3166-1 alpha-2 or empty), at most 20
    ``interests`` (1 to 32 characters of [a-z0-9-] each)."""
    request_id = _id("request_id", request.request_id)
    user_key = _id("user_key", request.user_key)
    if request.country and not contract.is_country(request.country):
        raise InvalidArgument("country", f"{request.country[:8]!r} is not an ISO 3166-1 alpha-2 code (or empty)")
    if len(request.interests) > contract.MAX_INTERESTS:
        raise InvalidArgument("interests", f"has {len(request.interests)} entries; at most {contract.MAX_INTERESTS}")
    for i, interest in enumerate(request.interests):
        if not contract.is_interest(interest):
            raise InvalidArgument(f"interests[{i}]", "must be 1 to 32 characters of a-z, 0-9 or '-'")
    device = request.device if request.device in _DEVICES else ads_pb2.DEVICE_TYPE_UNSPECIFIED
    return AdRequest(request_id, user_key, request.country, tuple(request.interests), device)


def impression_id(value: str) -> str:
    """An impression ID (a served request's ID), naming ``impression_id``."""
    return _id("impression_id", value)

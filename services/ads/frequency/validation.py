"""ads-frequency's input rules, as protos/casemesh/ads/v1/frequency.proto and ads.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the proto's comments do
(``user_key``, ``caps``, ``caps[i]``; ``impression_id``, ``user_key``, ``campaign_id``, ``cap``), the first bad one in
the proto's field order. The shared rules are the contract's (:mod:`services.ads.contract`); a cap whose window is
longer than this service's ``max_window_s`` setting is refused too (it could not be honoured after a restart).
"""

from __future__ import annotations

from casemesh.ads.v1 import ads_pb2, frequency_pb2

from ...runtime.errors import InvalidArgument
from .. import contract
from .counter import Cap

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def _id(field: str, value: str) -> str:
    if not contract.is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}" if value else f"is required ({_ID_RULE})")
    return value


def _cap(field: str, cap: ads_pb2.FrequencyCap, max_window_s: int) -> Cap:
    if not 1 <= cap.max_impressions <= contract.MAX_CAP_IMPRESSIONS:
        raise InvalidArgument(field, f"max_impressions {cap.max_impressions} is not 1 to "
                                     f"{contract.MAX_CAP_IMPRESSIONS:,}")
    if not 1 <= cap.window_s <= contract.MAX_CAP_WINDOW_S:
        raise InvalidArgument(field, f"window_s {cap.window_s} is not 1 to {contract.MAX_CAP_WINDOW_S:,}")
    if cap.window_s > max_window_s:
        raise InvalidArgument(field, f"window_s {cap.window_s} is longer than this service's max_window_s "
                                     f"{max_window_s:,}")
    return Cap(cap.max_impressions, cap.window_s)


def impression_id(value: str) -> str:
    """An impression ID, naming ``impression_id``."""
    return _id("impression_id", value)


def get_counts(request: frequency_pb2.GetCountsRequest, max_window_s: int) -> tuple[str, list[tuple[str, Cap]]]:
    """GetCountsRequest: ``user_key``, 1 to 1,000 ``caps`` (each a campaign ID and a cap)."""
    user_key = _id("user_key", request.user_key)
    if not 1 <= len(request.caps) <= contract.MAX_BATCH:
        raise InvalidArgument("caps", f"has {len(request.caps)} entries; 1 to {contract.MAX_BATCH:,}")
    caps = []
    for i, entry in enumerate(request.caps):
        if not contract.is_id(entry.campaign_id):
            raise InvalidArgument(f"caps[{i}]", f"campaign_id must be {_ID_RULE}")
        caps.append((entry.campaign_id, _cap(f"caps[{i}]", entry.cap, max_window_s)))
    return user_key, caps


def reserve(request: frequency_pb2.ReserveRequest, max_window_s: int) -> tuple[str, str, str, Cap]:
    """ReserveRequest: ``impression_id``, ``user_key``, ``campaign_id``, ``cap``."""
    return (impression_id(request.impression_id), _id("user_key", request.user_key),
            _id("campaign_id", request.campaign_id), _cap("cap", request.cap, max_window_s))

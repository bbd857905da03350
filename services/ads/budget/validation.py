"""ads-budget's input rules, as protos/casemesh/ads/v1/budget.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field (``campaign_ids`` (1 to 1,000),
``campaign_ids[i]``; ``impression_id``, ``campaign_id``, ``price_milli_minor`` (1 to 100,000,000)), the first bad one
in the proto's field order. IDs are the contract's (:func:`services.ads.contract.is_id`).
"""

from __future__ import annotations

from casemesh.ads.v1 import budget_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract

__all__ = ["campaign_id", "charge", "check_eligibility"]


def campaign_id(value: str) -> str:
    """A campaign ID, naming ``campaign_id``."""
    return required_id("campaign_id", value)


def check_eligibility(request: budget_pb2.CheckEligibilityRequest) -> list[str]:
    """CheckEligibilityRequest: its campaign IDs."""
    ids = request.campaign_ids
    if not 1 <= len(ids) <= contract.MAX_BATCH:
        raise InvalidArgument("campaign_ids", f"{len(ids)} campaign IDs; 1 to {contract.MAX_BATCH:,}")
    for i, value in enumerate(ids):
        required_id(f"campaign_ids[{i}]", value)
    return list(ids)


def charge(request: budget_pb2.ChargeRequest) -> tuple[str, str, int]:
    """ChargeRequest: (impression_id, campaign_id, price_milli_minor)."""
    impression = required_id("impression_id", request.impression_id)
    campaign = campaign_id(request.campaign_id)
    if not 1 <= request.price_milli_minor <= contract.MAX_PRICE_MILLI_MINOR:
        raise InvalidArgument("price_milli_minor", f"{request.price_milli_minor} is not 1 to "
                                                   f"{contract.MAX_PRICE_MILLI_MINOR:,}")
    return impression, campaign, request.price_milli_minor

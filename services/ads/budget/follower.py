"""ads-budget follows the campaigns (budgets, bids, states) from ads-campaigns: every ``sync_interval_ms`` it asks
CampaignService.ListCampaigns for the campaigns changed after the last version it saw, page by page (1,000 a page),
each call with the deadline ``campaigns_timeout_s``, and hands them to :meth:`.budget.Budget.follow`. A store version
below the one seen (ads-campaigns started on a new file) makes it list every campaign again.

A failed poll (ads-campaigns down, slow or overloaded) is counted (``casemesh_ads_budget_sync_errors_total``), logged
at most once a minute, and retried at the next interval: the budget keeps deciding with the campaigns it knows (a
campaign paused meanwhile is charged until the next successful poll, at most one interval plus a deadline late once
ads-campaigns answers again).
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from casemesh.ads.v1 import campaigns_pb2, campaigns_pb2_grpc

from . import metrics
from .budget import Budget

log = logging.getLogger("casemesh.ads.budget.follower")

PAGE_SIZE = 1_000
_LOG_EVERY_S = 60.0


class CampaignFollower:
    """Polls ``stub`` (a CampaignService stub on the runtime's channel to ads-campaigns) into ``budget``."""

    def __init__(self, stub: campaigns_pb2_grpc.CampaignServiceStub, budget: Budget, interval_ms: int,
                 timeout_s: float) -> None:
        self._stub = stub
        self._budget = budget
        self._interval_s = interval_ms / 1_000
        self._timeout_s = timeout_s
        self._logged_at = -_LOG_EVERY_S

    async def poll_once(self) -> int:
        """Take in every campaign changed since the last version seen; returns how many. Raises
        ``grpc.aio.AioRpcError`` when a call fails (what earlier pages brought is kept)."""
        taken = 0
        while True:
            response = await self._stub.ListCampaigns(campaigns_pb2.ListCampaignsRequest(
                after_version=self._budget.campaigns_version, page_size=PAGE_SIZE), timeout=self._timeout_s)
            if response.version < self._budget.campaigns_version:  # a new store (its file was replaced): list all
                log.warning("ads-budget: ads-campaigns is at version %d, below the %d seen; following it from 0",
                            response.version, self._budget.campaigns_version)
                self._budget.campaigns_version = 0
                continue
            self._budget.follow(response.campaigns)
            taken += len(response.campaigns)
            if not response.more or not response.campaigns:
                return taken

    async def try_poll(self) -> bool:
        """:meth:`poll_once`, a failure counted and logged (at most once a minute); whether it succeeded."""
        try:
            await self.poll_once()
        except (TimeoutError, grpc.aio.AioRpcError) as error:
            metrics.SYNC_ERRORS.inc()
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = now
                details = error.code().name if isinstance(error, grpc.aio.AioRpcError) else "timeout"
                log.warning("ads-budget: ListCampaigns of ads-campaigns failed (%s); campaigns as of version %d",
                            details, self._budget.campaigns_version)
            return False
        return True

    async def run(self) -> None:
        """Poll forever, every ``interval_ms`` (until cancelled)."""
        while True:
            try:
                await self.try_poll()
            except Exception:  # a bug: logged, and the follower goes on
                metrics.SYNC_ERRORS.inc()
                log.exception("ads-budget: following the campaigns failed")
            await asyncio.sleep(self._interval_s)

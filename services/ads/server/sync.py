"""Keeping the targeting index current: CampaignService.ListCampaigns polled by version (seed 001 #15).

Every ``sync_interval_ms`` the syncer asks for the campaigns changed after the last version it saw, page by page
until ``more`` is false, and hands each to :meth:`.index.TargetingIndex.upsert` (a paused campaign leaves the index,
a resumed or new one enters it). A failed poll leaves the index as it was (decisions go on with it) and is retried at
the next interval; it is logged once per failing streak and counted (``casemesh_ads_server_sync_failures_total``).
"""

from __future__ import annotations

import asyncio
import logging

from . import metrics
from .clients import Campaigns
from .index import TargetingIndex

log = logging.getLogger("casemesh.ads.server.sync")


class CampaignSync:
    """Polls ``campaigns`` into ``index``."""

    def __init__(self, campaigns: Campaigns, index: TargetingIndex, interval_ms: int, timeout_ms: int) -> None:
        self._campaigns = campaigns
        self._index = index
        self._interval_s = interval_ms / 1000
        self._timeout_s = timeout_ms / 1000
        #: The campaigns' version the index is at.
        self.version = 0

    async def poll(self) -> int:
        """Take in every campaign changed since :attr:`version`; how many."""
        changed = 0
        while True:
            page = await self._campaigns.changed_after(self.version, self._timeout_s)
            for campaign in page.campaigns:
                self._index.upsert(campaign)
                self.version = max(self.version, campaign.version)
            changed += len(page.campaigns)
            if not page.more or not page.campaigns:
                break
        metrics.INDEX_CAMPAIGNS.set(len(self._index))
        metrics.INDEX_VERSION.set(self.version)
        return changed

    async def run(self) -> None:
        """:meth:`poll` every interval until cancelled."""
        failing = False
        while True:
            try:
                await self.poll()
            except Exception as error:  # noqa: BLE001 - the index stays as it was; the next poll tries again
                metrics.SYNC_FAILURES.inc()
                if not failing:
                    log.warning("ads-server: ListCampaigns failed (%s: %s); the index stays at version %d",
                                type(error).__name__, error, self.version)
                failing = True
            else:
                if failing:
                    log.info("ads-server: ListCampaigns answers again; the index is at version %d", self.version)
                failing = False
            await asyncio.sleep(self._interval_s)

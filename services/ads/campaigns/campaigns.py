"""The campaigns in memory, over their durable log (:mod:`.store`): create (idempotent), get, set state, list by
version.

Every campaign is in memory (loaded at :meth:`Campaigns.start`); memory changes only in a write's ``apply``, after the
write is durable, so a reader never sees what the file may lose. Calls about one campaign ID run one after the other
(:class:`~services.runtime.keyed_locks.KeyedLocks`): a creation decides "new, same or other" and a state change
"changed or not" on the state every earlier call left. Versions are taken from the store-wide counter when a write is
queued; the group commit commits (and applies) writes in the order they were queued, so the campaigns appear in
version order, and a version taken by a write that failed is merely skipped (ListCampaigns pages by "above version
V", which gaps do not disturb).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from casemesh.ads.v1 import ads_pb2

from ...runtime.errors import AlreadyExists, NotFound
from ...runtime.keyed_locks import KeyedLocks
from . import metrics
from .store import CampaignStore

ACTIVE, PAUSED = ads_pb2.CAMPAIGN_STATE_ACTIVE, ads_pb2.CAMPAIGN_STATE_PAUSED
_STATE_LABELS = {ACTIVE: "active", PAUSED: "paused"}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fields(campaign: ads_pb2.Campaign) -> ads_pb2.Campaign:
    """``campaign`` without what the store sets (state, version, creation time)."""
    copy = ads_pb2.Campaign()
    copy.CopyFrom(campaign)
    copy.ClearField("state")
    copy.ClearField("version")
    copy.ClearField("created_at_unix_ms")
    return copy


class Campaigns:
    """Every campaign, by ID and by version, over ``store``; ``clock`` gives Unix milliseconds (creation times)."""

    def __init__(self, store: CampaignStore, clock: Callable[[], int] = _now_ms) -> None:
        self._store = store
        self._clock = clock
        self._locks = KeyedLocks()
        self._by_id: dict[str, ads_pb2.Campaign] = {}
        # (version, campaign_id) in version order; an entry whose campaign has moved on to a newer version is stale
        self._versions: list[int] = []
        self._ids: list[str] = []
        self._taken = 0  # the highest version taken by a queued write
        self._version = 0  # the highest version applied (the store's version)

    async def start(self) -> int:
        """Load the stored campaigns; returns how many."""
        for campaign in await self._store.load():
            self._apply(campaign)
        self._taken = self._version
        self._count()
        return len(self._by_id)

    async def close(self) -> None:
        await self._store.close()

    @property
    def version(self) -> int:
        """The store's version: the highest version of any campaign (0: none)."""
        return self._version

    def _apply(self, campaign: ads_pb2.Campaign) -> None:
        self._by_id[campaign.campaign_id] = campaign
        self._versions.append(campaign.version)
        self._ids.append(campaign.campaign_id)
        self._version = max(self._version, campaign.version)
        metrics.VERSION.set(self._version)
        if len(self._versions) > 2 * len(self._by_id) + 1_024:  # drop the stale entries
            live = sorted((c.version, c.campaign_id) for c in self._by_id.values())
            self._versions = [v for v, _ in live]
            self._ids = [i for _, i in live]

    def _count(self) -> None:
        counts = {ACTIVE: 0, PAUSED: 0}
        for campaign in self._by_id.values():
            counts[campaign.state] += 1
        for state, label in _STATE_LABELS.items():
            metrics.CAMPAIGNS.labels(label).set(counts[state])

    def _next_version(self) -> int:
        self._taken += 1
        return self._taken

    async def create(self, campaign: ads_pb2.Campaign) -> ads_pb2.Campaign:
        """Store the validated ``campaign`` (canonical, as :func:`.validation.campaign` makes it), ACTIVE; the stored
        campaign when its ID holds the same fields already. Raises ``AlreadyExists`` (the ID holds another campaign),
        ``StoreUnavailable``."""
        async with self._locks.hold(campaign.campaign_id):
            stored = self._by_id.get(campaign.campaign_id)
            if stored is not None:
                if _fields(stored) == _fields(campaign):
                    return stored
                raise AlreadyExists(f"campaign {campaign.campaign_id} exists with other fields")
            record = ads_pb2.Campaign()
            record.CopyFrom(campaign)
            record.state = ACTIVE
            record.created_at_unix_ms = self._clock()
            record.version = self._next_version()
            await self._store.insert(record, lambda _: self._applied(record))
            metrics.WRITES.labels("create").inc()
            return record

    def _applied(self, campaign: ads_pb2.Campaign) -> None:
        previous = self._by_id.get(campaign.campaign_id)
        if previous is not None:
            metrics.CAMPAIGNS.labels(_STATE_LABELS[previous.state]).dec()
        metrics.CAMPAIGNS.labels(_STATE_LABELS[campaign.state]).inc()
        self._apply(campaign)

    def get(self, campaign_id: str) -> ads_pb2.Campaign:
        """The campaign ``campaign_id``; raises ``NotFound``."""
        campaign = self._by_id.get(campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return campaign

    async def set_state(self, campaign_id: str, state: int) -> ads_pb2.Campaign:
        """Set the campaign's state (ACTIVE or PAUSED), a new version; unchanged (no new version) when it has that
        state. Raises ``NotFound``, ``StoreUnavailable``."""
        async with self._locks.hold(campaign_id):
            stored = self.get(campaign_id)
            if stored.state == state:
                return stored
            record = ads_pb2.Campaign()
            record.CopyFrom(stored)
            record.state = state
            record.version = self._next_version()
            await self._store.set_state(record, lambda _: self._applied(record))
            metrics.WRITES.labels("state").inc()
            return record

    def changed_after(self, after_version: int, page_size: int) -> tuple[list[ads_pb2.Campaign], bool]:
        """The campaigns whose version is above ``after_version``, by version, at most ``page_size``; and whether more
        follow."""
        page: list[ads_pb2.Campaign] = []
        index = bisect.bisect_right(self._versions, after_version)
        while index < len(self._versions):
            campaign = self._by_id[self._ids[index]]
            if campaign.version == self._versions[index]:  # else stale: the campaign moved on
                if len(page) == page_size:
                    return page, True
                page.append(campaign)
            index += 1
        return page, False

"""The home feed: subscriptions' newest videos merged on read, then trending (seed 004, "Feed Generation").

The seed weighs fan-out on write (push: a worker copies each new video into
every subscriber's feed list; O(1) reads, but "a creator with 10M subs = 10M
cache writes") against fan-out on read (pull: "merge N timelines" per feed
request; cheap writes, slower reads), and recommends a hybrid: push for
regular creators, pull for celebrities "with >1M subscribers".

casemesh pulls for everyone. The timelines are in memory in the same process
(each channel's published videos, oldest first), so a merge costs
O(S log S + page) for S subscriptions, not S database reads; a publish costs
O(1) whatever the channel's audience; and a Subscribe is in the next feed at
once with no backfill (the seed asks subscriptions to be strongly
consistent). The hybrid's celebrity threshold would matter once feeds live in
a separate cache tier, which this case study does not model.

A feed is two parts, without duplicates:

1. **subscriptions**: the newest ``per_channel`` videos of every subscribed
   channel, merged newest first (by publish order);
2. **trending**: the ``trending_size`` most viewed published videos (view
   count, then newest first), minus those already in part 1.

Paging is by cursor (keyset), so a page never repeats an earlier page's
video: in part 1 the cursor is the last publish sequence number shown; in
part 2 it is the last (view count, publish sequence) shown. View counts only
grow, so a trending video already shown stays before the cursor; one that
overtakes the cursor between two pages is skipped, the usual price of keyset
paging over a moving ranking.

Pure functions over :class:`FeedItem`-shaped records; the store calls them
under its reader lock.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

#: The cursor value that starts the trending part from its top (above any real view count).
TOP = 2**62


class FeedItem(Protocol):
    """What the feed needs of a published video."""

    video_id: str
    publish_seq: int
    view_count: int


@dataclass(frozen=True, slots=True)
class FeedCursor:
    """Where a feed page ends: ``part`` ``"s"`` (subscriptions, after ``seq``) or ``"t"`` (trending, after ``(views, seq)``)."""

    part: str
    seq: int
    views: int = 0


def trending_key(item: FeedItem) -> tuple[int, int]:
    """Trending order, descending: most views first, then the newest."""
    return item.view_count, item.publish_seq


def _subscription_stream(timelines: Sequence[Sequence[FeedItem]], before_seq: int) -> Iterator[FeedItem]:
    """The timelines' items with ``publish_seq < before_seq``, newest first (a k-way merge)."""
    streams = []
    for timeline in timelines:
        end = bisect_left(timeline, before_seq, key=lambda item: item.publish_seq)
        if end:
            streams.append(reversed(timeline[:end]))
    return heapq.merge(*streams, key=lambda item: item.publish_seq, reverse=True)


def feed_page(
    timelines: Sequence[Sequence[FeedItem]],
    trending: Sequence[FeedItem],
    cursor: FeedCursor | None,
    size: int,
    per_channel: int,
) -> tuple[list[FeedItem], FeedCursor | None]:
    """One feed page of at most ``size`` items and the cursor of the next (``None`` on the last page).

    ``timelines``: each subscribed channel's published videos in publish
    order (oldest first); only the last ``per_channel`` of each count.
    ``trending``: the trending list, best first (``trending_key``
    descending). ``cursor``: ``None`` for the first page.
    """
    windows = [timeline[-per_channel:] for timeline in timelines if timeline]
    page: list[FeedItem] = []
    if cursor is None or cursor.part == "s":
        before = cursor.seq if cursor is not None else TOP
        stream = _subscription_stream(windows, before)
        page = list(islice(stream, size))
        if len(page) == size and next(stream, None) is not None:
            return page, FeedCursor("s", page[-1].publish_seq)
        cursor = FeedCursor("t", TOP, TOP)
    shown = {item.video_id for window in windows for item in window}
    after = (cursor.views, cursor.seq)
    rest = (item for item in trending if trending_key(item) < after and item.video_id not in shown)
    added = list(islice(rest, size - len(page)))
    page.extend(added)
    if len(page) == size and next(rest, None) is not None:
        if not added:  # the page ended with the last subscription video: trending starts the next one
            return page, FeedCursor("t", TOP, TOP)
        last = added[-1]
        return page, FeedCursor("t", last.publish_seq, last.view_count)
    return page, None

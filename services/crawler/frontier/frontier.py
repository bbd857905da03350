"""One crawl's URL frontier: a breadth-first queue per host, the seen set, and each host's robots.txt state.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, ... BFS"); seed 000
(shared/seeds/000_69ff90d97cf45f9b.txt, "Search Engine": "URL Frontier: Priority queue of URLs to crawl"). As in
Mercator's frontier (Heydon and Najork, 1999), every host has a queue of its own, so that a fetcher never waits for
a host while another has work; the queue is a heap by depth from the seeds (then by discovery order), so a crawl is
breadth-first even though hosts are fetched concurrently and a deeper page of one host may be found before a
shallower one of another. Which host is fetched next is the process-wide :class:`.politeness.HostClock`'s choice.

The seen set holds every normalised URL the crawl discovered (:func:`.parse.normalize_url`), queued, fetched or
blocked, so a URL is queued at most once per crawl; only a 503 puts a URL back (:meth:`Frontier.requeue`).

robots.txt comes first: a host's first URL creates its queue with its robots.txt fetch pending; no page of the host
is handed out until :meth:`Frontier.set_robots` gives the rules. URLs the rules disallow leave the queue (or never
enter it once the rules are known) and are counted by the caller as ``robots_blocked``.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .robots import RobotsRules


class RobotsState(enum.Enum):
    """Where a host's robots.txt is for one crawl."""

    PENDING = "pending"  # not fetched yet: the host's next fetch is its robots.txt
    FETCHING = "fetching"
    READY = "ready"  # rules known, the host open
    CLOSED = "closed"  # no URL of the host will be fetched


class Added(enum.Enum):
    """What :meth:`Frontier.add` did with a URL."""

    QUEUED = "queued"
    SEEN = "seen"  # discovered before: nothing done
    BLOCKED = "blocked"  # robots.txt disallows it (or the host is closed): never fetched


@dataclass(order=True, frozen=True)
class QueuedUrl:
    """A URL waiting in its host's queue: ordered by ``depth``, then discovery order. ``attempt`` is 0 for a first
    fetch, n for the n-th retry after a 503; ``queued_at`` the caller's clock when it was queued (seconds)."""

    depth: int
    order: int
    url: str = field(compare=False)
    attempt: int = field(default=0, compare=False)
    queued_at: float = field(default=0.0, compare=False)


@dataclass
class _HostQueue:
    robots: RobotsState = RobotsState.PENDING
    rules: RobotsRules | None = None
    urls: list[QueuedUrl] = field(default_factory=list)  # a heap


def host_of(url: str) -> str:
    """The host of a normalised URL."""
    return urlsplit(url).hostname or ""


class Frontier:
    """One crawl's URLs: queued per host by depth, and every URL ever discovered."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._hosts: dict[str, _HostQueue] = {}
        self._order = itertools.count()
        self._size = 0

    @property
    def size(self) -> int:
        """URLs queued (not counting robots.txt fetches)."""
        return self._size

    @property
    def host_count(self) -> int:
        """Hosts the crawl has discovered URLs of."""
        return len(self._hosts)

    def seen(self, url: str) -> bool:
        """True when ``url`` was discovered by this crawl."""
        return url in self._seen

    def add(self, url: str, depth: int, now: float = 0.0) -> Added:
        """Discover a normalised URL at ``depth``: queue it on its host unless it was seen, or robots.txt (known
        already) disallows it."""
        if url in self._seen:
            return Added.SEEN
        self._seen.add(url)
        queue = self._hosts.setdefault(host_of(url), _HostQueue())
        if queue.robots is RobotsState.CLOSED or (queue.rules is not None and not queue.rules.allows(url)):
            return Added.BLOCKED
        self._push(queue, QueuedUrl(depth, next(self._order), url, 0, now))
        return Added.QUEUED

    def requeue(self, item: QueuedUrl, now: float, retry: bool = True) -> None:
        """Queue ``item`` again at its depth's priority (behind the URLs of that depth already queued): for its next
        attempt (``retry``: a 503), or for the same one (the fetch never reached the host)."""
        queue = self._hosts[host_of(item.url)]
        if queue.robots is not RobotsState.CLOSED:
            self._push(queue, QueuedUrl(item.depth, next(self._order), item.url, item.attempt + retry, now))

    def _push(self, queue: _HostQueue, item: QueuedUrl) -> None:
        heapq.heappush(queue.urls, item)
        self._size += 1

    def robots_state(self, host: str) -> RobotsState:
        """Where ``host``'s robots.txt is (PENDING for a host without URLs)."""
        queue = self._hosts.get(host)
        return queue.robots if queue is not None else RobotsState.PENDING

    def start_robots(self, host: str) -> bool:
        """If ``host``'s robots.txt is still to fetch, mark it being fetched and return True."""
        queue = self._hosts.get(host)
        if queue is None or queue.robots is not RobotsState.PENDING:
            return False
        queue.robots = RobotsState.FETCHING
        return True

    def robots_again(self, host: str) -> None:
        """``host``'s robots.txt fetch never reached it: fetch it again."""
        queue = self._hosts[host]
        if queue.robots is RobotsState.FETCHING:
            queue.robots = RobotsState.PENDING

    def set_robots(self, host: str, rules: RobotsRules) -> list[QueuedUrl]:
        """``host``'s robots.txt says ``rules``: the URLs it disallows leave the queue (all of them when it closes
        the host); returns them."""
        queue = self._hosts[host]
        queue.rules = rules
        queue.robots = RobotsState.CLOSED if rules.closed else RobotsState.READY
        return self._remove(queue, lambda item: not rules.allows(item.url))

    def close(self, host: str) -> list[QueuedUrl]:
        """No URL of ``host`` will be fetched (it does not exist): empty its queue; returns what it held."""
        queue = self._hosts[host]
        queue.robots = RobotsState.CLOSED
        return self._remove(queue, lambda item: True)

    def _remove(self, queue: _HostQueue, drop) -> list[QueuedUrl]:
        dropped = [item for item in queue.urls if drop(item)]
        if dropped:
            queue.urls = [item for item in queue.urls if not drop(item)]
            heapq.heapify(queue.urls)
            self._size -= len(dropped)
        return dropped

    def has_work(self, host: str) -> bool:
        """True while ``host`` has a robots.txt to fetch or URLs to hand out once it is read."""
        queue = self._hosts.get(host)
        return queue is not None and queue.robots is not RobotsState.CLOSED and bool(queue.urls)

    def pop(self, host: str) -> QueuedUrl | None:
        """``host``'s shallowest queued URL (the first discovered among equals), once its robots.txt is read."""
        queue = self._hosts.get(host)
        if queue is None or queue.robots is not RobotsState.READY or not queue.urls:
            return None
        self._size -= 1
        return heapq.heappop(queue.urls)

    def hosts_with_work(self) -> list[str]:
        """Every host :meth:`has_work` is true of."""
        return [host for host in self._hosts if self.has_work(host)]

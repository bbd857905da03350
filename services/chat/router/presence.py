"""The presence registry: which gateway holds each connected device, and when each user was last seen.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)", "Real-time Messaging": the seed's chat server keeps
``self.connections = {}  # user_id -> websocket`` and publishes to
``user:{recipient_id}`` on Redis when the recipient is on another server.
With several connection servers (the seed's "500K+ servers for connections")
that map has to live outside any one of them: this registry is it (seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "WhatsApp Messaging": "Online
status", "Message routing").

Shapes (all times Unix milliseconds from the injected ``clock``):

- sessions by ID → :class:`SessionEntry` (user, device, gateway, last refresh);
- by user → their session IDs (one per connected device);
- by (user, device) → the session ID: a device has at most one session, the
  newest registered (:meth:`PresenceRegistry.register` returns the one it
  replaced, whose gateway is then told to end it);
- by gateway → its session IDs (:meth:`PresenceRegistry.refresh` replaces a
  gateway's whole set: its heartbeat);
- last seen per user once they have no session left.

Presence comes from heartbeats with a timeout: a gateway refreshes all its
sessions every few seconds; :meth:`PresenceRegistry.expire` drops the
sessions not refreshed for ``session_timeout_ms`` (their gateway died), and
their users are last seen at their last refresh.

Concurrency: plain dictionaries, no lock. The router serves on one asyncio
event loop and every method here is synchronous: no operation awaits between
its reads and its writes, so none can interleave with another (a
readers-writer lock such as aiorwlock, used by the stores whose operations
await I/O, would only add cost here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def wall_clock_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class SessionEntry:
    """One connected device: ``session_id`` on ``gateway`` (a topology name), refreshed at ``last_refresh_ms``."""

    session_id: str
    user_id: str
    device_id: str
    gateway: str
    last_refresh_ms: int


@dataclass(frozen=True, slots=True)
class Presence:
    """A user's presence: online while ``devices`` > 0; ``last_seen_unix_ms`` 0 when never seen."""

    user_id: str
    online: bool
    devices: int
    last_seen_unix_ms: int


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What :meth:`PresenceRegistry.refresh` changed: sessions ``registered`` again, ``dropped`` (not listed), and
    listed sessions ``superseded`` by another session of the same device (their gateway should end them)."""

    registered: int
    dropped: list[SessionEntry]
    superseded: list[tuple[SessionEntry, str]]


class PresenceRegistry:
    """Sessions by ID, user, (user, device) and gateway; last seen per user (module docstring).

    ``session_timeout_ms``: a session not refreshed for this long is dropped
    by :meth:`expire`. ``clock``: Unix milliseconds (injected in tests).
    """

    def __init__(self, session_timeout_ms: int = 10_000, clock: Callable[[], int] = wall_clock_ms) -> None:
        if session_timeout_ms <= 0:
            raise ValueError(f"session_timeout_ms must be positive, not {session_timeout_ms}")
        self.session_timeout_ms = session_timeout_ms
        self._clock = clock
        self._sessions: dict[str, SessionEntry] = {}
        self._by_user: dict[str, set[str]] = {}
        self._by_device: dict[tuple[str, str], str] = {}
        self._by_gateway: dict[str, set[str]] = {}
        self._last_seen: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> SessionEntry | None:
        """The session ``session_id``, or ``None``."""
        return self._sessions.get(session_id)

    def register(self, user_id: str, device_id: str, session_id: str, gateway: str) -> SessionEntry | None:
        """Record a new session; returns the older session of the same (user, device) it replaced, if any.

        Registering a session ID that is known already moves it (same user
        and device: a gateway registering again after a timeout).
        """
        now = self._clock()
        known = self._sessions.get(session_id)
        if known is not None:
            self._remove(known, last_seen_ms=now)
        replaced = None
        older = self._by_device.get((user_id, device_id))
        if older is not None and older != session_id:
            replaced = self._sessions[older]
            self._remove(replaced, last_seen_ms=now)
        self._add(SessionEntry(session_id, user_id, device_id, gateway, now))
        return replaced

    def unregister(self, session_id: str) -> SessionEntry | None:
        """Remove a session that ended (``None`` when unknown); its user is last seen now if it was their last."""
        entry = self._sessions.get(session_id)
        if entry is not None:
            self._remove(entry, last_seen_ms=self._clock())
        return entry

    def drop(self, session_ids: Iterable[str]) -> list[SessionEntry]:
        """Remove sessions a gateway says it no longer holds; their users are last seen at their last refresh."""
        dropped = []
        for session_id in session_ids:
            entry = self._sessions.get(session_id)
            if entry is not None:
                self._remove(entry, last_seen_ms=entry.last_refresh_ms)
                dropped.append(entry)
        return dropped

    def refresh(self, gateway: str, listed: Iterable[tuple[str, str, str]]) -> RefreshOutcome:
        """Gateway ``gateway``'s heartbeat: ``listed`` is every (session ID, user ID, device ID) it holds.

        Listed sessions are refreshed (now); unknown ones are registered again
        (after a router restart), unless their device has another session
        already: a refresh never displaces a registered session, the listed
        one is reported ``superseded`` (with the ID of the one that stays) so
        that its gateway ends it. Sessions of ``gateway`` that are not listed
        are dropped (their end was not reported).
        """
        now = self._clock()
        seen: set[str] = set()
        registered = 0
        superseded: list[tuple[SessionEntry, str]] = []
        for session_id, user_id, device_id in listed:
            if session_id in seen:
                continue
            seen.add(session_id)
            entry = self._sessions.get(session_id)
            if entry is not None:
                if entry.gateway != gateway:  # the session moved (cannot happen with unique IDs): follow the gateway
                    self._by_gateway[entry.gateway].discard(session_id)
                    entry.gateway = gateway
                    self._by_gateway.setdefault(gateway, set()).add(session_id)
                entry.last_refresh_ms = now
                continue
            other = self._by_device.get((user_id, device_id))
            if other is not None:
                superseded.append((SessionEntry(session_id, user_id, device_id, gateway, now), other))
                continue
            self._add(SessionEntry(session_id, user_id, device_id, gateway, now))
            registered += 1
        stale = [self._sessions[s] for s in self._by_gateway.get(gateway, ()) if s not in seen]
        for entry in stale:
            self._remove(entry, last_seen_ms=entry.last_refresh_ms)
        return RefreshOutcome(registered, stale, superseded)

    def expire(self) -> list[SessionEntry]:
        """Drop every session not refreshed for ``session_timeout_ms``; returns them (last seen at their last refresh)."""
        cutoff = self._clock() - self.session_timeout_ms
        expired = [e for e in self._sessions.values() if e.last_refresh_ms < cutoff]
        for entry in expired:
            self._remove(entry, last_seen_ms=entry.last_refresh_ms)
        return expired

    def sessions_of(self, user_ids: Iterable[str]) -> dict[str, list[SessionEntry]]:
        """The sessions of ``user_ids``, grouped by gateway."""
        by_gateway: dict[str, list[SessionEntry]] = {}
        for user_id in user_ids:
            for session_id in self._by_user.get(user_id, ()):
                entry = self._sessions[session_id]
                by_gateway.setdefault(entry.gateway, []).append(entry)
        return by_gateway

    def presence(self, user_id: str) -> Presence:
        """``user_id``'s presence; an online user is last seen at their most recent session's last refresh."""
        sessions = self._by_user.get(user_id)
        if sessions:
            newest = max(self._sessions[s].last_refresh_ms for s in sessions)
            return Presence(user_id, True, len(sessions), newest)
        return Presence(user_id, False, 0, self._last_seen.get(user_id, 0))

    def gateways(self) -> dict[str, int]:
        """Sessions held per gateway."""
        return {g: len(s) for g, s in self._by_gateway.items() if s}

    def _add(self, entry: SessionEntry) -> None:
        self._sessions[entry.session_id] = entry
        self._by_user.setdefault(entry.user_id, set()).add(entry.session_id)
        self._by_device[(entry.user_id, entry.device_id)] = entry.session_id
        self._by_gateway.setdefault(entry.gateway, set()).add(entry.session_id)

    def _remove(self, entry: SessionEntry, *, last_seen_ms: int) -> None:
        del self._sessions[entry.session_id]
        user_sessions = self._by_user.get(entry.user_id)
        if user_sessions is not None:
            user_sessions.discard(entry.session_id)
            if not user_sessions:
                del self._by_user[entry.user_id]
                self._last_seen[entry.user_id] = max(self._last_seen.get(entry.user_id, 0), last_seen_ms)
        if self._by_device.get((entry.user_id, entry.device_id)) == entry.session_id:
            del self._by_device[(entry.user_id, entry.device_id)]
        gateway_sessions = self._by_gateway.get(entry.gateway)
        if gateway_sessions is not None:
            gateway_sessions.discard(entry.session_id)

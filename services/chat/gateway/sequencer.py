"""Per-session delivery order: each conversation's messages in sequence order, each once, without gaps.

The guarantee of ChatGatewayService.Connect (gateway.proto): per
conversation and session, messages reach the device in sequence order, each
once, with no gap after the session's starting point (the user's cursor,
``delivered_up_to`` from MessageService.SyncInbox; 0 for a conversation not
in the cursors). Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Message
Delivery Flow": the server pushes, the recipient acknowledges "delivered",
then "read"; a receipt "delivered up to N" is only true if 1..N all arrived.

Messages reach a session by three paths that race: the offline queue read at
connect (SyncInbox), live pushes (Deliver, routed by chat-router after each
store; a push can be late, repeated, or lost when a gateway was briefly
unreachable), and gap fills (MessageService.ListMessages). :class:`Sequencer`
merges them. Per conversation it keeps

- ``next``: the next sequence to hand out (starting point + 1);
- ``target``: the highest sequence known to exist (from a cursor's
  ``last_sequence`` or a message seen); ``next <= target`` means a gap that
  the session must fill (:meth:`Sequencer.needs_fill`) with
  ``ListMessages(after_sequence=next - 1)``, whose results go through
  :meth:`Sequencer.apply` like any other message;
- ``pending``: messages that arrived ahead of ``next``, held until the gap
  before them is filled (at most ``pending_limit`` per conversation; beyond
  that they are dropped and fetched again by the fill, which pages up to
  ``target``, so memory stays bounded and nothing is lost).

A message below ``next`` or already pending is a duplicate and dropped
(counted in :attr:`Sequencer.duplicates`).

While the initial sync runs (:attr:`Sequencer.syncing`), live pushes are
held back (:meth:`Sequencer.offer` buffers up to ``early_limit``, beyond
which only their conversation's highest sequence is kept) and replayed by
:meth:`Sequencer.finish_sync`, after the cursors (:meth:`Sequencer.begin`)
and the synced messages (:meth:`Sequencer.apply`) set the starting points.

Plain synchronous Python, no I/O: the session (:mod:`.session`) owns the
calls; tests drive it directly (tests/unit/test_chat_sequencer.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class Message(Protocol):
    """What the sequencer reads of a ``casemesh.chat.v1.ChatMessage``."""

    conversation_id: str
    sequence: int


class Sequencer:
    """One session's per-conversation order (module docstring)."""

    def __init__(self, *, pending_limit: int = 1_000, early_limit: int = 1_000) -> None:
        if pending_limit < 0 or early_limit < 0:
            raise ValueError("limits must not be negative")
        self.pending_limit = pending_limit
        self.early_limit = early_limit
        #: True until :meth:`finish_sync`: live offers are held back.
        self.syncing = True
        #: Messages dropped as already handed out or already pending.
        self.duplicates = 0
        self._next: dict[str, int] = {}
        self._target: dict[str, int] = {}
        self._pending: dict[str, dict[int, Message]] = {}
        self._early: list[Message] = []
        self._early_targets: dict[str, int] = {}

    # The start of a session.

    def begin(self, cursors: Mapping[str, tuple[int, int]]) -> None:
        """Set the starting points: ``cursors`` maps a conversation to (delivered_up_to, last_sequence)."""
        for conversation, (delivered, last) in cursors.items():
            self._next[conversation] = delivered + 1
            if last > delivered:
                self._target[conversation] = last

    def finish_sync(self) -> list[Message]:
        """End the sync: replay the held-back live messages; returns those to hand out now, in order."""
        self.syncing = False
        early, self._early = self._early, []
        out = self.apply(early)
        for conversation, sequence in self._early_targets.items():
            self._raise_target(conversation, sequence)
        self._early_targets.clear()
        return out

    # Messages in.

    def offer(self, message: Message) -> list[Message]:
        """A live push: held back while syncing (returns ``[]``), else :meth:`apply`'d."""
        if self.syncing:
            if len(self._early) < self.early_limit:
                self._early.append(message)
            else:
                conversation = message.conversation_id
                self._early_targets[conversation] = max(self._early_targets.get(conversation, 0), message.sequence)
            return []
        return self._accept(message)

    def apply(self, messages: Iterable[Message]) -> list[Message]:
        """Synced or fetched messages (any order): returns those to hand out now, in order per conversation."""
        out: list[Message] = []
        for message in messages:
            out.extend(self._accept(message))
        return out

    # What is owed.

    def next_expected(self, conversation: str) -> int:
        """The next sequence to hand out in ``conversation`` (1 for one never seen)."""
        return self._next.get(conversation, 1)

    def target(self, conversation: str) -> int:
        """The highest sequence known to exist in ``conversation`` (0 when none is owed)."""
        return self._target.get(conversation, 0)

    def needs_fill(self, conversation: str) -> bool:
        """True when messages between ``next_expected`` and ``target`` are missing (not while syncing)."""
        return not self.syncing and self._target.get(conversation, 0) >= self._next.get(conversation, 1)

    def gaps(self) -> list[str]:
        """Conversations that :meth:`needs_fill`."""
        return [c for c in self._target if self.needs_fill(c)]

    def pending(self, conversation: str) -> int:
        """Messages held ahead of a gap in ``conversation``."""
        return len(self._pending.get(conversation, ()))

    def abandon(self, conversation: str) -> None:
        """Give up the gap of ``conversation`` (its messages cannot be fetched): skip to after ``target``.

        Breaks the no-gap guarantee for that conversation; only for a
        conversation the user can no longer read.
        """
        end = max(self._target.pop(conversation, 0), max(self._pending.pop(conversation, {}), default=0))
        self._next[conversation] = max(self._next.get(conversation, 1), end + 1)

    def _raise_target(self, conversation: str, sequence: int) -> None:
        if sequence >= self._next.get(conversation, 1) and sequence > self._target.get(conversation, 0):
            self._target[conversation] = sequence

    def _accept(self, message: Message) -> list[Message]:
        conversation, sequence = message.conversation_id, message.sequence
        expected = self._next.get(conversation, 1)
        if sequence < expected:
            self.duplicates += 1
            return []
        if sequence > expected:
            held = self._pending.setdefault(conversation, {})
            if sequence in held:
                self.duplicates += 1
                return []
            self._raise_target(conversation, sequence)
            if len(held) < self.pending_limit:
                held[sequence] = message
            elif held and sequence < max(held):  # keep the ones nearest the gap: they are handed out first
                del held[max(held)]
                held[sequence] = message
            return []
        out = [message]
        expected += 1
        held = self._pending.get(conversation)
        if held:
            while expected in held:
                out.append(held.pop(expected))
                expected += 1
            if not held:
                del self._pending[conversation]
        self._next[conversation] = expected
        if self._target.get(conversation, 0) < expected:
            self._target.pop(conversation, None)
        return out

"""Conversations, messages, groups and delivery progress in memory, made durable through :class:`~.journal.MessageJournal`.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)": 1:1 messaging with delivery receipts, group chats of up to 500
members, message history and sync across devices; "Message Delivery Flow"
(sent → delivered → read). Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt),
"WhatsApp Messaging": store, then push if online, else "Queue for offline
delivery". Plain asyncio, no gRPC:

- :meth:`MessageStore.send` waits until the message is committed to the log
  (a group commit with every other write that arrived meanwhile), then it is
  readable. Sequences are assigned by the single committer at commit time,
  in arrival order: each conversation's sequence is gapless (a failed commit
  consumes none) and its order is the commit order. The committer is the
  lock: no two batches are ever assigned at once.
- Idempotency by ``(sender_id, client_message_id)``: a retry returns the
  stored message (``duplicate``), also while the first attempt is still
  being committed (it waits for that one). The first stored message of a key
  wins, whatever conversation or body a later retry names.
- Cursors: per user and conversation, ``delivered_up_to`` and
  ``read_up_to``, forward only, READ implying DELIVERED. They are the offline
  queue: :meth:`sync_inbox` returns what lies beyond ``delivered_up_to``.
  An advance is committed (durable) before :meth:`acknowledge` returns. A
  sender has their own message: when their cursor stood just before it, it
  moves past it in the same commit (so it is not "undelivered" to them).
- Groups: at most 500 members, the creator included; membership is fixed at
  creation. A one-to-one conversation ``dm:A:B`` exists without creation;
  it is stored with its first message.

Errors: :class:`~casemesh.services.runtime.errors.NotFound` (an unknown
group), :class:`NotAMember` (PERMISSION_DENIED),
:class:`~casemesh.services.runtime.errors.InvalidArgument` (an acknowledged
sequence beyond the last message, too many members), and the journal's own
error when the disk refuses a commit (nothing of that batch is stored).
Single event loop; the journal's blocking calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...runtime.errors import InvalidArgument, NotFound
from ..contract import MAX_GROUP_MEMBERS, ConversationRef, group_conversation_id, parse_conversation_id
from .journal import CursorRecord, GroupRecord, MessageJournal, StoredMessage

log = logging.getLogger("casemesh.chat.messages")

DELIVERED = "delivered"
READ = "read"


class NotAMember(Exception):
    """The user is not a member of the conversation → ``PERMISSION_DENIED``."""


@dataclass(slots=True)
class Cursor:
    """A user's progress in one conversation (sequences; 0: nothing yet). ``read_up_to`` ≤ ``delivered_up_to``."""

    delivered_up_to: int = 0
    read_up_to: int = 0


@dataclass
class Conversation:
    """A conversation: its ID, kind (``dm``/``group``), members (a group's creator first), title and messages.

    ``messages[i]`` has sequence ``i + 1``.
    """

    conversation_id: str
    kind: str
    members: tuple[str, ...]
    title: str = ""
    messages: list[StoredMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.member_set = frozenset(self.members)

    @property
    def last_sequence(self) -> int:
        return len(self.messages)


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """A committed advance of ``user_id``'s cursor: ``state`` (DELIVERED/READ) now up to ``up_to_sequence``.

    ``notify`` are the users to tell: the senders (other than ``user_id``)
    of the messages the advance newly covers, in first-covered order (seed 000:
    the "Delivered Receipt" / "Read Receipt" go to the sender).
    """

    conversation_id: str
    user_id: str
    state: str
    up_to_sequence: int
    at_unix_ms: int
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InboxPage:
    """SyncInbox's answer: undelivered messages (oldest first per conversation, globally by log order), the
    user's cursors ``(conversation, cursor, last_sequence)``, and whether more were left than returned."""

    messages: list[StoredMessage]
    cursors: list[tuple[str, Cursor, int]]
    truncated: bool


@dataclass(slots=True)
class _PendingMessage:
    ref: ConversationRef
    conversation_id: str
    sender_id: str
    client_message_id: str
    body: bytes
    done: asyncio.Future


@dataclass(slots=True)
class _PendingGroup:
    record: GroupRecord
    done: asyncio.Future


@dataclass(slots=True)
class _PendingAck:
    user_id: str
    conversation_id: str
    up_to_sequence: int
    state: str
    done: asyncio.Future


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MessageStore:
    """The conversations of one MessageService; ``journal`` ``None`` keeps them in memory only.

    ``on_commit(messages, receipts)`` is called after each commit, in commit
    order, with the stored messages (log order) and the cursor advances
    (:class:`ReceiptEvent`) of that commit: the fan-out hooks in there.
    ``max_commit_batch`` bounds the messages (and the acknowledgements) of
    one commit.
    """

    def __init__(self, journal: MessageJournal | None, max_commit_batch: int = 512,
                 on_commit: Callable[[list[StoredMessage], list[ReceiptEvent]], None] | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self._journal = journal
        self._max_batch = max_commit_batch
        self._on_commit = on_commit
        self._on_batch = on_batch
        self._conversations: dict[str, Conversation] = {}
        self._user_conversations: dict[str, dict[str, None]] = {}  # user → conversations (an ordered set)
        self._cursors: dict[tuple[str, str], Cursor] = {}
        self._by_client_key: dict[tuple[str, str], StoredMessage] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._last_position = 0
        self._pending_messages: list[_PendingMessage] = []
        self._pending_groups: list[_PendingGroup] = []
        self._pending_acks: list[_PendingAck] = []
        self._pending_group_ids: set[str] = set()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._stopping = False
        #: Group commits so far.
        self.commits = 0

    # -- life cycle ---------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Load the log from disk and start the committer; returns the number of messages loaded."""
        if self._journal is not None:
            groups, messages, cursors = await asyncio.to_thread(self._journal.load)
            for group in groups:
                self._apply_group(group)
            for message in messages:
                self._apply_message(message)
            for c in cursors:
                self._cursors[(c.user_id, c.conversation_id)] = Cursor(c.delivered_up_to, c.read_up_to)
        self._stopping = False
        self._writer = asyncio.create_task(self._commit_loop(), name="chat-messages-commit")
        return self._last_position

    async def stop(self) -> None:
        """Commit what is pending, then stop the committer."""
        if self._writer is None:
            return
        self._stopping = True
        self._wake.set()
        await self._writer
        self._writer = None

    # -- reads --------------------------------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Messages stored (the log's last position)."""
        return self._last_position

    def conversation(self, conversation_id: str) -> Conversation:
        """The conversation ``conversation_id`` (a ``dm:A:B`` without messages yet: an empty one); ``NotFound``
        for an unknown group. ``InvalidArgument("conversation_id")`` for a malformed ID."""
        found = self._conversations.get(conversation_id)
        if found is not None:
            return found
        ref = _parse(conversation_id)
        if ref.kind == "group":
            raise NotFound(f"group {conversation_id} does not exist")
        return Conversation(conversation_id, "dm", ref.members)

    def member_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        """:meth:`conversation`, and ``NotAMember`` when ``user_id`` is not in it."""
        conversation = self.conversation(conversation_id)
        if user_id not in conversation.member_set:
            raise NotAMember(f"{user_id} is not a member of {conversation_id}")
        return conversation

    def cursor(self, user_id: str, conversation_id: str) -> Cursor:
        """``user_id``'s progress in ``conversation_id`` (zeros when none)."""
        found = self._cursors.get((user_id, conversation_id))
        return Cursor(found.delivered_up_to, found.read_up_to) if found is not None else Cursor()

    def conversations_of(self, user_id: str) -> list[str]:
        """The stored conversations ``user_id`` is in: their groups, and their one-to-one conversations with a message."""
        return list(self._user_conversations.get(user_id, ()))

    def list_messages(self, user_id: str, conversation_id: str, after_sequence: int, limit: int) -> tuple[list[StoredMessage], int]:
        """Up to ``limit`` messages after ``after_sequence`` in sequence order, and the last sequence.

        ``NotFound`` (unknown group), ``NotAMember``.
        """
        conversation = self.member_conversation(user_id, conversation_id)
        start = min(after_sequence, conversation.last_sequence)
        return conversation.messages[start:start + limit], conversation.last_sequence

    def sync_inbox(self, user_id: str, max_messages: int) -> InboxPage:
        """The messages beyond ``user_id``'s ``delivered_up_to`` in each of their conversations (the offline queue).

        Oldest first per conversation; across conversations in log order (the
        order they were stored), so a truncated page holds the oldest
        undelivered messages. At most ``max_messages``; ``truncated`` when more
        were left. Cost: O(conversations of the user + returned x log(conversations)).
        """
        heap: list[tuple[int, int, Conversation]] = []
        cursors: list[tuple[str, Cursor, int]] = []
        waiting = 0
        for conversation_id in self._user_conversations.get(user_id, ()):
            conversation = self._conversations[conversation_id]
            cursor = self.cursor(user_id, conversation_id)
            cursors.append((conversation_id, cursor, conversation.last_sequence))
            start = cursor.delivered_up_to
            if start < conversation.last_sequence:
                waiting += conversation.last_sequence - start
                heap.append((conversation.messages[start].position, start, conversation))
        heapq.heapify(heap)
        out: list[StoredMessage] = []
        while heap and len(out) < max_messages:
            _, index, conversation = heap[0]
            out.append(conversation.messages[index])
            if index + 1 < conversation.last_sequence:
                heapq.heapreplace(heap, (conversation.messages[index + 1].position, index + 1, conversation))
            else:
                heapq.heappop(heap)
        return InboxPage(out, cursors, waiting > len(out))

    # -- writes -------------------------------------------------------------------------------------------------

    async def send(self, sender_id: str, client_message_id: str, conversation_id: str, body: bytes) -> tuple[StoredMessage, bool]:
        """Store a message durably; ``(message, duplicate)`` once committed (or the commit's error is raised).

        ``duplicate`` is true for a retry of ``(sender_id, client_message_id)``:
        the first stored message is returned, nothing new is stored.
        ``NotFound`` (unknown group), ``NotAMember`` (the sender is not in the conversation).
        """
        key = (sender_id, client_message_id)
        stored = self._by_client_key.get(key)
        if stored is not None:
            return stored, True
        inflight = self._inflight.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight), True
        conversation = self.member_conversation(sender_id, conversation_id)
        done = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        self._pending_messages.append(_PendingMessage(_parse(conversation.conversation_id), conversation.conversation_id,
                                                      sender_id, client_message_id, body, done))
        self._wake.set()
        return await asyncio.shield(done), False

    async def create_group(self, creator_id: str, members: tuple[str, ...], title: str) -> GroupRecord:
        """Create a group of ``members`` (the creator first, no duplicates, at most 500); returns it once committed."""
        if not members or members[0] != creator_id or len(set(members)) != len(members):
            raise ValueError("members must start with the creator and hold no duplicates")
        if len(members) > MAX_GROUP_MEMBERS:
            raise InvalidArgument("member_ids", f"a group has at most {MAX_GROUP_MEMBERS} members, the creator included")
        group_id = secrets.token_hex(8)
        while group_conversation_id(group_id) in self._conversations or group_id in self._pending_group_ids:
            group_id = secrets.token_hex(8)
        self._pending_group_ids.add(group_id)
        done = asyncio.get_running_loop().create_future()
        self._pending_groups.append(_PendingGroup(GroupRecord(group_id, title, members, _now_ms()), done))
        self._wake.set()
        return await asyncio.shield(done)

    async def acknowledge(self, user_id: str, conversation_id: str, up_to_sequence: int, state: str) -> Cursor:
        """Move ``user_id``'s ``state`` (DELIVERED or READ) cursor to ``up_to_sequence``; the cursor afterwards.

        READ implies DELIVERED. An acknowledgement at or behind the cursor
        changes nothing (and commits nothing). An advance is durable when
        this returns. ``NotFound`` (unknown group), ``NotAMember``,
        ``InvalidArgument("up_to_sequence")`` beyond the conversation's last message.
        """
        if state not in (DELIVERED, READ):
            raise ValueError(f"state is {DELIVERED!r} or {READ!r}, not {state!r}")
        conversation = self.member_conversation(user_id, conversation_id)
        if up_to_sequence > conversation.last_sequence:
            raise InvalidArgument("up_to_sequence", f"is {up_to_sequence}, beyond the conversation's last message "
                                                    f"({conversation.last_sequence})")
        current = self.cursor(user_id, conversation_id)
        if (current.read_up_to if state == READ else current.delivered_up_to) >= up_to_sequence:
            return current
        done = asyncio.get_running_loop().create_future()
        self._pending_acks.append(_PendingAck(user_id, conversation_id, up_to_sequence, state, done))
        self._wake.set()
        return await asyncio.shield(done)

    # -- the committer ------------------------------------------------------------------------------------------

    def _apply_group(self, group: GroupRecord) -> None:
        conversation_id = group_conversation_id(group.group_id)
        self._conversations[conversation_id] = Conversation(conversation_id, "group", group.members, group.title)
        for member in group.members:
            self._user_conversations.setdefault(member, {})[conversation_id] = None

    def _apply_message(self, message: StoredMessage) -> None:
        conversation = self._conversations.get(message.conversation_id)
        if conversation is None:  # a dm's first message
            ref = _parse(message.conversation_id)
            conversation = self._conversations[message.conversation_id] = Conversation(message.conversation_id, "dm", ref.members)
            for member in ref.members:
                self._user_conversations.setdefault(member, {})[message.conversation_id] = None
        if message.sequence != conversation.last_sequence + 1:
            raise RuntimeError(f"{message.conversation_id}: sequence {message.sequence} after {conversation.last_sequence}")
        conversation.messages.append(message)
        self._by_client_key[(message.sender_id, message.client_message_id)] = message
        self._last_position = message.position

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending_messages or self._pending_groups or self._pending_acks:
                await self._commit_once()
            if self._stopping:
                return

    async def _commit_once(self) -> None:
        batch, self._pending_messages = self._pending_messages[:self._max_batch], self._pending_messages[self._max_batch:]
        groups, self._pending_groups = self._pending_groups[:self._max_batch], self._pending_groups[self._max_batch:]
        acks, self._pending_acks = self._pending_acks[:self._max_batch], self._pending_acks[self._max_batch:]
        now = _now_ms()
        # Assign positions and sequences in arrival order; cursor advances computed on a copy (applied after the commit).
        next_sequence: dict[str, int] = {}
        cursors: dict[tuple[str, str], Cursor] = {}
        messages: list[StoredMessage] = []
        position = self._last_position
        for p in batch:
            sequence = next_sequence.get(p.conversation_id)
            if sequence is None:
                known = self._conversations.get(p.conversation_id)
                sequence = known.last_sequence + 1 if known is not None else 1
            next_sequence[p.conversation_id] = sequence + 1
            position += 1
            messages.append(StoredMessage(position, p.conversation_id, sequence, p.sender_id, p.client_message_id, p.body, now))
            cursor = self._draft(cursors, p.sender_id, p.conversation_id)
            if cursor.delivered_up_to == sequence - 1:  # the sender has their own message
                cursor.delivered_up_to = sequence
                if cursor.read_up_to == sequence - 1:
                    cursor.read_up_to = sequence
        receipts: list[tuple[_PendingAck, int, int]] = []  # (ack, previous value, new value) of the acknowledged state
        for ack in acks:
            cursor = self._draft(cursors, ack.user_id, ack.conversation_id)
            before = cursor.read_up_to if ack.state == READ else cursor.delivered_up_to
            if ack.up_to_sequence > before:
                if ack.state == READ:
                    cursor.read_up_to = ack.up_to_sequence
                cursor.delivered_up_to = max(cursor.delivered_up_to, ack.up_to_sequence)
                receipts.append((ack, before, ack.up_to_sequence))
        records = [CursorRecord(user, conversation, c.delivered_up_to, c.read_up_to) for (user, conversation), c in cursors.items()]
        try:
            if self._journal is not None:
                await asyncio.to_thread(self._journal.append, messages, [g.record for g in groups], records)
        except Exception as error:  # the disk refused: nobody in this batch is acknowledged, nothing is applied
            log.error("committing %d messages, %d groups and %d acknowledgements failed: %s",
                      len(messages), len(groups), len(acks), error)
            for p in batch:
                self._inflight.pop((p.sender_id, p.client_message_id), None)
            for g in groups:
                self._pending_group_ids.discard(g.record.group_id)
            for waiter in (*batch, *groups, *acks):
                if not waiter.done.done():
                    waiter.done.set_exception(error)
                    waiter.done.exception()  # retrieved: a caller that gave up must not log "never retrieved"
            return
        self.commits += 1
        if self._on_batch is not None:
            self._on_batch(len(messages))
        for g in groups:
            self._apply_group(g.record)
            self._pending_group_ids.discard(g.record.group_id)
            if not g.done.done():
                g.done.set_result(g.record)
        for message, p in zip(messages, batch):
            self._apply_message(message)
            self._inflight.pop((p.sender_id, p.client_message_id), None)
            if not p.done.done():
                p.done.set_result(message)
        for key, cursor in cursors.items():
            self._cursors[key] = cursor
        events = [self._receipt(ack, before, after, now) for ack, before, after in receipts]
        for ack in acks:
            if not ack.done.done():
                final = self._cursors.get((ack.user_id, ack.conversation_id)) or Cursor()
                ack.done.set_result(Cursor(final.delivered_up_to, final.read_up_to))
        if self._on_commit is not None and (messages or events):
            try:
                self._on_commit(messages, events)
            except Exception:  # the commit stands (the offline queue has it); the committer must go on
                log.exception("the on_commit hook failed after %d messages and %d receipts", len(messages), len(events))

    def _draft(self, drafts: dict[tuple[str, str], Cursor], user_id: str, conversation_id: str) -> Cursor:
        key = (user_id, conversation_id)
        draft = drafts.get(key)
        if draft is None:
            draft = drafts[key] = self.cursor(user_id, conversation_id)
        return draft

    def _receipt(self, ack: _PendingAck, before: int, after: int, now: int) -> ReceiptEvent:
        messages = self._conversations[ack.conversation_id].messages[before:after]
        notify = dict.fromkeys(m.sender_id for m in messages if m.sender_id != ack.user_id)
        return ReceiptEvent(ack.conversation_id, ack.user_id, ack.state, after, now, tuple(notify))


def _parse(conversation_id: str) -> ConversationRef:
    try:
        return parse_conversation_id(conversation_id)
    except ValueError as error:
        raise InvalidArgument("conversation_id", str(error)) from None

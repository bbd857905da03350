"""The items, their states and their audit log (:class:`ItemBook`), without gRPC: confidence routing
(:func:`route_of`), the state machine (:data:`TRANSITIONS`, :func:`replay`), appeals, verdicts, and the waiters of
AwaitDecision.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |").

States and transitions (protos/casemesh/moderation/v1/moderation.proto; each one audit event)::

    (new) --SUBMITTED--> PENDING --AUTO_APPROVED--> APPROVED
                         PENDING --AUTO_REMOVED---> REMOVED
                         PENDING --SENT_TO_REVIEW-> IN_REVIEW --REVIEW_APPROVED--> APPROVED
                                                    IN_REVIEW --REVIEW_REMOVED---> REMOVED
                         REMOVED --APPEALED-------> IN_APPEAL --APPEAL_REVERSED--> APPROVED
                                                    IN_APPEAL --APPEAL_UPHELD----> REMOVED

Routing: the classifier's probability ``p`` below ``approve_below`` approves (decided by CLASSIFIER), ``p >=
remove_above`` removes, anything in between goes to review. An item is appealed at most once (only a REMOVED one, only
by its author), so an item has at most 5 audit entries.

Every change is written to the item's row with its audit entry in one write (:mod:`.store`), and memory follows the
file: a change reaches memory (the ``apply`` of the group commit) only once it is durable, before any caller of the
batch resumes. The book keeps every item in memory (fine at benchmark scale: a few hundred bytes each), with the sets
the stages work from: items PENDING (the classifier workers' queue, fed through :attr:`ItemBook.on_pending`) and
items bound for review that the review service has not accepted yet (the re-sender's outbox,
:meth:`ItemBook.unenqueued`). At start (:meth:`ItemBook.start`) the book is rebuilt from the file: PENDING items are
queued again for classification, unaccepted ones are found by the re-sender, and the verdict cursor says which
verdicts were applied.

Idempotency: SubmitItem with an ID stored (or being stored) returns that item when the author and text match,
ALREADY_EXISTS otherwise; a verdict for an item no longer in the state it decides (applied already, before a restart)
only moves the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from casemesh.moderation.v1 import moderation_pb2 as m

from ...runtime.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied, ResourceExhausted
from .. import contract
from . import metrics
from .clients import Verdict
from .settings import PipelineSettings
from .store import AuditEntry, Change, Item, ItemStore, StaleState

log = logging.getLogger("casemesh.moderation.pipeline.items")

PENDING, IN_REVIEW, APPROVED, REMOVED, IN_APPEAL = (m.ITEM_STATE_PENDING, m.ITEM_STATE_IN_REVIEW,
                                                    m.ITEM_STATE_APPROVED, m.ITEM_STATE_REMOVED,
                                                    m.ITEM_STATE_IN_APPEAL)
#: States waiting for a human (the review service must hold their task).
REVIEW_STATES = frozenset({IN_REVIEW, IN_APPEAL})
#: Final states (an APPROVED item stays; a REMOVED one may be appealed once).
DECIDED_STATES = frozenset({APPROVED, REMOVED})
#: Audit event → (state before, state after); ``None``: the item did not exist.
TRANSITIONS: dict[int, tuple[int | None, int]] = {
    m.AUDIT_EVENT_SUBMITTED: (None, PENDING),
    m.AUDIT_EVENT_AUTO_APPROVED: (PENDING, APPROVED),
    m.AUDIT_EVENT_AUTO_REMOVED: (PENDING, REMOVED),
    m.AUDIT_EVENT_SENT_TO_REVIEW: (PENDING, IN_REVIEW),
    m.AUDIT_EVENT_REVIEW_APPROVED: (IN_REVIEW, APPROVED),
    m.AUDIT_EVENT_REVIEW_REMOVED: (IN_REVIEW, REMOVED),
    m.AUDIT_EVENT_APPEALED: (REMOVED, IN_APPEAL),
    m.AUDIT_EVENT_APPEAL_UPHELD: (IN_APPEAL, REMOVED),
    m.AUDIT_EVENT_APPEAL_REVERSED: (IN_APPEAL, APPROVED),
}
#: (review kind, verdict) → (state it decides, event, state after, decided by).
VERDICTS: dict[tuple[int, int], tuple[int, int, int, int]] = {
    (m.REVIEW_KIND_FIRST, m.VERDICT_APPROVE): (IN_REVIEW, m.AUDIT_EVENT_REVIEW_APPROVED, APPROVED,
                                                m.DECIDED_BY_REVIEWER),
    (m.REVIEW_KIND_FIRST, m.VERDICT_REMOVE): (IN_REVIEW, m.AUDIT_EVENT_REVIEW_REMOVED, REMOVED, m.DECIDED_BY_REVIEWER),
    (m.REVIEW_KIND_APPEAL, m.VERDICT_APPROVE): (IN_APPEAL, m.AUDIT_EVENT_APPEAL_REVERSED, APPROVED,
                                                 m.DECIDED_BY_APPEAL),
    (m.REVIEW_KIND_APPEAL, m.VERDICT_REMOVE): (IN_APPEAL, m.AUDIT_EVENT_APPEAL_UPHELD, REMOVED, m.DECIDED_BY_APPEAL),
}
_STATE_LABEL = {PENDING: "pending", IN_REVIEW: "in_review", APPROVED: "approved", REMOVED: "removed",
                IN_APPEAL: "in_appeal"}
_KIND_LABEL = {m.REVIEW_KIND_FIRST: "first", m.REVIEW_KIND_APPEAL: "appeal"}
_VERDICT_LABEL = {m.VERDICT_APPROVE: "approve", m.VERDICT_REMOVE: "remove"}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def route_of(probability: float, approve_below: float, remove_above: float) -> tuple[int, int, int]:
    """Where a classifier's ``probability`` sends an item: (state, audit event, decided by). Below ``approve_below``:
    APPROVED; at or above ``remove_above``: REMOVED; in between: IN_REVIEW (decided by nobody yet)."""
    if probability < approve_below:
        return APPROVED, m.AUDIT_EVENT_AUTO_APPROVED, m.DECIDED_BY_CLASSIFIER
    if probability >= remove_above:
        return REMOVED, m.AUDIT_EVENT_AUTO_REMOVED, m.DECIDED_BY_CLASSIFIER
    return IN_REVIEW, m.AUDIT_EVENT_SENT_TO_REVIEW, m.DECIDED_BY_UNSPECIFIED


def replay(entries: Iterable[AuditEntry]) -> int:
    """The state an item's audit entries (in ``seq`` order) lead to. Raises ``ValueError`` when they do not replay:
    the first is not SUBMITTED, a seq does not increase, an event does not follow from the state before it, or an
    entry's ``state_after`` is not its event's."""
    state: int | None = None
    last_seq = 0
    for entry in entries:
        if entry.seq <= last_seq:
            raise ValueError(f"audit seq {entry.seq} after {last_seq}")
        last_seq = entry.seq
        rule = TRANSITIONS.get(entry.event)
        if rule is None:
            raise ValueError(f"audit seq {entry.seq}: unknown event {entry.event}")
        before, after = rule
        if state != before or entry.state_after != after:
            raise ValueError(f"audit seq {entry.seq}: event {m.AuditEvent.Name(entry.event)} from state "
                             f"{state} to {entry.state_after}; it goes from {before} to {after}")
        state = after
    if state is None:
        raise ValueError("no audit entry")
    return state


class ItemBook:
    """Every item (see the module docstring) over ``store``; ``clock`` gives Unix milliseconds.

    Methods return the live :class:`~.store.Item`: read it before the next ``await``. ``on_pending(item_id)`` is
    called for each item that becomes PENDING (stored by SubmitItem, or found PENDING at start); the classifier
    workers set it."""

    def __init__(self, store: ItemStore, settings: PipelineSettings, clock: Callable[[], int] = _now_ms) -> None:
        self._store = store
        self.settings = settings
        self._clock = clock
        self._items: dict[str, Item] = {}
        self._counts: Counter[int] = Counter()
        self._pending: set[str] = set()
        self._unenqueued: set[str] = set()
        self._submitting: dict[str, asyncio.Task[Item]] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        #: The last verdict of the review service's outbox applied (PullVerdicts' after_seq).
        self.verdict_cursor = 0
        self.on_pending: Callable[[str], None] = lambda item_id: None

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Rebuild the book from the file; PENDING items go to :attr:`on_pending` again (oldest first). Returns how
        many items."""
        loaded = await self._store.load()
        self._items = loaded.items
        self.verdict_cursor = loaded.verdict_cursor
        for item in self._items.values():
            self._enter(item, None)
            try:
                state = replay(item.audit)
            except ValueError as error:
                log.error("moderation-pipeline: the audit log of item %s does not replay: %s", item.item_id, error)
                continue
            if state != item.state:
                log.error("moderation-pipeline: the audit log of item %s replays to state %d, not %d",
                          item.item_id, state, item.state)
        for item in sorted((self._items[i] for i in self._pending), key=lambda i: i.submitted_at_unix_ms):
            self.on_pending(item.item_id)
        return len(self._items)

    async def close(self) -> None:
        await self._store.close()

    # -- bookkeeping ---------------------------------------------------------------------------------------------------

    def _enter(self, item: Item, before: int | None) -> None:
        """Count ``item``'s (new) state, which was ``before`` (``None``: new to memory)."""
        if before is not None:
            self._counts[before] -= 1
            metrics.ITEMS.labels(_STATE_LABEL[before]).set(self._counts[before])
        self._counts[item.state] += 1
        metrics.ITEMS.labels(_STATE_LABEL[item.state]).set(self._counts[item.state])
        if item.state == PENDING:
            self._pending.add(item.item_id)
        else:
            self._pending.discard(item.item_id)
            waiter = self._waiters.pop(item.item_id, None)
            if waiter is not None:
                waiter.set()
        if item.state in REVIEW_STATES and not item.review_enqueued:
            self._unenqueued.add(item.item_id)
        else:
            self._unenqueued.discard(item.item_id)
        metrics.PENDING.set(len(self._pending))
        metrics.UNENQUEUED.set(len(self._unenqueued))

    def _apply(self, item: Item, change: Change, entry: AuditEntry) -> None:
        """Move ``item`` as the committed ``change`` says, with its audit ``entry``."""
        before = item.state
        for column, value in change.changes.items():
            setattr(item, column, bool(value) if column in ("appealed", "review_enqueued") else value)
        item.audit.append(entry)
        self._enter(item, before)

    # -- reads ---------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def find(self, item_id: str) -> Item | None:
        """The item, or ``None``."""
        return self._items.get(item_id)

    def get(self, item_id: str) -> Item:
        """The item. Raises ``NotFound``."""
        item = self._items.get(item_id)
        if item is None:
            raise NotFound(f"item {item_id} was never submitted")
        return item

    def audit_log(self, item_id: str) -> list[AuditEntry]:
        """The item's audit entries, oldest first (at most :data:`contract.MAX_AUDIT_ENTRIES`). Raises ``NotFound``."""
        return list(self.get(item_id).audit[:contract.MAX_AUDIT_ENTRIES])

    def count(self, state: int) -> int:
        """Items in ``state`` now."""
        return self._counts[state]

    @property
    def pending(self) -> int:
        """Items waiting for classification (stored, or being stored)."""
        return len(self._pending) + len(self._submitting)

    def unenqueued(self) -> list[str]:
        """Items bound for review (IN_REVIEW, IN_APPEAL) that the review service has not accepted yet."""
        return list(self._unenqueued)

    async def await_decision(self, item_id: str, timeout_ms: int) -> Item:
        """The item once it has left PENDING, or after ``timeout_ms`` (still PENDING). Raises ``NotFound``."""
        item = self.get(item_id)
        if item.state != PENDING or timeout_ms <= 0:
            return item
        waiter = self._waiters.get(item_id)
        if waiter is None:
            waiter = self._waiters[item_id] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout_ms / 1_000)
        return self._items[item_id]

    # -- SubmitItem ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _same(item: Item, author_id: str, text: str) -> Item:
        if item.author_id != author_id or item.text != text:
            raise AlreadyExists(f"item {item.item_id} holds another author's or text's item")
        return item

    async def submit(self, item_id: str, author_id: str, text: str) -> Item:
        """Store a new item PENDING (with its SUBMITTED entry, durable when this returns) and queue it for
        classification; an ID stored already (or being stored) returns that item. Raises ``AlreadyExists`` (the ID
        holds another author's or text's item), ``ResourceExhausted`` (more than ``max_pending`` items would wait for
        classification: nothing stored), ``StoreUnavailable`` (nothing stored)."""
        known = self._items.get(item_id)
        if known is not None:
            return self._same(known, author_id, text)
        in_flight = self._submitting.get(item_id)
        if in_flight is not None:
            return self._same(await asyncio.shield(in_flight), author_id, text)
        if self.pending >= self.settings.max_pending:
            metrics.SUBMIT_REJECTED.labels("backlog").inc()
            raise ResourceExhausted(f"{self.pending:,} items wait for classification (max_pending "
                                    f"{self.settings.max_pending:,}): retry later")
        item = Item(item_id, author_id, text, PENDING, submitted_at_unix_ms=self._clock())
        task = asyncio.create_task(self._insert(item), name=f"moderation-submit-{item_id}")
        self._submitting[item_id] = task
        task.add_done_callback(lambda _: self._submitting.pop(item_id, None))
        return await asyncio.shield(task)

    async def _insert(self, item: Item) -> Item:
        def apply(entry: AuditEntry) -> None:
            item.audit.append(entry)
            self._items[item.item_id] = item
            self._enter(item, None)
            self.on_pending(item.item_id)

        await self._store.insert(item, apply)
        return item

    # -- routing -------------------------------------------------------------------------------------------------------

    async def route(self, item_id: str, probability: float, model_version: str) -> Item | None:
        """Route a PENDING item by the classifier's ``probability`` (:func:`route_of`), durable when this returns the
        item; ``None`` when it is not PENDING (routed already: nothing written). Raises ``StoreUnavailable``
        (nothing written: the item stays PENDING)."""
        item = self._items.get(item_id)
        if item is None or item.state != PENDING:
            return None
        state, event, decided_by = route_of(probability, self.settings.approve_below, self.settings.remove_above)
        now = self._clock()
        change = Change(item_id, PENDING, {
            "state": state, "decided_by": decided_by, "probability": probability, "model_version": model_version,
            "routed_at_unix_ms": now, "decided_at_unix_ms": now if state in DECIDED_STATES else 0,
            "review_enqueued": False}, now, event, actor=model_version, probability=probability)
        try:
            await self._store.change(change, lambda entry: self._apply(item, change, entry))
        except StaleState:
            return None
        route = "auto_approved" if state == APPROVED else "auto_removed" if state == REMOVED else "review"
        metrics.ITEMS_ROUTED.labels(route).inc()
        metrics.TIME_TO_DECISION.labels(route).observe(max(0, now - item.submitted_at_unix_ms) / 1_000)
        return item

    async def mark_enqueued(self, item_id: str, state: int) -> bool:
        """Record that the review service accepted the task of the item while it was in ``state`` (IN_REVIEW: its
        first review; IN_APPEAL: its appeal); whether that was still its state (else nothing written). Raises
        ``StoreUnavailable``."""
        item = self._items.get(item_id)
        if item is None or item.state != state or item.review_enqueued:
            return False

        def apply(marked: bool) -> None:
            if marked and item.state == state:
                item.review_enqueued = True
                self._enter(item, state)

        return await self._store.mark_enqueued(item_id, state, apply)

    # -- appeals -------------------------------------------------------------------------------------------------------

    def _refuse_appeal(self, item: Item, author_id: str) -> None:
        if item.author_id != author_id:
            raise PermissionDenied(f"{contract.NOT_AUTHOR}: {author_id} is not the author of item {item.item_id}")
        if item.appealed:
            raise FailedPrecondition(f"{contract.ALREADY_APPEALED}: item {item.item_id} was appealed already")
        if item.state != REMOVED:
            raise FailedPrecondition(f"{contract.NOT_REMOVED}: item {item.item_id} is "
                                     f"{m.ItemState.Name(item.state)}, not removed")

    async def appeal(self, item_id: str, author_id: str, reason: str) -> Item:
        """Record the author's appeal of a removal (IN_APPEAL, bound for appeal review), durable when this returns
        the item. Raises ``NotFound``, ``PermissionDenied`` ``not_author``, ``FailedPrecondition``
        ``already_appealed`` or ``not_removed``, ``StoreUnavailable`` (nothing recorded)."""
        item = self.get(item_id)
        self._refuse_appeal(item, author_id)
        now = self._clock()
        change = Change(item_id, REMOVED, {
            "state": IN_APPEAL, "appealed": True, "appealed_at_unix_ms": now, "appeal_reason": reason,
            "review_enqueued": False}, now, m.AUDIT_EVENT_APPEALED, actor=author_id, note=reason, not_appealed=True)
        try:
            await self._store.change(change, lambda entry: self._apply(item, change, entry))
        except StaleState:  # a concurrent appeal of the same item came first (memory shows it now)
            self._refuse_appeal(item, author_id)
            raise
        metrics.APPEALS.inc()
        return item

    # -- verdicts ------------------------------------------------------------------------------------------------------

    def _verdict_change(self, verdict: Verdict, now: int) -> Change | None:
        item = self._items.get(verdict.item_id)
        rule = VERDICTS.get((verdict.kind, verdict.verdict))
        if item is None or rule is None:
            log.warning("moderation-pipeline: verdict %d (%s, kind %d, verdict %d) ignored: %s", verdict.seq,
                        verdict.item_id, verdict.kind, verdict.verdict,
                        "unknown item" if item is None else "unknown kind or verdict")
            return None
        expected, event, state, decided_by = rule
        if item.state != expected:
            return None  # applied already (a verdict pulled again after a restart)
        return Change(item.item_id, expected, {"state": state, "decided_by": decided_by, "decided_at_unix_ms": now,
                                               "review_enqueued": False},
                      now, event, actor=verdict.reviewer_id, note=verdict.note[:contract.MAX_NOTE_CHARS])

    async def apply_verdicts(self, verdicts: Sequence[Verdict]) -> int:
        """Apply reviewers' verdicts (in outbox order) and move the verdict cursor past them, all in one write;
        returns how many changed an item (the others were applied already, or name no item: only the cursor moves).
        Raises ``StoreUnavailable`` (nothing applied, the cursor unmoved)."""
        if not verdicts:
            return 0
        now = self._clock()
        changes = [self._verdict_change(verdict, now) for verdict in verdicts]
        cursor = max(self.verdict_cursor, *(verdict.seq for verdict in verdicts))

        def apply(entries: list[AuditEntry | None]) -> None:
            self.verdict_cursor = max(self.verdict_cursor, cursor)
            for verdict, change, entry in zip(verdicts, changes, entries, strict=True):
                if change is None or entry is None:
                    continue
                item = self._items[change.item_id]
                started = item.routed_at_unix_ms if verdict.kind == m.REVIEW_KIND_FIRST else item.appealed_at_unix_ms
                self._apply(item, change, entry)
                metrics.VERDICTS_APPLIED.labels(_KIND_LABEL[verdict.kind], _VERDICT_LABEL[verdict.verdict]).inc()
                metrics.REVIEW_TURNAROUND.labels(_KIND_LABEL[verdict.kind]).observe(max(0, now - started) / 1_000)

        entries = await self._store.apply_verdicts(changes, cursor, apply)
        return sum(1 for entry in entries if entry is not None)

"""Collaborative documents in memory, one authoritative Yjs document each, made durable through :class:`~.journal.DocumentJournal`.

Seed 001 #06, "Collaborative Docs" (Google Docs; CRDT, 1M concurrent
editors): every editor's change is merged into the document with a CRDT, so
that concurrent edits converge whatever order they arrive in; the server
orders what it accepted, stores it, and broadcasts it to everyone else in the
document. The CRDT is Yjs (pycrdt, the Python binding of Yrs): a document is a
``Y.Doc`` whose text is the ``Y.Text`` named :data:`~..contract.TEXT_NAME`
(``content``); an edit is a Yjs (v1) update; y-protocols' sync step 2 (what a
replica with a given state vector lacks) is :meth:`DocumentStore.sync`, and
its awareness protocol (cursors, who is here; ephemeral) is kept per document
with ``pycrdt.Awareness``. Plain asyncio, no gRPC:

- :meth:`DocumentStore.apply_update` merges an update into the document at
  once (synchronously: no other call runs in between), takes the document's
  next sequence, queues the update for the log and waits until it is
  committed (a group commit with every other write that arrived meanwhile,
  one fsync); then every watcher of the document gets it, in sequence order.
  The single committer commits in arrival order, so each document's log and
  broadcast are in sequence order with no gap. Reads (:meth:`get`,
  :meth:`sync`) see an update as soon as it is merged, up to one group commit
  before it is durable; a commit that fails reloads the documents it touched
  from the log (their answers and later queued updates fail), so memory never
  holds what the log lacks for longer than that.
- **Duplicates**: an update that adds nothing (its structs are all present and
  every struct it deletes is deleted already: Yjs fires no update event, and
  :func:`~.crdt.adds_to` finds nothing beyond the state vector, which covers a
  retried pure delete too, whose structs Yjs does not count in the state
  vector) is answered ``duplicate`` with the current sequence once that is
  durable, and not logged. An update whose dependencies the document lacks
  (Yjs holds it aside, "pending", and integrates it when they arrive) is new:
  it is logged, broadcast and kept, byte for byte, in the snapshots until the
  state vector covers it; the same bytes again meanwhile are a duplicate
  (:meth:`_Document.settle` works around Yrs leaving some aside too long;
  editor servers that send each session's updates in order make none wait).
- **Malformed updates** (pycrdt raises ``ValueError``, or Yrs panics) change
  nothing and are refused: ``InvalidArgument("update")``.
- **Size**: a document's state encoded as one update stays at most
  ``max_state_bytes`` (3 MiB). Encoding it costs O(state), so the store keeps
  an upper bound: the last exact size plus, per update since, at most
  :data:`GROWTH_PER_UPDATE_BYTE` times its size plus
  :data:`GROWTH_SLACK_BYTES` (an update of n bytes names at most n/2 structs
  or delete ranges; each splits at most two stored items, a few dozen bytes
  each; the worst measured was about 5 bytes of state per byte of update).
  Below the limit by that margin an update is merged at once; closer, the
  store encodes the document before and after merging and, when the state
  went past the limit, rebuilds it from the encoding before (nothing changed,
  ``ResourceExhausted``). Updates waiting for a dependency count at their own
  size.
- **Snapshots**: every ``snapshot_every_updates`` updates the committer
  encodes the document (on the event loop: O(state)) and writes it with the
  batch, compacting the document's log up to it (:mod:`.journal`).
- **Watchers** (:meth:`watch`): a queue per watcher of applied updates and
  awareness changes, at most :data:`MAX_WATCH_BACKLOG` (10,000) messages
  behind; one more and the watcher is dropped (:class:`WatchEnded`,
  ``overflow``): it watches again and syncs. The first thing a watcher learns
  is the sequence it starts after (the last committed one).
- **Awareness** is never stored: an update is validated whole
  (:func:`~.crdt.decode_awareness`), merged with y-protocols' clock rules,
  relayed to the watchers when it changed or renewed anything, and a state not
  renewed for ``awareness_timeout_ms`` is removed (relayed with an empty
  session). ``editors`` (:class:`DocumentInfo`) is the number of distinct
  editor sessions with a live awareness state (a state sent without a session
  counts as one editor per awareness client): the editors that announced
  themselves within the last 30 s, not the open streams, which only the
  editor servers know.

Every document stays in memory (as chat-messages keeps its conversations).
Errors: :class:`~casemesh.services.runtime.errors.NotFound`,
:class:`DocumentExists` (``ALREADY_EXISTS``),
:class:`~casemesh.services.runtime.errors.InvalidArgument`,
:class:`~casemesh.services.runtime.errors.ResourceExhausted`,
:class:`StoreUnavailable` (``UNAVAILABLE``: a document being reloaded after a
failed commit), and the journal's own error when the disk refuses a commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pycrdt

from ...runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from ..contract import MAX_DOCUMENT_STATE_BYTES, SESSION_TIMEOUT_MS, TEXT_NAME
from . import crdt
from .journal import DocumentJournal, DocumentRecord, LoadedDocument, SnapshotRecord, UpdateRecord

log = logging.getLogger("casemesh.collab.documents")

#: A watcher more than this many messages behind is dropped (sync.proto, Watch).
MAX_WATCH_BACKLOG = 10_000
#: Most messages a watcher takes from its queue at once (so that "behind" counts what it has not sent yet).
WATCH_BATCH = 64
#: Most waiting updates :meth:`_Document.settle` applies again after each change (see there).
SETTLE_LIMIT = 64
#: The size bound's growth per update: at most this many bytes of state per byte of update, plus the slack.
GROWTH_PER_UPDATE_BYTE = 64
GROWTH_SLACK_BYTES = 1_024
#: ``WatchEnded.reason``: the watcher fell too far behind, or the store is stopping.
OVERFLOW = "overflow"
SHUTDOWN = "shutdown"
#: Errors a Python caller must never have swallowed as "the CRDT library refused the update".
_NOT_REFUSALS = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


class DocumentExists(AlreadyExists):
    """``document_id`` is taken → ``ALREADY_EXISTS``."""


class StoreUnavailable(Exception):
    """The document cannot be written now (reloading after a failed commit) → ``UNAVAILABLE``: retry."""


class WatchEnded(Exception):
    """A watch is over: ``reason`` is :data:`OVERFLOW` (``RESOURCE_EXHAUSTED``) or :data:`SHUTDOWN` (``UNAVAILABLE``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document as of ``sequence``: its metadata, text, encoded state size (bytes) and editors (see module doc)."""

    document_id: str
    title: str
    created_at_unix_ms: int
    sequence: int
    text: str
    state_bytes: int
    editors: int


@dataclass(frozen=True, slots=True)
class DocumentSnapshot:
    """:meth:`DocumentStore.get`'s answer: the document, its whole state as one Yjs (v1) update when asked
    (``None`` otherwise) and its Yjs state vector."""

    info: DocumentInfo
    state_update: bytes | None
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a replica lacks (one Yjs v1 update), the sequence the document was at, its awareness (empty: none)."""

    update: bytes
    sequence: int
    awareness: bytes


class ApplyResult(NamedTuple):
    """The update's sequence (the current one when ``duplicate``) and whether it added nothing."""

    sequence: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class AwarenessEvent:
    """An awareness change relayed to watchers: the y-protocols update and the session it came from ("" from the store)."""

    update: bytes
    session_id: str


class StoreObserver:
    """What the store reports as it works (:mod:`.metrics` implements it); every method does nothing here."""

    def applied(self, duplicate: bool, size_bytes: int) -> None: ...

    def refused(self, reason: str) -> None: ...

    def committed(self, records: int, seconds: float) -> None: ...

    def snapshot(self, seconds: float, state_bytes: int) -> None: ...

    def documents(self, count: int) -> None: ...

    def watchers(self, delta: int) -> None: ...

    def watcher_dropped(self) -> None: ...

    def awareness(self, outcome: str) -> None: ...

    def state_size(self, document_id: str, state_bytes: int) -> None: ...


class Watcher:
    """One Watch of a document: the events after ``started_sequence``, in order (:class:`UpdateRecord` or
    :class:`AwarenessEvent`), at most ``limit`` behind."""

    def __init__(self, document_id: str, name: str, started_sequence: int, limit: int) -> None:
        self.document_id = document_id
        self.name = name
        self.started_sequence = started_sequence
        self._limit = limit
        self._queue: deque[UpdateRecord | AwarenessEvent] = deque()
        self._wake = asyncio.Event()
        self.ended: WatchEnded | None = None

    @property
    def backlog(self) -> int:
        """Messages queued, not yet taken."""
        return len(self._queue)

    def _push(self, event: UpdateRecord | AwarenessEvent) -> bool:
        """Queue ``event``; ``False`` (and nothing queued) when that would put the watcher more than ``limit`` behind."""
        if len(self._queue) >= self._limit:
            return False
        self._queue.append(event)
        self._wake.set()
        return True

    def _end(self, ended: WatchEnded) -> None:
        if self.ended is None:
            self.ended = ended
            self._queue.clear()
            self._wake.set()

    async def next(self, most: int = WATCH_BATCH) -> list[UpdateRecord | AwarenessEvent]:
        """The next events (at least one, at most ``most``), waiting for them; raises :class:`WatchEnded` once ended."""
        while not self._queue:
            if self.ended is not None:
                raise self.ended
            self._wake.clear()
            await self._wake.wait()
        if self.ended is not None:
            raise self.ended
        queue = self._queue
        return [queue.popleft() for _ in range(min(most, len(queue)))]


@dataclass(slots=True)
class _Pending:
    """A record waiting for the committer: a new document (``record``) and/or an update of ``document``."""

    document: _Document
    done: asyncio.Future
    sequence: int = 0  # 0: a document creation without initial text
    update: bytes = b""
    origin: str = ""
    session_id: str = ""
    create: DocumentRecord | None = None


class _Document:
    """One document's authoritative state: its Yjs document, awareness, sequences, size bound and watchers."""

    def __init__(self, record: DocumentRecord) -> None:
        self.record = record
        self.changes: list[bytes] = []  # update events of the current merge (pycrdt ``Doc.observe``)
        self.doc: pycrdt.Doc
        self.text: pycrdt.Text
        self._new_doc()
        #: Awareness of the document's editors; the store has no state of its own in it.
        self.awareness = pycrdt.Awareness(pycrdt.Doc())
        self.awareness.set_local_state(None)
        self.awareness_changed = False
        self.awareness.observe(self._awareness_update)
        self.sessions: dict[int, str] = {}  # awareness client ID → the editor session that sent its state
        self.applied = 0  # the last sequence merged into ``doc``
        self.committed = 0  # the last sequence in the log (and broadcast)
        self.snapshot_sequence = 0
        #: Accepted updates the state vector does not cover (Yrs holds them aside for a missing dependency, or
        #: integrated them past a gap in their client's clocks), in arrival order.
        self.pending: dict[bytes, None] = {}
        self.bound = 0  # upper bound of len(doc.get_update()) + what ``pending`` may add when it integrates
        self.measured: tuple[int, int] | None = None  # (sequence, exact encoded state bytes)
        self.text_cache: tuple[int, str] | None = None
        self.watchers: dict[Watcher, None] = {}
        self.last_done: asyncio.Future | None = None  # the future of its last record not yet committed
        self.unavailable: str | None = None

    def _new_doc(self) -> None:
        self.doc = pycrdt.Doc()
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self.doc.observe(self._changed)

    def _changed(self, event: Any) -> None:
        self.changes.append(event.update)

    def _awareness_update(self, topic: str, _change: Any) -> None:
        if topic == "update":
            self.awareness_changed = True

    def rebuild(self, state: bytes, pending: Iterable[bytes]) -> None:
        """Replace the Yjs document by one holding ``state`` (a whole-state update) and ``pending``."""
        self._new_doc()
        self.doc.apply_update(state)
        for update in pending:
            self.doc.apply_update(update)
        self.text_cache = None

    def encode(self) -> bytes:
        """The whole state as one Yjs (v1) update (O(state)); records its exact size."""
        state = self.doc.get_update()
        self.measured = (self.applied, len(state))
        self.bound = len(state) + sum(growth(len(p)) for p in self.pending)
        return state

    def state_bytes(self) -> int:
        if self.measured is None or self.measured[0] != self.applied:
            self.encode()
        return self.measured[1]

    def current_text(self) -> str:
        if self.text_cache is None or self.text_cache[0] != self.applied:
            self.text_cache = (self.applied, str(self.text))
        return self.text_cache[1]

    def editors(self) -> int:
        states = self.awareness.states
        return len({self.sessions.get(client) or f"client:{client}" for client in states})

    def settle(self) -> None:
        """Integrate what the waiting updates can give now, and forget those the state vector covers.

        Yrs 0.28 (pycrdt 0.14) retries the structs it holds aside once per
        applied update, and integrates a client's structs past a gap in its
        clocks when their origins are known (the state vector then stops at
        the gap). Together they can leave an update aside although everything
        it needs is there: three updates of one client arriving newest first
        left the document without text that the same updates in causal order
        give (tests/unit/test_collab_documents_store.py). Applying the waiting
        updates again, one by one in arrival order (merged into one they do
        not always integrate), until a round integrates nothing more puts them
        in, as Yjs' own retry loop does. Called after an update that changed
        the document; nothing to do while no update waits. A round costs
        O(waiting) applies, each O(waiting) inside Yrs: beyond
        :data:`SETTLE_LIMIT` waiting updates (a client whose clocks have a gap
        that never fills, e.g. after an update of theirs was refused: their
        later updates wait for ever, in Yjs too) only Yrs' own retry runs.
        """
        while self.pending and len(self.pending) <= SETTLE_LIMIT:
            before = len(self.changes)
            waiting = list(self.pending)
            for update in waiting:
                self.doc.apply_update(update)
            state_vector = self.doc.get_state()
            clocks = crdt.decode_state_vector(state_vector)
            self.pending = {p: None for p in waiting if crdt.adds_to(p, state_vector, clocks)}
            if len(self.changes) == before:
                return


def growth(update_bytes: int) -> int:
    """Upper bound of what an update of ``update_bytes`` can add to a document's encoded state, in bytes."""
    return GROWTH_PER_UPDATE_BYTE * update_bytes + GROWTH_SLACK_BYTES


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class DocumentStore:
    """The documents of one collab-documents service; ``journal`` ``None`` keeps them in memory only.

    ``snapshot_every_updates`` (0: never) compacts each document's log;
    ``max_commit_batch`` bounds one group commit; ``max_state_bytes`` and
    ``watch_backlog`` are the contract's 3 MiB and 10,000 unless a test
    moves them; ``awareness_timeout_ms`` is y-protocols' 30 s.
    """

    def __init__(self, journal: DocumentJournal | None, *, snapshot_every_updates: int = 200, max_commit_batch: int = 512,
                 max_state_bytes: int = MAX_DOCUMENT_STATE_BYTES, watch_backlog: int = MAX_WATCH_BACKLOG,
                 awareness_timeout_ms: int = SESSION_TIMEOUT_MS, observer: StoreObserver | None = None) -> None:
        if snapshot_every_updates < 0 or max_commit_batch < 1 or watch_backlog < 1:
            raise ValueError("snapshot_every_updates >= 0, max_commit_batch >= 1 and watch_backlog >= 1")
        self._journal = journal
        self._snapshot_every = snapshot_every_updates if journal is not None else 0
        self._max_batch = max_commit_batch
        self.max_state_bytes = max_state_bytes
        self._watch_backlog = watch_backlog
        self._awareness_timeout_ms = awareness_timeout_ms
        self._observer = observer or StoreObserver()
        self._documents: dict[str, _Document] = {}
        self._creating: set[str] = set()
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._stopping = False
        #: Group commits so far.
        self.commits = 0

    # -- life cycle ---------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Load every document from the log (its latest snapshot plus the updates after it) and start the committer;
        returns the number of documents loaded."""
        if self._journal is not None:
            for loaded in await asyncio.to_thread(self._journal.load):
                document = _Document(loaded.record)
                self._restore(document, loaded)
                self._documents[loaded.record.document_id] = document
        self._observer.documents(len(self._documents))
        self._stopping = False
        self._writer = asyncio.create_task(self._commit_loop(), name="collab-documents-commit")
        self._sweeper = asyncio.create_task(self._sweep_awareness(), name="collab-documents-awareness")
        return len(self._documents)

    async def stop(self) -> None:
        """Commit what is queued, end every watch (:data:`SHUTDOWN`), stop the committer. Writes after this are
        refused (``StoreUnavailable``)."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._writer is not None:
            self._wake.set()
            await self._writer
            self._writer = None
        for document in self._documents.values():
            for watcher in list(document.watchers):
                self._drop(document, watcher, WatchEnded(SHUTDOWN, "the documents service is shutting down; watch "
                                                                   "again (and Sync) once it is back"))

    def _restore(self, document: _Document, loaded: LoadedDocument) -> None:
        """Rebuild ``document``'s CRDT state from what the log holds (snapshot, pending, updates after it)."""
        replayed: list[bytes] = []
        snapshot = loaded.snapshot
        document.rebuild(snapshot.state if snapshot is not None else crdt.EMPTY_UPDATE, [])
        if snapshot is not None and snapshot.pending is not None:
            for update in crdt.unpack_updates(snapshot.pending):
                document.doc.apply_update(update)
                replayed.append(update)
        for record in loaded.updates:
            document.doc.apply_update(record.update)
            replayed.append(record.update)
        state_vector = document.doc.get_state()
        clocks = crdt.decode_state_vector(state_vector)
        document.pending = {u: None for u in replayed if crdt.adds_to(u, state_vector, clocks)}
        document.settle()
        document.changes.clear()
        document.applied = document.committed = loaded.sequence
        document.snapshot_sequence = snapshot.sequence if snapshot is not None else 0
        document.last_done = None
        document.encode()
        self._observer.state_size(document.record.document_id, document.measured[1])

    # -- reads --------------------------------------------------------------------------------------------------

    @property
    def document_count(self) -> int:
        return len(self._documents)

    def _document(self, document_id: str) -> _Document:
        document = self._documents.get(document_id)
        if document is None:
            raise NotFound(f"document {document_id} does not exist")
        return document

    def _info(self, document: _Document) -> DocumentInfo:
        record = document.record
        return DocumentInfo(record.document_id, record.title, record.created_at_unix_ms, document.applied,
                            document.current_text(), document.state_bytes(), document.editors())

    def get(self, document_id: str, include_state: bool = False) -> DocumentSnapshot:
        """The document's metadata, text and state vector, and with ``include_state`` its whole state as one update.
        ``NotFound``. Cost: O(state) when the document changed since it was last encoded."""
        document = self._document(document_id)
        state = None
        if include_state:
            state = document.encode()
            self._observer.state_size(document_id, len(state))
        return DocumentSnapshot(self._info(document), state, document.doc.get_state())

    def sync(self, document_id: str, state_vector: bytes) -> SyncResult:
        """What a replica with ``state_vector`` lacks (y-protocols sync step 2), the sequence the document is at, and
        every awareness state. ``NotFound``; ``InvalidArgument("state_vector")`` when it is not a Yjs state vector."""
        document = self._document(document_id)
        try:
            crdt.decode_state_vector(state_vector)
            update = document.doc.get_update(state_vector or crdt.EMPTY_STATE_VECTOR)
        except ValueError as error:
            raise InvalidArgument("state_vector", f"is not a Yjs state vector: {error}") from None
        return SyncResult(update, document.applied, self._awareness_bytes(document))

    @staticmethod
    def _awareness_bytes(document: _Document) -> bytes:
        clients = list(document.awareness.states)
        return document.awareness.encode_awareness_update(clients) if clients else b""

    def pending_updates(self, document_id: str) -> int:
        """How many accepted updates of the document wait for a missing dependency (tests, diagnostics)."""
        return len(self._document(document_id).pending)

    # -- writes -------------------------------------------------------------------------------------------------

    async def create(self, document_id: str, title: str, initial_text: str = "") -> DocumentInfo:
        """Create a document (at sequence 1 holding ``initial_text``, or empty at 0); returns it once committed.
        ``DocumentExists`` when ``document_id`` is taken (or being created)."""
        if self._stopping:
            raise StoreUnavailable("the documents service is stopping")
        if document_id in self._documents or document_id in self._creating:
            raise DocumentExists(f"document {document_id} exists already")
        record = DocumentRecord(document_id, title, _now_ms())
        document = _Document(record)
        pending = _Pending(document, asyncio.get_running_loop().create_future(), create=record)
        if initial_text:
            document.text.insert(0, initial_text)
            pending.update = document.doc.get_update()
            pending.sequence = document.applied = 1
            document.changes.clear()
        document.encode()
        self._creating.add(document_id)
        self._enqueue(pending)
        await asyncio.shield(pending.done)
        return self._info(document)

    async def apply_update(self, document_id: str, update: bytes, origin: str = "", session_id: str = "") -> ApplyResult:
        """Merge ``update`` into the document and return once it is durable; see the module doc for duplicates, size
        and malformed updates. ``NotFound``, ``InvalidArgument("update")``, ``ResourceExhausted``,
        ``StoreUnavailable``, or the journal's error when the commit failed (the update is not applied then)."""
        document = self._document(document_id)
        if document.unavailable is not None or self._stopping:
            raise StoreUnavailable(document.unavailable or "the documents service is stopping")
        allowance = growth(len(update))
        before: bytes | None = None
        if document.bound + allowance > self.max_state_bytes:
            before = document.encode()  # exact now: maybe there is room after all
            if document.bound + allowance <= self.max_state_bytes:
                before = None
        changes = document.changes
        changes.clear()
        try:
            document.doc.apply_update(update)
        except BaseException as error:  # ValueError, or a Yrs panic (pyo3's PanicException is a BaseException)
            if isinstance(error, _NOT_REFUSALS):
                raise
            self._observer.refused("malformed")
            if changes:  # never seen (60,000 fuzzed updates): part of it merged; log that part, refuse the rest
                log.error("%s: a refused update changed the document (%s); logging the part that merged",
                          document_id, error)
                self._accept(document, pycrdt.merge_updates(*changes), origin, session_id, allowance)
            raise InvalidArgument("update", f"is not a Yjs v1 update: {str(error) or type(error).__name__}") from None
        try:
            leftover = crdt.adds_to(update, document.doc.get_state())  # parts Yjs holds aside (missing dependencies)
        except BaseException as error:  # decoded a moment ago; should it fail now, log the update rather than lose it
            if isinstance(error, _NOT_REFUSALS):
                raise
            leftover = True
        if not changes and (not leftover or update in document.pending):
            self._observer.applied(True, len(update))
            sequence = document.applied
            if document.last_done is not None and not document.last_done.done():
                await asyncio.shield(document.last_done)  # the original is durable before its retry is answered
            return ApplyResult(sequence, True)
        waited = dict(document.pending) if before is not None else {}
        if leftover:
            document.pending[update] = None
        if changes:
            document.settle()
        exact: int | None = None
        if before is not None:  # near the limit: measure, and undo when past it
            exact = len(document.doc.get_update())
            waiting = sum(len(p) for p in document.pending)
            if exact + waiting > self.max_state_bytes:
                document.pending = waited
                document.rebuild(before, waited)
                document.measured = (document.applied, len(before))
                self._observer.refused("too_large")
                raise ResourceExhausted(f"document {document_id}'s state would grow to {exact + waiting:,} bytes, "
                                        f"past {self.max_state_bytes:,}")
        pending = self._accept(document, update, origin, session_id, allowance)
        if exact is not None:
            document.measured = (document.applied, exact)
            document.bound = exact + sum(growth(len(p)) for p in document.pending)
            self._observer.state_size(document_id, exact)
        self._observer.applied(False, len(update))
        return ApplyResult(await asyncio.shield(pending.done), False)

    def _accept(self, document: _Document, update: bytes, origin: str, session_id: str, allowance: int) -> _Pending:
        """Give a merged update the document's next sequence and queue it for the log."""
        document.applied += 1
        document.bound += allowance
        pending = _Pending(document, asyncio.get_running_loop().create_future(), document.applied, update, origin,
                           session_id)
        document.last_done = pending.done
        self._enqueue(pending)
        return pending

    def _enqueue(self, pending: _Pending) -> None:
        self._queue.append(pending)
        self._wake.set()

    # -- awareness ----------------------------------------------------------------------------------------------

    def apply_awareness(self, document_id: str, update: bytes, session_id: str = "") -> bool:
        """Merge a y-protocols awareness update and relay it to the watchers when it added, renewed or removed a
        state; returns whether it did. ``NotFound``; ``InvalidArgument("update")`` when it is not one (nothing
        merged then)."""
        document = self._document(document_id)
        try:
            entries = crdt.decode_awareness(update)
        except ValueError as error:
            raise InvalidArgument("update", f"is not a y-protocols awareness update: {error}") from None
        document.awareness_changed = False
        document.awareness.apply_awareness_update(update, session_id or "store")
        states = document.awareness.states
        meta = document.awareness.meta
        for entry in entries:
            if entry.client_id not in states:
                document.sessions.pop(entry.client_id, None)
            elif entry.state is not None and meta[entry.client_id]["clock"] == entry.clock:  # this entry was merged
                document.sessions[entry.client_id] = session_id
        if not document.awareness_changed:
            self._observer.awareness("stale")
            return False
        self._observer.awareness("relayed")
        self._broadcast(document, AwarenessEvent(update, session_id))
        return True

    def end_session(self, document_id: str, session_id: str) -> int:
        """Remove the awareness states that editor session ``session_id`` sent and relay their removal; returns how
        many were removed. ``NotFound``."""
        document = self._document(document_id)
        clients = [client for client, session in document.sessions.items() if session == session_id]
        return self._remove_awareness(document, clients, session_id)

    def _remove_awareness(self, document: _Document, clients: list[int], session_id: str) -> int:
        present = [client for client in clients if client in document.awareness.states]
        for client in clients:
            document.sessions.pop(client, None)
        if not present:
            return 0
        document.awareness.remove_awareness_states(present, "store")
        # The removal as y-protocols encodes it: each client's last clock and a null state.
        self._broadcast(document, AwarenessEvent(document.awareness.encode_awareness_update(present), session_id))
        return len(present)

    def expire_awareness(self, now_ms: int | None = None) -> int:
        """Remove every awareness state not renewed for ``awareness_timeout_ms`` (relayed with an empty session);
        returns how many were removed."""
        now_ms = _now_ms() if now_ms is None else now_ms
        removed = 0
        for document in self._documents.values():
            states, meta = document.awareness.states, document.awareness.meta
            if not states:
                continue
            stale = [client for client in states
                     if now_ms - meta.get(client, {}).get("lastUpdated", now_ms) >= self._awareness_timeout_ms]
            if stale:
                removed += self._remove_awareness(document, stale, "")
        if removed:
            self._observer.awareness("expired")
        return removed

    async def _sweep_awareness(self) -> None:
        every_s = max(self._awareness_timeout_ms / 10_000, 0.1)
        while True:
            await asyncio.sleep(every_s)
            try:
                self.expire_awareness()
            except Exception:  # the sweep must go on
                log.exception("expiring awareness states failed")

    # -- watchers -----------------------------------------------------------------------------------------------

    def watch(self, document_id: str, name: str) -> Watcher:
        """Start watching a document: the watcher gets every update committed after ``Watcher.started_sequence``
        and every awareness change from now on. ``NotFound``; ``StoreUnavailable`` once stopping. Call
        :meth:`unwatch` when done."""
        document = self._document(document_id)
        if self._stopping:
            raise StoreUnavailable("the documents service is stopping; watch again once it is back")
        watcher = Watcher(document_id, name, document.committed, self._watch_backlog)
        document.watchers[watcher] = None
        self._observer.watchers(1)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Stop ``watcher`` (idempotent)."""
        document = self._documents.get(watcher.document_id)
        if document is not None and document.watchers.pop(watcher, 0) is None:
            self._observer.watchers(-1)

    def _drop(self, document: _Document, watcher: Watcher, ended: WatchEnded) -> None:
        if document.watchers.pop(watcher, 0) is None:
            self._observer.watchers(-1)
        watcher._end(ended)

    def _broadcast(self, document: _Document, event: UpdateRecord | AwarenessEvent) -> None:
        overflowing = [w for w in document.watchers if not w._push(event)]
        for watcher in overflowing:
            self._observer.watcher_dropped()
            log.info("%s: watcher %s fell %d messages behind and was dropped", document.record.document_id,
                     watcher.name, self._watch_backlog)
            self._drop(document, watcher, WatchEnded(OVERFLOW, f"the watcher fell more than {self._watch_backlog:,} "
                                                               "messages behind; watch again and Sync"))

    # -- the committer ------------------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._commit_once()
            if self._stopping:
                return

    async def _commit_once(self) -> None:
        batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
        now_ns = time.time_ns()
        creates = [p.create for p in batch if p.create is not None]
        updates = [UpdateRecord(p.document.record.document_id, p.sequence, p.update, p.origin, p.session_id, now_ns)
                   for p in batch if p.sequence]
        snapshots = self._snapshots_due(batch)
        try:
            if self._journal is not None:
                started = time.perf_counter()
                await asyncio.to_thread(self._journal.append, creates, updates, snapshots)
                self._observer.committed(len(creates) + len(updates), time.perf_counter() - started)
        except Exception as error:  # the disk refused: nothing of this batch is acknowledged; memory follows the log
            await self._failed(batch, error)
            return
        self.commits += 1
        records = iter(updates)
        for pending in batch:
            document = pending.document
            if pending.create is not None:
                self._creating.discard(pending.create.document_id)
                self._documents[pending.create.document_id] = document
                self._observer.documents(len(self._documents))
                self._observer.state_size(pending.create.document_id, document.state_bytes())
            if pending.sequence:
                record = next(records)
                document.committed = record.sequence
                if document.watchers:
                    self._broadcast(document, record)
            if not pending.done.done():
                pending.done.set_result(pending.sequence)

    def _snapshots_due(self, batch: list[_Pending]) -> list[SnapshotRecord]:
        """Snapshots of the batch's documents that reached ``snapshot_every_updates`` since their last one, taken now
        (before any await: each document's state is exactly its last queued update's, which this batch holds)."""
        if not self._snapshot_every:
            return []
        last: dict[str, tuple[_Document, int]] = {}
        for pending in batch:
            if pending.sequence:
                last[pending.document.record.document_id] = (pending.document, pending.sequence)
        snapshots = []
        for document_id, (document, sequence) in last.items():
            if sequence != document.applied or sequence - document.snapshot_sequence < self._snapshot_every:
                continue
            started = time.perf_counter()
            state = document.encode()
            waiting = crdt.pack_updates(list(document.pending)) if document.pending else None
            snapshots.append(SnapshotRecord(document_id, sequence, state, waiting, _now_ms()))
            document.snapshot_sequence = sequence
            self._observer.snapshot(time.perf_counter() - started, len(state))
            self._observer.state_size(document_id, len(state))
        return snapshots

    async def _failed(self, batch: list[_Pending], error: Exception) -> None:
        """A commit failed: reload the documents it touched from the log, then fail its waiters and the queued
        updates of the same documents (their sequences follow the failed ones). Nobody hears of the failure before
        memory holds what the log holds again."""
        log.error("committing %d records failed: %s", len(batch), error)
        touched = {id(p.document): p.document for p in batch if p.create is None}
        for document in touched.values():  # all of them before the first await: none takes an update meanwhile
            document.unavailable = f"document {document.record.document_id} is being reloaded after a failed write; retry"
        failed = batch + [p for p in self._queue if id(p.document) in touched]
        self._queue = [p for p in self._queue if id(p.document) not in touched]
        for document in touched.values():
            await self._reload(document)
        for pending in failed:
            if pending.create is not None:
                self._creating.discard(pending.create.document_id)
            if not pending.done.done():
                pending.done.set_exception(error)
                pending.done.exception()  # retrieved: a caller that gave up must not log "never retrieved"

    async def _reload(self, document: _Document) -> None:
        document_id = document.record.document_id
        try:
            loaded = await asyncio.to_thread(self._journal.load_document, document_id)
            if loaded is None:
                raise RuntimeError("it is not in the log")
            self._restore(document, loaded)
        except Exception as error:  # noqa: BLE001 - the disk is gone: the document stays unwritable until a restart
            log.error("%s: reloading from the log failed (%s); it refuses updates until the service restarts",
                      document_id, error)
            document.unavailable = f"document {document_id} could not be reloaded after a failed write: {error}"
            return
        document.unavailable = None
        log.warning("%s: reloaded from the log at sequence %d after a failed commit", document_id, document.applied)

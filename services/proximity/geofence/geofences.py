"""The geofence service's state and its one writer: fences, entity states, the event log, group commit, retention.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, ... geofencing,
real-time location updates | 100M places, 10M updates/sec". The invariant: **a fence event is neither lost nor
repeated** for an entity crossing a fence, across retried batches, watcher reconnects and a crash of the process.

How (:class:`Geofences`):

- **Evaluate, then write, then apply.** :meth:`Geofences.evaluate` runs the :class:`~.evaluator.Evaluator` (plain
  CPU work, no await: atomic on the event loop) against the entity states *including those of batches still
  being written* (an overlay), numbers its events after the last number given, queues the states and events for
  the writer, and returns only once they are committed and fsynced. So a batch sent again after a lost answer,
  even while the first is still being written, finds its positions stale: nothing twice; and a batch the tracker
  was told is done is on disk: nothing lost.
- **Group commit.** The writer task takes every change queued (up to ``max_commit_positions`` positions), writes it
  in one transaction in one worker thread (:meth:`.store.GeofenceStore.commit`: one fsync for all), then applies it
  to memory in queue order and publishes its events to the watchers (:class:`~.watchers.EventFeed`), then answers
  the callers. Memory (committed states, fences, the published sequence) changes only after the commit.
- **A failed commit** fails its group and everything queued after it (they were evaluated on top of it) with
  :class:`StoreUnavailable` (UNAVAILABLE: retry), forgets the overlay and the numbers given, and re-reads from the
  file the entities and fences the group touched and any events after the last published (a commit can fail after
  reaching the file: an fsync error). Until that re-read succeeds, calls answer UNAVAILABLE. A retried batch is then
  evaluated against exactly what the file holds.
- **Fences.** CreateFence and DeleteFence are serialised by one lock and go through the same writer; a fence's
  *generation* (never reused, kept in the file) tells a fence deleted and created again from the old one.
- **Start** loads the fences, every entity's state and the last event number from the file. **Retention** keeps
  the newest ``event_retention`` events: every ``trim_interval_s`` the older ones are deleted, oldest first, after
  raising the floor under which watchers get OUT_OF_RANGE.

Per-entity state is kept forever (the entity's last sequence is what makes a resent position stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ...runtime.errors import AlreadyExists, NotFound, ResourceExhausted
from . import metrics
from .evaluator import EntityState, Evaluation, Evaluator, FenceEvent, Position
from .fences import Fence, FenceIndex
from .settings import GeofenceSettings
from .store import Change, GeofenceStore
from .watchers import EventFeed

log = logging.getLogger("casemesh.proximity.geofence")

T = TypeVar("T")

#: Events deleted by one retention transaction (the writer thread is shared with the commits).
TRIM_CHUNK = 5_000


class StoreUnavailable(Exception):
    """The change could not be written (or the service is recovering from a failed write, or stopping): nothing of
    it happened; UNAVAILABLE, retry."""


@dataclass(frozen=True, slots=True)
class EvaluateResult:
    """What one EvaluatePositions batch did: positions ``applied`` and ``stale``, ``events`` written."""

    applied: int
    stale: int
    events: int


class _Work:
    """One queued change: what to write, the evaluation it came from (``None``: a fence change), its ticket (queue
    order) and the future its caller waits on."""

    __slots__ = ("change", "evaluation", "ticket", "future", "positions")

    def __init__(self, change: Change, evaluation: Evaluation | None, ticket: int, future: asyncio.Future[None]):
        self.change = change
        self.evaluation = evaluation
        self.ticket = ticket
        self.future = future
        self.positions = (evaluation.applied + evaluation.stale) if evaluation is not None else 1


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a caller that gave up does not leave "exception never retrieved"


class Geofences:
    """The geofence service without gRPC (module docstring). Opens (and loads) the SQLite file at ``path``;
    ``wall_clock`` (seconds since the Unix epoch) stamps ``recorded_at_unix_ms``. ``sqlite3.Error`` when the file
    cannot be opened or read. Call :meth:`start` on the event loop, :meth:`close` at the end."""

    def __init__(self, settings: GeofenceSettings, path: Path, wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._wall_clock = wall_clock
        self.store = GeofenceStore(path)
        try:
            snapshot = self.store.load()
        except BaseException:
            self.store.close_reader()
            self.store.close()
            raise
        self.index = FenceIndex(settings.fence_resolution, settings.max_cells_per_fence)
        for fence in snapshot.fences:
            self.index.add(fence)
        self.evaluator = Evaluator(self.index)
        self._entities: dict[str, EntityState] = snapshot.entities
        #: The newest event committed and published.
        self._last_sequence = snapshot.last_sequence
        #: The newest event number given (committed, or queued for the writer).
        self._assigned_sequence = snapshot.last_sequence
        self._fence_generation = snapshot.fence_generation
        #: States of entities in batches queued or being written: entity → (state, ticket of the batch).
        self._overlay: dict[str, tuple[EntityState, int]] = {}
        self._queue: list[_Work] = []
        self._unfinished = 0  # works queued or being written
        self._tickets = itertools.count(1)
        self._writer: asyncio.Task[None] | None = None
        self._resync_entities: set[str] = set()
        self._resync_fences: set[str] = set()
        self._resync_needed = False
        self._fence_lock = asyncio.Lock()
        self._write_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proximity-geofence-db")
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proximity-geofence-read")
        self.feed = EventFeed(self._read_page, last_sequence=snapshot.last_sequence,
                              oldest_kept=snapshot.oldest_sequence, recent_events=settings.recent_events,
                              backlog_page=settings.backlog_page, watcher_queue=settings.watcher_queue,
                              max_watchers=settings.max_watchers)
        self._trimmer: asyncio.Task[None] | None = None
        self._closed = False
        self._show_sizes()
        metrics.LAST_SEQUENCE.set(self._last_sequence)

    # -- reads ------------------------------------------------------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        """The newest event written (0: none ever)."""
        return self._last_sequence

    @property
    def oldest_kept(self) -> int:
        """The oldest event still readable (``last_sequence + 1`` when none is)."""
        return self.feed.oldest_kept

    @property
    def entity_count(self) -> int:
        """Entities with a committed state."""
        return len(self._entities)

    def entity_state(self, entity_id: str) -> EntityState | None:
        """The entity's committed state, or ``None`` when it was never evaluated."""
        return self._entities.get(entity_id)

    def get_fence(self, fence_id: str) -> Fence:
        """The fence; :class:`NotFound` when there is none."""
        fence = self.index.get(fence_id)
        if fence is None:
            raise NotFound(f"no fence {fence_id}")
        return fence

    def watch(self, fence_ids: frozenset[str], after_sequence: int = 0, from_now: bool = False):
        """The events of ``fence_ids`` (empty: all) after ``after_sequence``, then live ones
        (:meth:`.watchers.EventFeed.watch`, its errors)."""
        return self.feed.watch(fence_ids, after_sequence, from_now)

    async def _read_page(self, after: int, up_to: int, limit: int) -> list[FenceEvent]:
        return await asyncio.get_running_loop().run_in_executor(self._read_executor, self.store.read_events, after,
                                                                up_to, limit)

    def _state_of(self, entity_id: str) -> EntityState | None:
        pending = self._overlay.get(entity_id)
        return pending[0] if pending is not None else self._entities.get(entity_id)

    # -- positions --------------------------------------------------------------------------------------------------

    async def evaluate(self, positions: Sequence[Position]) -> EvaluateResult:
        """Evaluate a batch (at most one position per entity, the caller checks) and write its entity states and
        events; returns once they are on disk. :class:`StoreUnavailable` when they could not be written (nothing
        of the batch happened: send it again). Cancelling the caller does not stop a write under way."""
        self._check_writable()
        evaluation = self.evaluator.evaluate(positions, self._state_of, self._assigned_sequence + 1,
                                             int(self._wall_clock() * 1000))
        result = EvaluateResult(evaluation.applied, evaluation.stale, len(evaluation.events))
        if not evaluation.states and self._unfinished == 0:  # all stale against what is on disk: nothing to wait for
            metrics.STALE.inc(evaluation.stale)
            return result
        await self._submit(Change(states=evaluation.states, events=evaluation.events), evaluation)
        return result

    # -- fences -----------------------------------------------------------------------------------------------------

    async def create_fence(self, fence: Fence) -> bool:
        """Add ``fence`` (its ``generation`` is given here); returns ``False`` when the same fence exists (a retry).
        :class:`AlreadyExists` when the id exists with other fields, :class:`ResourceExhausted` at
        ``max_fences``, :class:`StoreUnavailable` when it could not be written."""
        return await self._shielded(self._create_fence(fence))

    async def _create_fence(self, fence: Fence) -> bool:
        async with self._fence_lock:
            existing = self.index.get(fence.fence_id)
            if existing is not None:
                if existing.same_definition(fence):
                    return False
                raise AlreadyExists(f"fence {fence.fence_id} exists with other fields")
            if len(self.index) >= self.settings.max_fences:
                raise ResourceExhausted(f"proximity-geofence holds {self.settings.max_fences:,} fences already")
            self._check_writable()
            self._fence_generation += 1
            await self._submit(Change(fence_put=replace(fence, generation=self._fence_generation)), None)
            return True

    async def delete_fence(self, fence_id: str) -> Fence:
        """Remove the fence (its entities get no EXIT); returns it. :class:`NotFound` when there is none,
        :class:`StoreUnavailable` when it could not be written."""
        return await self._shielded(self._delete_fence(fence_id))

    async def _delete_fence(self, fence_id: str) -> Fence:
        async with self._fence_lock:
            fence = self.get_fence(fence_id)
            self._check_writable()
            await self._submit(Change(fence_delete=fence_id), None)
            return fence

    @staticmethod
    async def _shielded(work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even when the caller is cancelled (a fence change under way is finished)."""
        task = asyncio.ensure_future(work)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    # -- the writer -------------------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreUnavailable("proximity-geofence is shutting down; retry")
        if self._resync_needed:
            self._kick()
            raise StoreUnavailable("proximity-geofence is recovering from a failed write; retry")

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="proximity-geofence-writer")

    async def _submit(self, change: Change, evaluation: Evaluation | None) -> None:
        """Queue ``change`` (the overlay and the numbers given updated in the same step) and wait until it is
        written and applied; :class:`StoreUnavailable` when it is not."""
        work = _Work(change, evaluation, next(self._tickets), asyncio.get_running_loop().create_future())
        work.future.add_done_callback(_retrieve)  # a caller that gave up leaves no "exception never retrieved"
        for entity_id, state in change.states.items():
            self._overlay[entity_id] = (state, work.ticket)
        if change.events:
            self._assigned_sequence = change.events[-1].sequence
        self._queue.append(work)
        self._unfinished += 1
        self._kick()
        await asyncio.shield(work.future)

    async def _write_queued(self) -> None:
        """The writer: group-commit what is queued, apply it, answer its callers; re-read the file after a failure."""
        loop = asyncio.get_running_loop()
        while True:
            if self._resync_needed:
                if not await self._resync():
                    return  # the next call tries again
                continue
            if not self._queue:
                return
            positions = 0
            taken = 0
            for work in self._queue:
                if taken and positions + work.positions > self.settings.max_commit_positions:
                    break
                positions += work.positions
                taken += 1
            group, self._queue = self._queue[:taken], self._queue[taken:]
            changes = [work.change for work in group]
            started = time.perf_counter()
            try:
                if any(c.states or c.events or c.fence_put or c.fence_delete for c in changes):
                    await loop.run_in_executor(self._write_executor, self.store.commit, changes)
            except Exception as error:  # noqa: BLE001 - whatever failed, the group is not known to be written
                self._fail(group, error)
                continue
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.COMMIT_BATCHES.observe(len(group))
            try:
                for work in group:
                    self._apply(work)
            except Exception as error:  # noqa: BLE001 - a bug: memory may differ from the file; re-read it
                log.exception("proximity-geofence: applying a written group failed")
                self._fail(group, error)
                continue
            self._unfinished -= len(group)
            for work in group:
                if not work.future.done():
                    work.future.set_result(None)
            self._show_sizes()

    def _apply(self, work: _Work) -> None:
        """Make a written change visible: fences, entity states, events (published to the watchers), metrics."""
        change = work.change
        if change.fence_put is not None:
            self.index.add(change.fence_put)
        if change.fence_delete is not None:
            self.index.remove(change.fence_delete)
        for entity_id, state in change.states.items():
            self._entities[entity_id] = state
            pending = self._overlay.get(entity_id)
            if pending is not None and pending[1] == work.ticket:
                del self._overlay[entity_id]
        if change.events:
            self._last_sequence = change.events[-1].sequence
            self.feed.publish(change.events)
            metrics.count_events(change.events, int(self._wall_clock() * 1000))
        evaluation = work.evaluation
        if evaluation is not None:
            metrics.APPLIED.inc(evaluation.applied)
            metrics.STALE.inc(evaluation.stale)
            for measured in evaluation.candidates:
                metrics.CANDIDATES.observe(measured)

    def _fail(self, group: list[_Work], error: Exception) -> None:
        """A group's commit (or its application) failed: fail it and everything queued after it, forget what they
        assumed, and ask for a re-read of what the group touched (it may have reached the file)."""
        log.error("proximity-geofence: a commit of %d changes failed: %s", len(group), error)
        metrics.COMMIT_FAILURES.inc()
        failed, self._queue = group + self._queue, []
        self._overlay.clear()
        self._assigned_sequence = self._last_sequence
        self._unfinished -= len(failed)
        for work in group:
            self._resync_entities.update(work.change.states)
            for fence in (work.change.fence_put.fence_id if work.change.fence_put else None,
                          work.change.fence_delete):
                if fence is not None:
                    self._resync_fences.add(fence)
        self._resync_needed = True
        for work in failed:
            if not work.future.done():
                work.future.set_exception(StoreUnavailable(f"the change could not be written ({error}); retry"))

    async def _resync(self) -> bool:
        """Re-read what a failed commit touched; ``True`` when memory now equals the file."""
        entities, fences = set(self._resync_entities), set(self._resync_fences)
        try:
            found = await asyncio.get_running_loop().run_in_executor(
                self._write_executor, self.store.resync, entities, fences, self._last_sequence)
        except Exception as error:  # noqa: BLE001 - still unavailable; the next call tries again
            log.error("proximity-geofence: re-reading the file after a failed commit failed: %s", error)
            return False
        for entity_id, state in found.entities.items():
            if state is None:
                self._entities.pop(entity_id, None)
            else:
                self._entities[entity_id] = state
        for fence_id, fence in found.fences.items():
            if fence is None:
                self.index.remove(fence_id)
            elif self.index.get(fence_id) != fence:
                self.index.add(fence)
        self._fence_generation = max(self._fence_generation, found.fence_generation)
        if found.events:  # the failed commit reached the file after all: its events are published now, once
            log.warning("proximity-geofence: a failed commit had reached the file (%d events); published now",
                        len(found.events))
            self._last_sequence = found.events[-1].sequence
            self.feed.publish(found.events)
            metrics.count_events(found.events, int(self._wall_clock() * 1000))
        self._assigned_sequence = self._last_sequence
        self._resync_entities.clear()
        self._resync_fences.clear()
        self._resync_needed = False
        self._show_sizes()
        return True

    def _show_sizes(self) -> None:
        metrics.FENCES.set(len(self.index))
        metrics.INDEX_CELLS.set(self.index.cell_entries)
        metrics.ENTITIES.set(len(self._entities))

    # -- retention --------------------------------------------------------------------------------------------------

    async def trim(self) -> int:
        """Delete the events older than the newest ``event_retention``; returns how many. The floor under which
        watchers get OUT_OF_RANGE is raised first."""
        floor = self._last_sequence - self.settings.event_retention + 1
        if floor <= self.feed.oldest_kept:
            return 0
        self.feed.oldest_kept = floor
        loop = asyncio.get_running_loop()
        total = 0
        while True:
            deleted = await loop.run_in_executor(self._write_executor, self.store.trim, floor, TRIM_CHUNK)
            total += deleted
            metrics.TRIMMED.inc(deleted)
            if deleted < TRIM_CHUNK:
                return total

    async def _trim_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.trim_interval_s)
            try:
                await self.trim()
            except Exception:  # noqa: BLE001 - one failed trim must not end retention; the next one retries
                log.exception("proximity-geofence: trimming the event log failed")

    # -- life cycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the retention task."""
        if self._trimmer is None:
            self._trimmer = asyncio.create_task(self._trim_periodically(), name="proximity-geofence-trim")

    async def close(self) -> None:
        """End the watchers (UNAVAILABLE), finish the writes queued, close the file; later writes raise
        :class:`StoreUnavailable`. Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self.feed.stop()
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._read_executor, self.store.close_reader)
        await loop.run_in_executor(self._write_executor, self.store.close)
        self._read_executor.shutdown(wait=False)
        self._write_executor.shutdown(wait=False)

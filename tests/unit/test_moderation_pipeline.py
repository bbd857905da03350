"""moderation-pipeline's domain (services/moderation/pipeline) without gRPC, with fakes of the classifier and the
review service and a clock of the test's own: confidence routing at its boundaries, settings and validation naming the
field, the state machine and its audit entries (replayed), idempotent SubmitItem and ALREADY_EXISTS, the backlog bound,
the appeal rules (not_author, not_removed, already_appealed, one of two concurrent appeals), verdicts applied exactly
once with the cursor, AwaitDecision, a failed write that changes nothing, the rebuild from the file (PENDING items
queued again, items bound for review re-sent), and the three stages (classifier retries, the review outbox, the
verdict consumer) against fakes that fail on purpose.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review").
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from casemesh.moderation.v1 import moderation_pb2 as m
from casemesh.moderation.v1 import pipeline_pb2
from casemesh.services.moderation import contract
from casemesh.services.moderation.pipeline import metrics, validation
from casemesh.services.moderation.pipeline.clients import Backoff, DependencyUnavailable, Verdict
from casemesh.services.moderation.pipeline.items import (
    APPROVED,
    IN_APPEAL,
    IN_REVIEW,
    PENDING,
    REMOVED,
    ItemBook,
    replay,
    route_of,
)
from casemesh.services.moderation.pipeline.outbox import ReviewOutbox
from casemesh.services.moderation.pipeline.router import ClassifyPool
from casemesh.services.moderation.pipeline.settings import PipelineSettings
from casemesh.services.moderation.pipeline.store import FILE_NAME, AuditEntry, Change, ItemStore, StaleState
from casemesh.services.moderation.pipeline.verdicts import VerdictConsumer
from casemesh.services.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

from tests.integration.waiting import eventually

T0 = 1_800_000_000_000
FIRST, APPEAL = m.REVIEW_KIND_FIRST, m.REVIEW_KIND_APPEAL
APPROVE, REMOVE = m.VERDICT_APPROVE, m.VERDICT_REMOVE
E = m  # audit events, e.g. E.AUDIT_EVENT_SUBMITTED


class Clock:
    """A clock the test moves (Unix ms)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class FakeClassifier:
    """Scores a text by ``scores[text]`` (0.5 when absent); fails the next ``failures`` calls."""

    def __init__(self, scores: dict[str, float] | None = None) -> None:
        self.scores = scores or {}
        self.failures = 0
        self.calls: list[str] = []

    async def classify(self, text: str, timeout_s: float) -> tuple[float, str]:
        assert timeout_s > 0
        self.calls.append(text)
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailable("Classify: UNAVAILABLE: down")
        return self.scores.get(text, 0.5), "model-1"


class FakeReview:
    """An in-memory review service: Enqueue idempotent per (item, kind), fails while ``down``; :meth:`complete` adds a
    verdict to the outbox; ``pull`` acknowledges (deletes) verdicts up to ``after_seq``."""

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, int], tuple[float, str]] = {}
        self.enqueues = 0
        self.down = False
        self.outbox: list[Verdict] = []
        self.seq = 0
        self.acknowledged = 0

    async def enqueue(self, item_id: str, text: str, probability: float, kind: int, appeal_reason: str,
                      timeout_s: float) -> str:
        assert timeout_s > 0 and contract.is_text(text) and kind in (FIRST, APPEAL)
        self.enqueues += 1
        await asyncio.sleep(0)
        if self.down:
            raise DependencyUnavailable("Enqueue: UNAVAILABLE: down")
        self.tasks.setdefault((item_id, kind), (probability, appeal_reason))
        return f"task-{item_id}-{kind}"

    def complete(self, item_id: str, kind: int, verdict: int, reviewer: str = "rev-1", note: str = "") -> Verdict:
        assert (item_id, kind) in self.tasks
        self.seq += 1
        self.outbox.append(Verdict(self.seq, item_id, kind, verdict, reviewer, note))
        return self.outbox[-1]

    async def pull(self, after_seq: int, max_verdicts: int, wait_ms: int, timeout_s: float) -> list[Verdict]:
        assert timeout_s * 1_000 > wait_ms
        await asyncio.sleep(0.001)
        if self.down:
            raise DependencyUnavailable("PullVerdicts: UNAVAILABLE: down")
        self.acknowledged = max(self.acknowledged, after_seq)
        self.outbox = [v for v in self.outbox if v.seq > after_seq]
        return self.outbox[:max_verdicts]


async def book_on(path: Path, clock: Clock | None = None, **settings) -> ItemBook:
    book = ItemBook(ItemStore(path / FILE_NAME), PipelineSettings(**settings), clock=clock or Clock())
    await book.start()
    return book


async def reason_of(call, error=FailedPrecondition) -> str:
    with pytest.raises(error) as raised:
        await call
    return str(raised.value).partition(":")[0]


def events(book: ItemBook, item_id: str) -> list[tuple[int, int]]:
    return [(entry.event, entry.state_after) for entry in book.audit_log(item_id)]


# -- rules -------------------------------------------------------------------------------------------------------------


def test_routing_by_the_thresholds_at_their_boundaries():
    assert route_of(0.0, 0.2, 0.8) == (APPROVED, E.AUDIT_EVENT_AUTO_APPROVED, m.DECIDED_BY_CLASSIFIER)
    assert route_of(0.19999, 0.2, 0.8)[0] == APPROVED
    assert route_of(0.2, 0.2, 0.8) == (IN_REVIEW, E.AUDIT_EVENT_SENT_TO_REVIEW, m.DECIDED_BY_UNSPECIFIED)
    assert route_of(0.79999, 0.2, 0.8)[0] == IN_REVIEW
    assert route_of(0.8, 0.2, 0.8) == (REMOVED, E.AUDIT_EVENT_AUTO_REMOVED, m.DECIDED_BY_CLASSIFIER)
    assert route_of(1.0, 0.2, 0.8)[0] == REMOVED
    # equal thresholds: no review band at all
    assert [route_of(p, 0.5, 0.5)[0] for p in (0.0, 0.49999, 0.5, 1.0)] == [APPROVED, APPROVED, REMOVED, REMOVED]
    # (0, 1): everything to review but a certain violation
    assert [route_of(p, 0.0, 1.0)[0] for p in (0.0, 0.5, 0.99999, 1.0)] == [IN_REVIEW, IN_REVIEW, IN_REVIEW, REMOVED]


def test_settings():
    settings = PipelineSettings()
    assert (settings.approve_below, settings.remove_above, settings.classify_concurrency, settings.max_pending,
            settings.classify_timeout_ms, settings.review_timeout_ms, settings.resend_interval_ms) == (
        0.2, 0.8, 8, 10_000, 1_000, 2_000, 500)
    assert PipelineSettings(approve_below=0.5, remove_above=0.5).remove_above == 0.5
    assert PipelineSettings(approve_below=0, remove_above=1).approve_below == 0
    for bad in ({"approve_below": 0.6, "remove_above": 0.5}, {"approve_below": -0.1}, {"remove_above": 1.01},
                {"classify_concurrency": 0}, {"max_pending": 0}, {"unknown": 1}, {"verdict_batch": 1_001},
                {"retry_backoff_ms": 10_000, "max_retry_backoff_ms": 5_000}, {"resend_interval_ms": 9}):
        with pytest.raises(ValidationError):
            PipelineSettings(**bad)
    with pytest.raises(ValidationError):
        PipelineSettings().approve_below = 0.1  # frozen


def test_validation_names_the_field():
    def field(check, request) -> str:
        with pytest.raises(InvalidArgument) as error:
            check(request)
        return error.value.field

    ok = {"item_id": "i-1", "author_id": "a_1", "text": "hello"}
    assert validation.submit(pipeline_pb2.SubmitItemRequest(**ok)) == ("i-1", "a_1", "hello")
    assert validation.submit(pipeline_pb2.SubmitItemRequest(**{**ok, "text": "x" * 5_000}))[2] == "x" * 5_000
    for bad, name in (({"item_id": ""}, "item_id"), ({"item_id": "x" * 65}, "item_id"), ({"item_id": "a b"}, "item_id"),
                      ({"author_id": ""}, "author_id"), ({"author_id": "a/b"}, "author_id"), ({"text": ""}, "text"),
                      ({"text": "x" * 5_001}, "text"), ({"item_id": "", "text": ""}, "item_id")):
        assert field(validation.submit, pipeline_pb2.SubmitItemRequest(**{**ok, **bad})) == name
    assert validation.await_decision(pipeline_pb2.AwaitDecisionRequest(item_id="i", timeout_ms=10_000)) == ("i", 10_000)
    for timeout in (0, -1, 10_001):
        assert field(validation.await_decision, pipeline_pb2.AwaitDecisionRequest(
            item_id="i", timeout_ms=timeout)) == "timeout_ms"
    assert field(validation.await_decision, pipeline_pb2.AwaitDecisionRequest(timeout_ms=5)) == "item_id"
    assert validation.appeal(pipeline_pb2.AppealDecisionRequest(item_id="i", author_id="a", reason="")) == ("i", "a", "")
    assert field(validation.appeal, pipeline_pb2.AppealDecisionRequest(
        item_id="i", author_id="a", reason="r" * 501)) == "reason"
    assert field(validation.appeal, pipeline_pb2.AppealDecisionRequest(item_id="i", author_id="")) == "author_id"
    assert field(validation.item_id, "") == "item_id"


def test_replay_follows_the_state_machine():
    def entries(*steps: tuple[int, int]) -> list[AuditEntry]:
        return [AuditEntry(seq, "i", T0, event, state, "x", 0.0, "") for seq, (event, state) in
                enumerate(steps, start=1)]

    submitted = (E.AUDIT_EVENT_SUBMITTED, PENDING)
    assert replay(entries(submitted)) == PENDING
    assert replay(entries(submitted, (E.AUDIT_EVENT_AUTO_APPROVED, APPROVED))) == APPROVED
    assert replay(entries(submitted, (E.AUDIT_EVENT_SENT_TO_REVIEW, IN_REVIEW), (E.AUDIT_EVENT_REVIEW_REMOVED, REMOVED),
                          (E.AUDIT_EVENT_APPEALED, IN_APPEAL), (E.AUDIT_EVENT_APPEAL_REVERSED, APPROVED))) == APPROVED
    assert replay(entries(submitted, (E.AUDIT_EVENT_AUTO_REMOVED, REMOVED), (E.AUDIT_EVENT_APPEALED, IN_APPEAL),
                          (E.AUDIT_EVENT_APPEAL_UPHELD, REMOVED))) == REMOVED
    for bad in ([], entries((E.AUDIT_EVENT_AUTO_APPROVED, APPROVED)),  # not from SUBMITTED
                entries(submitted, (E.AUDIT_EVENT_AUTO_APPROVED, REMOVED)),  # the wrong state after
                entries(submitted, (E.AUDIT_EVENT_REVIEW_APPROVED, APPROVED)),  # never sent to review
                entries(submitted, (E.AUDIT_EVENT_AUTO_APPROVED, APPROVED), (E.AUDIT_EVENT_APPEALED, IN_APPEAL)),
                entries(submitted, submitted)):
        with pytest.raises(ValueError):
            replay(bad)
    repeated_seq = [entries(submitted)[0], AuditEntry(1, "i", T0, E.AUDIT_EVENT_AUTO_APPROVED, APPROVED, "x", 0.0, "")]
    with pytest.raises(ValueError, match="seq"):
        replay(repeated_seq)


def test_backoff_doubles_with_jitter_up_to_its_ceiling():
    backoff = Backoff(100, 1_000)
    delays = [backoff.delay_s() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(1.0, 0.1 * 2 ** n)
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.delay_s() <= 0.1


# -- the book ----------------------------------------------------------------------------------------------------------


async def test_submit_and_route_write_each_state_with_its_audit_entry(tmp_path: Path):
    clock = Clock()
    book = await book_on(tmp_path, clock)
    queued: list[str] = []
    book.on_pending = queued.append
    item = await book.submit("low", "alice", "a fine day")
    assert (item.state, item.submitted_at_unix_ms, item.decided_by, item.routed_at_unix_ms) == (PENDING, T0, 0, 0)
    assert events(book, "low") == [(E.AUDIT_EVENT_SUBMITTED, PENDING)] and queued == ["low"]
    assert book.audit_log("low")[0].actor == "alice"
    for item_id, text in (("mid", "hmm"), ("high", "awful"), ("edge", "edge")):
        await book.submit(item_id, "bob", text)
    assert book.pending == 4 and book.count(PENDING) == 4

    clock.now += 40
    routed = await book.route("low", 0.05, "model-1")
    assert (routed.state, routed.decided_by, routed.probability, routed.model_version) == (
        APPROVED, m.DECIDED_BY_CLASSIFIER, 0.05, "model-1")
    assert (routed.routed_at_unix_ms, routed.decided_at_unix_ms) == (T0 + 40, T0 + 40)
    assert events(book, "low") == [(E.AUDIT_EVENT_SUBMITTED, PENDING), (E.AUDIT_EVENT_AUTO_APPROVED, APPROVED)]
    last = book.audit_log("low")[-1]
    assert (last.actor, last.probability, last.at_unix_ms) == ("model-1", 0.05, T0 + 40)
    mid = await book.route("mid", 0.5, "model-1")
    assert (mid.state, mid.decided_by, mid.decided_at_unix_ms, mid.review_enqueued) == (IN_REVIEW, 0, 0, False)
    assert book.unenqueued() == ["mid"]
    assert (await book.route("high", 0.95, "model-1")).state == REMOVED
    assert (await book.route("edge", 0.8, "model-1")).state == REMOVED  # at remove_above: removed
    assert await book.route("high", 0.1, "model-1") is None  # routed already: nothing written
    assert await book.route("nope", 0.1, "model-1") is None
    assert (book.pending, book.count(APPROVED), book.count(REMOVED), book.count(IN_REVIEW)) == (0, 1, 2, 1)
    for item_id in ("low", "mid", "high", "edge"):
        assert replay(book.audit_log(item_id)) == book.get(item_id).state
    seqs = [entry.seq for item_id in ("low", "mid", "high", "edge") for entry in book.audit_log(item_id)]
    assert len(set(seqs)) == len(seqs) == 8
    assert await book.mark_enqueued("mid", IN_REVIEW) and book.get("mid").review_enqueued
    assert book.unenqueued() == [] and not await book.mark_enqueued("mid", IN_REVIEW)
    assert not await book.mark_enqueued("high", IN_REVIEW)  # not in that state: nothing written
    with pytest.raises(NotFound):
        book.get("nope")
    with pytest.raises(NotFound):
        book.audit_log("nope")
    await book.close()

    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        rows = dict(db.execute("SELECT item_id, state FROM items").fetchall())
        assert rows == {"low": APPROVED, "mid": IN_REVIEW, "high": REMOVED, "edge": REMOVED}
        assert db.execute("SELECT review_enqueued FROM items WHERE item_id = 'mid'").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM audit").fetchone() == (8,)


async def test_the_thresholds_are_the_settings(tmp_path: Path):
    book = await book_on(tmp_path, approve_below=0.5, remove_above=0.5)
    for n, p in enumerate((0.0, 0.4999, 0.5, 0.99)):
        await book.submit(f"i{n}", "a", "t")
        await book.route(f"i{n}", p, "v")
    assert [book.get(f"i{n}").state for n in range(4)] == [APPROVED, APPROVED, REMOVED, REMOVED]
    assert book.count(IN_REVIEW) == 0
    await book.close()


async def test_submit_is_idempotent_and_refuses_another_item_under_the_same_id(tmp_path: Path):
    clock = Clock()
    book = await book_on(tmp_path, clock)
    first = await book.submit("i1", "alice", "hello")
    clock.now += 10
    again = await book.submit("i1", "alice", "hello")
    assert again is first and again.submitted_at_unix_ms == T0 and len(book.audit_log("i1")) == 1
    with pytest.raises(AlreadyExists):
        await book.submit("i1", "alice", "hello!")
    with pytest.raises(AlreadyExists):
        await book.submit("i1", "bob", "hello")
    # concurrent submissions of one new ID: one row, one entry, the same item for all
    answers = await asyncio.gather(*(book.submit("i2", "alice", "same") for _ in range(10)))
    assert all(answer is answers[0] for answer in answers) and len(book.audit_log("i2")) == 1
    outcomes = await asyncio.gather(book.submit("i3", "alice", "x"), book.submit("i3", "alice", "y"),
                                    return_exceptions=True)
    assert outcomes[0].text == "x" and isinstance(outcomes[1], AlreadyExists)
    # a routed item is returned as it is now
    await book.route("i1", 0.9, "v")
    assert (await book.submit("i1", "alice", "hello")).state == REMOVED
    await book.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (3,)
        assert db.execute("SELECT count(*) FROM audit WHERE event = ?", (E.AUDIT_EVENT_SUBMITTED,)).fetchone() == (3,)


async def test_the_backlog_is_bounded_by_max_pending(tmp_path: Path):
    book = await book_on(tmp_path, max_pending=2)
    rejected = metrics.SUBMIT_REJECTED.labels("backlog")
    before = rejected._value.get()
    await book.submit("a", "u", "t")
    await book.submit("b", "u", "t")
    with pytest.raises(ResourceExhausted):
        await book.submit("c", "u", "t")
    assert rejected._value.get() == before + 1
    assert book.find("c") is None and (await book.submit("a", "u", "t")).item_id == "a"  # a retry still answers
    # concurrent submissions count while they are being written
    outcomes = await asyncio.gather(*(book.submit(f"x{n}", "u", "t") for n in range(3)), return_exceptions=True)
    assert all(isinstance(o, ResourceExhausted) for o in outcomes)
    await book.route("a", 0.1, "v")
    assert (await book.submit("c", "u", "t")).state == PENDING
    await book.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert sorted(r for (r,) in db.execute("SELECT item_id FROM items")) == ["a", "b", "c"]


async def _removed(book: ItemBook, item_id: str, author: str = "alice") -> None:
    await book.submit(item_id, author, f"text of {item_id}")
    await book.route(item_id, 0.99, "v")


async def test_appeal_rules(tmp_path: Path):
    clock = Clock()
    book = await book_on(tmp_path, clock)
    with pytest.raises(NotFound):
        await book.appeal("nope", "alice", "")
    await _removed(book, "r1")
    assert await reason_of(book.appeal("r1", "mallory", "mine"), PermissionDenied) == contract.NOT_AUTHOR
    await book.submit("ok", "alice", "fine")
    assert await reason_of(book.appeal("ok", "alice", "")) == contract.NOT_REMOVED  # PENDING
    await book.route("ok", 0.01, "v")
    assert await reason_of(book.appeal("ok", "alice", "")) == contract.NOT_REMOVED  # APPROVED
    await book.submit("rev", "alice", "hmm")
    await book.route("rev", 0.5, "v")
    assert await reason_of(book.appeal("rev", "alice", "")) == contract.NOT_REMOVED  # IN_REVIEW

    clock.now += 1_000
    appealed = await book.appeal("r1", "alice", "satire")
    assert (appealed.state, appealed.appealed, appealed.appeal_reason, appealed.appealed_at_unix_ms) == (
        IN_APPEAL, True, "satire", T0 + 1_000)
    assert appealed.decided_by == m.DECIDED_BY_CLASSIFIER and appealed.review_enqueued is False
    entry = book.audit_log("r1")[-1]
    assert (entry.event, entry.state_after, entry.actor, entry.note) == (
        E.AUDIT_EVENT_APPEALED, IN_APPEAL, "alice", "satire")
    assert sorted(book.unenqueued()) == ["r1", "rev"]
    assert await reason_of(book.appeal("r1", "alice", "again")) == contract.ALREADY_APPEALED
    assert await reason_of(book.appeal("r1", "mallory", ""), PermissionDenied) == contract.NOT_AUTHOR
    # decided on appeal (upheld: REMOVED again): still one appeal per item
    await book.apply_verdicts([Verdict(1, "r1", APPEAL, REMOVE, "senior", "still bad")])
    assert book.get("r1").state == REMOVED
    assert await reason_of(book.appeal("r1", "alice", "")) == contract.ALREADY_APPEALED
    # the file refuses a second appeal by itself too (REMOVED, but appealed)
    with pytest.raises(StaleState):
        await book._store.change(Change("r1", REMOVED, {"state": IN_APPEAL}, T0, E.AUDIT_EVENT_APPEALED, "alice",
                                        not_appealed=True), lambda entry: None)

    # two concurrent appeals of one item: one recorded, the other already_appealed
    await _removed(book, "r2")
    outcomes = await asyncio.gather(book.appeal("r2", "alice", "a"), book.appeal("r2", "alice", "b"),
                                    return_exceptions=True)
    assert sum(1 for o in outcomes if not isinstance(o, Exception)) == 1
    refused = next(o for o in outcomes if isinstance(o, Exception))
    assert isinstance(refused, FailedPrecondition) and str(refused).startswith(contract.ALREADY_APPEALED)
    assert [e.event for e in book.audit_log("r2")].count(E.AUDIT_EVENT_APPEALED) == 1
    assert replay(book.audit_log("r2")) == IN_APPEAL
    await book.close()


async def test_verdicts_decide_their_items_once(tmp_path: Path):
    clock = Clock()
    book = await book_on(tmp_path, clock)
    for item_id in ("a", "b", "c"):
        await book.submit(item_id, "alice", item_id)
        await book.route(item_id, 0.5, "v")
    await _removed(book, "d")
    await book.appeal("d", "alice", "why")
    await _removed(book, "e")
    await book.appeal("e", "alice", "")
    clock.now += 5_000
    applied = await book.apply_verdicts([
        Verdict(1, "a", FIRST, APPROVE, "rev-1", "fine"), Verdict(2, "b", FIRST, REMOVE, "rev-2", ""),
        Verdict(3, "d", APPEAL, APPROVE, "senior", "satire"), Verdict(4, "e", APPEAL, REMOVE, "senior", ""),
        Verdict(5, "ghost", FIRST, APPROVE, "rev-1", ""),  # names no item: only the cursor moves
        Verdict(6, "c", APPEAL, APPROVE, "rev-1", ""),  # the wrong kind for an IN_REVIEW item: skipped
    ])
    assert applied == 4 and book.verdict_cursor == 6
    a, b, d, e = (book.get(i) for i in "abde")
    assert (a.state, a.decided_by, a.decided_at_unix_ms) == (APPROVED, m.DECIDED_BY_REVIEWER, T0 + 5_000)
    assert (b.state, b.decided_by) == (REMOVED, m.DECIDED_BY_REVIEWER)
    assert (d.state, d.decided_by) == (APPROVED, m.DECIDED_BY_APPEAL)
    assert (e.state, e.decided_by) == (REMOVED, m.DECIDED_BY_APPEAL)
    assert book.get("c").state == IN_REVIEW
    assert events(book, "a")[-1] == (E.AUDIT_EVENT_REVIEW_APPROVED, APPROVED)
    assert events(book, "b")[-1] == (E.AUDIT_EVENT_REVIEW_REMOVED, REMOVED)
    assert events(book, "d")[-1] == (E.AUDIT_EVENT_APPEAL_REVERSED, APPROVED)
    assert events(book, "e")[-1] == (E.AUDIT_EVENT_APPEAL_UPHELD, REMOVED)
    assert (book.audit_log("a")[-1].actor, book.audit_log("a")[-1].note) == ("rev-1", "fine")
    entries = sum(len(book.audit_log(i)) for i in "abcde")
    # the same verdicts pulled again (a restart before the acknowledgement): nothing changes but the cursor
    assert await book.apply_verdicts([Verdict(1, "a", FIRST, REMOVE, "rev-9", ""),
                                      Verdict(7, "b", FIRST, APPROVE, "rev-9", "")]) == 0
    assert book.verdict_cursor == 7 and sum(len(book.audit_log(i)) for i in "abcde") == entries
    assert (book.get("a").state, book.get("b").state) == (APPROVED, REMOVED)
    # a duplicate inside one batch is applied once
    assert await book.apply_verdicts([Verdict(8, "c", FIRST, REMOVE, "r", ""),
                                      Verdict(9, "c", FIRST, APPROVE, "r", "")]) == 1
    assert book.get("c").state == REMOVED and events(book, "c")[-1] == (E.AUDIT_EVENT_REVIEW_REMOVED, REMOVED)
    for item_id in "abcde":
        assert replay(book.audit_log(item_id)) == book.get(item_id).state
    await book.close()
    again = await book_on(tmp_path, clock)
    assert again.verdict_cursor == 9 and again.get("d").state == APPROVED
    await again.close()


async def test_await_decision_waits_until_the_item_is_routed(tmp_path: Path):
    book = await book_on(tmp_path)
    with pytest.raises(NotFound):
        await book.await_decision("nope", 10)
    await book.submit("i1", "a", "t")
    assert (await book.await_decision("i1", 20)).state == PENDING  # timed out
    waiters = [asyncio.create_task(book.await_decision("i1", 10_000)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    await book.route("i1", 0.5, "v")
    answers = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert all(a.state == IN_REVIEW for a in answers)
    assert (await book.await_decision("i1", 1)).state == IN_REVIEW  # not pending: at once
    await book.close()


async def test_a_failed_write_changes_nothing(tmp_path: Path):
    book = await book_on(tmp_path)
    await book.submit("i1", "a", "t")
    await book._store.close()  # the file is gone from under the book: every write fails
    with pytest.raises(Unavailable):
        await book.submit("i2", "a", "t")
    with pytest.raises(Unavailable):
        await book.route("i1", 0.1, "v")
    with pytest.raises(Unavailable):
        await book.apply_verdicts([Verdict(3, "i1", FIRST, APPROVE, "r", "")])
    assert book.find("i2") is None and book.get("i1").state == PENDING and book.verdict_cursor == 0
    assert len(book.audit_log("i1")) == 1 and book.pending == 1
    again = await book_on(tmp_path)
    assert len(again) == 1 and again.get("i1").state == PENDING
    await again.close()


async def test_restart_from_the_file_queues_pending_items_and_finds_unenqueued_ones(tmp_path: Path):
    clock = Clock()
    book = await book_on(tmp_path, clock)
    for n in range(6):
        clock.now += 1
        await book.submit(f"i{n}", "alice", f"text {n}")
    await book.route("i0", 0.1, "v")  # APPROVED
    await book.route("i1", 0.5, "v")  # IN_REVIEW, accepted by review
    await book.mark_enqueued("i1", IN_REVIEW)
    await book.route("i2", 0.6, "v")  # IN_REVIEW, not accepted yet
    await book.route("i3", 0.9, "v")
    await book.appeal("i3", "alice", "no")  # IN_APPEAL, not accepted yet
    await book.apply_verdicts([Verdict(11, "i1", FIRST, REMOVE, "r", "")])
    logs = {f"i{n}": book.audit_log(f"i{n}") for n in range(6)}
    await book.close()

    queued: list[str] = []
    again = ItemBook(ItemStore(tmp_path / FILE_NAME), PipelineSettings(), clock=clock)
    again.on_pending = queued.append
    assert await again.start() == 6
    assert queued == ["i4", "i5"]  # the PENDING ones, oldest first
    assert sorted(again.unenqueued()) == ["i2", "i3"] and again.verdict_cursor == 11
    assert {f"i{n}": again.audit_log(f"i{n}") for n in range(6)} == logs
    assert [again.get(f"i{n}").state for n in range(6)] == [APPROVED, REMOVED, IN_REVIEW, IN_APPEAL, PENDING, PENDING]
    i3 = again.get("i3")
    assert (i3.appealed, i3.appeal_reason, i3.decided_by) == (True, "no", m.DECIDED_BY_CLASSIFIER)
    assert (again.pending, again.count(PENDING), again.count(IN_REVIEW), again.count(APPROVED)) == (2, 2, 1, 1)
    assert metrics.PENDING._value.get() == 2 and metrics.UNENQUEUED._value.get() == 2
    await again.close()


# -- the stages --------------------------------------------------------------------------------------------------------


async def test_classifier_failures_are_retried_and_the_item_never_dropped(tmp_path: Path):
    settings = {"retry_backoff_ms": 1, "max_retry_backoff_ms": 5, "classify_concurrency": 2}
    book = await book_on(tmp_path, **settings)
    classifier = FakeClassifier({"nice": 0.01, "rude": 0.99, "unsure": 0.5})
    review = FakeReview()
    outbox = ReviewOutbox(book, review, book.settings)
    pool = ClassifyPool(book, classifier, outbox, book.settings)
    failures = metrics.CLASSIFY_FAILURES._value.get()
    classifier.failures = 7
    for item_id in ("nice", "rude", "unsure"):
        await book.submit(item_id, "alice", item_id)
    assert pool.queued == 3 and book.pending == 3
    pool.start()
    await eventually(lambda: book.pending == 0, "every pending item routed")
    assert metrics.CLASSIFY_FAILURES._value.get() == failures + 7 and len(classifier.calls) == 10
    assert [book.get(i).state for i in ("nice", "rude", "unsure")] == [APPROVED, REMOVED, IN_REVIEW]
    await eventually(lambda: book.get("unsure").review_enqueued, "the unsure item sent to review")  # sent to review by the worker at once
    assert review.tasks == {("unsure", FIRST): (0.5, "")} and book.unenqueued() == []
    await pool.stop()
    await outbox.close()
    await book.close()


async def test_the_outbox_resends_until_the_review_service_accepts(tmp_path: Path):
    book = await book_on(tmp_path, resend_interval_ms=10)
    review = FakeReview()
    review.down = True
    outbox = ReviewOutbox(book, review, book.settings)
    await book.submit("u", "alice", "unsure")
    await book.route("u", 0.5, "v")
    await _removed(book, "r")
    await book.appeal("r", "alice", "context")
    assert await outbox.send("u") is False and await outbox.send("r") is False
    resender = asyncio.create_task(outbox.run())
    await eventually(lambda: review.enqueues >= 6, "Enqueue tried again while review is down")  # tried again and again while down
    assert sorted(book.unenqueued()) == ["r", "u"] and review.tasks == {}
    review.down = False
    await eventually(lambda: not book.unenqueued(), "every item accepted by review")
    assert review.tasks == {("u", FIRST): (0.5, ""), ("r", APPEAL): (0.99, "context")}
    assert book.get("u").review_enqueued and book.get("r").review_enqueued
    sent = review.enqueues
    await asyncio.sleep(0.05)
    assert review.enqueues == sent  # nothing more to send
    resender.cancel()
    await outbox.close()
    await book.close()


async def test_the_verdict_consumer_applies_and_acknowledges(tmp_path: Path):
    book = await book_on(tmp_path, verdict_wait_ms=0, retry_backoff_ms=1, max_retry_backoff_ms=5)
    review = FakeReview()
    for item_id in ("a", "b"):
        await book.submit(item_id, "alice", item_id)
        await book.route(item_id, 0.5, "v")
        await review.enqueue(item_id, item_id, 0.5, FIRST, "", 1)
    consumer = VerdictConsumer(book, review, book.settings)
    review.complete("a", FIRST, APPROVE)
    assert await consumer.poll_once() == 1 and book.get("a").state == APPROVED and book.verdict_cursor == 1
    assert review.acknowledged == 0 and len(review.outbox) == 1  # acknowledged by the next pull
    review.down = True
    with pytest.raises(Unavailable):
        await consumer.poll_once()
    review.down = False
    running = asyncio.create_task(consumer.run())
    review.complete("b", FIRST, REMOVE, note="slur")
    await eventually(lambda: book.get("b").state == REMOVED and review.acknowledged == 2 and not review.outbox,
                     "both verdicts applied and acknowledged")
    assert book.audit_log("b")[-1].note == "slur" and book.verdict_cursor == 2
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await book.close()

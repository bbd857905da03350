"""moderation-pipeline through real gRPC, served in-process by the runtime, with a fake classifier and a fake review
service (test doubles registered under the real topology names, so the pipeline calls them over its runtime channels):
SubmitItem, AwaitDecision, GetItem and ListAuditLog through the three routes; a verdict from the review service's
outbox decides an item; an appeal goes to the review service with its reason and its verdict reverses the removal;
every status code of protos/casemesh/moderation/v1/pipeline.proto (INVALID_ARGUMENT naming each field, NOT_FOUND,
ALREADY_EXISTS, PERMISSION_DENIED not_author, FAILED_PRECONDITION not_removed and already_appealed, RESOURCE_EXHAUSTED
while the classifier is down and the backlog is full), AwaitDecision answering PENDING before the caller's deadline,
and nothing lost while the classifier is down.

The fake classifier scores a text by its first word ("0.95 you idiot" → 0.95); the fake review service queues what
Enqueue sends and hands out the verdicts the test puts in its outbox (PullVerdicts long-polls, and acknowledges as the
real one does).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3

import grpc
import pytest

from casemesh.moderation.v1 import (
    classifier_pb2,
    classifier_pb2_grpc,
    moderation_pb2 as m,
    pipeline_pb2,
    pipeline_pb2_grpc,
    review_pb2,
    review_pb2_grpc,
)
from casemesh.services.catalog import SERVICES
from casemesh.services.moderation import contract
from casemesh.services.moderation.pipeline.service import DEFINITION, NAME
from casemesh.services.moderation.pipeline.store import FILE_NAME
from casemesh.services.runtime.component import StatelessComponent, ServiceDefinition

from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
CLASSIFIER, REVIEW = "moderation-classifier", "moderation-review"
MODERATION = [CLASSIFIER, REVIEW, NAME]
FAST = {"retry_backoff_ms": 10, "max_retry_backoff_ms": 200, "resend_interval_ms": 50, "verdict_wait_ms": 200}


class FakeClassifier(classifier_pb2_grpc.ClassifierServiceServicer):
    """Scores a text by its first word; answers UNAVAILABLE while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def Classify(self, request, context):
        self.calls += 1
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the fake classifier is down")
        return classifier_pb2.ClassifyResponse(violation_probability=float(request.text.split()[0]),
                                               model_version="fake-1")


class FakeReview(review_pb2_grpc.ReviewServiceServicer):
    """Enqueue records tasks (idempotent per item and kind); :meth:`complete` puts a verdict in the outbox, which
    PullVerdicts long-polls and acknowledges."""

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, int], review_pb2.EnqueueRequest] = {}
        self.outbox: list[review_pb2.ReviewVerdict] = []
        self.acknowledged = 0
        self._seq = 0
        self._new = asyncio.Event()

    async def Enqueue(self, request, context):
        self.tasks.setdefault((request.item_id, request.kind), request)
        return review_pb2.EnqueueResponse(task_id=f"t-{request.item_id}-{request.kind}", due_at_unix_ms=1)

    def complete(self, item_id: str, kind: int, verdict: int, reviewer: str = "rev-1", note: str = "") -> None:
        assert (item_id, kind) in self.tasks, self.tasks
        self._seq += 1
        self.outbox.append(review_pb2.ReviewVerdict(seq=self._seq, item_id=item_id, kind=kind, verdict=verdict,
                                                    reviewer_id=reviewer, note=note, task_id="t"))
        self._new.set()

    async def PullVerdicts(self, request, context):
        self.acknowledged = max(self.acknowledged, request.after_seq)
        self.outbox = [v for v in self.outbox if v.seq > request.after_seq]
        if not self.outbox and request.wait_ms:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), request.wait_ms / 1_000)
            except TimeoutError:
                pass
        return review_pb2.PullVerdictsResponse(verdicts=self.outbox[:request.max_verdicts])


def fakes() -> tuple[FakeClassifier, FakeReview, list[ServiceDefinition]]:
    classifier, review = FakeClassifier(), FakeReview()

    async def build_classifier(context):
        return StatelessComponent(classifier, classifier_pb2_grpc.add_ClassifierServiceServicer_to_server)

    async def build_review(context):
        return StatelessComponent(review, review_pb2_grpc.add_ReviewServiceServicer_to_server)

    return classifier, review, [
        ServiceDefinition(name=CLASSIFIER, grpc_services=("casemesh.moderation.v1.ClassifierService",),
                          dependencies=(), build=build_classifier),
        ServiceDefinition(name=REVIEW, grpc_services=("casemesh.moderation.v1.ReviewService",), dependencies=(),
                          build=build_review)]


async def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def until(check, what: str) -> None:
    """Wait until ``check()`` (or what it returns, awaited) holds; at most 10 s."""
    for _ in range(500):
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_definition():
    assert DEFINITION.name == NAME and DEFINITION.dependencies == (CLASSIFIER, REVIEW)
    assert DEFINITION.optional_dependencies == (CLASSIFIER, REVIEW)
    assert DEFINITION.grpc_services == ("casemesh.moderation.v1.ModerationService",)
    assert DEFINITION.access.public == {"SubmitItem", "GetItem", "AwaitDecision", "AppealDecision", "ListAuditLog"}
    assert not DEFINITION.access.internal
    assert SERVICES[NAME] is DEFINITION


async def test_routes_reviews_appeals_and_status_codes(tmp_path):
    _, review, doubles = fakes()
    topology = loopback_topology(MODERATION, data_dir=tmp_path, settings={NAME: FAST})
    running, stop, task = await start_mesh([*doubles, DEFINITION], topology)
    try:
        api = pipeline_pb2_grpc.ModerationServiceStub(running.anonymous_channel(NAME))

        async def submit(item_id: str, text: str, author: str = "alice") -> m.Item:
            return (await api.SubmitItem(pipeline_pb2.SubmitItemRequest(item_id=item_id, author_id=author, text=text),
                                         timeout=WAIT_S)).item

        async def decided(item_id: str) -> m.Item:
            return (await api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id=item_id, timeout_ms=5_000),
                                            timeout=WAIT_S)).item

        async def get(item_id: str) -> m.Item:
            return (await api.GetItem(pipeline_pb2.GetItemRequest(item_id=item_id), timeout=WAIT_S)).item

        async def audit(item_id: str) -> list[tuple[int, int]]:
            entries = (await api.ListAuditLog(pipeline_pb2.ListAuditLogRequest(item_id=item_id),
                                              timeout=WAIT_S)).entries
            return [(e.event, e.state_after) for e in entries]

        def appeal(item_id: str, author: str = "alice", reason: str = ""):
            return api.AppealDecision(pipeline_pb2.AppealDecisionRequest(item_id=item_id, author_id=author,
                                                                         reason=reason), timeout=WAIT_S)

        stored = await submit("nice", "0.05 what a lovely day")
        assert (stored.state, stored.author_id, stored.text) == (m.ITEM_STATE_PENDING, "alice", "0.05 what a lovely day")
        assert stored.submitted_at_unix_ms > 0
        nice = await decided("nice")
        assert (nice.state, nice.decided_by, nice.violation_probability, nice.model_version) == (
            m.ITEM_STATE_APPROVED, m.DECIDED_BY_CLASSIFIER, 0.05, "fake-1")
        assert nice.routed_at_unix_ms >= nice.submitted_at_unix_ms and nice.decided_at_unix_ms == nice.routed_at_unix_ms
        assert await audit("nice") == [(m.AUDIT_EVENT_SUBMITTED, m.ITEM_STATE_PENDING),
                                       (m.AUDIT_EVENT_AUTO_APPROVED, m.ITEM_STATE_APPROVED)]
        assert (await submit("nice", "0.05 what a lovely day")) == nice  # idempotent: the stored item as it is now
        await submit("rude", "0.8 you idiot", author="bob")
        assert (await decided("rude")).state == m.ITEM_STATE_REMOVED  # at remove_above
        await submit("unsure", "0.5 hmm")
        unsure = await decided("unsure")
        assert (unsure.state, unsure.decided_by, unsure.decided_at_unix_ms) == (m.ITEM_STATE_IN_REVIEW, 0, 0)

        # the review service gets the task, its verdict comes back and decides the item
        await until(lambda: ("unsure", m.REVIEW_KIND_FIRST) in review.tasks, "the Enqueue")
        sent = review.tasks[("unsure", m.REVIEW_KIND_FIRST)]
        assert (sent.text, sent.violation_probability) == ("0.5 hmm", 0.5)
        review.complete("unsure", m.REVIEW_KIND_FIRST, m.VERDICT_REMOVE, note="insulting")
        await until(lambda: _state_is(get, "unsure", m.ITEM_STATE_REMOVED), "the verdict")
        assert (await get("unsure")).decided_by == m.DECIDED_BY_REVIEWER
        entries = (await api.ListAuditLog(pipeline_pb2.ListAuditLogRequest(item_id="unsure"), timeout=WAIT_S)).entries
        assert [e.event for e in entries] == [m.AUDIT_EVENT_SUBMITTED, m.AUDIT_EVENT_SENT_TO_REVIEW,
                                              m.AUDIT_EVENT_REVIEW_REMOVED]
        assert [e.actor for e in entries] == ["alice", "fake-1", "rev-1"] and entries[2].note == "insulting"
        assert entries[1].violation_probability == 0.5 and entries[0].seq < entries[1].seq < entries[2].seq
        await until(lambda: review.acknowledged == 1 and not review.outbox, "the acknowledgement")

        # appeals
        code, details = await code_of(appeal("rude", author="alice"))
        assert code == grpc.StatusCode.PERMISSION_DENIED and details.startswith(f"{contract.NOT_AUTHOR}:")
        code, details = await code_of(appeal("nice"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith(f"{contract.NOT_REMOVED}:")
        appealed = (await appeal("unsure", reason="it was a joke")).item
        assert (appealed.state, appealed.appealed, appealed.decided_by) == (
            m.ITEM_STATE_IN_APPEAL, True, m.DECIDED_BY_REVIEWER)
        code, details = await code_of(appeal("unsure"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith(f"{contract.ALREADY_APPEALED}:")
        await until(lambda: ("unsure", m.REVIEW_KIND_APPEAL) in review.tasks, "the appeal task")
        assert review.tasks[("unsure", m.REVIEW_KIND_APPEAL)].appeal_reason == "it was a joke"
        review.complete("unsure", m.REVIEW_KIND_APPEAL, m.VERDICT_APPROVE, reviewer="senior")
        await until(lambda: _state_is(get, "unsure", m.ITEM_STATE_APPROVED), "the appeal's verdict")
        assert (await get("unsure")).decided_by == m.DECIDED_BY_APPEAL
        assert (await audit("unsure"))[-2:] == [(m.AUDIT_EVENT_APPEALED, m.ITEM_STATE_IN_APPEAL),
                                                (m.AUDIT_EVENT_APPEAL_REVERSED, m.ITEM_STATE_APPROVED)]
        code, details = await code_of(appeal("unsure"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith(f"{contract.ALREADY_APPEALED}:")

        # ALREADY_EXISTS and NOT_FOUND
        for author, text in (("alice", "0.05 another text"), ("bob", "0.05 what a lovely day")):
            code, _ = await code_of(api.SubmitItem(pipeline_pb2.SubmitItemRequest(
                item_id="nice", author_id=author, text=text), timeout=WAIT_S))
            assert code == grpc.StatusCode.ALREADY_EXISTS
        for call in (api.GetItem(pipeline_pb2.GetItemRequest(item_id="nope"), timeout=WAIT_S),
                     api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id="nope", timeout_ms=10),
                                       timeout=WAIT_S),
                     api.ListAuditLog(pipeline_pb2.ListAuditLogRequest(item_id="nope"), timeout=WAIT_S),
                     appeal("nope")):
            assert (await code_of(call))[0] == grpc.StatusCode.NOT_FOUND

        # INVALID_ARGUMENT naming the field, nothing stored
        ok = {"item_id": "new", "author_id": "alice", "text": "0.1 fine"}
        for bad, field in (({"item_id": ""}, "item_id"), ({"item_id": "a b"}, "item_id"),
                           ({"author_id": "x" * 65}, "author_id"), ({"text": ""}, "text"),
                           ({"text": "x" * (contract.MAX_TEXT_CHARS + 1)}, "text")):
            code, details = await code_of(api.SubmitItem(pipeline_pb2.SubmitItemRequest(**{**ok, **bad}),
                                                         timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for call, field in (
                (api.GetItem(pipeline_pb2.GetItemRequest(item_id="a/b"), timeout=WAIT_S), "item_id"),
                (api.ListAuditLog(pipeline_pb2.ListAuditLogRequest(), timeout=WAIT_S), "item_id"),
                (api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id="nice"), timeout=WAIT_S), "timeout_ms"),
                (api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id="nice", timeout_ms=10_001),
                                   timeout=WAIT_S), "timeout_ms"),
                (appeal("unsure", author=""), "author_id"),
                (appeal("unsure", reason="r" * (contract.MAX_NOTE_CHARS + 1)), "reason")):
            code, details = await code_of(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        assert (await code_of(api.GetItem(pipeline_pb2.GetItemRequest(item_id="new"), timeout=WAIT_S)))[0] == (
            grpc.StatusCode.NOT_FOUND)
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    with sqlite3.connect(tmp_path / NAME / FILE_NAME) as db:
        assert dict(db.execute("SELECT item_id, state FROM items")) == {
            "nice": m.ITEM_STATE_APPROVED, "rude": m.ITEM_STATE_REMOVED, "unsure": m.ITEM_STATE_APPROVED}
        assert db.execute("SELECT count(*) FROM audit").fetchone() == (2 + 2 + 5,)
        assert db.execute("SELECT last_seq FROM verdict_cursor").fetchone() == (2,)


async def _state_is(get, item_id: str, state: int) -> bool:
    return (await get(item_id)).state == state


async def test_nothing_is_lost_while_the_classifier_is_down(tmp_path):
    classifier, _, doubles = fakes()
    classifier.down = True
    topology = loopback_topology(MODERATION, data_dir=tmp_path, settings={NAME: {**FAST, "max_pending": 3}})
    running, stop, task = await start_mesh([*doubles, DEFINITION], topology)
    try:
        api = pipeline_pb2_grpc.ModerationServiceStub(running.anonymous_channel(NAME))
        for n in range(3):
            await api.SubmitItem(pipeline_pb2.SubmitItemRequest(item_id=f"i{n}", author_id="a", text=f"0.0{n} t"),
                                 timeout=WAIT_S)
        code, details = await code_of(api.SubmitItem(pipeline_pb2.SubmitItemRequest(
            item_id="i3", author_id="a", text="0.1 t"), timeout=WAIT_S))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_pending" in details
        waited = (await api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id="i0", timeout_ms=300),
                                          timeout=WAIT_S)).item
        assert waited.state == m.ITEM_STATE_PENDING and waited.routed_at_unix_ms == 0
        # a long poll answers before the caller's deadline, whatever timeout_ms says
        waited = (await api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id="i1", timeout_ms=10_000),
                                          timeout=1.0)).item
        assert waited.state == m.ITEM_STATE_PENDING
        await until(lambda: classifier.calls >= 6, "Classify tried again")
        classifier.down = False
        for n in range(3):
            item = (await api.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id=f"i{n}", timeout_ms=10_000),
                                            timeout=WAIT_S + 5)).item
            assert item.state == m.ITEM_STATE_APPROVED, item
        assert (await api.SubmitItem(pipeline_pb2.SubmitItemRequest(item_id="i3", author_id="a", text="0.1 t"),
                                     timeout=WAIT_S)).item.item_id == "i3"
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

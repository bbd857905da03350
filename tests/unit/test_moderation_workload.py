"""The moderation workload without a mesh: the plan (no call), the post journey against a fake ModerationService
(time_to_decision's codes for auto-decided, IN_REVIEW and still-PENDING items and failed calls; auto_decision_correct
against the labels; the appeal's probabilities), the review journey against a fake ReviewService (review_claim,
review_wait OK and OVERDUE, appeal_wait, re-claims, walking away, verdicts by the label), the audit check
(item_accounted OK, LOST, INCONSISTENT for each way a log or item can be wrong, an item that moves while it is read,
STUCK), a whole run against the fakes, and the tally."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
import pytest

from casemesh.harness.workloads.moderation import MEASURES, WORKLOAD, connect, disconnect
from casemesh.harness.workloads.moderation.journeys import (
    APPEAL_REASON,
    APPEAL_WAIT,
    AUTO_DECISION_CORRECT,
    EMPTY,
    FALSE_APPROVE,
    FALSE_REMOVE,
    IN_REVIEW,
    INCONSISTENT,
    ITEM_ACCOUNTED,
    LOST,
    OVERDUE,
    REVIEW_CLAIM,
    REVIEW_WAIT,
    STILL_PENDING,
    STUCK,
    TIME_TO_DECISION,
    UNEXPECTED_STATE,
    AuditCheckParams,
    PostParams,
    ReviewParams,
    audit_check,
    log_problem,
    post,
    review,
    route_code,
    think_s,
)
from casemesh.harness.workloads.moderation.live import MAX_REMEMBERED, Moderation
from casemesh.harness.workloads.moderation.seeding import SeedParams, State, plan, seed
from casemesh.moderation.v1 import moderation_pb2 as pb, pipeline_pb2, review_pb2
from casemesh.services.moderation.contract import is_id
from casemesh.services.moderation.corpus import LabelledItem

BENIGN = LabelledItem("a lovely day at the park with friends", False, "positive")
VIOLATING = LabelledItem("you are a worthless idiot", True, "harassment")
UNSURE = LabelledItem("this is terrible and you know it", False, "complaint")
ITEMS = [BENIGN, VIOLATING, UNSURE]


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Clock:
    """A fake perf_counter (and, times 1,000, the services' Unix milliseconds) that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return round(self.now * 1_000)


class FakeMesh:
    """ModerationService and ReviewService in memory, as the protos say. AwaitDecision routes a pending item by
    ``probability[text]`` (approve below 0.2, remove at 0.8 or more, review in between) unless ``hold`` keeps it
    PENDING; reviews go to an earliest-due-first queue (SLA ``sla_ms``, appeals twice it); CompleteTask applies the
    verdict at once. ``fail`` holds codes raised by the next calls of a method."""

    def __init__(self, clock: Clock, probability: dict[str, float] | None = None) -> None:
        self.clock = clock
        self.probability = probability or {BENIGN.text: 0.05, VIOLATING.text: 0.95, UNSURE.text: 0.5}
        self.items: dict[str, pb.Item] = {}
        self.audit: dict[str, list[pb.AuditEntry]] = {}
        self.seq = 0
        self.tasks: dict[str, review_pb2.ReviewTask] = {}
        self.open: list[str] = []
        self.completed: list[review_pb2.CompleteTaskRequest] = []
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.hold = False
        self.sla_ms = 15_000

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    async def handle(self, service: str, method: str, request: Any) -> Any:
        review = {"ClaimTask", "CompleteTask"}
        assert service == ("moderation-review" if method in review else "moderation-pipeline"), (service, method)
        self.calls.append((method, request))
        await asyncio.sleep(0)
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        return getattr(self, f"_{method.lower()}")(request)

    def _write(self, item: pb.Item, event: int, state: int, actor: str = "", decided_by: int | None = None) -> None:
        self.seq += 1
        item.state = state
        if decided_by is not None:
            item.decided_by = decided_by
        self.audit[item.item_id].append(pb.AuditEntry(seq=self.seq, at_unix_ms=self.clock.wall_ms(),
                                                      item_id=item.item_id, event=event, state_after=state,
                                                      actor=actor))

    def _enqueue(self, item: pb.Item, kind: int) -> None:
        task_id = f"t{len(self.tasks)}"
        now = self.clock.wall_ms()
        sla = self.sla_ms * (2 if kind == pb.REVIEW_KIND_APPEAL else 1)
        self.tasks[task_id] = review_pb2.ReviewTask(task_id=task_id, item_id=item.item_id, text=item.text,
                                                    violation_probability=item.violation_probability, kind=kind,
                                                    enqueued_at_unix_ms=now, due_at_unix_ms=now + sla)
        self.open.append(task_id)

    def route(self, item: pb.Item) -> None:
        p = self.probability.get(item.text, 0.1)
        item.violation_probability, item.model_version = p, "m1"
        item.routed_at_unix_ms = self.clock.wall_ms()
        if p < 0.2:
            self._write(item, pb.AUDIT_EVENT_AUTO_APPROVED, pb.ITEM_STATE_APPROVED, "m1", pb.DECIDED_BY_CLASSIFIER)
        elif p >= 0.8:
            self._write(item, pb.AUDIT_EVENT_AUTO_REMOVED, pb.ITEM_STATE_REMOVED, "m1", pb.DECIDED_BY_CLASSIFIER)
        else:
            self._write(item, pb.AUDIT_EVENT_SENT_TO_REVIEW, pb.ITEM_STATE_IN_REVIEW, "m1")
            self._enqueue(item, pb.REVIEW_KIND_FIRST)

    def _found(self, item_id: str) -> pb.Item:
        if item_id not in self.items:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "item_id")
        return self.items[item_id]

    def _copy(self, item: pb.Item) -> pb.Item:
        copy = pb.Item()
        copy.CopyFrom(item)
        return copy

    def _submititem(self, request: pipeline_pb2.SubmitItemRequest) -> pipeline_pb2.SubmitItemResponse:
        assert is_id(request.item_id) and is_id(request.author_id) and request.text
        item = pb.Item(item_id=request.item_id, author_id=request.author_id, text=request.text,
                       submitted_at_unix_ms=self.clock.wall_ms())
        self.items[item.item_id], self.audit[item.item_id] = item, []
        self._write(item, pb.AUDIT_EVENT_SUBMITTED, pb.ITEM_STATE_PENDING, request.author_id)
        return pipeline_pb2.SubmitItemResponse(item=self._copy(item))

    def _awaitdecision(self, request: pipeline_pb2.AwaitDecisionRequest) -> pipeline_pb2.AwaitDecisionResponse:
        assert 1 <= request.timeout_ms <= 10_000
        item = self._found(request.item_id)
        if item.state == pb.ITEM_STATE_PENDING and not self.hold:
            self.route(item)
        return pipeline_pb2.AwaitDecisionResponse(item=self._copy(item))

    def _appealdecision(self, request: pipeline_pb2.AppealDecisionRequest) -> pipeline_pb2.AppealDecisionResponse:
        item = self._found(request.item_id)
        if request.author_id != item.author_id:
            raise rpc_error(grpc.StatusCode.PERMISSION_DENIED, "not_author: ...")
        if item.state != pb.ITEM_STATE_REMOVED or item.appealed:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not_removed: ...")
        item.appealed = True
        self._write(item, pb.AUDIT_EVENT_APPEALED, pb.ITEM_STATE_IN_APPEAL, request.author_id)
        self._enqueue(item, pb.REVIEW_KIND_APPEAL)
        return pipeline_pb2.AppealDecisionResponse(item=self._copy(item))

    def _getitem(self, request: pipeline_pb2.GetItemRequest) -> pipeline_pb2.GetItemResponse:
        return pipeline_pb2.GetItemResponse(item=self._copy(self._found(request.item_id)))

    def _listauditlog(self, request: pipeline_pb2.ListAuditLogRequest) -> pipeline_pb2.ListAuditLogResponse:
        self._found(request.item_id)
        return pipeline_pb2.ListAuditLogResponse(entries=self.audit[request.item_id])

    def _claimtask(self, request: review_pb2.ClaimTaskRequest) -> review_pb2.ClaimTaskResponse:
        assert is_id(request.reviewer_id) and request.lease_ms >= 1_000
        if not self.open:
            return review_pb2.ClaimTaskResponse()
        self.open.sort(key=lambda t: self.tasks[t].due_at_unix_ms)
        task = self.tasks[self.open.pop(0)]
        task.claims += 1
        task.lease_token = f"lease-{task.task_id}-{task.claims}"
        task.lease_expires_at_unix_ms = self.clock.wall_ms() + request.lease_ms
        return review_pb2.ClaimTaskResponse(task=task)

    def _completetask(self, request: review_pb2.CompleteTaskRequest) -> review_pb2.CompleteTaskResponse:
        task = self.tasks[request.task_id]
        assert request.lease_token == task.lease_token and request.verdict in (pb.VERDICT_APPROVE, pb.VERDICT_REMOVE)
        self.completed.append(request)
        item = self.items[task.item_id]
        approve = request.verdict == pb.VERDICT_APPROVE
        if task.kind == pb.REVIEW_KIND_FIRST:
            self._write(item, pb.AUDIT_EVENT_REVIEW_APPROVED if approve else pb.AUDIT_EVENT_REVIEW_REMOVED,
                        pb.ITEM_STATE_APPROVED if approve else pb.ITEM_STATE_REMOVED, request.reviewer_id,
                        pb.DECIDED_BY_REVIEWER)
        else:
            self._write(item, pb.AUDIT_EVENT_APPEAL_REVERSED if approve else pb.AUDIT_EVENT_APPEAL_UPHELD,
                        pb.ITEM_STATE_APPROVED if approve else pb.ITEM_STATE_REMOVED, request.reviewer_id,
                        pb.DECIDED_BY_APPEAL)
        return review_pb2.CompleteTaskResponse(verdict_seq=len(self.completed))


class FakeCaller:
    """A journey's Caller over a :class:`FakeMesh`: calls and measures recorded; the journey's intended start is the
    clock's time when the caller is made (or ``intended_at``)."""

    def __init__(self, fake: FakeMesh, intended_at: float | None = None) -> None:
        self.fake = fake
        self.intended_at = fake.clock.now if intended_at is None else intended_at
        self.observed: list[tuple[str, float, str]] = []

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return await self.fake.handle(service, method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]

    def values(self, name: str) -> list[float]:
        return [s for n, s, _ in self.observed if n == name]


class SlowCaller(FakeCaller):
    """Moves the clock by ``step`` seconds on every call."""

    def __init__(self, fake: FakeMesh, step: float) -> None:
        super().__init__(fake)
        self.step = step

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        self.fake.clock.now += self.step
        return await super().__call__(service, method, request)


def _state(authors: int = 5, reviewers: int = 3) -> State:
    return State(run="0badcafe", held_out_items=3, authors=tuple(f"mo0badcafe-a{i}" for i in range(authors)),
                 reviewers=tuple(f"mo0badcafe-r{i}" for i in range(reviewers)))


def _mesh(items: list[LabelledItem] | None = None) -> tuple[FakeMesh, Moderation, Clock]:
    clock = Clock()
    fake = FakeMesh(clock)
    mod = Moderation(_state(), items=items or ITEMS, clock=clock, wall_ms=clock.wall_ms)
    return fake, mod, clock


def _only(mod: Moderation, item: LabelledItem) -> Moderation:
    mod.items = [item]
    return mod


NO_THINK = ReviewParams(think_ms=0, walk_away_p=0.0, reviewer_accuracy=1.0)


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_plan_names_the_run_s_authors_and_reviewers():
    state = plan(SeedParams(authors=300, reviewers=7, held_out_items=50), random.Random(4))
    assert len(state.run) == 8 and int(state.run, 16) >= 0 and state.held_out_items == 50
    assert len(state.authors) == 300 == len(set(state.authors)) and len(state.reviewers) == 7
    assert all(is_id(a) and a.startswith(f"mo{state.run}-a") for a in state.authors)
    assert all(is_id(r) and r.startswith(f"mo{state.run}-r") for r in state.reviewers)
    assert plan(SeedParams(authors=300, reviewers=7, held_out_items=50), random.Random(4)) == state
    assert plan(SeedParams(), random.Random(5)).run != state.run


async def test_seeding_makes_no_call():
    async def refuse(service: str, method: str, request: Any) -> Any:
        raise AssertionError(f"seeding called {service}/{method}")

    state = await seed(refuse, SeedParams(authors=10, reviewers=2), random.Random(1))  # type: ignore[arg-type]
    assert len(state.authors) == 10 and len(state.reviewers) == 2


def test_seed_params_are_checked():
    with pytest.raises(ValueError):
        SeedParams(authors=0)
    with pytest.raises(ValueError):
        SeedParams(held_out_items=0)
    with pytest.raises(ValueError):
        SeedParams(bogus=1)
    with pytest.raises(ValueError):
        PostParams(await_ms=10_001)
    with pytest.raises(ValueError):
        ReviewParams(lease_ms=999)


# post -----------------------------------------------------------------------------------------------------------------

async def test_an_auto_approved_post_is_ok_and_timed_from_the_intended_start():
    fake, mod, clock = _mesh()
    caller = SlowCaller(fake, 0.05)
    caller.intended_at = clock.now - 0.1  # the arrival was due 100 ms ago
    await post(caller, PostParams(), _only(mod, BENIGN), random.Random(1))
    assert fake.methods() == ["SubmitItem", "AwaitDecision"]
    submit, wait = (r for _, r in fake.calls)
    assert submit.text == BENIGN.text and submit.author_id in mod.state.authors and submit.item_id.startswith(
        "mo0badcafe-")
    assert wait.item_id == submit.item_id and wait.timeout_ms == 5_000
    assert caller.codes(TIME_TO_DECISION) == ["OK"] and caller.values(TIME_TO_DECISION) == pytest.approx([0.2])
    assert caller.codes(AUTO_DECISION_CORRECT) == ["OK"]
    assert [p.item_id for p in mod.posted] == [submit.item_id] and mod.tally.posts == 1


@pytest.mark.parametrize(("item", "p", "code"), [(VIOLATING, 0.1, FALSE_APPROVE), (BENIGN, 0.9, FALSE_REMOVE),
                                                 (VIOLATING, 0.9, "OK"), (BENIGN, 0.1, "OK")])
async def test_each_auto_decision_is_judged_against_the_label(item: LabelledItem, p: float, code: str):
    fake, mod, _ = _mesh()
    fake.probability[item.text] = p
    caller = FakeCaller(fake)
    await post(caller, PostParams(appeal_p_if_wrong=0, appeal_p_if_right=0), _only(mod, item), random.Random(1))
    assert caller.codes(TIME_TO_DECISION) == ["OK"] and caller.codes(AUTO_DECISION_CORRECT) == [code]
    assert sum(mod.tally.wrong.values()) == (code != "OK")


async def test_a_post_sent_to_review_is_in_review_with_its_latency_and_not_judged():
    fake, mod, _ = _mesh()
    caller = SlowCaller(fake, 0.3)
    await post(caller, PostParams(appeal_p_if_wrong=1, appeal_p_if_right=1), _only(mod, UNSURE), random.Random(1))
    assert caller.codes(TIME_TO_DECISION) == [IN_REVIEW] and caller.values(TIME_TO_DECISION) == pytest.approx([0.6])
    assert caller.codes(AUTO_DECISION_CORRECT) == [] and fake.methods() == ["SubmitItem", "AwaitDecision"]
    assert len(fake.open) == 1 and mod.tally.routes[IN_REVIEW] == 1


async def test_a_post_still_pending_when_the_wait_runs_out_is_deadline_exceeded():
    fake, mod, _ = _mesh()
    fake.hold = True
    caller = SlowCaller(fake, 2.5)
    await post(caller, PostParams(), _only(mod, VIOLATING), random.Random(1))
    assert caller.codes(TIME_TO_DECISION) == [STILL_PENDING] == ["DEADLINE_EXCEEDED"]
    assert caller.values(TIME_TO_DECISION) == pytest.approx([5.0]) and caller.codes(AUTO_DECISION_CORRECT) == []
    assert len(mod.posted) == 1  # acknowledged: audited later


def test_route_codes_of_every_answer():
    def item(state: int, by: int = pb.DECIDED_BY_UNSPECIFIED) -> pb.Item:
        return pb.Item(state=state, decided_by=by)

    assert route_code(item(pb.ITEM_STATE_PENDING)) == STILL_PENDING
    assert route_code(item(pb.ITEM_STATE_APPROVED, pb.DECIDED_BY_CLASSIFIER)) == "OK"
    assert route_code(item(pb.ITEM_STATE_REMOVED, pb.DECIDED_BY_CLASSIFIER)) == "OK"
    assert route_code(item(pb.ITEM_STATE_IN_REVIEW)) == IN_REVIEW
    assert route_code(item(pb.ITEM_STATE_APPROVED, pb.DECIDED_BY_REVIEWER)) == IN_REVIEW  # reviewed already
    assert route_code(item(pb.ITEM_STATE_APPROVED)) == UNEXPECTED_STATE  # decided by nobody
    assert route_code(item(pb.ITEM_STATE_IN_APPEAL, pb.DECIDED_BY_CLASSIFIER)) == UNEXPECTED_STATE
    assert route_code(item(pb.ITEM_STATE_UNSPECIFIED)) == UNEXPECTED_STATE


@pytest.mark.parametrize("method", ["SubmitItem", "AwaitDecision"])
async def test_a_failed_call_is_recorded_with_its_code_and_raised(method: str):
    fake, mod, _ = _mesh()
    fake.fail[method] = [grpc.StatusCode.RESOURCE_EXHAUSTED if method == "SubmitItem" else
                         grpc.StatusCode.UNAVAILABLE]
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await post(caller, PostParams(), _only(mod, BENIGN), random.Random(1))
    assert caller.codes(TIME_TO_DECISION) == (["RESOURCE_EXHAUSTED"] if method == "SubmitItem" else ["UNAVAILABLE"])
    assert caller.codes(AUTO_DECISION_CORRECT) == []
    # Only an acknowledged item is audited.
    assert len(mod.posted) == (method == "AwaitDecision")


async def test_a_wrongful_removal_is_appealed_by_its_author():
    fake, mod, _ = _mesh()
    fake.probability[BENIGN.text] = 0.9  # benign, removed: wrong
    caller = FakeCaller(fake)
    await post(caller, PostParams(appeal_p_if_wrong=1.0, appeal_p_if_right=0.0), _only(mod, BENIGN), random.Random(1))
    assert fake.methods() == ["SubmitItem", "AwaitDecision", "AppealDecision"]
    submit, appeal = fake.calls[0][1], fake.calls[2][1]
    assert (appeal.item_id, appeal.author_id, appeal.reason) == (submit.item_id, submit.author_id, APPEAL_REASON)
    assert fake.items[submit.item_id].state == pb.ITEM_STATE_IN_APPEAL and mod.tally.appeals == 1
    # A right removal with appeal_p_if_right 0 is never appealed, and neither is an approval.
    fake, mod, _ = _mesh()
    await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=1.0, appeal_p_if_right=0.0), _only(mod, VIOLATING),
               random.Random(1))
    await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=1.0, appeal_p_if_right=1.0), _only(mod, BENIGN),
               random.Random(1))
    assert "AppealDecision" not in fake.methods()


@pytest.mark.parametrize(("item", "p_removed", "share"), [(BENIGN, 0.9, 0.6), (VIOLATING, 0.9, 0.05)])
async def test_appeals_follow_their_probabilities(item: LabelledItem, p_removed: float, share: float):
    fake, mod, _ = _mesh()
    fake.probability[item.text] = p_removed
    rng = random.Random(11)
    for _ in range(1_000):
        await post(FakeCaller(fake), PostParams(), _only(mod, item), rng)
    appealed = fake.methods().count("AppealDecision") / 1_000
    assert abs(appealed - share) < 0.05, appealed


async def test_authors_post_by_activity_and_items_are_drawn_from_the_split():
    fake, mod, _ = _mesh()
    mod = Moderation(_state(authors=50), items=ITEMS, clock=mod.clock, wall_ms=mod.wall_ms)
    rng = random.Random(3)
    for _ in range(600):
        await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=0, appeal_p_if_right=0), mod, rng)
    submits = [r for m, r in fake.calls if m == "SubmitItem"]
    authors = [r.author_id for r in submits]
    assert authors.count(mod.state.authors[0]) == max(authors.count(a) for a in set(authors))  # Zipf
    assert {r.text for r in submits} == {i.text for i in ITEMS} and len({r.item_id for r in submits}) == 600


# review ---------------------------------------------------------------------------------------------------------------

async def _queued(fake: FakeMesh, mod: Moderation, item: LabelledItem = UNSURE) -> str:
    caller = FakeCaller(fake)
    await post(caller, PostParams(), _only(mod, item), random.Random(1))
    return fake.calls[0][1].item_id


async def test_an_empty_queue_is_an_empty_claim():
    fake, mod, _ = _mesh()
    caller = FakeCaller(fake)
    await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.codes(REVIEW_CLAIM) == [EMPTY] and caller.codes(REVIEW_WAIT) == []
    assert fake.methods() == ["ClaimTask"] and mod.tally.empty_claims == 1


async def test_a_task_claimed_within_its_sla_is_ok_and_gets_the_label_s_verdict():
    fake, mod, clock = _mesh()
    item_id = await _queued(fake, mod)
    clock.now += 4.25
    caller = FakeCaller(fake)
    await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.codes(REVIEW_CLAIM) == ["OK"] and caller.codes(REVIEW_WAIT) == ["OK"]
    assert caller.values(REVIEW_WAIT) == pytest.approx([4.25])
    claim, complete = fake.calls[-2][1], fake.calls[-1][1]
    assert claim.lease_ms == 10_000 and claim.reviewer_id in mod.state.reviewers
    assert complete.reviewer_id == claim.reviewer_id and complete.verdict == pb.VERDICT_APPROVE  # UNSURE is benign
    assert fake.items[item_id].state == pb.ITEM_STATE_APPROVED and mod.tally.verdicts == 1


async def test_a_task_claimed_past_its_sla_is_overdue():
    fake, mod, clock = _mesh()
    await _queued(fake, mod)
    clock.now += 15.001
    caller = FakeCaller(fake)
    await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.codes(REVIEW_WAIT) == [OVERDUE] and caller.values(REVIEW_WAIT) == pytest.approx([15.001])
    assert mod.tally.overdue == 1
    # Exactly at its due time it is on time.
    fake, mod, clock = _mesh()
    await _queued(fake, mod)
    clock.now += 15.0
    caller = FakeCaller(fake)
    await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.codes(REVIEW_WAIT) == ["OK"]


async def test_an_appeal_is_waited_for_as_an_appeal_and_upheld_or_reversed_by_the_label():
    for item, verdict, state in ((BENIGN, pb.VERDICT_APPROVE, pb.ITEM_STATE_APPROVED),
                                 (VIOLATING, pb.VERDICT_REMOVE, pb.ITEM_STATE_REMOVED)):
        fake, mod, clock = _mesh()
        fake.probability[item.text] = 0.9
        await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=1, appeal_p_if_right=1), _only(mod, item),
                   random.Random(1))
        item_id = fake.calls[0][1].item_id
        clock.now += 20
        caller = FakeCaller(fake)
        await review(caller, NO_THINK, mod, random.Random(1))
        # Appeals' SLA is 30 s here: on time, counted in review_wait with the first reviews and in appeal_wait alone.
        assert caller.codes(APPEAL_WAIT) == ["OK"] and caller.codes(REVIEW_WAIT) == ["OK"]
        assert caller.values(APPEAL_WAIT) == pytest.approx([20.0]) == caller.values(REVIEW_WAIT)
        assert fake.completed[-1].verdict == verdict and fake.items[item_id].state == state


async def test_a_reviewer_who_walks_away_sends_no_verdict_and_a_re_claim_is_not_a_second_wait():
    fake, mod, clock = _mesh()
    await _queued(fake, mod)
    caller = FakeCaller(fake)
    await review(caller, ReviewParams(think_ms=0, walk_away_p=1.0), mod, random.Random(1))
    assert fake.methods()[-1] == "ClaimTask" and mod.tally.walked_away == 1 and caller.codes(REVIEW_WAIT) == ["OK"]
    # The lease lapses; the task is back in the queue and claimed again (claims 2): no second review_wait sample.
    fake.open.append(next(iter(fake.tasks)))
    clock.now += 30
    caller = FakeCaller(fake)
    await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.codes(REVIEW_CLAIM) == ["OK"] and caller.codes(REVIEW_WAIT) == [] and mod.tally.reclaims == 1
    assert fake.methods()[-1] == "CompleteTask"


async def test_walking_away_follows_its_probability():
    fake, mod, _ = _mesh()
    rng = random.Random(5)
    for _ in range(2_000):
        fake.items.clear()
        await _queued(fake, mod)
        await review(FakeCaller(fake), ReviewParams(think_ms=0, walk_away_p=0.01), mod, rng)
    assert 5 <= mod.tally.walked_away <= 40 and mod.tally.verdicts == 2_000 - mod.tally.walked_away


async def test_verdicts_follow_the_label_with_the_reviewer_s_accuracy_and_unknown_texts_by_probability():
    fake, mod, _ = _mesh()
    rng = random.Random(9)
    for _ in range(1_000):
        await _queued(fake, mod, UNSURE)
        await review(FakeCaller(fake), ReviewParams(think_ms=0, walk_away_p=0, reviewer_accuracy=0.97), mod, rng)
    wrong = sum(c.verdict == pb.VERDICT_REMOVE for c in fake.completed)  # UNSURE is labelled benign
    assert 10 <= wrong <= 55 and mod.tally.verdicts_wrong == wrong
    # A text not of the split: judged by its probability.
    for p, verdict in ((0.7, pb.VERDICT_REMOVE), (0.3, pb.VERDICT_APPROVE)):
        fake, mod, _ = _mesh()
        stranger = LabelledItem("some text nobody labelled", True, "neutral")
        fake.probability[stranger.text] = p
        await _queued(fake, mod, stranger)
        mod.items = ITEMS
        mod.labels = type(mod.labels)(ITEMS)  # the reviewer's labels do not know it
        await review(FakeCaller(fake), NO_THINK, mod, random.Random(1))
        assert fake.completed[-1].verdict == verdict


def test_think_times_are_lognormal_around_their_median():
    rng = random.Random(2)
    times = sorted(think_s(ReviewParams(think_ms=400, think_sigma=0.5), rng) for _ in range(2_001))
    assert 0.36 < times[1_000] < 0.44 and times[0] > 0 and times[-1] < 5
    assert think_s(ReviewParams(think_ms=0), rng) == 0.0


async def test_a_failed_claim_raises_and_records_no_measure():
    fake, mod, _ = _mesh()
    fake.fail["ClaimTask"] = [grpc.StatusCode.UNAVAILABLE]
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await review(caller, NO_THINK, mod, random.Random(1))
    assert caller.observed == []


# audit_check ----------------------------------------------------------------------------------------------------------

AUDIT = AuditCheckParams()


async def _posted(fake: FakeMesh, mod: Moderation, clock: Clock, item: LabelledItem = BENIGN, age: float = 3) -> str:
    await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=0, appeal_p_if_right=0), _only(mod, item),
               random.Random(1))
    clock.now += age
    return mod.posted[-1].item_id


async def test_nothing_old_enough_is_not_audited():
    fake, mod, clock = _mesh()
    caller = FakeCaller(fake)
    await audit_check(caller, AUDIT, mod, random.Random(1))
    await _posted(fake, mod, clock, age=1.0)
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.observed == [] and fake.methods() == ["SubmitItem", "AwaitDecision"]
    clock.now += 1.5
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.codes(ITEM_ACCOUNTED) == ["OK"]


@pytest.mark.parametrize("item", [BENIGN, VIOLATING, UNSURE])
async def test_an_item_in_any_state_is_accounted_for(item: LabelledItem):
    fake, mod, clock = _mesh()
    await _posted(fake, mod, clock, item)
    caller = FakeCaller(fake)
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.codes(ITEM_ACCOUNTED) == ["OK"] and fake.methods()[-2:] == ["ListAuditLog", "GetItem"]


async def test_an_appealed_and_reviewed_item_is_accounted_for():
    fake, mod, clock = _mesh()
    fake.probability[BENIGN.text] = 0.9
    await post(FakeCaller(fake), PostParams(appeal_p_if_wrong=1), _only(mod, BENIGN), random.Random(1))
    clock.now += 3
    caller = FakeCaller(fake)
    await audit_check(caller, AUDIT, mod, random.Random(1))  # IN_APPEAL
    await review(FakeCaller(fake), NO_THINK, mod, random.Random(1))
    await audit_check(caller, AUDIT, mod, random.Random(1))  # APPROVED, APPEAL_REVERSED
    item_id = mod.posted[-1].item_id
    assert [e.event for e in fake.audit[item_id]] == [pb.AUDIT_EVENT_SUBMITTED, pb.AUDIT_EVENT_AUTO_REMOVED,
                                                      pb.AUDIT_EVENT_APPEALED, pb.AUDIT_EVENT_APPEAL_REVERSED]
    assert caller.codes(ITEM_ACCOUNTED) == ["OK", "OK"]


async def test_an_item_the_pipeline_does_not_know_is_lost(caplog):
    fake, mod, clock = _mesh()
    item_id = await _posted(fake, mod, clock)
    del fake.items[item_id]
    caller = FakeCaller(fake)
    caplog.set_level("WARNING", logger="casemesh.workloads.moderation")
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.codes(ITEM_ACCOUNTED) == [LOST] and f"item {item_id}" in caplog.text and "LOST" in caplog.text
    assert mod.tally.audits[LOST] == 1


async def test_another_failure_of_the_audit_raises_without_a_sample():
    fake, mod, clock = _mesh()
    await _posted(fake, mod, clock)
    fake.fail["GetItem"] = [grpc.StatusCode.UNAVAILABLE]
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.observed == []


def _entry(seq: int, event: int, state: int, item_id: str = "i1") -> pb.AuditEntry:
    return pb.AuditEntry(seq=seq, item_id=item_id, event=event, state_after=state)


GOOD_LOG = [_entry(1, pb.AUDIT_EVENT_SUBMITTED, pb.ITEM_STATE_PENDING),
            _entry(5, pb.AUDIT_EVENT_SENT_TO_REVIEW, pb.ITEM_STATE_IN_REVIEW),
            _entry(9, pb.AUDIT_EVENT_REVIEW_REMOVED, pb.ITEM_STATE_REMOVED),
            _entry(12, pb.AUDIT_EVENT_APPEALED, pb.ITEM_STATE_IN_APPEAL),
            _entry(20, pb.AUDIT_EVENT_APPEAL_UPHELD, pb.ITEM_STATE_REMOVED)]


@pytest.mark.parametrize(("entries", "problem"), [
    (GOOD_LOG, None),
    (GOOD_LOG[:1], None),
    ([], "empty"),
    (GOOD_LOG[1:], "not SUBMITTED"),
    ([GOOD_LOG[0], _entry(1, pb.AUDIT_EVENT_SENT_TO_REVIEW, pb.ITEM_STATE_IN_REVIEW)], "does not follow"),
    ([GOOD_LOG[0], GOOD_LOG[2]], "REVIEW_REMOVED goes from ITEM_STATE_PENDING"),
    ([GOOD_LOG[0], _entry(2, pb.AUDIT_EVENT_AUTO_APPROVED, pb.ITEM_STATE_REMOVED)], "AUTO_APPROVED goes from"),
    ([GOOD_LOG[0], _entry(2, pb.AUDIT_EVENT_AUTO_APPROVED, pb.ITEM_STATE_APPROVED, "i2")], "of item 'i2'"),
    ([GOOD_LOG[0], _entry(2, pb.AUDIT_EVENT_UNSPECIFIED, pb.ITEM_STATE_APPROVED)], "UNSPECIFIED"),
    ([GOOD_LOG[0], GOOD_LOG[0]], "does not follow"),
    ([_entry(i + 1, pb.AUDIT_EVENT_SUBMITTED, pb.ITEM_STATE_PENDING) for i in range(9)], "9 entries"),
])
def test_an_audit_log_replays_only_through_the_pipeline_s_transitions(entries: list, problem: str | None):
    found = log_problem("i1", entries)
    assert (found is None) if problem is None else (found is not None and problem in found), found


class Tampered(FakeCaller):
    """Changes the answers of GetItem or ListAuditLog before the journey sees them."""

    def __init__(self, fake: FakeMesh, method: str, change: Any) -> None:
        super().__init__(fake)
        self.method, self.change = method, change

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        answer = await super().__call__(service, method, request)
        if method == self.method:
            copy = type(answer)()
            copy.CopyFrom(answer)
            self.change(copy)
            return copy
        return answer


def _set(field: str, value: Any) -> Any:
    return lambda answer: setattr(answer.item, field, value)


def _drop_last(answer: pipeline_pb2.ListAuditLogResponse) -> None:
    del answer.entries[-1]


@pytest.mark.parametrize(("method", "change"), [
    ("GetItem", _set("text", "something else")),
    ("GetItem", _set("author_id", "someone-else")),
    ("GetItem", _set("decided_by", pb.DECIDED_BY_REVIEWER)),
    ("GetItem", _set("appealed", True)),
    ("GetItem", _set("state", pb.ITEM_STATE_REMOVED)),  # a state the log never reaches, read again: still not there
    ("ListAuditLog", _drop_last),  # the log stops at SUBMITTED though the item is APPROVED
    ("ListAuditLog", lambda answer: setattr(answer.entries[0], "event", pb.AUDIT_EVENT_AUTO_APPROVED)),
])
async def test_an_item_that_does_not_match_its_log_or_its_submission_is_inconsistent(method: str, change: Any, caplog):
    fake, mod, clock = _mesh()
    await _posted(fake, mod, clock, BENIGN)  # auto-approved
    caller = Tampered(fake, method, change)
    caplog.set_level("WARNING", logger="casemesh.workloads.moderation")
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.codes(ITEM_ACCOUNTED) == [INCONSISTENT] and "INCONSISTENT" in caplog.text


class MovesWhileRead(FakeCaller):
    """A reviewer's verdict is applied between the audit's ListAuditLog and its GetItem."""

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        if method == "GetItem":
            task = next(t for t in self.fake.tasks.values() if t.item_id == request.item_id)
            claim = self.fake._claimtask(review_pb2.ClaimTaskRequest(reviewer_id="r1", lease_ms=1_000)).task
            self.fake._completetask(review_pb2.CompleteTaskRequest(
                task_id=task.task_id, lease_token=claim.lease_token, reviewer_id="r1", verdict=pb.VERDICT_REMOVE))
        return await super().__call__(service, method, request)


async def test_an_item_decided_while_it_is_audited_is_read_again_and_accounted_for():
    fake, mod, clock = _mesh()
    await _posted(fake, mod, clock, UNSURE)  # IN_REVIEW
    caller = MovesWhileRead(fake)
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert fake.methods()[-3:] == ["ListAuditLog", "GetItem", "ListAuditLog"]
    assert caller.codes(ITEM_ACCOUNTED) == ["OK"]


async def test_an_item_pending_too_long_is_stuck_and_a_young_pending_one_is_not():
    fake, mod, clock = _mesh()
    fake.hold = True
    await _posted(fake, mod, clock, BENIGN, age=9.5)
    caller = FakeCaller(fake)
    await audit_check(caller, AUDIT, mod, random.Random(1))
    clock.now += 1
    await audit_check(caller, AUDIT, mod, random.Random(1))
    assert caller.codes(ITEM_ACCOUNTED) == ["OK", STUCK] and mod.tally.audits[STUCK] == 1


# a whole run against the fakes ----------------------------------------------------------------------------------------

async def test_a_run_of_every_journey_accounts_for_every_item():
    fake, mod, clock = _mesh()
    fake.probability = {BENIGN.text: 0.1, VIOLATING.text: 0.9, UNSURE.text: 0.5}
    rng = random.Random(21)
    caller = FakeCaller(fake)
    params = {"post": PostParams(appeal_p_if_wrong=0.6, appeal_p_if_right=0.5),
              "review": ReviewParams(think_ms=0, walk_away_p=0.0), "audit_check": AUDIT}
    for _ in range(400):
        name = rng.choices(["post", "review", "audit_check"], [5, 3, 2])[0]
        clock.now += 0.05
        await WORKLOAD.journeys[name].run(caller, params[name], mod, rng)
    while fake.open:
        await review(caller, params["review"], mod, rng)
    clock.now += 3
    for posted in list(mod.posted):
        mod_one = Moderation(mod.state, items=ITEMS, clock=clock, wall_ms=clock.wall_ms)
        mod_one.posted = [posted]
        await audit_check(caller, AUDIT, mod_one, rng)
    accounted = caller.codes(ITEM_ACCOUNTED)
    assert set(accounted) == {"OK"} and len(accounted) > len(mod.posted)
    assert all(fake.items[p.item_id].state in (pb.ITEM_STATE_APPROVED, pb.ITEM_STATE_REMOVED) for p in mod.posted)
    assert set(caller.codes(TIME_TO_DECISION)) == {"OK", IN_REVIEW} and set(caller.codes(REVIEW_CLAIM)) >= {"OK"}
    assert {n for n, _, _ in caller.observed} <= set(MEASURES)


# connect, disconnect, the process's memory and the tally --------------------------------------------------------------

async def test_connect_builds_the_held_out_split_and_disconnect_logs_the_tally(caplog):
    state = plan(SeedParams(held_out_items=200, authors=20, reviewers=2), random.Random(1))
    caplog.set_level("INFO", logger="casemesh.workloads.moderation")
    mod = await connect(None, state, SeedParams(), random.Random(1))
    assert isinstance(mod, Moderation) and len(mod.items) == 200 and len(mod.labels) > 190
    assert all(mod.labels.get(i.text) is not None for i in mod.items)
    assert "200 held-out items" in caplog.text and "20 authors, 2 reviewers" in caplog.text
    mod.tally.posts, mod.tally.routes["OK"], mod.tally.routes[IN_REVIEW] = 10, 8, 2
    mod.tally.wrong[FALSE_REMOVE] = 1
    mod.tally.audits["OK"], mod.tally.audits[LOST] = 5, 1
    await disconnect(mod)
    assert "10 posts answered, 8 auto-decided (1 wrong: FALSE_REMOVE 1; other routes: IN_REVIEW 2)" in caplog.text
    assert "audit checks: LOST 1, OK 5" in caplog.text
    with pytest.raises(ValueError, match="at least one author"):
        Moderation(State(run="x", held_out_items=1, authors=(), reviewers=("r",)), items=ITEMS)
    with pytest.raises(ValueError, match="labelled item"):
        Moderation(_state(), items=[])


def test_item_ids_are_fresh_and_valid_and_the_memory_is_bounded():
    clock = Clock()
    mod = Moderation(_state(), items=ITEMS, clock=clock)
    ids = {mod.item_id() for _ in range(1_000)}
    assert len(ids) == 1_000 and all(is_id(i) and len(i) == 43 and i.startswith("mo0badcafe-") for i in ids)
    for i in range(MAX_REMEMBERED * 5 // 4 + 1):
        clock.now += 0.001
        mod.remember(f"i{i}", "a", "t")
    assert len(mod.posted) == MAX_REMEMBERED and mod.posted[-1].item_id == f"i{MAX_REMEMBERED * 5 // 4}"
    # Only items at least min_age_s old are audited.
    rng = random.Random(1)
    picked = {mod.auditable(rng, 10.0).item_id for _ in range(200)}  # type: ignore[union-attr]
    cutoff = clock.now - 10.0
    assert all(p.at <= cutoff for p in mod.posted if p.item_id in picked) and len(picked) > 100

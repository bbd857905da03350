"""The recommendation engine through real gRPC: what users rely on, under concurrent clients, and after bad input.

Runs reco-signals, reco-candidates and reco-ranker in this process on
127.0.0.1 (tests/integration/conftest.py), with their default settings. The
main mesh is seeded with the synthetic dataset of tests/integration/reco.py
(120 users, 80 items in 4 genres) and trained once; the tests then run in
file order on it, each recording what it adds in ``Seeded.history`` (a
user's interactions as acknowledged by RecordInteractions), which is what
no recommendation may hold. A second, empty mesh answers the calls made
before any training.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from casemesh.reco.v1 import signals_pb2
from casemesh.services.catalog import definitions

from .conftest import RunningMesh, loopback_topology, start_mesh
from .reco import (CATALOGUE, GENRES, LIKE, SERVICES, VIEW, Client, Dataset, Triple, genre_items, genre_of_item,
                   interaction, make_dataset, record_all, recommendation_problems, train)

pytestmark = pytest.mark.asyncio(loop_scope="module")

KNOWN = set(CATALOGUE)


@contextlib.asynccontextmanager
async def reco_mesh():
    running, stop, task = await start_mesh(definitions(SERVICES), loopback_topology(SERVICES))
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh():
    """The main mesh (its channels carry the test identity, so internal methods answer)."""
    async with reco_mesh() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(mesh: RunningMesh) -> Client:
    return Client(mesh.channel)


@dataclass
class Seeded:
    """The dataset as recorded, the first training, and every user's acknowledged items since (kept by the tests)."""

    dataset: Dataset
    trained_version: int
    history: dict[str, set[str]] = field(default_factory=dict)

    async def record(self, client: Client, triples: list[Triple]) -> None:
        """Record ``triples``, then note them in ``history`` (after the acknowledgement: an item counts from then on)."""
        response = await client.record(triples)
        assert response.recorded == len(triples), response
        for user, item, _ in triples:
            self.history.setdefault(user, set()).add(item)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(client: Client) -> Seeded:
    dataset = make_dataset()
    total = await record_all(client, dataset.interactions)
    assert total == len(dataset.interactions)
    trained = await train(client)
    return Seeded(dataset, trained.model_version, {u: set(items) for u, items in dataset.items.items()})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fresh_client():
    """A client of a second mesh that has recorded nothing and trained nothing."""
    async with reco_mesh() as running:
        yield Client(running.channel)


def check(raised: pytest.ExceptionInfo, code: grpc.StatusCode, field: str | None = None) -> None:
    """The raised AioRpcError has ``code`` and, given ``field``, details that begin ``FIELD: ``."""
    error = raised.value
    assert error.code() == code, (error.code(), error.details())
    if field is not None:
        assert (error.details() or "").startswith(f"{field}: "), (field, error.details())


# -- after seeding and training -------------------------------------------------------------------------------------


async def test_training_reports_the_dataset(client, seeded):
    status = await client.status()
    assert status.model_version == seeded.trained_version == 1
    assert (status.users, status.items, status.interactions) == (120, 80, len(seeded.dataset.interactions))
    assert status.factors == 32 and status.train_time.seconds > 0


async def test_no_user_is_recommended_an_item_they_interacted_with(client, seeded):
    """Every user, limit 50: none of their items, only known items, no repeats, best first; trending fills the pool,
    so exactly min(50, unseen items) come back. The default limit is 20 and ranks as the first 20 of limit 50."""
    gate = asyncio.Semaphore(8)

    async def one(user: str) -> list[str]:
        async with gate:
            seen = seeded.history[user]
            response = await client.recommend(user, limit=50)
            wrong = recommendation_problems(user, response, 50, KNOWN, seen)
            items = [r.item_id for r in response.recommendations]
            if len(items) != min(50, len(KNOWN - seen)):
                wrong.append(f"{user}: {len(items)} items, {len(KNOWN - seen)} unseen")
            if response.model_version != seeded.trained_version or response.recent_signals != len(seen):
                wrong.append(f"{user}: model {response.model_version}, recent_signals {response.recent_signals} "
                             f"for {len(seen)} items")
            if user.endswith("0"):
                default = await client.recommend(user)
                if [r.item_id for r in default.recommendations] != items[:20]:
                    wrong.append(f"{user}: limit 0 gave {[r.item_id for r in default.recommendations]}, not {items[:20]}")
            return wrong

    problems = [p for found in await asyncio.gather(*(one(u) for u in seeded.dataset.users)) for p in found]
    assert not problems, "\n".join(problems[:20])


async def test_limit_and_pool_size_bound_the_answer(client, seeded):
    user = "u005"
    for limit, pool_size in [(1, 0), (7, 0), (100, 0), (20, 5), (20, 1), (100, 5000)]:
        response = await client.recommend(user, limit=limit, pool_size=pool_size)
        assert not recommendation_problems(f"{limit}/{pool_size}", response, limit, KNOWN, seeded.history[user])
        if pool_size:
            assert response.candidates <= pool_size and len(response.recommendations) <= pool_size, response
        assert len(response.recommendations) == min(limit, pool_size or 200, len(KNOWN - seeded.history[user]))


async def test_a_new_like_is_left_out_of_the_very_next_recommendations(client, seeded):
    """Ten users each like their top recommendation: the next call leaves it out and counts one more real-time signal,
    with the same model (no training in between)."""
    users = [f"u{n:03d}" for n in range(10, 20)]

    async def one(user: str) -> None:
        before = await client.recommend(user)
        liked = before.recommendations[0].item_id
        await seeded.record(client, [(user, liked, LIKE)])
        after = await client.recommend(user)
        assert liked not in [r.item_id for r in after.recommendations], (user, liked)
        assert after.recent_signals == before.recent_signals + 1 >= 1, (before.recent_signals, after.recent_signals)
        assert after.model_version == before.model_version == seeded.trained_version
        assert not recommendation_problems(user, after, 20, KNOWN, seeded.history[user])
        # The candidate stage too: the ranker's signal reaches reco-candidates, which leaves the item out itself.
        pool = await client.pool(user, [liked], pool_size=80)
        assert liked not in [c.item_id for c in pool.candidates]

    await asyncio.gather(*(one(u) for u in users))
    assert (await client.status()).model_version == seeded.trained_version


async def test_likes_of_another_genre_shift_the_next_recommendations(client, seeded):
    """A genre-0 user (no item of another genre) likes five genre-2 items: the next top 20 holds at least three more
    genre-2 items than before (4 and 10 when written), before any training."""
    user = next(u for u in seeded.dataset.users
                if seeded.dataset.genre[u] == 0 and all(genre_of_item(i) == 0 for i in seeded.history[u]))
    other = 2

    def of_genre(response) -> int:
        return sum(genre_of_item(r.item_id) == other for r in response.recommendations)

    before = await client.recommend(user)
    liked = genre_items(other)[:5]
    await seeded.record(client, [(user, item, LIKE) for item in liked])
    after = await client.recommend(user)
    assert not recommendation_problems(user, after, 20, KNOWN, seeded.history[user])
    assert of_genre(after) >= of_genre(before) + 3, ([r.item_id for r in before.recommendations],
                                                [r.item_id for r in after.recommendations])
    assert after.model_version == seeded.trained_version


async def test_a_model_swap_under_load_is_atomic(client, mesh, seeded):
    """8 clients ask continuously while more interactions are recorded and TrainModel runs twice: every call succeeds
    with a version that existed, no client's versions go backwards, a call started after a training returned has at
    least its version, and every answer leaves out the user's interactions acknowledged before the call."""
    version_before = (await client.status()).model_version
    floor = version_before  # the newest version whose TrainModel returned
    done = asyncio.Event()
    problems: list[str] = []
    seen_versions: list[list[int]] = [[] for _ in range(8)]
    users = seeded.dataset.users

    async def calls_made(each: int) -> None:
        """Wait until every client has had ``each`` more answers (whatever the machine's speed)."""
        targets = [len(v) + each for v in seen_versions]
        while any(len(v) < t for v, t in zip(seen_versions, targets)):
            assert not askers.done(), askers.result()  # an asker failed: raise its error
            await asyncio.sleep(0.01)

    async def asker(n: int) -> None:
        own = users[n::8]
        calls = 0
        client_n = Client(mesh.channel)
        while not done.is_set() or calls < 20:
            user = own[calls % len(own)]
            known_items, at_least = set(seeded.history[user]), floor
            response = await client_n.recommend(user, limit=30)
            calls += 1
            seen_versions[n].append(response.model_version)
            problems.extend(recommendation_problems(f"client {n} {user}", response, 30, KNOWN, known_items))
            if response.model_version < at_least:
                problems.append(f"client {n}: version {response.model_version} after {at_least} was trained")

    async def more(rng: random.Random) -> None:
        """One VIEW of an unseen item of their genre for half the users."""
        triples = []
        for user in rng.sample(users, 60):
            unseen = sorted(set(genre_items(seeded.dataset.genre[user])) - seeded.history[user])
            triples.append((user, rng.choice(unseen), VIEW))
        await seeded.record(client, triples)

    askers = asyncio.gather(*(asker(n) for n in range(8)))
    rng = random.Random(3)
    try:
        await calls_made(3)
        await more(rng)
        first = await client.train()
        floor = first.model_version
        await calls_made(3)
        await more(rng)
        second = await client.train()
        floor = second.model_version
        await calls_made(3)
    finally:
        done.set()
        await askers
    assert not problems, "\n".join(problems[:20])
    assert version_before < first.model_version < second.model_version
    existed = {version_before, first.model_version, second.model_version}
    for n, versions in enumerate(seen_versions):
        assert set(versions) <= existed, (n, sorted(set(versions)))
        assert versions == sorted(versions), f"client {n} saw versions go backwards: {versions}"
        assert versions[0] == version_before and versions[-1] == second.model_version, (n, versions)
    assert second.interactions == len(await client.export())  # trained on everything recorded before it


async def test_concurrent_records_lose_nothing(client, mesh, seeded):
    """16 clients record overlapping batches for 40 new users at once: ExportInteractions holds every distinct
    (user, item, kind) once, and the count RecordInteractions reports is the export's length."""
    users = [f"w{n:03d}" for n in range(40)]
    recorded: set[Triple] = set()

    async def recorder(n: int) -> None:
        rng = random.Random(100 + n)
        own = Client(mesh.channel)
        for _ in range(25):
            batch = []
            for _ in range(rng.randint(1, 20)):
                user = rng.choice(users)
                batch.append((user, rng.choice(genre_items(int(user[1:]) % GENRES)), rng.choice([VIEW, LIKE])))
            response = await own.record(batch)
            assert response.recorded == len(batch)
            recorded.update(batch)

    await asyncio.gather(*(recorder(n) for n in range(16)))
    exported = await client.export()
    assert len(exported) == len(set(exported)), "an interaction exported twice"
    mine = {t for t in exported if t[0] in users}
    assert mine == recorded, (len(mine), len(recorded), sorted(recorded - mine)[:5])
    assert set(seeded.dataset.interactions) <= set(exported)
    assert await client.export(batch_size=7) == exported
    again = await client.record([next(iter(recorded))])  # recording one again updates it: the total stays
    assert again.recorded == 1 and again.total == len(exported)
    for user in users[:5]:
        recent = await client.recent(user)
        assert {(user, i.item_id, i.kind) for i in recent} == {t for t in recorded if t[0] == user}
        stamps = [i.time.ToNanoseconds() for i in recent]
        assert stamps == sorted(stamps, reverse=True), "not newest first"
    # A user unknown to the model is recommended none of their items either (all of them are real-time signals).
    for user in users[:5]:
        items = {i for u, i, _ in recorded if u == user}
        response = await client.recommend(user, limit=50)
        assert not recommendation_problems(user, response, 50, KNOWN, items)
        assert response.recent_signals == len(items)


# -- bad input --------------------------------------------------------------------------------------------------------


def _batch(user: str, bad: int, how: str) -> list[signals_pb2.Interaction]:
    """Five good interactions of ``user`` with entry ``bad`` spoilt: ``how`` is user_id, item_id or kind."""
    batch = [interaction(user, item, LIKE) for item in CATALOGUE[:5]]
    if how == "user_id":
        batch[bad].user_id = ""
    elif how == "item_id":
        batch[bad].item_id = "bad id!"
    else:
        batch[bad].kind = signals_pb2.INTERACTION_KIND_UNSPECIFIED
    return batch


@pytest.mark.parametrize(("bad", "how", "field"), [
    (3, "item_id", "interactions[3].item_id"),
    (0, "kind", "interactions[0].kind"),
    (4, "user_id", "interactions[4].user_id"),
])
async def test_a_batch_with_one_bad_interaction_records_none_of_it(client, seeded, bad, how, field):
    user = f"refused-{how}"
    total = (await client.record([seeded.dataset.interactions[0]])).total
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(
            interactions=_batch(user, bad, how)), timeout=client.timeout_s)
    check(raised, grpc.StatusCode.INVALID_ARGUMENT, field)
    assert await client.recent(user) == []
    assert (await client.record([seeded.dataset.interactions[0]])).total == total
    assert not [t for t in await client.export() if t[0] == user]


async def test_bad_record_requests_name_the_field(client):
    for interactions, field in [
        ([], "interactions"),
        ([interaction("u000", "i00")] * 10_001, "interactions"),
        ([interaction("u000", "i00", 7)], "interactions[0].kind"),
        ([interaction("u000", "i00"), interaction("x" * 65, "i00")], "interactions[1].user_id"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(interactions=interactions),
                                                    timeout=client.timeout_s)
        check(raised, grpc.StatusCode.INVALID_ARGUMENT, field)
    for call, field in [
        (lambda: client.recent("", 10), "user_id"),
        (lambda: client.recent("u000", 0), "limit"),
        (lambda: client.recent("u000", 1001), "limit"),
        (lambda: client.export(batch_size=50_001), "batch_size"),
        (lambda: client.export(batch_size=-1), "batch_size"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        check(raised, grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_bad_recommendation_requests_name_the_field(client, seeded):
    for kwargs, field in [
        (dict(user=""), "user_id"),
        (dict(user="a b"), "user_id"),
        (dict(user="x" * 65), "user_id"),
        (dict(user="u000", limit=101), "limit"),
        (dict(user="u000", limit=-1), "limit"),
        (dict(user="u000", pool_size=5001), "pool_size"),
        (dict(user="u000", pool_size=-1), "pool_size"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.recommend(**kwargs)
        check(raised, grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_bad_candidate_and_training_requests_name_the_field(client, seeded):
    version = (await client.status()).model_version
    for call, field in [
        (lambda: client.pool("u000", ["i01", "bad id"]), "recent_item_ids[1]"),
        (lambda: client.pool("u000", ["i01"] * 1001), "recent_item_ids"),
        (lambda: client.pool("", []), "user_id"),
        (lambda: client.pool("u000", [], pool_size=0), "pool_size"),
        (lambda: client.pool("u000", [], pool_size=5001), "pool_size"),
        (lambda: client.train(factors=257), "factors"),
        (lambda: client.train(factors=-1), "factors"),
        (lambda: client.train(iterations=51), "iterations"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        check(raised, grpc.StatusCode.INVALID_ARGUMENT, field)
    assert (await client.status()).model_version == version, "a refused TrainModel trained"


# -- before any training ----------------------------------------------------------------------------------------------


async def test_before_any_training_recommendations_fail_precondition(fresh_client):
    client = fresh_client
    status = await client.status()
    assert status.model_version == 0 and not status.HasField("train_time")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.train()
    check(raised, grpc.StatusCode.FAILED_PRECONDITION)  # nothing recorded
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(
            interactions=_batch("f000", 3, "item_id")), timeout=client.timeout_s)
    check(raised, grpc.StatusCode.INVALID_ARGUMENT, "interactions[3].item_id")
    assert await client.export() == [], "a refused batch recorded something"
    dataset = make_dataset(users=8, prefix="f")
    await record_all(client, dataset.interactions)
    for call in (lambda: client.recommend("f000"), lambda: client.pool("f000", ["i00"]), lambda: client.recommend("new")):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        check(raised, grpc.StatusCode.FAILED_PRECONDITION)
    trained = await train(client)
    assert trained.model_version == 1 and trained.interactions == len(dataset.interactions)
    response = await client.recommend("f000")
    assert response.model_version == 1 and response.recommendations
    known = {i for _, i, _ in dataset.interactions}
    assert not recommendation_problems("f000", response, 20, known, dataset.items["f000"])


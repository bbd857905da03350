"""Killing reco-candidates or reco-ranker under load: calls fail only as "retry later" while it is down, and after its
restart recommendations come back by themselves, still leaving out every user's interactions.

A multi-process mesh (harness/mesh.py: one process per service, restarted by
the mesh's supervisor after a crash) of reco-signals, reco-candidates and
reco-ranker. The dataset of tests/integration/reco.py is recorded and trained
twice (model version 2); six clients then ask for recommendations
continuously. reco-candidates is SIGKILLed: its model was in memory only, so
the restarted process must train again by itself from reco-signals
(``train_on_start``: version 1 again, on every interaction recorded, those
recorded while it was down included) and serve without any TrainModel call.
Then reco-ranker, stateless, is SIGKILLed and must simply serve again.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field

import grpc
import pytest

from casemesh.harness.mesh import Mesh

from .reco import (CATALOGUE, FAST_RECONNECT, LIKE, SERVICES, VIEW, Client, genre_items, make_dataset, record_all,
                   recommendation_problems, retrying)

#: What GetRecommendations may answer while a reco service is down or restarting: retry later.
RESTARTING = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION,
                        grpc.StatusCode.DEADLINE_EXCEEDED})
#: How long a restart (supervisor backoff, process start, training at start) may take on a loaded 2-core machine.
RECOVER_WITHIN_S = 60.0
KNOWN = set(CATALOGUE)
ASKERS = 6


async def wait_restarted(mesh: Mesh, name: str, old_pid: int) -> None:
    """Wait until the mesh's supervisor has restarted ``name`` (killed as ``old_pid``) and it reports SERVING."""
    deadline = time.monotonic() + RECOVER_WITHIN_S
    while mesh.restarts[name] < 1 or mesh.pid(name) == old_pid:
        assert time.monotonic() < deadline, f"{name} was not restarted:\n{mesh.log_tail(name)}"
        await asyncio.sleep(0.2)


@dataclass
class Load:
    """Clients asking for recommendations continuously; what they saw, by phase."""

    clients: list[Client]
    users: list[str]
    history: dict[str, set[str]]
    #: The name of the service down (a call begun or ended then may fail "retry later"); else a name of the moment,
    #: every service up, when any failure is a problem.
    phase: str = "before"
    problems: list[str] = field(default_factory=list)
    failures: dict[str, list[grpc.StatusCode]] = field(default_factory=dict)
    #: Successful answers per client: (phase when the call began, model version).
    answers: list[list[tuple[str, int]]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.answers = [[] for _ in self.clients]

    async def ask(self, n: int) -> None:
        client, own, calls = self.clients[n], self.users[n::len(self.clients)], 0
        while not self.stop.is_set():
            user = own[calls % len(own)]
            calls += 1
            seen, phase = set(self.history[user]), self.phase
            try:
                response = await client.recommend(user, limit=30)
            except grpc.aio.AioRpcError as error:
                # A call in flight when the service was killed fails too: the service was down during the call.
                down = next((p for p in (self.phase, phase) if p in SERVICES), None)
                self.failures.setdefault(down or phase, []).append(error.code())
                if down is None or error.code() not in RESTARTING:
                    self.problems.append(f"client {n} {user} ({phase}): {error.code().name} {error.details()}")
                await asyncio.sleep(0.05)
                continue
            self.answers[n].append((phase, response.model_version))
            self.problems.extend(recommendation_problems(f"client {n} {user} ({phase})", response, 30, KNOWN, seen))
            await asyncio.sleep(0.01)

    async def answered(self, each: int, phase: str) -> None:
        """Wait until every client has ``each`` more answers to calls begun in ``phase``."""
        deadline = time.monotonic() + RECOVER_WITHIN_S
        targets = [sum(p == phase for p, _ in a) + each for a in self.answers]
        while any(sum(p == phase for p, _ in a) < t for a, t in zip(self.answers, targets)):
            assert time.monotonic() < deadline, f"clients not answered within {RECOVER_WITHIN_S:g} s: {self.failures}"
            await asyncio.sleep(0.05)


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_reco_candidates_and_of_reco_ranker_under_load(tmp_path):
    rng = random.Random(8)
    dataset = make_dataset()
    history = {u: set(items) for u, items in dataset.items.items()}
    async with Mesh(SERVICES, tmp_path) as mesh:
        channels: list[grpc.aio.Channel] = []

        def channel(name: str) -> grpc.aio.Channel:
            channels.append(grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT))
            return channels[-1]

        client = Client(channel, timeout_s=10)
        load = Load([Client(channel, timeout_s=5) for _ in range(ASKERS)], dataset.users, history)
        asking: asyncio.Future | None = None

        async def record(triples) -> int:
            """Record ``triples``; note them in ``history`` once acknowledged. Returns the total held."""
            response = await client.record(triples)
            for user, item, _ in triples:
                history[user].add(item)
            return response.total

        def more(kind: int) -> list[tuple[str, str, int]]:
            """One interaction of an unseen item of their genre for 40 users."""
            return [(u, rng.choice(sorted(set(genre_items(dataset.genre[u])) - history[u])), kind)
                    for u in rng.sample(dataset.users, 40)]

        try:
            # Retried: reco-candidates' channel to reco-signals may still be in reconnect backoff from its
            # training at start (see reco.retrying). That training waits for reco-signals and may land while
            # the interactions are being recorded (a model of part of them), so versions are read, not assumed.
            await record_all(client, dataset.interactions)
            first = (await retrying(client.train)).model_version
            assert first >= 1
            await record(more(VIEW))
            trained = await retrying(client.train)
            assert trained.model_version == first + 1 and trained.interactions == len(dataset.interactions) + 40
            asking = asyncio.gather(*(load.ask(n) for n in range(ASKERS)))
            await load.answered(5, "before")
            assert {v for a in load.answers for _, v in a} == {trained.model_version}

            # reco-candidates dies: recommendations fail "retry later" (the ranker's UNAVAILABLE, then
            # FAILED_PRECONDITION until the restarted process has trained); interactions are still recorded.
            old = mesh.pid("reco-candidates")
            load.phase = "reco-candidates"
            os.kill(old, signal.SIGKILL)
            total = await record(more(LIKE))
            await wait_restarted(mesh, "reco-candidates", old)
            await load.answered(3, "reco-candidates")  # served again, with no TrainModel call
            load.phase = "after reco-candidates"
            await load.answered(5, load.phase)
            status = await client.status()
            assert status.model_version == 1 and status.interactions == total, (status, total)
            assert load.failures.get("reco-candidates"), "no call met the dead reco-candidates"
            after = {v for a in load.answers for p, v in a if p == load.phase}
            assert after == {1}, f"answers after the restart from versions {after}, not the model trained at start"

            # reco-ranker dies: calls fail UNAVAILABLE until it is back; signals recorded meanwhile count at once.
            old = mesh.pid("reco-ranker")
            load.phase = "reco-ranker"
            os.kill(old, signal.SIGKILL)
            await record(more(LIKE))
            await wait_restarted(mesh, "reco-ranker", old)
            await load.answered(3, "reco-ranker")
            load.phase = "after reco-ranker"
            await load.answered(5, load.phase)
            assert load.failures.get("reco-ranker"), "no call met the dead reco-ranker"
            assert (await client.status()).model_version == 1
            load.stop.set()
            await asking
            for user in dataset.users:  # every user, after both restarts: none of their items
                response = await client.recommend(user, limit=50)
                load.problems.extend(recommendation_problems(f"{user} at the end", response, 50, KNOWN, history[user]))
                assert response.model_version == 1 and response.recent_signals == len(history[user]), response
        finally:
            load.stop.set()
            if asking is not None:
                await asyncio.wait_for(asking, 30)
            for open_channel in channels:
                await open_channel.close()
    assert not load.problems, "\n".join(load.problems[:20])

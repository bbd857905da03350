"""Killing collab-documents mid-edit loses no acknowledged update, and every replica converges to the document.

CASE-STUDY.md point 5 for the collaborative documents (seed 001 #06). The mesh runs as separate processes (harness
Mesh) with collab-documents' update log in a data_dir on disk. Six editors, three on each editor server, type into one
document (random inserts and deletes); midway collab-documents gets SIGKILL and is started again on the same address
and data_dir. The editor servers lose their watches, so every session ends with UNAVAILABLE; each editor keeps typing
into its replica, rejoins (to the same editor server) with its state vector as soon as it can, and sends every update
not yet acknowledged again, in order. Afterwards:

- every update ever acknowledged is in the document (applying all of them to its final state changes nothing):
  an ack meant durable, and the crash did not undo it;
- every replica's text equals GetDocument's text (CRDT convergence across the crash);
- within each session, ``joined`` came first and remote sequences only grew;
- the editor servers ended the sessions with UNAVAILABLE, reason ``watch_lost`` (their own
  ``casemesh_collab_sessions_ended_total``, scraped from their /metrics). A client may see such an end as
  ``INTERNAL: Internal error from Core`` instead: grpcio's asyncio client overwrites the status the server sent when
  one of its writes (a heartbeat, an update) fails because the stream has just ended (grpc/grpc#36066).
"""

from __future__ import annotations

import asyncio
import random
import signal
import urllib.request

import grpc
import pytest

from casemesh.harness.mesh import Mesh

from .collab import (EDITORS, SERVICES, WAIT_S, Editor, contains_all, create_document, eventually, get_document)

#: Client channels reconnect quickly: collab-documents is gone for a few seconds only.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))
DOCUMENT = "restart-doc"
#: How grpcio's asyncio client reports a server's status when a write of its own failed as the stream ended.
CLIENT_WRITE_RACE = (grpc.StatusCode.INTERNAL, "Internal error from Core")


def sessions_ended(mesh: Mesh, server: str, reason: str, code: str) -> float:
    """``casemesh_collab_sessions_ended_total{reason, grpc_code}`` of editor server ``server``, from its /metrics."""
    address = mesh.topology.endpoint(server).metrics_address
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("casemesh_collab_sessions_ended_total{") and f'reason="{reason}"' in line
                and f'grpc_code="{code}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_collab_documents_mid_edit_loses_no_acknowledged_update_and_replicas_converge(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES}
        editors: list[Editor] = []
        tasks: list[asyncio.Task] = []
        try:
            await create_document(channels["collab-documents"], DOCUMENT, initial_text="base text ")
            editors = [Editor(channels[EDITORS[i % 2]], DOCUMENT, f"restart-{i}", client_id=3_000 + i,
                              rejoin_on_refusal=True) for i in range(6)]
            for e in editors:
                await e.join()
            typing = asyncio.Event()
            typing.set()
            edits = {"made": 0}
            ends: dict[str, list[tuple[grpc.StatusCode, str]]] = {e.user: [] for e in editors}

            async def typist(e: Editor, seed: int) -> None:
                rng = random.Random(seed)
                while typing.is_set():
                    if e.random_edit(rng) is not None:
                        edits["made"] += 1
                    await asyncio.sleep(rng.uniform(0.01, 0.05))

            async def rejoiner(e: Editor) -> None:  # a client app rejoins as soon as its stream ends
                while True:
                    await e.current.done.wait()
                    ends[e.user].append((e.current.code, e.current.details))
                    while await e.join(must=False) is None:
                        await asyncio.sleep(0.2)

            tasks = [asyncio.create_task(rejoiner(e)) for e in editors]
            typists = [asyncio.create_task(typist(e, seed)) for seed, e in enumerate(editors)]
            await eventually(lambda: edits["made"] >= 60, "60 edits before the kill")
            acked_before = sum(len(e.acked) for e in editors)
            assert acked_before > 0
            assert mesh.kill("collab-documents", signal.SIGKILL) == -signal.SIGKILL
            await eventually(lambda: all(ends[e.user] for e in editors), "every session to end")
            made_at_kill = edits["made"]
            await asyncio.sleep(0.5)  # the editors type on, offline
            made_while_down = edits["made"] - made_at_kill
            await mesh.start_services(["collab-documents"])
            await eventually(lambda: edits["made"] >= made_at_kill + 60 and all(e.alive and e.current.joined for e in editors),
                             "every editor to rejoin and 60 more edits")
            typing.clear()
            await asyncio.gather(*typists)
            for e in editors:
                await e.wait_acked(WAIT_S * 2)

            final = await get_document(channels["collab-documents"], DOCUMENT, include_state=True)
            for e in editors:
                await e.wait_text(final.document.text)
            final = await get_document(channels["collab-documents"], DOCUMENT, include_state=True)
            assert {str(e.text) for e in editors} == {final.document.text}
            acknowledged = [update for e in editors for update, _ in e.acked.values()]
            assert len(acknowledged) == edits["made"] and made_while_down > 0  # those were sent after the rejoins
            assert contains_all(final.state_update, acknowledged), "an acknowledged update is missing"
            for e in editors:
                first = ends[e.user][0]
                assert first[0] == grpc.StatusCode.UNAVAILABLE or first == CLIENT_WRITE_RACE, (e.user, ends[e.user])
                assert not e.violations, e.violations
                assert all(r.code in (grpc.StatusCode.UNAVAILABLE.value[0], grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
                           for r in e.rejected), e.rejected
            for server in EDITORS:  # each ended its three sessions (and maybe rejoins while collab-documents was down)
                ended = await asyncio.to_thread(sessions_ended, mesh, server, "watch_lost", "Unavailable")
                assert ended >= 3, (server, ended)
        finally:
            for task in tasks:
                task.cancel()
            for e in editors:
                await e.close()
            for channel in channels.values():
                await channel.close()

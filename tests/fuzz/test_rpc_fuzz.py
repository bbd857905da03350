"""Fuzz every RPC of every casemesh service on a real server: hostile input never yields UNKNOWN, INTERNAL, a hang or a crash.

Driven only by descriptors (contracts.py, strategies.py): each RPC of each
catalogued service gets request bodies built from its request type (every
field type, extreme values, nested, repeated, huge), plus truncated,
bit-flipped and random bytes, sent raw; client streams send 0-4 bodies,
server streams are read up to 16 responses. Most calls carry the test
identity's caller token (the server lets it call every method, so the
handlers of internal RPCs are reached); some carry none, some a forged or
mangled ``casemesh-caller`` token. Every call has a 2 s deadline.
A call fails the test when it ends ``UNKNOWN``, ``INTERNAL`` or
``DEADLINE_EXCEEDED`` (except a live tail, calls.LIVE_TAILS, that answered
and was still open at its shorter deadline), when its details carry a Python exception, when it
ends long past its deadline, or when an ``OK`` answer is not the response
type. Any other status (``INVALID_ARGUMENT``, ``NOT_FOUND``,
``PERMISSION_DENIED``, ``RESOURCE_EXHAUSTED``, ...) is an answer. After each
RPC's examples the server must still run and report SERVING; after all of
them its resident memory must have grown by less than :data:`RSS_GROWTH_LIMIT`.

The default run is short and reproducible (``derandomize``, no example
database, :data:`SHORT_EXAMPLES` per RPC). The long run, marked slow,
takes ``CASEMESH_FUZZ_EXAMPLES`` per RPC (300 by default; the variable sets
tests/unit/test_loader_fuzz.py's count too), derandomized unless
``CASEMESH_FUZZ_RANDOM`` is set (then a new search each time)::

    CASEMESH_FUZZ_EXAMPLES=1000 CASEMESH_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/fuzz -m slow -q

Each run ends with a table of examples, calls and statuses per RPC and the
server's RSS.

A hypothesis failure prints the smallest request found (as bytes, with the
caller metadata); a finding fixed in a service gets a regression test that
replays that request. None has been found yet (docs/security.md, "Fuzzing").
"""

from __future__ import annotations

import os
import time

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from grpc_health.v1 import health_pb2
from google.protobuf import message_factory

from casemesh.services.runtime.identity import CALLER_METADATA_KEY

from .calls import RpcTally, invoke
from .conftest import RSS, TALLIES, FuzzMesh
from .contracts import Rpc, declared_services, served_rpcs
from .strategies import Echoes, MessageStrategies, payloads

#: Examples per RPC in the default suite: 38 RPCs, 950 calls, tests/fuzz about 20 s on a 2-vCPU VM (60 s under heavy load).
SHORT_EXAMPLES = 25
#: Examples per RPC in the slow run; ``CASEMESH_FUZZ_EXAMPLES`` overrides it.
LONG_EXAMPLES = int(os.environ.get("CASEMESH_FUZZ_EXAMPLES", "300"))
#: Growth of the server's resident memory over the whole run that counts as unbounded (bytes).
RSS_GROWTH_LIMIT = 512 * 2**20
#: Packages in protos/ whose services are not fuzzed, and why: they are the harness's own, not a case study's contracts.
NOT_FUZZED = {
    "casemesh.bench.v1.": "the harness's bare reference echo server (harness/calibration/echo_server.py), deliberately "
                          "without the casemesh runtime; no case study serves it",
    "casemesh.harness.v1.": "the harness's own formats and protocols (recordings, its workers), not served by the mesh",
}

RPCS = served_rpcs()
TOPOLOGY_NAMES = sorted({r.topology_name for r in RPCS})
ECHOES = Echoes()
STRATEGIES = MessageStrategies(max_depth=3, echoes=ECHOES)
COMMON = dict(deadline=None, database=None, derandomize=True, print_blob=False,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])


def bodies_for(rpc: Rpc) -> st.SearchStrategy[list[bytes]]:
    """One body, or 0-4 for a client stream."""
    one = payloads(rpc.request, STRATEGIES)
    return st.lists(one, max_size=4) if rpc.client_streaming else st.lists(one, min_size=1, max_size=1)


def _mangle(token: str, at: int, char: str) -> str:
    at %= len(token)
    return token[:at] + (char if token[at] != char else "A") + token[at + 1:]


def callers(mesh: FuzzMesh) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Call metadata: the test identity (six times in ten), none, or a forged, mangled or random caller token."""
    test = st.builds(lambda: mesh.test_caller)
    ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
    forged = st.builds(lambda kid, path, ms, mac: f"v1.{kid}.{path}.{ms}.{mac}",
                       st.sampled_from(["", "0" * 8, "deadbeef"]), st.sampled_from(["test", "svc/urlshortener", "harness", "svc/x/../y", ""]),
                       st.sampled_from(["0", str(2**63), "-1", "99999999999999999", str(int(time.time() * 1000))]), ascii_text)
    mangled = st.builds(lambda at, char: _mangle(mesh.test_caller[0][1], at, char), st.integers(0, 200), st.sampled_from("A.0_-"))
    kinds = {"test": test, "anonymous": st.just(()),
             **{name: tokens.map(lambda token: ((CALLER_METADATA_KEY, token),))
                for name, tokens in (("random", ascii_text), ("forged", forged), ("mangled", mangled))}}
    return st.sampled_from(["test"] * 6 + ["anonymous", "random", "forged", "mangled"]).flatmap(kinds.__getitem__)


def fuzz(mesh: FuzzMesh, rpc: Rpc, examples: int, derandomize: bool = True) -> None:
    """Run ``examples`` hypothesis examples against ``rpc``; assert each call and the server's health after them."""
    tally = TALLIES.setdefault(rpc.id, RpcTally())
    channel = mesh.channel(rpc.topology_name)
    response_type = message_factory.GetMessageClass(rpc.response)

    @settings(max_examples=examples, **{**COMMON, "derandomize": derandomize})
    @given(bodies=bodies_for(rpc), metadata=callers(mesh))
    def one_call(bodies: list[bytes], metadata: tuple[tuple[str, str], ...]) -> None:
        tally.examples += 1
        outcome = invoke(channel, rpc, bodies, metadata)
        tally.add(outcome, len(bodies))
        if outcome.code == grpc.StatusCode.OK and not outcome.undecodable_response:
            for response in outcome.responses:
                ECHOES.add_from(response_type.FromString(response))
        problems = outcome.problems()
        if problems and not mesh.alive():
            problems.append(f"the server died:\n{mesh.log_tail()}")
        assert not problems, f"{rpc.path} with {[b[:200] for b in bodies]} and {metadata}: {'; '.join(problems)}"

    started = time.monotonic()
    try:
        one_call()
    finally:
        tally.seconds += time.monotonic() - started
    assert mesh.alive(), f"the server died fuzzing {rpc.path}:\n{mesh.log_tail()}"
    statuses = mesh.health_of_all([rpc.topology_name, *TOPOLOGY_NAMES])
    not_serving = sorted(name for name, status in statuses.items() if status != health_pb2.HealthCheckResponse.SERVING)
    assert not not_serving, f"{', '.join(not_serving)} not SERVING after fuzzing {rpc.path}"
    assert mesh.health(rpc.topology_name, rpc.service) == health_pb2.HealthCheckResponse.SERVING


def test_every_service_in_protos_is_fuzzed_or_excused():
    declared = declared_services()
    fuzzed = {rpc.service for rpc in RPCS}
    excused = {s for s in declared if s.startswith(tuple(NOT_FUZZED))}
    assert set(declared) - fuzzed - excused == set(), "a contract in protos/ is neither served by a catalogued service nor excused"
    assert not fuzzed & excused
    for service, methods in declared.items():
        if service in fuzzed:
            assert sorted(methods) == sorted(r.method for r in RPCS if r.service == service)
    assert {"unary", "server_stream", "client_stream"} <= {rpc.kind for rpc in RPCS}


@pytest.mark.parametrize("rpc", RPCS, ids=[r.id for r in RPCS])
def test_fuzzed_rpc_answers_without_server_errors(fuzz_mesh: FuzzMesh, rpc: Rpc):
    fuzz(fuzz_mesh, rpc, SHORT_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("rpc", RPCS, ids=[r.id for r in RPCS])
def test_fuzzed_rpc_long_run(fuzz_mesh: FuzzMesh, rpc: Rpc):
    fuzz(fuzz_mesh, rpc, LONG_EXAMPLES, derandomize=os.environ.get("CASEMESH_FUZZ_RANDOM") is None)


def survived_with_bounded_memory(mesh: FuzzMesh) -> None:
    assert mesh.alive(), f"the server died:\n{mesh.log_tail()}"
    for rpc in RPCS:
        assert mesh.health(rpc.topology_name, rpc.service) == health_pb2.HealthCheckResponse.SERVING, rpc.service
    RSS["start"], RSS["end"] = mesh.rss_at_start, mesh.rss()
    growth = RSS["end"] - RSS["start"]
    assert growth < RSS_GROWTH_LIMIT, f"the server's RSS grew by {growth / 2**20:.0f} MiB over the fuzzing"


# After the fuzzing tests above (pytest runs a module's tests in order): one for each run.
def test_the_server_survived_the_fuzzing_with_bounded_memory(fuzz_mesh: FuzzMesh):
    survived_with_bounded_memory(fuzz_mesh)


@pytest.mark.slow
def test_the_server_survived_the_long_run_with_bounded_memory(fuzz_mesh: FuzzMesh):
    survived_with_bounded_memory(fuzz_mesh)

"""The fuzzer's judge catches what it must: an escaped exception, INTERNAL, a hang, leaked internals, a late answer.

A small plain grpc server (no casemesh runtime) on 127.0.0.1 plays a broken
service, so the checks of tests/fuzz/calls.py are shown to fail on the
faults the fuzzer hunts, and to pass a long stream the client cuts.
"""

from __future__ import annotations

import itertools
from concurrent import futures

import grpc
import pytest
from google.protobuf import empty_pb2

from .calls import DEADLINE_S, MAX_RESPONSES, SLACK_S, Outcome, invoke
from .contracts import Rpc

EMPTY = empty_pb2.Empty.DESCRIPTOR


def _boom(request, context):
    raise RuntimeError("handler bug")


def _internal(request, context):
    context.abort(grpc.StatusCode.INTERNAL, "broken invariant")


def _leak(request, context):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Unexpected <class 'KeyError'>: 'x'")


def _garbage(request, context):
    return b"\x0a\x02\xff"  # not an Empty: field 1 is a truncated string


def _endless(request, context):
    for _ in itertools.count():
        yield b""


def _fine(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


HANDLERS = {"Boom": grpc.unary_unary_rpc_method_handler(_boom), "Internal": grpc.unary_unary_rpc_method_handler(_internal),
            "Leak": grpc.unary_unary_rpc_method_handler(_leak), "Garbage": grpc.unary_unary_rpc_method_handler(_garbage),
            "Fine": grpc.unary_unary_rpc_method_handler(_fine), "Endless": grpc.unary_stream_rpc_method_handler(_endless)}


@pytest.fixture(scope="module")
def broken_channel():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Broken", HANDLERS)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(0)


def rpc(method: str, server_streaming: bool = False) -> Rpc:
    return Rpc("broken", "t.Broken", method, EMPTY, EMPTY, False, server_streaming)


@pytest.mark.parametrize("method, problem", [("Boom", "status UNKNOWN"), ("Internal", "status INTERNAL"),
                                             ("Leak", "leak internals"), ("Garbage", "not the method's response type")])
def test_server_faults_are_findings(broken_channel, method, problem):
    outcome = invoke(broken_channel, rpc(method), [b""])
    assert any(problem in p for p in outcome.problems()), outcome


def test_an_answer_is_not_a_finding_and_a_long_stream_is_cut(broken_channel):
    assert invoke(broken_channel, rpc("Fine"), [b""]).problems() == []
    stream = invoke(broken_channel, rpc("Endless", server_streaming=True), [b""])
    assert stream.cut and len(stream.responses) == MAX_RESPONSES and stream.problems() == []


def test_a_deadline_exceeded_or_a_late_answer_is_a_finding():
    hung = Outcome(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", [], DEADLINE_S)
    assert any("DEADLINE_EXCEEDED" in p for p in hung.problems())
    late = Outcome(grpc.StatusCode.NOT_FOUND, "", [], DEADLINE_S + SLACK_S + 1)
    assert any("past its" in p for p in late.problems())

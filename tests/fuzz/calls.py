"""One fuzzed call of any kind (unary, server-, client- or bidi-streaming) with raw bytes, and what it showed.

Bodies go out as raw bytes (no serializer), answers come back as raw bytes
and are decoded here against the response type, so a server that answers
``OK`` with bytes that are not its response type is caught too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from .contracts import Rpc

#: Deadline of every fuzzed call (s).
DEADLINE_S = 2.0
#: How late after its deadline a call may end, client side, on a loaded machine (s).
SLACK_S = 3.0
#: Responses read from a server stream before the client cuts it (cancels the call).
MAX_RESPONSES = 16
#: Server streams that stay open by design, tails of a log: they get a short deadline, and ending at it is their
#: normal end (DEADLINE_EXCEEDED after their answers), not a hang.
LIVE_TAILS = frozenset({"/casemesh.social.v1.TweetService/WatchTweets", "/casemesh.collab.v1.DocumentSyncService/Watch",
                        "/casemesh.rides.v1.LocationService/TrackDriver", "/casemesh.rides.v1.TripService/WatchRide",
                        "/casemesh.food.v1.OrderService/WatchOrder",
                        "/casemesh.trading.v1.MarketDataService/StreamMarketData"})
#: Live tails that send nothing until there is something new: a live stream's parts (a stream with no part published
#: yet has nothing to send), a driver's ride offers, fence events (none on a fresh mesh), a courier's assignments, an empty engine log's events. Open at their deadline with no answer is their normal state too.
QUIET_TAILS = frozenset({"/casemesh.live.v1.LiveOriginService/WatchParts", "/casemesh.live.v1.LiveEdgeService/StreamParts",
                         "/casemesh.rides.v1.DispatchService/ReceiveOffers",
                         "/casemesh.proximity.v1.GeofenceService/WatchFenceEvents",
                         "/casemesh.food.v1.FoodDispatchService/ReceiveAssignments",
                         "/casemesh.trading.v1.MatchingEngineService/StreamEvents"})
LIVE_TAILS = LIVE_TAILS | QUIET_TAILS
#: Deadline of a call to a live tail (s): long enough for its first answer, short enough not to wait 2 s per example.
TAIL_DEADLINE_S = 0.5
#: Blocking requests (LL-HLS's blocking playlist reload and preload-hint parts, RFC 8216bis §6.2.5.2): held until a
#: part is published, then answered DEADLINE_EXCEEDED by the server itself when the part did not come in time (a
#: stalled stream, documented in the protos). That answer, with the server's own details, is not a hang.
BLOCKING = frozenset({"/casemesh.live.v1.LiveOriginService/FetchPlaylist", "/casemesh.live.v1.LiveOriginService/FetchPart",
                      "/casemesh.live.v1.LiveEdgeService/GetPlaylist", "/casemesh.live.v1.LiveEdgeService/GetPart"})
#: The details grpc gives a call that reached its own deadline (a server's DEADLINE_EXCEEDED says more).
CLIENT_DEADLINE_DETAILS = "Deadline Exceeded"

#: Codes that are findings whatever the input: a server bug (UNKNOWN: an exception escaped a handler; INTERNAL),
#: or a call not answered within its deadline.
BAD_CODES = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Text in a status's details that only an escaped Python exception puts there.
LEAKS = ("Traceback", "Unexpected <class", "<class '", 'File "/')


@dataclass
class Outcome:
    """What one call returned: its status, how many responses, how long it took, and whether the client cut it."""

    code: grpc.StatusCode
    details: str
    responses: list[bytes]
    elapsed_s: float
    cut: bool = False
    undecodable_response: bool = False
    tail: bool = False  # a call to one of LIVE_TAILS
    quiet: bool = False  # a call to one of QUIET_TAILS
    blocking: bool = False  # a call to one of BLOCKING

    def problems(self) -> list[str]:
        """Why this outcome is a finding (empty when it is not)."""
        found = []
        # A live tail that answered and was still open at its deadline ended as it should: waiting for more.
        open_tail = self.tail and self.code == grpc.StatusCode.DEADLINE_EXCEEDED and (bool(self.responses) or self.quiet)
        # A blocking request the server itself gave up on (its wait limit, not the call's deadline): documented.
        gave_up = (self.blocking and self.code == grpc.StatusCode.DEADLINE_EXCEEDED
                   and self.details != CLIENT_DEADLINE_DETAILS and self.elapsed_s < DEADLINE_S)
        if (self.code in BAD_CODES and not (self.cut and self.code == grpc.StatusCode.CANCELLED) and not open_tail
                and not gave_up):
            found.append(f"status {self.code.name}: {self.details!r}")
        if any(leak in (self.details or "") for leak in LEAKS):
            found.append(f"details leak internals: {self.details!r}")
        if self.elapsed_s > DEADLINE_S + SLACK_S:
            found.append(f"answered {self.elapsed_s:.2f} s after the call, past its {DEADLINE_S} s deadline + {SLACK_S} s")
        if self.undecodable_response:
            found.append("a response is not the method's response type")
        return found


def invoke(channel: grpc.Channel, rpc: Rpc, bodies: Sequence[bytes], metadata: Sequence[tuple[str, str]] = ()) -> Outcome:
    """Call ``rpc`` on ``channel`` with ``bodies`` (the first only, unless the client streams), deadline :data:`DEADLINE_S`
    (:data:`TAIL_DEADLINE_S` for :data:`LIVE_TAILS`).

    A server stream is read up to :data:`MAX_RESPONSES` responses, then cut.
    Never raises for a gRPC status: it is the outcome's ``code``.
    """
    responses: list[bytes] = []
    cut = False
    tail = rpc.path in LIVE_TAILS
    deadline_s = TAIL_DEADLINE_S if tail else DEADLINE_S
    started = time.monotonic()
    try:
        if rpc.kind == "unary":
            responses.append(channel.unary_unary(rpc.path)(bodies[0], timeout=deadline_s, metadata=metadata))
        elif rpc.kind == "client_stream":
            responses.append(channel.stream_unary(rpc.path)(iter(bodies), timeout=deadline_s, metadata=metadata))
        else:
            if rpc.kind == "server_stream":
                call = channel.unary_stream(rpc.path)(bodies[0], timeout=deadline_s, metadata=metadata)
            else:
                call = channel.stream_stream(rpc.path)(iter(bodies), timeout=deadline_s, metadata=metadata)
            try:
                for response in call:
                    responses.append(response)
                    if len(responses) >= MAX_RESPONSES:
                        cut = True
                        call.cancel()
                        break
            finally:
                if not cut:
                    call.cancel()  # no-op once the stream ended
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    elapsed = time.monotonic() - started
    decode = message_factory.GetMessageClass(rpc.response).FromString
    undecodable = False
    for response in responses:
        try:
            decode(response)
        except DecodeError:
            undecodable = True
    return Outcome(code, details, responses, elapsed, cut, undecodable, tail, rpc.path in QUIET_TAILS, rpc.path in BLOCKING)


@dataclass
class RpcTally:
    """Per RPC: examples run, calls made, bodies sent, statuses seen, streams cut."""

    examples: int = 0
    calls: int = 0
    bodies: int = 0
    cut: int = 0
    codes: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, outcome: Outcome, bodies: int) -> None:
        self.calls += 1
        self.bodies += bodies
        self.cut += outcome.cut
        self.codes[outcome.code.name] += 1

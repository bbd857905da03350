"""``casemesh replay``: send a recording's calls again, open-loop, and compare their status codes.

Every recorded call is sent at its recorded start offset divided by the speed
factor (counted from the first call, so leading idle time is skipped), as a
generic call of bytes, so any method replays without its descriptors. A
call recorded with one request message (unary and server-streaming methods)
is sent as a unary-request call: the message and the half-close go out with
the call's start, in one batch, as the original client sent them. A call with
several (or none) is a stream-stream call: each request message is written at
its recorded offset from the call's start (also divided by the speed), then
the request side is half-closed. Responses are read to the end. (With a
separate write, a server that answers before the write, UNIMPLEMENTED for
instance, could see its status replaced by grpcio's own "Internal error from
Core" when the write failed first: 1 call in 200 here.) A call that the client
cancelled when it was recorded is cancelled after its recorded latency
divided by the speed. The recorded deadline is kept as is (it is the client's
budget, not a time on the schedule); calls recorded without one get
``default_timeout_s``.

Measurement is the driver's (harness/driver.py): latency from the intended
send time to the final status, so a slow target cannot hold the schedule back
(coordinated-omission free); HDR histograms per RPC split by status code
(:class:`~casemesh.harness.stats.RunStats`); send lag per call. Each call's
final status code is compared with the recorded one; mismatches are
divergences, counted per method, expected → actual code and the side that
made the actual status (:mod:`.status_side`: the server, or the client's own
gRPC stack: its deadline, its core, its connection), with one example message
per group and the first few calls as examples. At most ``max_inflight`` calls
are in flight at once: a call due while the limit is reached waits (its send
lag shows it), so a replay of many slow or expired calls cannot flood the
target with streams and resets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import grpc
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..driver import TICK_S, Progress
from ..report import calls_table, slo_table
from ..result import build_result
from ..stats import RunStats
from . import format as fmt
from .status_side import SERVER, status_side

log = logging.getLogger("casemesh.recording.replay")

#: Options of the replay channel: no message size limit (recorded messages were accepted once already).
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
#: Examples of divergences kept for the report.
MAX_EXAMPLES = 5
#: Default of ``--max-inflight``: calls of a replay in flight at once.
DEFAULT_MAX_INFLIGHT = 4096


@dataclass(frozen=True)
class DivergenceExample:
    """One call whose status differed from the recorded one.

    ``index`` is the call's position in start order (0-based), ``offset_s``
    its recorded start offset from the first call (s), ``method``
    ``package.Service/Method``, ``expected``/``actual`` ``grpc.StatusCode``
    names, ``details`` the actual status message, ``side`` who made it
    (``server``, ``client`` or ``transport``: :func:`.status_side.status_side`).
    """

    index: int
    offset_s: float
    method: str
    expected: str
    actual: str
    details: str
    side: str = SERVER


@dataclass
class ReplayOutcome:
    """What a replay measured: stats as ``casemesh run`` keeps them, divergences, and timing (s).

    ``divergences`` counts calls per (method, expected, actual) code;
    ``sides`` the same per (method, expected, actual, side), with
    ``group_examples`` holding the first message of each such group.
    """

    stats: RunStats
    calls: int
    completed: int = 0
    divergences: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    sides: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    group_examples: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    examples: list[DivergenceExample] = field(default_factory=list)
    scheduled_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def divergence_count(self) -> int:
        """Calls whose status code differed from the recorded one."""
        return sum(self.divergences.values())


class Replayer:
    """Replays ``recording`` over ``channel`` (an open ``grpc.aio`` channel to the target) at ``speed``.

    ``speed`` 2 sends the calls twice as fast (offsets halved). Calls recorded
    without a deadline get ``default_timeout_s`` (s). Await :meth:`run` in the
    event loop that owns the channel.
    """

    def __init__(self, recording: fmt.Recording, channel: grpc.aio.Channel, *, speed: float = 1.0,
                 default_timeout_s: float = 10.0, max_examples: int = MAX_EXAMPLES, max_inflight: int = DEFAULT_MAX_INFLIGHT):
        if speed <= 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, not {max_inflight}")
        self._slots = asyncio.Semaphore(max_inflight)
        self.recording = recording
        self.speed = speed
        self.default_timeout_s = default_timeout_s
        self.max_examples = max_examples
        self.stats = RunStats()
        self.progress = Progress()
        self.outcome = ReplayOutcome(stats=self.stats, calls=len(recording.calls))
        self._channel = channel
        self._methods: dict[tuple[str, bool], Any] = {}
        calls = recording.calls
        self._base_us = calls[0].start_offset_us if calls else 0
        if recording.span_us > fmt.MAX_TIME_US:  # read_recording refuses such a file: never plan a schedule of years
            raise ValueError(f"{recording.path}: the calls span {recording.span_us:,} µs, beyond {fmt.MAX_TIME_US:,} µs (7 days)")
        self.outcome.scheduled_s = recording.span_us / 1e6 / speed
        self._streams = server_streams(recording)

    def _method(self, method: str, single_request: bool) -> Any:
        """The multicallable of ``method`` (bytes in, bytes out): unary-stream for one request message, else stream-stream."""
        key = (method, single_request)
        multicallable = self._methods.get(key)
        if multicallable is None:
            open_call = self._channel.unary_stream if single_request else self._channel.stream_stream
            multicallable = self._methods[key] = open_call(method)
        return multicallable

    async def run(self, on_tick: Callable[[], None] | None = None) -> ReplayOutcome:
        """Send every call on schedule, wait for them (each bounded by its deadline), return the outcome.

        ``on_tick`` is called about once a second and once at the end.
        """
        calls = self.recording.calls
        speed, base_us = self.speed, self._base_us
        progress = self.progress
        timeline = self.stats.timeline
        end_s = self.outcome.scheduled_s
        timeline.begin(0.0, end_s, end_s)
        intended_per_s = timeline.intended
        in_flight: set[asyncio.Task] = set()
        progress.phase = "replaying"
        start = progress.started_at = time.perf_counter()
        next_tick = start + 1.0
        index = 0
        while index < len(calls):
            now = time.perf_counter()
            if now >= next_tick:
                next_tick += 1.0
                timeline.tick(progress.completed)
                if on_tick:
                    on_tick()
            due = start + (calls[index].start_offset_us - base_us) / 1e6 / speed
            if due > now:
                await asyncio.sleep(max(min(due, next_tick) - now, TICK_S))
                continue
            dispatched = 0
            while index < len(calls):
                call = calls[index]
                offset_s = (call.start_offset_us - base_us) / 1e6 / speed
                if start + offset_s > now:
                    break
                intended_per_s[min(int(offset_s), len(intended_per_s) - 1)] += 1
                task = asyncio.create_task(self._replay_call(index, call, start + offset_s))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                dispatched += 1
                index += 1
            progress.sent += dispatched
            timeline.add_sent(int(now - start), dispatched)
        timeline.finish(time.perf_counter() - start, progress.completed)
        progress.phase = "draining"
        progress.in_flight = len(in_flight)
        if in_flight:
            longest_s = max((c.timeout_us / 1e6 if c.timeout_us else self.default_timeout_s) for c in calls)
            _, pending = await asyncio.wait(in_flight, timeout=longest_s + 5)
            for task in pending:  # a call outliving its own deadline by 5 s: give up on it
                task.cancel()
        timeline.drained(progress.completed)
        self.outcome.elapsed_s = time.perf_counter() - start
        progress.phase = "done"
        if on_tick:
            on_tick()
        return self.outcome

    async def _replay_call(self, index: int, record: fmt.RecordedCall, intended: float) -> None:
        stats, progress, speed = self.stats, self.progress, self.speed
        key = record.method[1:]
        code, details = grpc.StatusCode.UNKNOWN, ""
        cancel_handle: asyncio.TimerHandle | None = None
        writer: asyncio.Task | None = None
        cancelled_by_us = False
        first_us: float | None = None
        await self._slots.acquire()  # --max-inflight: released when the call has ended (below)
        try:
            timeout = record.timeout_us / 1e6 if record.timeout_us else self.default_timeout_s
            single = len(record.requests) == 1
            metadata = fmt.call_metadata(record) or None
            if single:  # the request goes out with the call's start: no write can race the server's answer
                call = self._method(record.method, True)(record.requests[0].data, timeout=timeout, metadata=metadata)
            else:
                call = self._method(record.method, False)(timeout=timeout, metadata=metadata)
            stats.send_lag.record_value(max(int((time.perf_counter() - intended) * 1e6), 1))
            if record.ended_by == fmt.pb.CALL_END_CLIENT_CANCELLED:
                def cancel() -> None:
                    nonlocal cancelled_by_us
                    cancelled_by_us = True
                    call.cancel()
                delay = intended + record.latency_us / 1e6 / speed - time.perf_counter()
                cancel_handle = asyncio.get_running_loop().call_later(max(delay, 0.0), cancel)
            if not single:
                writer = asyncio.create_task(self._write_requests(call, record, intended))
            try:
                while await call.read() is not grpc.aio.EOF:
                    if first_us is None:
                        first_us = (time.perf_counter() - intended) * 1e6
                code, details = await call.code(), await call.details() or ""
            except grpc.aio.AioRpcError as error:
                code, details = error.code(), error.details() or ""
            except asyncio.CancelledError:
                if not cancelled_by_us:
                    raise
                code, details = grpc.StatusCode.CANCELLED, "cancelled by replay, as recorded"
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug must not stop the replay: counted as UNKNOWN and logged
            log.exception("replaying call %d (%s) failed", index, record.method)
            code, details = grpc.StatusCode.UNKNOWN, f"replay: {type(error).__name__}: {error}"
        finally:
            self._slots.release()
            if cancel_handle is not None:
                cancel_handle.cancel()
            if writer is not None:
                writer.cancel()
        stats.rpc(key).record(code.name, (time.perf_counter() - intended) * 1e6)
        if first_us is not None and record.method in self._streams:
            stats.first_message_of(key).record(code.name, first_us)
        progress.completed += 1
        self.outcome.completed += 1
        if code != grpc.StatusCode.OK:
            progress.failed += 1
        expected = fmt.status_name(record.status_code)
        if code.name != expected:
            outcome = self.outcome
            side = status_side(code, details)
            outcome.divergences[(key, expected, code.name)] += 1
            outcome.sides[(key, expected, code.name, side)] += 1
            outcome.group_examples.setdefault((key, expected, code.name, side), details)
            if len(outcome.examples) < self.max_examples:
                outcome.examples.append(DivergenceExample(index, round((record.start_offset_us - self._base_us) / 1e6, 6),
                                                          key, expected, code.name, details, side))

    async def _write_requests(self, call: grpc.aio.StreamStreamCall, record: fmt.RecordedCall, intended: float) -> None:
        """Each request at its recorded offset from the call's start (÷ speed), then half-close."""
        speed = self.speed
        try:
            for message in record.requests:
                delay = intended + message.offset_us / 1e6 / speed - time.perf_counter()
                if delay > TICK_S:
                    await asyncio.sleep(delay)
                await call.write(message.data)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the target ended the call before taking every request: its status is what counts


def server_streams(recording: fmt.Recording) -> set[str]:
    """Methods the recording shows streaming responses: a call answered with several messages, or with one and then an error.

    Replay records their time to first message (``first_message`` in
    result.json), as ``casemesh run`` does for server streams.
    """
    return {c.method for c in recording.calls if len(c.responses) > 1 or (c.responses and c.status_code != 0)}


class _ReplayArrival:
    """The replay's schedule in the shape ``build_result`` reads from a profile's arrival model."""

    process = "replay"

    def __init__(self, speed: float, calls: int, scheduled_s: float):
        self.speed, self.calls, self.scheduled_s = speed, calls, scheduled_s

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return {"process": self.process, "speed": self.speed, "calls": self.calls, "scheduled_s": round(self.scheduled_s, 6)}

    def offered_rate_per_s(self, run_s: float, start_s: float, end_s: float) -> float:
        """Calls per second of the schedule (all calls when they share one instant)."""
        return self.calls / self.scheduled_s if self.scheduled_s > 0 else float(self.calls)


def check_slos(slos: Sequence[Any], recording: fmt.Recording, file: str) -> None:
    """Replay measures RPCs only: an SLO selecting a journey, or an RPC the recording never calls, is a ``ConfigError``."""
    from ..errors import ConfigError

    from ..slo import Selector

    methods = [m[1:] for m in recording.methods]
    for slo in slos:
        for selector in (slo.total, slo.good):
            if not isinstance(selector, Selector):  # Prometheus SLOs: not evaluated without a Prometheus, as in run
                continue
            if selector.journey is not None:
                raise ConfigError(f"SLO {slo.name!r} selects journey {selector.journey!r}: a replay measures RPCs, not journeys "
                                  "(select rpc: package.Service/Method, or neither for every RPC)", file=file)
            if selector.rpc is not None and selector.rpc not in methods:
                raise ConfigError(f"SLO {slo.name!r} selects RPC {selector.rpc!r}, which the recording never calls; "
                                  f"its methods: {', '.join(methods) or '(none)'}", file=file)


def build_replay_result(*, recording: fmt.Recording, outcome: ReplayOutcome, verdicts: list[Any], target: str,
                        started_at: datetime, speed: float, default_timeout_s: float, valid: bool, invalid_reasons: list[str],
                        fail_on_divergence: bool) -> dict[str, Any]:
    """The ``result.json`` of a replay: ``casemesh run``'s schema (harness/result.py) plus a ``replay`` section.

    ``profile`` describes the recording (``workload`` null, ``arrival.process``
    ``replay``, ``journeys`` empty); ``duration_s``/``throughput.measured_s``
    is the replay's wall time from the first call to the last completion (s);
    ``throughput.completed_rps`` counts calls, as there are no journeys.
    """
    measured_s = round(max(outcome.elapsed_s, 1e-3), 3)
    as_profile = SimpleNamespace(
        name=recording.path.stem, path=recording.path, workload=SimpleNamespace(name=None),
        arrival=_ReplayArrival(speed, outcome.calls, outcome.scheduled_s), warmup_s=0.0, duration_s=measured_s,
        request_timeout_ms=default_timeout_s * 1000, journeys=(),
    )
    result = build_result(profile=as_profile, stats=outcome.stats, verdicts=verdicts, target={"mode": "external", "services": {"replay": target}},
                          started_at=started_at, valid=valid, invalid_reasons=invalid_reasons)
    result["throughput"]["completed_rps"] = round(outcome.completed / measured_s, 2)  # calls: a replay has no journeys
    header = recording.header
    by_method = [{"method": m, "expected": e, "actual": a, "count": n} for (m, e, a), n in outcome.divergences.most_common()]
    by_side = [{"method": m, "expected": e, "actual": a, "side": s, "count": n, "example": outcome.group_examples[(m, e, a, s)]}
               for (m, e, a, s), n in outcome.sides.most_common()]
    result["replay"] = {
        "recording": str(recording.path),
        "format_version": header.format_version,
        "recorded_at": recording.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "recorded_upstream": header.upstream_address,
        "complete": recording.end is not None,
        "speed": speed,
        "calls": outcome.calls,
        "completed": outcome.completed,
        "recorded_span_s": round(recording.span_us / 1e6, 6),
        "scheduled_span_s": round(outcome.scheduled_s, 6),
        "elapsed_s": round(outcome.elapsed_s, 3),
        "fail_on_divergence": fail_on_divergence,
        "divergences": {
            "count": outcome.divergence_count,
            "client_side": sum(n for (_, _, _, side), n in outcome.sides.items() if side != SERVER),
            "by_method": by_method,
            "by_side": by_side,
            "examples": [vars(e) for e in outcome.examples],
        },
    }
    if fail_on_divergence and outcome.divergence_count:
        result["passed"] = False
    return result


def replay_summary_view(result: dict[str, Any]) -> Group:
    """The final tables of a replay result: RPCs, send lag, divergences, SLOs and the verdict line."""
    lag = result["send_lag"]
    replay = result["replay"]
    divergences = replay["divergences"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f}"

    parts: list[Any] = [
        calls_table("RPCs", result["rpcs"], short_names=True),
        Text(f"replayed {replay['completed']:,} of {replay['calls']:,} calls at speed {replay['speed']:g} in {replay['elapsed_s']:.2f} s "
             f"(schedule {replay['scheduled_span_s']:.2f} s); send lag: p50 {ms(lag['p50_ms'])} ms, p99 {ms(lag['p99_ms'])} ms, max {ms(lag['max_ms'])} ms"),
    ]
    if divergences["count"]:
        table = Table(title=f"Divergences from the recorded status codes ({divergences['count']:,} calls)", title_justify="left")
        for column, justify in (("method", "left"), ("recorded", "left"), ("replayed", "left"), ("made by", "left"),
                                ("calls", "right"), ("example message", "left")):
            table.add_column(column, justify=justify)
        for row in divergences.get("by_side") or [{**r, "side": SERVER, "example": ""} for r in divergences["by_method"]]:
            table.add_row(escape(row["method"].rsplit(".", 1)[-1]), row["expected"], row["actual"], row["side"], f"{row['count']:,}",
                          escape(row["example"][:120]))
        parts.append(table)
        if divergences.get("client_side"):
            parts.append(Text(f"{divergences['client_side']:,} of them made by the client's own gRPC stack or the connection, not sent by "
                              "the target (its deadline expired, its core failed, the connection broke): they point at the replaying "
                              "machine or the network", style="yellow"))
        for example in divergences["examples"]:
            parts.append(Text(f"  call #{example['index']} at {example['offset_s']:.3f} s {example['method']}: recorded {example['expected']}, "
                              f"got {example['actual']}" + (f" ({example['details']})" if example["details"] else "")))
    else:
        parts.append(Text("no divergences: every call ended with its recorded status code", style="green"))
    if result["slos"]:
        parts.append(slo_table(result["slos"]))
    if not result["valid"]:
        parts.append(Text("RUN INVALID: " + "; ".join(result["invalid_reasons"]), style="bold yellow"))
    elif result["passed"]:
        parts.append(Text(f"PASSED: all {len(result['slos'])} SLOs met" if result["slos"] else "PASSED: no SLOs to judge", style="bold green"))
    else:
        failed = [s["name"] for s in result["slos"] if not s["passed"]]
        if replay["fail_on_divergence"] and divergences["count"]:
            failed.append(f"{divergences['count']} divergences (--fail-on-divergence)")
        parts.append(Text(f"FAILED: {', '.join(failed)}", style="bold red"))
    return Group(*parts)

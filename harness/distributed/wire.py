"""The worker messages of harness/workers.py as ``casemesh.harness.v1`` protobuf messages, and back.

The local pool (``--workers N``) passes tuples over a pipe; the distributed
harness carries the same tuples in ``JoinRequest`` messages
(protos/casemesh/harness/v1/coordinator.proto), so both coordinators merge
them with the same code (:class:`~casemesh.harness.workers.WorkerPool`).
Statistics travel as the JSON of :meth:`RunStats.to_wire
<casemesh.harness.stats.RunStats.to_wire>`, whose histograms are already
encoded HDR histograms (base64 text).
"""

from __future__ import annotations

import json
from typing import Any

from casemesh.harness.v1 import coordinator_pb2 as pb

#: The counters of a worker (harness/workers.py ``_counts``) in order.
COUNT_KEYS = ("sent", "completed", "failed", "in_flight", "measured_sent")


def request_of(message: tuple[Any, ...]) -> pb.JoinRequest:
    """The ``JoinRequest`` carrying a worker message: ``("ready", {...})``, ``("tick", COUNTS, WIRE)``,
    ``("done", COUNTS, WIRE, {"start_skew_s", "cpu_s"})`` or ``("error", TEXT)``; ``ValueError`` for another kind."""
    kind = message[0]
    if kind == "ready":
        return pb.JoinRequest(ready=pb.WorkerReady())
    if kind == "tick":
        return pb.JoinRequest(progress=pb.WorkerProgress(counts=_counts(message[1]), stats_json=json.dumps(message[2])))
    if kind == "done":
        info = message[3]
        return pb.JoinRequest(finished=pb.WorkerFinished(counts=_counts(message[1]), stats_json=json.dumps(message[2]),
                                                         start_skew_ms=info["start_skew_s"] * 1000, cpu_s=info["cpu_s"]))
    if kind == "error":
        return pb.JoinRequest(failure=pb.WorkerFailure(message=str(message[1])))
    raise ValueError(f"no JoinRequest for a worker message of kind {kind!r}")


def message_of(request: pb.JoinRequest, pid: int | None) -> tuple[Any, ...]:
    """The worker message a ``JoinRequest`` carries (the inverse of :func:`request_of`); ``ValueError`` for a
    ``hello``, an empty request or statistics that are not JSON."""
    kind = request.WhichOneof("event")
    try:
        if kind == "ready":
            return ("ready", {"pid": pid})
        if kind == "progress":
            return ("tick", _count_dict(request.progress.counts), json.loads(request.progress.stats_json))
        if kind == "finished":
            done = request.finished
            return ("done", _count_dict(done.counts), json.loads(done.stats_json),
                    {"start_skew_s": done.start_skew_ms / 1000, "cpu_s": done.cpu_s})
    except json.JSONDecodeError as error:
        raise ValueError(f"its {kind} statistics are not JSON: {error}") from None
    if kind == "failure":
        return ("error", request.failure.message)
    raise ValueError(f"unexpected {kind or 'empty'} message")


def _counts(counts: dict[str, Any]) -> pb.WorkerCounts:
    return pb.WorkerCounts(phase=counts["phase"], **{key: max(int(counts[key]), 0) for key in COUNT_KEYS})


def _count_dict(counts: pb.WorkerCounts) -> dict[str, Any]:
    return {"phase": counts.phase, **{key: getattr(counts, key) for key in COUNT_KEYS}}

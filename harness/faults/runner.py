"""Switching a run's faults on and off at their times, against the embedded mesh.

Server-side faults (abort, delay) reach the services through a schedule file,
not an RPC: the harness writes ``OUT/faults/schedule.json`` with each fault's
absolute start and end (Unix seconds) as soon as the run's clock starts, and
every service process, started with ``CASEMESH_FAULTS`` naming that file,
follows it (services/runtime/faults.py). Why a file: it needs no new network
endpoint to secure (nothing to switch on in production, no authorization to
declare), it reaches a service that is overloaded, shedding or restarting as
surely as an idle one (a control RPC would queue behind the load, or be shed),
and a process restarted mid-run reads it again. The price: it works for
services on this machine only, which is what the embedded mesh is; faults
with ``--target`` are refused. The services log each switch to
``OUT/faults/schedule.json.events.jsonl``; those lines are each fault's actual
active interval.

Process faults (kill, pause) act on the mesh's processes (harness/mesh.py):
``Mesh.kill`` takes the service out of supervision (the supervisor does not
restart a deliberate kill) and ``Mesh.start_services`` brings it back; a
paused (SIGSTOPped) process is alive to the supervisor. A pause is always
resumed: at its end, when the run is cancelled or fails (:meth:`FaultRunner.stop`,
and ``Mesh.stop``), and, should the harness itself die, by a detached
``sh`` watchdog that sends SIGCONT shortly after the pause was due to end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casemesh.services.runtime.faults import FAULTS_ENV, SCHEDULE_VERSION, events_path

from ..errors import HarnessError
from ..supervisor import describe_exit
from .model import Fault

log = logging.getLogger("casemesh.harness.faults")

#: A pause's watchdog sends SIGCONT this long after the pause was due to end (s), should the harness not have.
WATCHDOG_SLACK_S = 15.0


@dataclass
class FaultRecord:
    """What happened to one fault: ``events`` (``{"event", "at_unix_s", ...}``) and its actual interval (Unix s, ``None``: never/open)."""

    fault: Fault
    events: list[dict[str, Any]] = field(default_factory=list)
    start_unix_s: float | None = None
    end_unix_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def event(self, name: str, **details: Any) -> float:
        now = time.time()
        self.events.append({"event": name, "at_unix_s": round(now, 4), **details})
        return now


class FaultRunner:
    """Runs ``faults`` against ``mesh`` (a :class:`~casemesh.harness.mesh.Mesh`) during one run; files under ``directory``.

    Call :meth:`prepare` before the mesh starts (and give the mesh :attr:`env`),
    start :meth:`run` as a task beside the driver, and always :meth:`stop` it
    in the run's cleanup. :attr:`records` holds what happened, by fault name;
    :attr:`origin_unix_s` is the measured window's start (Unix s).
    """

    def __init__(self, faults: Sequence[Fault], mesh: Any, directory: Path, *, say: Callable[[str], None] | None = None):
        self.faults = tuple(faults)
        self.mesh = mesh
        self.directory = directory
        self.schedule = directory / "schedule.json"
        self.say = say or (lambda line: None)
        self.records = {f.name: FaultRecord(f) for f in self.faults}
        self.origin_unix_s: float | None = None
        self._duration_s = 0.0
        self._paused: dict[str, Fault] = {}
        self._watchdogs: dict[str, subprocess.Popen] = {}
        self._task: asyncio.Task | None = None

    @property
    def server_faults(self) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.server_side)

    @property
    def env(self) -> dict[str, str]:
        """What the services' environment needs: ``CASEMESH_FAULTS`` when the run has server-side faults, else nothing."""
        return {FAULTS_ENV: str(self.schedule.resolve())} if self.server_faults else {}

    def prepare(self) -> None:
        """Create the directory and remove a previous run's schedule and events (an ``--out`` used again)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in (self.schedule, events_path(self.schedule)):
            stale.unlink(missing_ok=True)

    def start(self, progress: Any, warmup_s: float, duration_s: float) -> None:
        """:meth:`run` as a task of the running loop; :meth:`stop` ends it."""
        self._task = asyncio.get_running_loop().create_task(self._logged(self.run(progress, warmup_s, duration_s)), name="faults")

    async def _logged(self, work: Any) -> None:
        try:
            await work
        except Exception:  # noqa: BLE001 - a fault that cannot be carried out must not end the run; it is logged
            log.exception("fault injection failed")

    async def run(self, progress: Any, warmup_s: float, duration_s: float) -> None:
        """Wait for the driver's clock (``progress.started_at``, ``time.perf_counter()``), then run every fault at its time."""
        while not progress.started_at:
            await asyncio.sleep(0.005)
        origin = progress.started_at + warmup_s
        self.origin_unix_s = time.time() + (origin - time.perf_counter())
        self._duration_s = duration_s
        if self.server_faults:
            self._write_schedule(duration_s)
        await asyncio.gather(*(self._process_fault(f, origin) for f in self.faults if not f.server_side))

    def _write_schedule(self, duration_s: float) -> None:
        entries = []
        for fault in self.server_faults:
            for full in fault.grpc_methods:
                service, _, method = full.partition("/")
                entries.append({"name": fault.name, "service": service, "process": fault.service,
                                "method": None if method == "*" else method,
                                "start_unix_s": self.origin_unix_s + fault.at_s,
                                "end_unix_s": self.origin_unix_s + fault.end_s(duration_s),
                                "percent": fault.percent, "abort": fault.code,
                                "delay": fault.delay.to_dict() if fault.delay else None})
        temporary = self.schedule.with_name(self.schedule.name + ".tmp")
        temporary.write_text(json.dumps({"version": SCHEDULE_VERSION, "faults": entries}, indent=1) + "\n")
        os.replace(temporary, self.schedule)  # atomic: a service never reads half a schedule

    async def _process_fault(self, fault: Fault, origin: float) -> None:
        record = self.records[fault.name]
        await _sleep_until(origin + fault.at_s)
        name = fault.service
        pid = self.mesh.pid(name)
        if pid is None:
            record.notes.append(f"{name} was not running at {fault.at_s:g} s: nothing to {fault.kind}")
            return
        if fault.kind == "pause":
            await self._pause(fault, record, pid, origin)
        else:
            await self._kill(fault, record, pid, origin)

    async def _pause(self, fault: Fault, record: FaultRecord, pid: int, origin: float) -> None:
        end = origin + fault.end_s(self._duration_s)
        if not self.mesh.pause(fault.service):
            record.notes.append(f"{fault.service} had exited: not paused")
            return
        record.start_unix_s = record.event("pause", pid=pid, signal="SIGSTOP")
        self._paused[fault.service] = fault
        self._watchdogs[fault.service] = subprocess.Popen(  # resumes it even if this process dies meanwhile
            ["/bin/sh", "-c", f"sleep {max(end - time.perf_counter(), 0) + WATCHDOG_SLACK_S:.1f}; kill -CONT {pid} 2>/dev/null"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.say(f"fault {fault.name}: paused {fault.service} (pid {pid})")
        try:
            await _sleep_until(end)
        finally:
            self._resume(fault.service)

    def _resume(self, service: str) -> None:
        fault = self._paused.pop(service, None)
        watchdog = self._watchdogs.pop(service, None)
        if watchdog is not None and watchdog.poll() is None:
            watchdog.terminate()
            watchdog.wait()
        if fault is None:
            return
        resumed = self.mesh.resume(service)
        record = self.records[fault.name]
        record.end_unix_s = record.event("resume" if resumed else "resume_skipped", signal="SIGCONT")
        if resumed:
            self.say(f"fault {fault.name}: resumed {service}")

    async def _kill(self, fault: Fault, record: FaultRecord, pid: int, origin: float) -> None:
        sig = signal.Signals[fault.signal or "SIGKILL"]
        record.start_unix_s = record.event("kill", pid=pid, signal=sig.name)
        code = await asyncio.to_thread(self.mesh.kill, fault.service, sig)  # SIGTERM waits for the graceful stop
        record.event("exited", pid=pid, exit=describe_exit(code) if code is not None else "already gone")
        self.say(f"fault {fault.name}: {sig.name} to {fault.service} (pid {pid}): {describe_exit(code) if code is not None else 'already gone'}")
        if fault.for_s is None:
            return  # down until the run ends: the interval ends with the window
        await _sleep_until(origin + fault.at_s + fault.for_s)
        record.event("restart")
        try:
            await self.mesh.start_services([fault.service])
        except HarnessError as error:
            record.notes.append(f"restart failed: {str(error).splitlines()[0]}")
            record.event("restart_failed")
            return
        record.end_unix_s = record.event("serving", pid=self.mesh.pid(fault.service))
        self.say(f"fault {fault.name}: {fault.service} restarted and SERVING (pid {self.mesh.pid(fault.service)})")

    def stop(self) -> None:
        """End the task, resume every process still paused and end the watchdogs (idempotent; call in the run's cleanup)."""
        if self._task is not None:
            self._task.cancel()
        for service in list(self._paused) + list(self._watchdogs):
            self._resume(service)

    def read_service_events(self) -> None:
        """Fold the services' fault switches (``schedule.json.events.jsonl``) into :attr:`records` (call after the mesh stopped)."""
        path = events_path(self.schedule)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                event = json.loads(line)
                record = self.records.get(event["fault"])
                at = float(event["at_unix_s"])
            except (ValueError, KeyError, TypeError):
                continue
            if record is None:
                continue
            record.events.append({"event": event.get("event"), "at_unix_s": at, "pid": event.get("pid"),
                                  "grpc_method": f"{event.get('service')}/{event.get('method') or '*'}"})
            if event.get("event") == "start":
                record.start_unix_s = at if record.start_unix_s is None else min(record.start_unix_s, at)
            elif event.get("event") == "end":
                record.end_unix_s = at if record.end_unix_s is None else max(record.end_unix_s, at)
        for record in self.records.values():
            record.events.sort(key=lambda e: e["at_unix_s"])
            fault = record.fault
            if fault.kind == "kill" and fault.for_s is not None and record.end_unix_s is None and not record.notes:
                record.notes.append(f"{fault.service} was not SERVING again before the run ended (its restart was under way)")
            if record.fault.server_side and record.start_unix_s is None:
                record.notes.append("no service reported switching it on (did the run reach its start?)")


async def _sleep_until(perf_deadline: float) -> None:
    delay = perf_deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)

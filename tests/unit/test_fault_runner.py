"""Process faults from the harness: a pause is resumed at its end, when the run stops early, and by the watchdog if the harness dies."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from casemesh.harness.faults import runner as runner_module
from casemesh.harness.faults.plan import fault_from_cli
from casemesh.harness.faults.runner import FaultRunner


class OneProcessMesh:
    """The part of harness.mesh.Mesh the runner uses, over one real (sleeping) process named ``svc``."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(["sleep", "60"])
        self.paused = False
        self.resumes = 0

    def pid(self, name: str) -> int:
        return self.process.pid

    def pause(self, name: str) -> bool:
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True
        return True

    def resume(self, name: str) -> bool:
        self.resumes += 1
        if not self.paused:
            return False
        self.paused = False
        self.process.send_signal(signal.SIGCONT)
        return True

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def state(pid: int) -> str:
    """The process's state letter from /proc (``T``: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


class Clock:
    started_at = 0.0


async def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def start_paused(tmp_path: Path, for_s: str) -> tuple[FaultRunner, OneProcessMesh]:
    mesh = OneProcessMesh()
    fault = fault_from_cli(f"analytics:pause,at=0s,for={for_s}", ["analytics"])
    runner = FaultRunner([fault], mesh, tmp_path / "faults")
    runner.prepare()
    clock = Clock()
    clock.started_at = time.perf_counter()
    runner.start(clock, warmup_s=0.0, duration_s=600.0)
    await wait_for(lambda: state(mesh.process.pid) == "T")
    return runner, mesh


async def test_a_pause_ends_on_time_and_is_recorded(tmp_path):
    runner, mesh = await start_paused(tmp_path, "300ms")
    try:
        await wait_for(lambda: state(mesh.process.pid) != "T")
        record = runner.records["pause:analytics"]
        assert [e["event"] for e in record.events] == ["pause", "resume"]
        assert 0.25 <= record.end_unix_s - record.start_unix_s < 5
    finally:
        runner.stop()
        mesh.close()


async def test_a_run_that_stops_early_resumes_the_paused_process(tmp_path):
    runner, mesh = await start_paused(tmp_path, "60s")
    try:
        runner.stop()  # what casemesh run's cleanup does, whatever ended the run
        assert state(mesh.process.pid) != "T" and mesh.resumes == 1
        assert not runner._watchdogs
    finally:
        mesh.close()


async def test_the_watchdog_resumes_it_when_the_harness_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "WATCHDOG_SLACK_S", 0.3)
    runner, mesh = await start_paused(tmp_path, "200ms")
    watchdog = runner._watchdogs.pop("analytics")  # as if the harness had died: nothing of it resumes the process
    mesh.resume = lambda name: False
    try:
        await wait_for(lambda: state(mesh.process.pid) != "T")
        assert watchdog.wait(5) == 0
    finally:
        runner.stop()
        mesh.close()

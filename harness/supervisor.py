"""Restarting crashed service processes with exponential backoff.

Used by the embedded mesh (:class:`casemesh.harness.mesh.Mesh` restarts a
service process that exits without being asked to) and by ``casemesh serve``
(which, unless ``--no-supervise``, runs the services in a child process and
restarts it when it crashes).

The policy is Kubernetes' CrashLoopBackOff (kubelet: restart delay doubling
from 10 s up to 5 min, reset after 10 min of running) with shorter times
suited to a benchmark run: the ``n``-th restart in a row waits
``min(initial_backoff_s * 2^(n-1), max_backoff_s)``; a process that stayed
up ``reset_after_s`` starts a new streak; after ``max_restarts`` crashes in a
row it is left down (logged as an error), so a service that cannot start does
not restart forever.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from casemesh.services.runtime.parent_watch import parent_environment

log = logging.getLogger("casemesh.harness.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervisor restarts a crashed process (all times in seconds)."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    multiplier: float = 2.0
    #: Crashes in a row (none separated by ``reset_after_s`` of uptime) after which the process is left down.
    max_restarts: int = 10
    reset_after_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError(f"need 0 < initial_backoff_s <= max_backoff_s (got {self.initial_backoff_s}, {self.max_backoff_s})")
        if self.multiplier < 1 or self.max_restarts < 0 or self.reset_after_s <= 0:
            raise ValueError("need multiplier >= 1, max_restarts >= 0 and reset_after_s > 0")

    def delay_s(self, attempt: int) -> float:
        """The wait before restart number ``attempt`` (1-based) of a streak."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))


class CrashStreak:
    """Consecutive crashes of one process under ``policy``; call :meth:`started` at each (re)start."""

    def __init__(self, policy: RestartPolicy):
        self.policy = policy
        self.count = 0
        self.started_at = time.monotonic()

    def started(self) -> None:
        self.started_at = time.monotonic()

    def crashed(self) -> float | None:
        """The wait before restarting (s), or ``None`` when the streak has used up ``max_restarts``."""
        if time.monotonic() - self.started_at >= self.policy.reset_after_s:
            self.count = 0
        self.count += 1
        if self.count > self.policy.max_restarts:
            return None
        return self.policy.delay_s(self.count)


def describe_exit(returncode: int) -> str:
    """``-9`` → ``killed by SIGKILL``; ``1`` → ``exit code 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


#: Exit codes a restart cannot cure (casemesh's configuration error): not restarted.
FATAL_EXIT_CODES = frozenset({2})


def supervise(command: list[str], policy: RestartPolicy = RestartPolicy(), name: str = "casemesh serve") -> int:
    """Run ``command`` and restart it with backoff whenever it crashes; returns its last exit code.

    A crash is an exit by a signal or with a non-zero code other than a
    configuration error (2). SIGTERM and SIGINT received here are passed to
    the child, which then shuts down gracefully, and nothing is restarted. An
    exit with code 0 (the child was stopped on its own) ends supervision too.
    Must run in the main thread (it installs signal handlers).
    """
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    streak = CrashStreak(policy)
    restarts = 0
    try:
        while True:
            # Its own process group: a terminal's Ctrl-C reaches it once, forwarded from here.
            child = subprocess.Popen(command, start_new_session=True, env={**os.environ, **parent_environment()})
            streak.started()
            returncode = child.wait()
            if stopping.is_set() or returncode == 0 or returncode in FATAL_EXIT_CODES:
                return returncode
            delay = streak.crashed()
            if delay is None:
                log.error("%s (pid %d) %s: crashed %d times in a row, not restarting it again", name, child.pid,
                          describe_exit(returncode), streak.count)
                return returncode
            restarts += 1
            log.warning("%s (pid %d) %s: restart %d in %.1f s", name, child.pid, describe_exit(returncode), restarts, delay)
            if stopping.wait(delay):
                return returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

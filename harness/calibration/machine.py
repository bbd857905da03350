"""What machine a run measures on, and how busy it was: fingerprint, CPU steal, other processes' load.

In the style of pyperf's system checks (``pyperf system show``): a verdict
about a system is only as good as the machine under it, so every run records

- a **fingerprint** (:func:`fingerprint`): CPU model, logical CPUs, Python,
  grpcio and casemesh versions, and the frequency governor where Linux
  exposes it. Calibrations are cached per fingerprint (cache.py);
- a **CPU watch** over the measured window (:class:`CpuWatch`, from psutil's
  system-wide and per-process CPU times, i.e. ``/proc/stat`` and
  ``/proc/PID/stat`` on Linux): the share of the machine's CPU time that the
  hypervisor stole (``steal``), that this run's own processes used (the
  harness, its workers, the services it started, and with ``--target`` the
  local processes listening on the target addresses), and that *other*
  processes used. A run is ``noisy`` when other processes took more than
  :data:`NOISY_OTHER_PCT` % of the machine, or steal exceeded
  :data:`NOISY_STEAL_PCT` %.

Percentages are of the whole machine (all logical CPUs): 50 % on 2 CPUs is
one core's worth.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

#: Other processes' CPU above this share of the machine (%) marks a run noisy (the issue's 10 %).
NOISY_OTHER_PCT = 10.0
#: CPU steal above this share of the machine (%) marks a run noisy: the hypervisor took the time.
NOISY_STEAL_PCT = 5.0
_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux, else ``platform.processor()``), or ``"unknown"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fingerprint() -> dict[str, Any]:
    """What a calibration holds for: ``cpu_model``, ``cpus`` (logical), ``python``, ``grpcio``, ``casemesh``, ``governor`` (or ``None``).

    Two machines with the same fingerprint are taken to measure alike; the
    calibration cache is keyed by it (the governor excepted: it may change
    without the machine changing).
    """
    try:
        governor: str | None = _GOVERNOR.read_text().strip()
    except OSError:
        governor = None
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count() or 1,
        "python": sys.version.split()[0],
        "grpcio": _version("grpcio"),
        "casemesh": _version("casemesh"),
        "platform": platform.platform(),
        "governor": governor,
    }


def fingerprint_key(found: dict[str, Any]) -> str:
    """The cache key of a fingerprint: ``CPU model|cpus|python|grpcio|casemesh``."""
    return "|".join(str(found[k]) for k in ("cpu_model", "cpus", "python", "grpcio", "casemesh"))


@dataclass(frozen=True)
class CpuUse:
    """The machine's CPU over a window, in % of all logical CPUs (``window_s`` seconds of wall time).

    ``busy_pct``: everything but idle and iowait; ``steal_pct``: taken by the
    hypervisor; ``own_pct``: this run's processes; ``other_pct``: the rest of
    ``busy_pct`` (other processes and the kernel's own work); ``noisy`` when
    ``other_pct`` > :data:`NOISY_OTHER_PCT` or ``steal_pct`` > :data:`NOISY_STEAL_PCT`;
    ``warnings`` says why, in words.
    """

    window_s: float
    cpus: int
    busy_pct: float
    steal_pct: float
    own_pct: float
    other_pct: float
    noisy: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        for key in ("window_s", "busy_pct", "steal_pct", "own_pct", "other_pct"):
            data[key] = round(data[key], 2)
        return data


def listening_pids(addresses: Iterable[str]) -> list[int]:
    """PIDs of the local processes listening on ``addresses`` (``HOST:PORT``; loopback and wildcard listeners match).

    With ``--target`` on this machine, the system under test is another
    process: its CPU is the run's own work, not other processes' noise. An
    address whose listener cannot be seen (another host, no permission)
    contributes nothing.
    """
    ports = set()
    for address in addresses:
        _, _, port = address.rpartition(":")
        if port.isdigit():
            ports.add(int(port))
    if not ports:
        return []
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return []
    return sorted({c.pid for c in connections
                   if c.status == psutil.CONN_LISTEN and c.pid and c.laddr and c.laddr.port in ports})


def _process_cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds of ``pids`` (processes that are gone count 0)."""
    total = 0.0
    for pid in set(pids):
        try:
            times = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        total += times.user + times.system
    return total


def _idle(times: Any) -> float:
    return times.idle + getattr(times, "iowait", 0.0)


class CpuWatch:
    """Measures :class:`CpuUse` between :meth:`start` and :meth:`stop`.

    ``own_pids`` is called at both ends and gives the PIDs of this run's
    processes (the harness itself is always counted, with its children, e.g.
    the services of the embedded mesh and ``--workers`` processes); a process
    that ends inside the window loses its share to ``other_pct`` (an
    overestimate of noise, never an underestimate of own work).
    """

    def __init__(self, own_pids: Callable[[], Iterable[int]] | None = None):
        self._own_pids = own_pids or (lambda: ())
        self._start: tuple[float, Any, dict[int, float]] | None = None

    def _pids(self) -> list[int]:
        me = psutil.Process()
        pids = [me.pid, *self._own_pids()]
        try:
            pids += [child.pid for child in me.children(recursive=True)]
        except psutil.Error:
            pass
        return pids

    def _per_pid(self) -> dict[int, float]:
        return {pid: _process_cpu_s([pid]) for pid in set(self._pids())}

    def start(self) -> None:
        self._start = (time.monotonic(), psutil.cpu_times(), self._per_pid())

    def stop(self) -> CpuUse | None:
        """The window's :class:`CpuUse` (``None`` before :meth:`start`, or for a window under 0.1 s)."""
        if self._start is None:
            return None
        began, times0, own0 = self._start
        window_s = time.monotonic() - began
        times1, own1 = psutil.cpu_times(), self._per_pid()
        if window_s < 0.1:
            return None
        cpus = psutil.cpu_count() or 1
        total = sum(times1) - sum(times0)
        if total <= 0:
            return None
        busy = total - (_idle(times1) - _idle(times0))
        steal = getattr(times1, "steal", 0.0) - getattr(times0, "steal", 0.0)
        own = sum(max(own1.get(pid, 0.0) - own0.get(pid, 0.0), 0.0) for pid in own1)
        # Jiffies from /proc/stat are per CPU; per-process times are plain CPU seconds: bring both to % of the machine.
        capacity_s = total if total > 0 else window_s * cpus
        busy_pct = 100.0 * busy / capacity_s
        steal_pct = 100.0 * steal / capacity_s
        own_pct = min(100.0 * own / capacity_s, busy_pct)
        other_pct = max(busy_pct - own_pct - steal_pct, 0.0)
        warnings: list[str] = []
        if other_pct > NOISY_OTHER_PCT:
            warnings.append(f"other processes used {other_pct:.0f}% of this machine's CPU during the measured window "
                            f"(more than {NOISY_OTHER_PCT:g}%): latencies include their interference")
        if steal_pct > NOISY_STEAL_PCT:
            warnings.append(f"the hypervisor stole {steal_pct:.0f}% of the CPU during the measured window "
                            f"(more than {NOISY_STEAL_PCT:g}%): this VM shares its cores")
        return CpuUse(window_s=window_s, cpus=cpus, busy_pct=busy_pct, steal_pct=steal_pct, own_pct=own_pct,
                      other_pct=other_pct, noisy=bool(warnings), warnings=tuple(warnings))

"""Drive a shipped profile through a running mesh and read the services' state at the start of the load and at its end.

The A/B benchmarks of the case studies (social_fanout.py, photo_ab.py, reco_ab.py) each start one mesh per arm
(``casemesh.harness.mesh.Mesh``) and run ``casemesh run PROFILE --target SERVICE=ADDRESS ...`` against it. Costs must
count the load only, not the seeding, so :func:`drive` takes a snapshot (CPU times, a status RPC) when the harness
prints its ``driving`` line (seeding done) and another when the run has ended. Everything listens on 127.0.0.1 and
every run has a time limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from casemesh.harness.mesh import Mesh

ROOT = Path(__file__).resolve().parent.parent
CASEMESH = str(ROOT / ".venv" / "bin" / "casemesh")
T = TypeVar("T")


@dataclass(frozen=True)
class ProfileRun(Generic[T]):
    """One run: casemesh's exit code, its result.json, and the snapshots at the ``driving`` line and at the end."""

    exit_code: int
    result: dict[str, Any]
    at_driving: T
    at_end: T


async def drive(mesh: Mesh, profile: str, public: Sequence[str], out: Path, snapshot: Callable[[], Awaitable[T]], *,
                duration_s: float, warmup_s: float, extra_s: float = 900.0) -> ProfileRun[T]:
    """Run ``profile`` (a shipped name or a path) against ``mesh``'s ``public`` services, results under ``out``.

    ``snapshot()`` is awaited at the ``driving`` line and after the run. The run is killed after
    ``duration_s + warmup_s + extra_s`` seconds (seeding included: ``TimeoutError``). ``RuntimeError`` with the
    run's last output when it never started driving or wrote no result.
    """
    targets = [arg for name in public for arg in ("--target", f"{name}={mesh.topology.endpoint(name).address}")]
    command = [CASEMESH, "run", profile, *targets, "--duration", f"{duration_s:g}", "--warmup", f"{warmup_s:g}",
               "--no-progress", "--report", "off", "--out", str(out)]
    proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
    start = None
    output: list[str] = []
    try:
        async with asyncio.timeout(duration_s + warmup_s + extra_s):
            async for raw in proc.stdout:
                line = raw.decode(errors="replace")
                output.append(line)
                if start is None and line.startswith("driving "):
                    start = await snapshot()
            await proc.wait()
    except TimeoutError:
        proc.kill()
        raise
    end = await snapshot()
    result_file = out / "result.json"
    if start is None or not result_file.exists():
        raise RuntimeError(f"{profile}: no result (exit {proc.returncode}):\n{''.join(output[-40:])}")
    return ProfileRun(proc.returncode, json.loads(result_file.read_text()), start, end)

"""Which implementation of a service runs: Python (the default) or another language (docs/polyglot.md).

A topology endpoint's ``impl`` (services/runtime/topology.py) names it;
``casemesh run --set SERVICE.impl=node`` sets it for the embedded mesh. Only
the services listed in :data:`IMPLEMENTATIONS` have another implementation:
idgen in TypeScript on Node (services/idgen/node), compiled by
``make node-idgen`` into ``build/node/idgen/`` and started as
``node build/node/idgen/server.js --topology FILE`` with the environment a
Python service gets (mesh secret, traces folder, trace ratio).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, HarnessError
from .faults.model import SERVER_KINDS

ROOT = Path(__file__).resolve().parents[1]
#: The ``--set SERVICE.KEY=VALUE`` key that chooses the implementation instead of setting a setting.
IMPL_KEY = "impl"
#: Implementations of each service; a service not listed has the Python one only.
IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {"idgen": ("python", "node")}
#: The compiled entry point of each Node implementation, and the make target that builds it.
NODE_ENTRY_POINTS: dict[str, tuple[Path, str]] = {"idgen": (ROOT / "build" / "node" / "idgen" / "server.js", "node-idgen")}
#: Seconds ``make`` may take to install the npm packages and compile (a slow, loaded machine).
BUILD_TIMEOUT_S = 600.0


def implementations(service: str) -> tuple[str, ...]:
    """The implementations of ``service``: ``("python",)`` unless it has others."""
    return IMPLEMENTATIONS.get(service, ("python",))


def check_impl(service: str, impl: object) -> str:
    """``impl`` when ``service`` has that implementation; ``ConfigError`` (field ``--set``) listing those it has."""
    known = implementations(service)
    if impl not in known:
        raise ConfigError(f"{service}.impl: {impl!r} is not an implementation of {service} (has: {', '.join(known)})",
                          field="--set")
    return str(impl)


def node_command(service: str, topology_file: Path) -> list[str]:
    """The command that serves ``service``'s Node implementation from ``topology_file``, built first if needed.

    ``HarnessError`` when node is not installed or the build fails (its output in the message).
    """
    node = shutil.which("node")
    if node is None:
        raise HarnessError(f"{service} impl node needs Node.js >= 20 on PATH (node not found)")
    ensure_built(service)
    entry, _ = NODE_ENTRY_POINTS[service]
    return [node, str(entry), "--topology", str(topology_file), "--service", service]


def ensure_built(service: str) -> Path:
    """Run ``make -s TARGET`` (npm install if package.json changed, then tsc if a source is newer) and return the entry point.

    make decides from timestamps, so a built and current tree costs one ``make`` call (tens of ms).
    """
    entry, target = NODE_ENTRY_POINTS[service]
    if shutil.which("make") is None or shutil.which("npm") is None:
        if entry.exists():
            return entry
        raise HarnessError(f"{service} impl node is not built ({entry} missing) and make/npm are not installed to build it")
    try:
        done = subprocess.run(["make", "-s", "-C", str(ROOT), target], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"building {service} impl node (make {target}) took more than {BUILD_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0 or not entry.exists():
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise HarnessError(f"building {service} impl node failed (make {target}, exit {done.returncode}):\n{output}")
    return entry


def check_faults(faults: Iterable[Any], impls: Mapping[str, str]) -> None:
    """``ConfigError`` for a fault that delays or aborts calls of a service whose implementation is not Python.

    Those faults are applied by the Python runtime's server interceptor
    (services/runtime/faults.py), which another implementation does not
    have; a kill or a pause acts on the process and works for any.
    """
    for fault in faults:
        impl = impls.get(fault.service, "python")
        if impl != "python" and fault.kind in SERVER_KINDS:
            raise ConfigError(f"{fault.kind} faults act in the Python runtime's interceptor, and {fault.service} runs its "
                              f"{impl} implementation (--set {fault.service}.impl={impl}): use kill or pause, or impl python",
                              file=fault.file, line=fault.line, field=fault.field)

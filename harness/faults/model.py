"""The faults of a run: the profile's ``faults:`` entries (validated models) and the resolved :class:`Fault`.

A ``faults:`` entry (docs/profiles.md, "faults") is tagged by ``kind``::

    faults:
      - {kind: abort, target: idgen/LeaseIds, code: UNAVAILABLE, percent: 20, at_s: 10, for_s: 5}
      - {kind: delay, target: urlshortener/Resolve, delay: exponential(50ms), percent: 50, at_s: 20, for_s: 5}
      - {kind: kill, target: idgen, signal: SIGKILL, at_s: 30, restart_after_s: 5}
      - {kind: pause, target: analytics, at_s: 40, for_s: 3}

``abort`` and ``delay`` are server-side (the runtime's interceptor:
services/runtime/faults.py) on one method (``SERVICE/Method``) or every
method of a service (``SERVICE``); ``kill`` and ``pause`` act on a service's
process (the embedded mesh: harness/mesh.py). Times are seconds from the
start of the measured window (after warm-up). ``--fault`` (grammar.py) gives
the same faults on the command line.

:func:`resolve` turns an entry into a :class:`Fault`, checking its target
against the services the profile starts (services/catalog.py) and their
protos; :func:`check_plan` checks a run's faults together, once its duration
is known (names unique, every fault inside the measured window, process
faults on one service not overlapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import grpc
from google.protobuf import descriptor_pool
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import ErrorDetails

from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.faults import Delay

from ..errors import ConfigError
from .grammar import FaultSyntaxError, parse_delay

KINDS = ("abort", "delay", "kill", "pause")
SERVER_KINDS = frozenset({"abort", "delay"})
PROCESS_KINDS = frozenset({"kill", "pause"})
#: Status codes an abort may end a call with (every code but OK), by name.
ABORT_CODES = tuple(code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK)
SIGNALS = ("SIGKILL", "SIGTERM")

Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
FaultName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$", max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _FaultEntry(_Strict):
    """What every fault has: an optional ``name`` (default ``KIND:TARGET``), its ``target`` and start ``at_s``."""

    name: FaultName | None = None
    target: str
    at_s: Seconds = 0.0


class AbortFaultEntry(_FaultEntry):
    """End ``percent`` % of the target's calls with status ``code`` for ``for_s`` s (to the window's end when absent)."""

    kind: Literal["abort"]
    code: str
    percent: Percent = 100.0
    for_s: PositiveSeconds | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        name = value.strip().upper()
        if name not in ABORT_CODES:
            raise ValueError(f"{value!r} is not a gRPC status code an abort can return; one of: {', '.join(ABORT_CODES)}")
        return name


class DelayFaultEntry(_FaultEntry):
    """Delay ``percent`` % of the target's calls by ``delay`` (``50ms``, ``uniform(10ms,100ms)``, ``exponential(50ms)``, ``lognormal(50ms,0.5)``)."""

    kind: Literal["delay"]
    delay: str
    percent: Percent = 100.0
    for_s: PositiveSeconds | None = None

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("expected a delay such as 50ms, uniform(10ms,100ms), exponential(50ms) or lognormal(50ms,0.5)")
        try:
            parse_delay(str(value))
        except FaultSyntaxError as error:
            raise ValueError(str(error)) from None
        return str(value)


class KillFaultEntry(_FaultEntry):
    """Send ``signal`` to the service's process at ``at_s``; start it again ``restart_after_s`` later (absent: it stays down)."""

    kind: Literal["kill"]
    signal: Literal["SIGKILL", "SIGTERM"] = "SIGKILL"
    restart_after_s: PositiveSeconds | None = None


class PauseFaultEntry(_FaultEntry):
    """SIGSTOP the service's process at ``at_s`` and SIGCONT it ``for_s`` later (absent: at the window's end)."""

    kind: Literal["pause"]
    for_s: PositiveSeconds | None = None


FaultEntryModel = AbortFaultEntry | DelayFaultEntry | KillFaultEntry | PauseFaultEntry
FaultEntry = Annotated[FaultEntryModel, Field(discriminator="kind")]


def relocate(error: ErrorDetails) -> ErrorDetails | None:
    """A pydantic error under ``faults`` at its YAML path (the union's tag taken out); ``None`` when not under ``faults``."""
    loc, message = tuple(error["loc"]), error["msg"]
    if loc[:1] != ("faults",) or len(loc) < 2:
        return None
    if error["type"] == "union_tag_not_found":
        return {**error, "loc": (*loc[:2], "kind"), "msg": f"Field required (one of: {', '.join(KINDS)})"}
    if error["type"] == "union_tag_invalid":
        return {**error, "loc": (*loc[:2], "kind"), "msg": f"unknown fault kind {error['ctx']['tag']!r}; known: {', '.join(KINDS)}"}
    if len(loc) > 2 and loc[2] in KINDS:
        return {**error, "loc": (*loc[:2], *loc[3:]), "msg": message}
    return None


@dataclass(frozen=True)
class Fault:
    """One fault of a run, resolved: what it does, to which service (topology name) and method, and when.

    ``at_s``/``for_s`` are seconds from the start of the measured window;
    ``for_s`` is ``None`` for "until the window's end" (a kill: the time
    until the restart, ``restart_after_s``). ``grpc_methods`` are the full
    ``pkg.Service/Method`` names a server fault applies to (``pkg.Service/*``
    for every method of a service). ``file``/``line``/``field`` say where it
    was written (``file`` ``None`` and ``field`` ``--fault`` for the command line).
    """

    name: str
    kind: str
    service: str
    method: str | None
    at_s: float
    for_s: float | None
    grpc_methods: tuple[str, ...] = ()
    code: str | None = None
    percent: float | None = None
    delay: Delay | None = None
    signal: str | None = None
    file: str | None = None
    line: int | None = None
    field: str = "--fault"
    #: The ``--fault`` text it came from ("" for a profile entry).
    spec: str = ""

    @property
    def target(self) -> str:
        return self.service if self.method is None else f"{self.service}/{self.method}"

    @property
    def server_side(self) -> bool:
        return self.kind in SERVER_KINDS

    def end_s(self, duration_s: float) -> float:
        """When the fault ends (s from the measured window's start): ``at_s + for_s``, or the window's end."""
        return duration_s if self.for_s is None else self.at_s + self.for_s

    def error(self, message: str, sub: str | None = None) -> ConfigError:
        """A ``ConfigError`` at this fault's place (``sub``: a field of it, e.g. ``for_s``)."""
        if self.file is None:
            where = f"{self.spec!r}: " if self.spec else ""
            return ConfigError(f"{where}{sub + ': ' if sub else ''}{message}", field="--fault")
        return ConfigError(message, file=self.file, line=self.line, field=f"{self.field}.{sub}" if sub else self.field)

    def describe(self) -> str:
        """What it does, in the ``--fault`` words: ``abort=UNAVAILABLE@20%``, ``delay=50ms``, ``kill=SIGKILL``, ``pause``."""
        share = "" if self.percent in (None, 100.0) else f"@{self.percent:g}%"
        if self.kind == "abort":
            return f"abort={self.code}{share}"
        if self.kind == "delay":
            return f"delay={self.delay.describe() if self.delay else '?'}{share}"
        if self.kind == "kill":
            return f"kill={self.signal}" + ("" if self.for_s is None else f", restart after {self.for_s:g} s")
        return "pause"

    def spec_dict(self) -> dict[str, Any]:
        """Its parameters for result.json (``code``, ``percent``, ``delay``, ``signal``, ``restart_after_s``: those of its kind)."""
        if self.kind == "abort":
            return {"code": self.code, "percent": self.percent}
        if self.kind == "delay":
            return {"delay": self.delay.to_dict() if self.delay else None, "percent": self.percent}
        if self.kind == "kill":
            return {"signal": self.signal, "restart_after_s": self.for_s}
        return {}


class TargetError(ValueError):
    """A fault's ``target`` does not name a service the run starts, or a method of it."""


def resolve_target(target: str, kind: str, services: tuple[str, ...] | list[str]) -> tuple[str, str | None, tuple[str, ...]]:
    """``(service, method, grpc_methods)`` of ``target`` (``SERVICE`` or ``SERVICE/Method``); ``TargetError`` saying what is wrong.

    ``services`` are the topology names the run starts. A method is looked
    up in the protos of the service's gRPC services; a process fault takes a
    service only.
    """
    service, slash, method = target.strip().partition("/")
    if not service or (slash and not method):
        raise TargetError(f"{target!r} is not SERVICE or SERVICE/Method (e.g. idgen/LeaseIds)")
    if service not in services:
        raise TargetError(f"{service!r} is not a service this run starts ({', '.join(services) or 'none'})")
    definition = SERVICES[service]
    if kind in PROCESS_KINDS:
        if slash:
            raise TargetError(f"a {kind} fault acts on a whole process: give the service ({service}), not a method")
        return service, None, ()
    if not definition.grpc_services:
        raise TargetError(f"service {service} serves no gRPC methods to delay or abort")
    pool = descriptor_pool.Default()
    if not slash:
        return service, None, tuple(f"{full}/*" for full in definition.grpc_services)
    found = []
    known = []
    for full in definition.grpc_services:
        descriptor = pool.FindServiceByName(full)
        known.extend(descriptor.methods_by_name)
        if method in descriptor.methods_by_name:
            found.append(f"{full}/{method}")
    if not found:
        raise TargetError(f"{service} has no method {method!r}; its methods: {', '.join(sorted(known))}")
    return service, method, tuple(found)


def resolve(entry: FaultEntryModel, services: tuple[str, ...] | list[str], *, file: str | None = None, line: int | None = None,
            field_name: str = "--fault", spec: str = "") -> Fault:
    """The :class:`Fault` of a validated entry; ``TargetError`` for a bad target."""
    service, method, grpc_methods = resolve_target(entry.target, entry.kind, services)
    common = {"service": service, "method": method, "at_s": entry.at_s, "grpc_methods": grpc_methods,
              "file": file, "line": line, "field": field_name, "spec": spec,
              "name": entry.name or f"{entry.kind}:{service if method is None else f'{service}/{method}'}"}
    if isinstance(entry, AbortFaultEntry):
        return Fault(kind="abort", for_s=entry.for_s, code=entry.code, percent=entry.percent, **common)
    if isinstance(entry, DelayFaultEntry):
        return Fault(kind="delay", for_s=entry.for_s, delay=parse_delay(entry.delay), percent=entry.percent, **common)
    if isinstance(entry, KillFaultEntry):
        return Fault(kind="kill", for_s=entry.restart_after_s, signal=entry.signal, **common)
    return Fault(kind="pause", for_s=entry.for_s, **common)


def check_plan(faults: tuple[Fault, ...] | list[Fault], duration_s: float) -> list[ConfigError]:
    """Problems of a run's faults together, with the measured window ``duration_s`` long (s).

    Each fault must start inside the window and end by its end (a kill's
    restart too); names must be unique (``KIND:TARGET`` by default: give two
    faults of one kind on one target a ``name``); two process faults on one
    service must not overlap.
    """
    problems: list[ConfigError] = []
    names: dict[str, Fault] = {}
    for fault in faults:
        if fault.name in names:
            other = names[fault.name]
            where = f"{other.file}:{other.line} {other.field}" if other.file else f"--fault {other.spec!r}"
            problems.append(fault.error(f"another fault is also named {fault.name!r} ({where}): give each a distinct name", "name"))
        names.setdefault(fault.name, fault)
        if fault.at_s >= duration_s:
            problems.append(fault.error(f"starts at {fault.at_s:g} s, not inside the measured window of {duration_s:g} s", "at_s"))
        elif fault.for_s is not None and fault.at_s + fault.for_s > duration_s + 1e-9:
            what = "restart_after_s" if fault.kind == "kill" else "for_s"
            problems.append(fault.error(f"ends at {fault.at_s + fault.for_s:g} s (at_s + {what}), after the measured window's end "
                                        f"({duration_s:g} s)", what))
    process = [f for f in faults if f.kind in PROCESS_KINDS]
    for i, one in enumerate(process):
        for other in process[i + 1:]:
            if one.service == other.service and one.at_s < other.end_s(duration_s) and other.at_s < one.end_s(duration_s):
                problems.append(other.error(f"overlaps {one.name} ({one.at_s:g}-{one.end_s(duration_s):g} s): one process fault "
                                            f"on {one.service} at a time", "at_s"))
    return problems


#: What a fault's field is called on the command line (for errors about a --fault).
CLI_NAMES = {"at_s": "at", "for_s": "for", "restart_after_s": "restart_after", "code": "abort", "delay": "delay",
             "percent": "@PERCENT%", "signal": "kill", "name": "name", "target": "target", "kind": "action"}


def cli_field(name: str) -> str:
    return CLI_NAMES.get(name, name)



def fault_named(faults: tuple[Fault, ...] | list[Fault], name: str) -> Fault | None:
    """The fault called ``name`` among ``faults`` (e.g. ``Profile.faults``), ``None`` when there is none.

    For other parts of a profile that refer to a fault by name (a recovery
    SLO: "after fault X ends"): its window is ``at_s`` to
    ``end_s(duration_s)``, seconds from the measured window's start.
    """
    return next((fault for fault in faults if fault.name == name), None)

"""A run's faults from the profile's ``faults:`` and ``--fault``, resolved and checked before anything starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigError
from ..yaml_lines import Document, Problem
from .grammar import FaultSyntaxError, parse_fault
from .model import FaultEntry, FaultEntryModel, Fault, TargetError, check_plan, cli_field, relocate, resolve

_ENTRY = TypeAdapter(FaultEntry)


def faults_from_profile(entries: Sequence[FaultEntryModel], services: Sequence[str], document: Document,
                        problems: list[Problem]) -> tuple[Fault, ...]:
    """The profile's ``faults:`` entries resolved against ``services``; bad targets go to ``problems`` at ``faults[i].target``."""
    faults = []
    for i, entry in enumerate(entries):
        loc = ("faults", i)
        try:
            faults.append(resolve(entry, list(services), file=document.file, line=document.line(loc), field_name=f"faults[{i}]"))
        except TargetError as error:
            problems.append(Problem((*loc, "target"), str(error)))
    return tuple(faults)


def fault_from_cli(spec: str, services: Sequence[str]) -> Fault:
    """One ``--fault`` as a :class:`Fault`; ``ConfigError`` (field ``--fault``) quoting it and naming the bad part."""
    try:
        data = parse_fault(spec)
    except FaultSyntaxError as error:
        raise ConfigError(f"{spec!r}: {error}", field="--fault") from None
    try:
        entry = _ENTRY.validate_python(data)
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]
        detail = relocate({**detail, "loc": ("faults", 0, *detail["loc"])}) or {**detail, "loc": ("faults", 0, *detail["loc"])}
        name = cli_field(str(detail["loc"][-1])) if len(detail["loc"]) > 2 else "action"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = f"does not apply to a {data.get('kind')} fault"
        raise ConfigError(f"{spec!r}: {name}: {message}", field="--fault") from None
    try:
        return resolve(entry, list(services), spec=spec)
    except TargetError as error:
        raise ConfigError(f"{spec!r}: target: {error}", field="--fault") from None


def plan_faults(profile: Any, specs: Sequence[str], *, external: bool = False) -> tuple[Fault, ...]:
    """The run's faults: the profile's, then each ``--fault``; checked together against the measured window.

    ``external`` (``--target``): faults need the services the harness starts,
    so any fault is an error. Raises ``ConfigError`` (the first problem, the
    others in its ``more``).
    """
    faults = list(getattr(profile, "faults", ()))
    faults += [fault_from_cli(spec, profile.services) for spec in specs]
    if faults and external:
        raise faults[0].error("faults act on the services casemesh starts (the embedded mesh): not with --target")
    problems = check_plan(faults, profile.duration_s)
    if problems:
        raise ConfigError(problems[0].message, file=problems[0].file, line=problems[0].line, field=problems[0].field,
                          more=problems[1:])
    return tuple(faults)


"""Errors the harness reports to the user before (or instead of) sending load."""

from __future__ import annotations


class ConfigError(Exception):
    """A profile, SLO document or command-line value is invalid; no load has been sent.

    ``file`` is the path as the user gave it (or ``None`` for command-line
    values), ``line`` the 1-based line of the offending YAML node (``None``
    when unknown), ``field`` the dotted path of the field
    (``arrival.rate_per_s``, ``journeys[2].weight``, ``spec.objectives[0].target``).
    ``str(error)`` reads ``FILE:LINE: FIELD: MESSAGE``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


class HarnessError(Exception):
    """The harness could not carry out a run (services did not start, a target is unreachable, ...)."""

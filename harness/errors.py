"""Errors the harness reports to the user before (or instead of) sending load."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """A profile, SLO document or command-line value is invalid; no load has been sent.

    ``file`` is the path as the user gave it (or ``None`` for command-line
    values), ``line`` the 1-based line of the offending YAML node (``None``
    when unknown), ``field`` the dotted path of the field
    (``arrival.rate_per_s``, ``journeys[2].weight``, ``spec.objectives[0].target``).
    ``more`` holds the other problems found in the same pass, each a
    ``ConfigError`` of its own (empty for one problem). ``str(error)`` reads
    ``FILE:LINE: FIELD: MESSAGE``, one line per problem.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None,
                 more: Sequence[ConfigError] = ()):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.more = tuple(more)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        what = f"{self.field}: " if self.field else ""
        return "\n".join([f"{where}{what}{self.message}", *(str(other) for other in self.more)])

    @property
    def problems(self) -> list[ConfigError]:
        """Every problem, this one first, each a single-problem ``ConfigError``."""
        first = ConfigError(self.message, file=self.file, line=self.line, field=self.field)
        return [first, *(p for other in self.more for p in other.problems)]


class HarnessError(Exception):
    """The harness could not carry out a run (services did not start, a target is unreachable, ...)."""

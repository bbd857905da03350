"""Every service casemesh can run, by topology name."""

from __future__ import annotations

from .analytics.service import DEFINITION as ANALYTICS
from .idgen.service import DEFINITION as IDGEN
from .runtime.component import ServiceDefinition
from .urlshortener.service import DEFINITION as URLSHORTENER

SERVICES: dict[str, ServiceDefinition] = {d.name: d for d in (URLSHORTENER, IDGEN, ANALYTICS)}


def definitions(names: list[str] | None = None) -> list[ServiceDefinition]:
    """The definitions of ``names`` (all when ``None``); ``KeyError`` names the unknown ones."""
    if not names:
        return list(SERVICES.values())
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise KeyError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return [SERVICES[n] for n in names]

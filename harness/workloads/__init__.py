"""Workloads by name: the journeys and seeders of each case study.

Each workload's module is imported when it is first asked for
(:func:`get_workload`): a URL-shortener run does not import the social feed's
networkx or the recommendation engine's numpy.
"""

from __future__ import annotations

import importlib

from .base import Workload

#: Workload name → the module (under this package) whose ``WORKLOAD`` it is.
_MODULES: dict[str, str] = {
    "url-shortener": "url_shortener",
    "video": "video",
    "social-feed": "social",
    "social-for-you": "for_you",
    "photo-sharing": "photo",
    "recommendations": "reco",
    "chat": "chat",
    "collab": "collab",
    "live": "live",
    "rides": "rides",
    "proximity": "proximity",
    "food": "food",
    "payments": "payments",
    "trading": "trading",
    "banking": "banking",
    "ecommerce": "ecommerce",
    "hotel": "hotel",
    "search": "search",
    "crawler": "crawler",
    "ads": "ads",
    "moderation": "moderation",
    "echo": "echo",
}

#: Every workload name, in the catalogue's order.
WORKLOAD_NAMES: tuple[str, ...] = tuple(_MODULES)


def get_workload(name: str) -> Workload:
    """The workload called ``name``; ``KeyError`` names the known ones when it does not exist."""
    module = _MODULES.get(name)
    if module is None:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(sorted(_MODULES))}")
    workload = importlib.import_module(f"{__package__}.{module}").WORKLOAD
    if workload.name != name:
        raise RuntimeError(f"{module}.WORKLOAD is {workload.name!r}, catalogued as {name!r}")
    return workload

"""Workloads by name: the journeys and seeders of each case study."""

from __future__ import annotations

from .base import Workload
from .echo import WORKLOAD as _ECHO
from .for_you import WORKLOAD as _FOR_YOU
from .photo import WORKLOAD as _PHOTO
from .reco import WORKLOAD as _RECO
from .social import WORKLOAD as _SOCIAL
from .url_shortener import WORKLOAD as _URL_SHORTENER
from .video import WORKLOAD as _VIDEO

WORKLOADS: dict[str, Workload] = {w.name: w for w in (_URL_SHORTENER, _VIDEO, _SOCIAL, _FOR_YOU, _PHOTO, _RECO, _ECHO)}


def get_workload(name: str) -> Workload:
    """The workload called ``name``; ``KeyError`` names the known ones when it does not exist."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(sorted(WORKLOADS))}") from None

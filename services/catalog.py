"""Every service casemesh can run, by topology name."""

from __future__ import annotations

from .analytics.service import DEFINITION as ANALYTICS
from .idgen.service import DEFINITION as IDGEN
from .photo.feed.service import DEFINITION as PHOTO_FEED
from .photo.media.service import DEFINITION as PHOTO_MEDIA
from .photo.resizer.service import DEFINITION as PHOTO_RESIZER
from .reco.candidates.service import DEFINITION as RECO_CANDIDATES
from .reco.ranker.service import DEFINITION as RECO_RANKER
from .reco.signals.service import DEFINITION as RECO_SIGNALS
from .runtime.component import ServiceDefinition
from .social.graph.service import DEFINITION as SOCIAL_GRAPH
from .social.timeline.service import DEFINITION as SOCIAL_TIMELINE
from .social.tweets.service import DEFINITION as SOCIAL_TWEETS
from .urlshortener.service import DEFINITION as URLSHORTENER
from .video.catalog.service import DEFINITION as VIDEO_CATALOG
from .video.edge.service import DEFINITION as VIDEO_EDGE
from .video.playback.service import DEFINITION as VIDEO_PLAYBACK
from .video.search.service import DEFINITION as VIDEO_SEARCH
from .video.storage.service import DEFINITION as VIDEO_STORAGE
from .video.transcode.service import DEFINITION as VIDEO_TRANSCODE
from .video.transcode.worker_service import DEFINITION as VIDEO_TRANSCODER
from .video.upload.service import DEFINITION as VIDEO_UPLOAD

SERVICES: dict[str, ServiceDefinition] = {d.name: d for d in (
    URLSHORTENER, IDGEN, ANALYTICS,
    VIDEO_UPLOAD, VIDEO_STORAGE, VIDEO_TRANSCODE, VIDEO_TRANSCODER,
    VIDEO_CATALOG, VIDEO_SEARCH,
    VIDEO_PLAYBACK, VIDEO_EDGE,
    SOCIAL_GRAPH, SOCIAL_TWEETS, SOCIAL_TIMELINE,
    PHOTO_MEDIA, PHOTO_RESIZER, PHOTO_FEED,
    RECO_SIGNALS, RECO_CANDIDATES, RECO_RANKER,
)}


def definitions(names: list[str] | None = None) -> list[ServiceDefinition]:
    """The definitions of ``names`` (all when ``None``); ``KeyError`` names the unknown ones."""
    if not names:
        return list(SERVICES.values())
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise KeyError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return [SERVICES[n] for n in names]

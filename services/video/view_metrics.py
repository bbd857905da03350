"""The one metric of the view-count pipeline, shared by video-playback and video-catalog.

Seed 004, "View Count — Eventual Consistency Done Right": view starts are
buffered by the playback servers, flushed in batches (every 10 s), aggregated,
and applied to the visible counts by periodic snapshots (every 30 s). One
counter follows an event through the stages, so the difference between two
stages is what is still in the pipe:

``casemesh_video_view_events_total{stage=...}``
    ``buffered``    counted by video-playback's view buffer
    ``flushed``     sent by video-playback to CatalogService.RecordViews
    ``snapshotted`` applied to ``Video.view_count`` by video-catalog's snapshot
    ``dropped``     refused by video-catalog (unknown video id)

Defined once here because several services can share one process (and one
Prometheus registry): a second ``Counter`` with the same name would fail to register.
"""

from __future__ import annotations

from prometheus_client import Counter

VIEW_EVENTS = Counter(
    "casemesh_video_view_events",
    "View starts by pipeline stage: buffered and flushed (video-playback), snapshotted and dropped (video-catalog).",
    ["stage"],
)

"""The casemesh Grafana dashboards, built with the Grafana foundation SDK (``make dashboards``).

:data:`DASHBOARDS` maps each JSON file written to ``dashboards/json/`` to the module whose
``build()`` returns its dashboard builder.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import (
    ads, banking, chat, collab, crawler, ecommerce, food, harness, hotel, live, mesh, moderation, payments, photo, proximity,
    reco, rides, search, social, trading, urlshortener, video,
)

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "mesh-overview.json": mesh.build,
    "url-shortener.json": urlshortener.build,
    "video.json": video.build,
    "social-feed.json": social.build,
    "photo-sharing.json": photo.build,
    "recommendations.json": reco.build,
    "chat.json": chat.build,
    "collab.json": collab.build,
    "live.json": live.build,
    "rides.json": rides.build,
    "proximity.json": proximity.build,
    "food.json": food.build,
    "payments.json": payments.build,
    "trading.json": trading.build,
    "banking.json": banking.build,
    "ecommerce.json": ecommerce.build,
    "hotel.json": hotel.build,
    "crawler.json": crawler.build,
    "search.json": search.build,
    "ads.json": ads.build,
    "moderation.json": moderation.build,
    "harness-slos.json": harness.build,
}

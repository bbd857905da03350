"""Every service casemesh can run, by topology name.

:data:`SERVICES` maps each topology name to its
:class:`~.runtime.component.ServiceDefinition`, imported on first use: the
harness checks a URL-shortener profile without importing the recommendation
engine's numpy or the photo resizer's Pillow (listing the names imports
nothing; ``SERVICES[name]``, ``.get``, ``.values()`` import what they return).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .runtime.component import ServiceDefinition

#: Topology name → the module whose ``DEFINITION`` it is (``"module:ATTR"``: that module's ``ATTR`` instead, for a
#: module that defines several services, such as the chat gateways' shards), in the catalogue's order.
_MODULES: dict[str, str] = {
    "urlshortener": "urlshortener.service",
    "idgen": "idgen.service",
    "analytics": "analytics.service",
    "video-upload": "video.upload.service",
    "video-storage": "video.storage.service",
    "video-transcode": "video.transcode.service",
    "video-transcoder": "video.transcode.worker_service",
    "video-catalog": "video.catalog.service",
    "video-search": "video.search.service",
    "video-playback": "video.playback.service",
    "video-edge": "video.edge.service",
    "social-graph": "social.graph.service",
    "social-tweets": "social.tweets.service",
    "social-timeline": "social.timeline.service",
    "photo-media": "photo.media.service",
    "photo-resizer": "photo.resizer.service",
    "photo-feed": "photo.feed.service",
    "reco-signals": "reco.signals.service",
    "reco-candidates": "reco.candidates.service",
    "reco-ranker": "reco.ranker.service",
    "chat-messages": "chat.messages.service",
    "chat-router": "chat.router.service",
    "chat-gateway-1": "chat.gateway.service:GATEWAY_1",
    "chat-gateway-2": "chat.gateway.service:GATEWAY_2",
    "collab-documents": "collab.documents.service",
    "collab-editor-1": "collab.editor.service:EDITOR_1",
    "collab-editor-2": "collab.editor.service:EDITOR_2",
    "live-ingest": "live.ingest.service",
    "live-origin": "live.origin.service",
    "live-edge": "live.edge.service",
    "live-chat": "live.chat.service",
    "rides-location": "rides.location.service",
    "rides-pricing": "rides.pricing.service",
    "rides-trips": "rides.trips.service",
    "rides-dispatch": "rides.dispatch.service",
    "proximity-places": "proximity.places.service",
    "proximity-tracker": "proximity.tracker.service",
    "proximity-geofence": "proximity.geofence.service",
    "food-restaurants": "food.restaurants.service",
    "food-orders": "food.orders.service",
    "food-dispatch": "food.dispatch.service",
    "payments-vault": "payments.vault.service",
    "payments-fraud": "payments.fraud.service",
    "payments-psp-a": "payments.acquirer.service:DEFINITION_A",
    "payments-psp-b": "payments.acquirer.service:DEFINITION_B",
    "payments-gateway": "payments.gateway.service",
    "trading-engine": "trading.engine.service",
    "trading-gateway": "trading.gateway.service",
    "trading-marketdata": "trading.marketdata.service",
    "banking-ledger": "banking.ledger.service",
    "banking-transfers": "banking.transfers.service",
    "ecommerce-catalog": "ecommerce.catalog.service",
    "ecommerce-inventory": "ecommerce.inventory.service",
    "ecommerce-cart": "ecommerce.cart.service",
    "ecommerce-orders": "ecommerce.orders.service",
    "hotel-inventory": "hotel.inventory.service",
    "hotel-booking": "hotel.booking.service",
    "search-shards": "search.shards.service",
    "search-indexer": "search.indexer.service",
    "search-query": "search.query.service",
    "search-autocomplete": "search.autocomplete.service",
    "crawler-web": "crawler.web.service",
    "crawler": "crawler.frontier.service",
    "ads-frequency": "ads.frequency.service",
    "ads-server": "ads.server.service",
    "ads-campaigns": "ads.campaigns.service",
    "ads-budget": "ads.budget.service",
    "moderation-classifier": "moderation.classifier.service",
    "moderation-pipeline": "moderation.pipeline.service",
    "moderation-review": "moderation.review.service",
}


class Catalog(Mapping[str, ServiceDefinition]):
    """Topology name → definition, each module imported when its definition is first asked for."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, ServiceDefinition] = {}

    def __getitem__(self, name: str) -> ServiceDefinition:
        definition = self._loaded.get(name)
        if definition is None:
            module_name, _, attribute = self._modules[name].partition(":")  # KeyError for an unknown name
            module = importlib.import_module(f"{__package__}.{module_name}")
            attribute = attribute or "DEFINITION"
            definition = self._loaded[name] = getattr(module, attribute)
            if definition.name != name:
                raise RuntimeError(f"{module.__name__}.{attribute} is {definition.name!r}, catalogued as {name!r}")
        return definition

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules


SERVICES: Mapping[str, ServiceDefinition] = Catalog(_MODULES)


def definitions(names: list[str] | None = None) -> list[ServiceDefinition]:
    """The definitions of ``names`` (all when ``None``); ``KeyError`` names the unknown ones."""
    if not names:
        return list(SERVICES.values())
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise KeyError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return [SERVICES[n] for n in names]

"""The e-commerce workload (Amazon; seed 000 "E-commerce Platform (like Amazon)", shared/seeds/000_69ff90d97cf45f9b.txt
lines 496-585; seed 001 #05 "E-Commerce", shared/seeds/001_58dfc580020147d2.txt line 21: "Inventory management,
shopping cart, checkout, order fulfillment | 10M products, Amazon-scale").

Seeding (:mod:`.seeding`) lists the catalogue through CatalogService.CreateProduct (titles and descriptions from
:mod:`.catalogue`'s word lists, so searches have real matches), stocks it through InventoryService.Restock, and
tokenizes the shoppers' cards for the shop's merchant through CardVaultService.TokenizeCard; a flash sale adds a few
deals with little stock. Open-loop arrivals are shoppers' sessions (:mod:`.journeys`): ``browse``, ``search`` and
``view_product`` (most of the traffic: seed line 498, "massive read traffic (browsing)"), ``buy`` (search, cart,
think, checkout with an idempotency key retried with the same key) and ``abandon`` (a cart filled and left: its
reservations hold until their TTL). At the end (:mod:`.end_checks`) InventoryService.Audit must find nothing
oversold, the stock sold must equal the orders the shoppers saw confirmed (baselined when the load processes connect:
:mod:`.live`), every confirmed order must read back confirmed, and a flash sale's units are counted sold, stranded in
carts or unsold.

Measures: ``search_time`` and ``checkout_time`` (the seed's "Sub-200ms for search, 500ms for checkout"),
``search_found``, ``cart_add`` (out_of_stock refusals), ``checkout_outcome`` (confirmed, or the failure reason),
``cart_honoured`` (a cart's reserved units bought), and the end-of-run ``no_oversell``, ``orders_consistent`` and
``sell_through``. The workload speaks only the contracts
(protos/casemesh/ecommerce/v1, the payment vault of protos/casemesh/payments/v1, casemesh.common.v1,
casemesh.services.ecommerce.contract and casemesh.services.payments.contract).
"""

from __future__ import annotations

import logging
import random

from casemesh.ecommerce.v1 import (
    cart_pb2,
    cart_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from casemesh.payments.v1 import vault_pb2, vault_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .end_checks import NO_OVERSELL, ORDERS_CONSISTENT, SELL_THROUGH, finish
from .journeys import (
    CART_ADD,
    CART_HONOURED,
    CHECKOUT_OUTCOME,
    CHECKOUT_TIME,
    SEARCH_FOUND,
    SEARCH_TIME,
    AbandonParams,
    BrowseParams,
    BuyParams,
    FlashAbandonParams,
    FlashBuyParams,
    SearchParams,
    ViewParams,
    abandon,
    browse,
    buy,
    search,
    view_product,
)
from .live import Shop
from .seeding import CART, CATALOG, INVENTORY, ORDERS, VAULT, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.ecommerce")

_ENTRYPOINTS = entrypoints({
    CATALOG: (catalog_pb2, "CatalogService", catalog_pb2_grpc.CatalogServiceStub),
    INVENTORY: (inventory_pb2, "InventoryService", inventory_pb2_grpc.InventoryServiceStub),
    CART: (cart_pb2, "CartService", cart_pb2_grpc.CartServiceStub),
    ORDERS: (orders_pb2, "CheckoutService", orders_pb2_grpc.CheckoutServiceStub),
    VAULT: (vault_pb2, "CardVaultService", vault_pb2_grpc.CardVaultServiceStub),
})

MEASURES = (SEARCH_TIME, SEARCH_FOUND, CART_ADD, CHECKOUT_TIME, CHECKOUT_OUTCOME, CART_HONOURED, NO_OVERSELL,
            ORDERS_CONSISTENT, SELL_THROUGH)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Shop:
    """This process's :class:`~.live.Shop`, after the deals' restock and the baseline audit (load process 0 only,
    unrecorded); ``rng`` is not used."""
    shop = Shop(streams, state, params)
    await shop.take_baseline()
    return shop


async def disconnect(shop: Shop) -> None:
    """The end-of-run checks, after this process's last journey."""
    try:
        await finish(shop)
    except Exception:  # a bug here must not lose the run's other results
        log.exception("ecommerce: the end-of-run checks failed")
        shop.streams.observe(ORDERS_CONSISTENT, 0.0, "UNKNOWN", sent_at=shop.clock())


WORKLOAD = Workload(
    name="ecommerce",
    description="E-commerce (shared/seeds/000 'E-commerce Platform (like Amazon)', 001 #05): shoppers browsing, "
                "searching and viewing a catalogue, buying through the cart and the checkout saga with idempotent "
                "retries, abandoning carts whose reservations hold until their TTL, flash sales of a few units; no "
                "oversell and the stock sold equal to the orders confirmed, checked at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("browse", "A shopper browses a category (Zipf popularity): ListProducts pages, then maybe opens "
                    "a product (GetProduct)", BrowseParams, browse),
            Journey("search", "A shopper searches for a product (Zipf popularity) with 1-3 words of its title "
                    "(SearchProducts; sometimes within its category, under a price, or the next page)",
                    SearchParams, search),
            Journey("view_product", "A product page: GetProduct, then GetStock", ViewParams, view_product),
            Journey("buy", "A shopper fills a cart (search, SetItem; or a flash sale's deal), thinks, reads the cart "
                    "and checks out (Checkout with an idempotency key, retried with the same key; a few double "
                    "clicks)", BuyParams, buy),
            Journey("abandon", "A shopper fills a cart and leaves: its reservations hold until their TTL",
                    AbandonParams, abandon),
            Journey("flash_buy", "A flash-sale buyer: the deal's page (GetProduct, GetStock), one unit in the cart, "
                    "a think, the checkout (buy with target flash)", FlashBuyParams, buy),
            Journey("flash_abandon", "A flash-sale buyer who leaves with the deal in the cart (abandon with target "
                    "flash)", FlashAbandonParams, abandon),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)

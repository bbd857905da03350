"""ecommerce-catalog through real gRPC: the service built by its DEFINITION (settings, data folder) on a grpc.aio
server with the runtime's interceptor: every status code of protos/casemesh/ecommerce/v1/catalog.proto, many
concurrent clients creating and searching at once, and the catalogue surviving a restart of the service.
"""

from __future__ import annotations

import asyncio
from typing import Self

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.ecommerce.v1 import catalog_pb2, catalog_pb2_grpc
from casemesh.services.ecommerce.catalog import metrics, service
from casemesh.services.ecommerce.catalog.settings import CatalogSettings
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology

from .test_ecommerce_catalog import create, sample, search_request

WAIT_S = 10.0
CP = catalog_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class Served:
    """The catalogue served by its DEFINITION over ``data_dir``; ``stub`` calls it."""

    def __init__(self, data_dir, settings: dict | None = None) -> None:
        self.topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1")}, data_dir=str(data_dir),
                                 settings={service.NAME: settings or {}})

    async def __aenter__(self) -> Self:
        self.context = RuntimeContext(self.topology).for_service(service.NAME)
        self.component = await service.DEFINITION.build(self.context)
        self.server = grpc.aio.server(interceptors=[ServerInterceptor(
            metrics=RpcMetrics("server", registry=CollectorRegistry()))])
        self.component.register(self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        await self.component.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = catalog_pb2_grpc.CatalogServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.channel.close()
        await self.server.stop(None)
        await self.component.stop()
        await self.context.close()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.grpc_services) == (
        "ecommerce-catalog", (), ("casemesh.ecommerce.v1.CatalogService",))
    assert d.access.public == {"CreateProduct", "GetProduct", "ListProducts", "SearchProducts"}
    assert not d.access.internal and d.settings_model is CatalogSettings
    assert metrics.SEARCHES._name == "casemesh_ecommerce_catalog_searches"
    assert 0.05 in metrics.SEARCH_BUCKETS and 2.0 in metrics.SEARCH_BUCKETS


async def test_status_codes(tmp_path):
    async with Served(tmp_path) as served:
        stub = served.stub
        assert (tmp_path / "ecommerce-catalog" / "catalog.sqlite3").is_file()
        created = (await stub.CreateProduct(create(), timeout=WAIT_S)).product
        assert created.created_at_unix_ms > 0
        assert (await stub.CreateProduct(create(), timeout=WAIT_S)).product == created
        for call, expected in (
            (stub.CreateProduct(CP.CreateProductRequest(), timeout=WAIT_S), (INVALID, "product.product_id:")),
            (stub.CreateProduct(create(title=""), timeout=WAIT_S), (INVALID, "product.title:")),
            (stub.CreateProduct(create(description="d" * 2_001), timeout=WAIT_S), (INVALID, "product.description:")),
            (stub.CreateProduct(create(category="A"), timeout=WAIT_S), (INVALID, "product.category:")),
            (stub.CreateProduct(create(currency="US"), timeout=WAIT_S), (INVALID, "product.price.currency_code:")),
            (stub.CreateProduct(create(amount=-5), timeout=WAIT_S), (INVALID, "product.price.amount_minor:")),
            (stub.CreateProduct(create(title="Red kettle"), timeout=WAIT_S),
             (grpc.StatusCode.ALREADY_EXISTS, "product.product_id:")),
            (stub.GetProduct(CP.GetProductRequest(product_id="?"), timeout=WAIT_S), (INVALID, "product_id:")),
            (stub.GetProduct(CP.GetProductRequest(product_id="nope"), timeout=WAIT_S),
             (grpc.StatusCode.NOT_FOUND, "product_id:")),
            (stub.ListProducts(CP.ListProductsRequest(), timeout=WAIT_S), (INVALID, "category:")),
            (stub.ListProducts(CP.ListProductsRequest(category="kitchen", page_size=200), timeout=WAIT_S),
             (INVALID, "page_size:")),
            (stub.ListProducts(CP.ListProductsRequest(category="kitchen", page_token="x"), timeout=WAIT_S),
             (INVALID, "page_token:")),
            (stub.SearchProducts(search_request("   "), timeout=WAIT_S), (INVALID, "query:")),
            (stub.SearchProducts(search_request("kettle", category="-X-"), timeout=WAIT_S), (INVALID, "category:")),
            (stub.SearchProducts(search_request("kettle", max_price_minor=-1), timeout=WAIT_S),
             (INVALID, "max_price_minor:")),
            (stub.SearchProducts(search_request("kettle", page_size=60), timeout=WAIT_S), (INVALID, "page_size:")),
            (stub.SearchProducts(search_request("kettle", page_token="AAAA"), timeout=WAIT_S),
             (INVALID, "page_token:")),
        ):
            code, details = await _code(call)
            assert (code, details.startswith(expected[1])) == (expected[0], True), details
        assert (await stub.GetProduct(CP.GetProductRequest(product_id="p1"), timeout=WAIT_S)).product == created
        listed = await stub.ListProducts(CP.ListProductsRequest(category="kitchen"), timeout=WAIT_S)
        assert list(listed.products) == [created] and not listed.next_page_token
        for query in ('"', "AND", "NEAR(", "*", "kettle OR", "title:kettle"):
            await stub.SearchProducts(search_request(query + " boil"), timeout=WAIT_S)  # never an FTS5 error
        hits = (await stub.SearchProducts(search_request("BOILS wat"), timeout=WAIT_S)).hits
        assert [hit.product for hit in hits] == [created] and hits[0].score > 0


async def test_concurrent_clients_and_a_restart(tmp_path):
    async with Served(tmp_path, {"commit_batch": 16}) as served:
        stub = served.stub
        colours = ("red", "green", "blue", "black")

        async def client(n: int) -> None:
            for k in range(5):
                number = 5 * n + k
                colour = colours[number % 4]
                await stub.CreateProduct(create(product_id=f"p{number:03}", title=f"{colour} shirt {number}",
                                                category="clothing", amount=1_000 + number), timeout=WAIT_S)
                await stub.SearchProducts(search_request(f"{colour} sh"), timeout=WAIT_S)

        await asyncio.gather(*(client(n) for n in range(20)))
        assert sample("casemesh_ecommerce_catalog_products") == 100
        red = await stub.SearchProducts(search_request("red shirt", page_size=50, category="clothing"), timeout=WAIT_S)
        assert len(red.hits) == 25 and all(hit.product.title.startswith("red ") for hit in red.hits)
        before = [hit.product for hit in red.hits]

    async with Served(tmp_path) as served:
        stub = served.stub
        assert sample("casemesh_ecommerce_catalog_products") == 100
        again = await stub.SearchProducts(search_request("red shirt", page_size=50, category="clothing"),
                                          timeout=WAIT_S)
        assert [hit.product for hit in again.hits] == before
        cheap = await stub.SearchProducts(search_request("shirt", max_price_minor=1_009, page_size=50), timeout=WAIT_S)
        assert sorted(hit.product.product_id for hit in cheap.hits) == [f"p{n:03}" for n in range(10)]
        page, token, seen = 0, "", []
        while True:
            listed = await stub.ListProducts(CP.ListProductsRequest(category="clothing", page_size=30,
                                                                    page_token=token), timeout=WAIT_S)
            seen += [p.product_id for p in listed.products]
            page += 1
            token = listed.next_page_token
            if not token:
                break
        assert page == 4 and seen == [f"p{n:03}" for n in range(100)]

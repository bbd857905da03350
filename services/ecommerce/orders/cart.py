"""ecommerce-orders' calls to the cart (``casemesh.ecommerce.v1.CartService``, topology ``ecommerce-cart``).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Cart Service:
Redis for session, real-time inventory reservation"). GetCart (public) gives the lines a checkout buys; ClearLines
(internal: callable by ``ecommerce-orders`` only, whose identity the runtime's channel carries) takes a confirmed
order's lines out of the cart, without releasing their reservations. Deadlines, retries and errors: :mod:`.calls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from casemesh.ecommerce.v1 import cart_pb2, cart_pb2_grpc, ecommerce_pb2

from .calls import CallPolicy


class Cart(Protocol):
    """The two CartService calls the saga makes (:class:`.calls.Refused`, :class:`.calls.DependencyUnavailable`)."""

    async def get_cart(self, user_id: str) -> ecommerce_pb2.Cart: ...

    async def clear_lines(self, user_id: str, reservation_ids: Sequence[str]) -> None: ...


class CartClient:
    """:class:`Cart` over ``cart_pb2_grpc.CartServiceStub``."""

    def __init__(self, stub: cart_pb2_grpc.CartServiceStub, policy: CallPolicy) -> None:
        self._stub = stub
        self._policy = policy

    async def get_cart(self, user_id: str) -> ecommerce_pb2.Cart:
        return (await self._policy.call("GetCart", self._stub.GetCart, cart_pb2.GetCartRequest(user_id=user_id))).cart

    async def clear_lines(self, user_id: str, reservation_ids: Sequence[str]) -> None:
        await self._policy.call("ClearLines", self._stub.ClearLines, cart_pb2.ClearLinesRequest(
            user_id=user_id, reservation_ids=list(reservation_ids)))

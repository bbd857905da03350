"""Idempotency keys: the protocol that makes a retry safe (seed 000 line 522, "Payment Service: Idempotent APIs, retry
with exponential backoff"; Stripe's idempotency keys).

A key is scoped to (merchant, operation) and remembered for ``contract.IDEMPOTENCY_KEY_TTL_S`` (24 h). Its row in the
store (:mod:`.store`, table ``idempotency_keys``) holds the request's hash (:func:`request_hash`: SHA-256 of the
request serialised deterministically, the key left out), its state (IN_FLIGHT, then DONE with the serialised answer)
and the payment (and refund) it is about. :meth:`IdempotencyKeys.begin` starts a call with a key:

- the key is held by a call of this process → :class:`~services.runtime.errors.Aborted` (retry it; a per-process set
  of keys in flight, taken before anything is awaited, so two calls with one key never both proceed);
- no row (or one older than the TTL, deleted) → :data:`NEW`: the caller writes the row (:meth:`IdempotencyKeys.record`)
  in the same write as its first record (the PENDING payment), before it asks anyone anything;
- a row with another hash → :class:`~services.runtime.errors.FailedPrecondition` "idempotency_key: used for a
  different request";
- a DONE row → :data:`REPLAY`: the stored answer, returned as it was (nothing is asked again);
- an IN_FLIGHT row that no call of this process holds → :data:`RESUME`: the call that wrote it died with its process,
  or its caller gave up, or it answered UNAVAILABLE: the work goes on from the durable record.

Only successful answers are stored (a DECLINED payment is one). A request refused before anything reached an acquirer
releases its key (the row is deleted: the merchant may fix the request and reuse the key); an UNAVAILABLE answer
leaves it IN_FLIGHT, so the retry resumes it.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from ...runtime.errors import Aborted, FailedPrecondition
from ..contract import IDEMPOTENCY_KEY_TTL_S
from .store import IN_FLIGHT, GatewayStore, KeyRecord, delete_key

Scope = tuple[str, str, str]


class Outcome(enum.Enum):
    """What a claimed key asks of the call."""

    NEW = "new"
    REPLAY = "replay"
    RESUME = "resume"


NEW, REPLAY, RESUME = Outcome.NEW, Outcome.REPLAY, Outcome.RESUME


def request_hash(request: Message) -> str:
    """SHA-256 (hex) of ``request`` serialised deterministically without its ``idempotency_key``."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def request_bytes(request: Message) -> bytes:
    """``request`` serialised deterministically (kept with its key, to finish the call in the background)."""
    return request.SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class Claim:
    """A key held by the calling task: ``outcome``, and the stored row (``None`` when :data:`NEW`)."""

    scope: Scope
    outcome: Outcome
    record: KeyRecord | None
    request_hash: str


class IdempotencyKeys:
    """The key protocol over ``store`` (see the module docstring). ``clock()`` is seconds since the Unix epoch;
    ``ttl_s`` how long a key is kept (the contract's 24 h)."""

    def __init__(self, store: GatewayStore, clock: Callable[[], float] = time.time,
                 ttl_s: float = IDEMPOTENCY_KEY_TTL_S) -> None:
        self._store = store
        self._clock = clock
        self.ttl_s = ttl_s
        self._in_flight: set[Scope] = set()

    def held(self, scope: Scope) -> bool:
        """Whether a call of this process holds ``scope``'s key."""
        return scope in self._in_flight

    @property
    def in_flight(self) -> int:
        """Keys held by calls of this process."""
        return len(self._in_flight)

    @contextlib.asynccontextmanager
    async def begin(self, scope: Scope, hash_: str) -> AsyncIterator[Claim]:
        """Hold ``scope`` = (merchant_id, operation, idempotency_key) for the ``async with`` block and say what the call
        must do. :class:`Aborted` while another call of this process holds it; :class:`FailedPrecondition` when the
        key was used for a request with another hash; :class:`~.store.StoreUnavailable` when the row cannot be read."""
        if scope in self._in_flight:
            raise Aborted(f"idempotency_key: a {scope[1]} call with this key is in flight; retry it")
        self._in_flight.add(scope)
        try:
            record = await self._store.key(*scope)
            if record is not None and record.created_at_unix_ms < (self._clock() - self.ttl_s) * 1000:
                await self._store.write([delete_key(scope)])  # expired: the request is a new one
                record = None
            if record is None:
                yield Claim(scope, NEW, None, hash_)
                return
            if record.request_hash != hash_:
                raise FailedPrecondition("idempotency_key: used for a different request")
            yield Claim(scope, RESUME if record.state == IN_FLIGHT else REPLAY, record, hash_)
        finally:
            self._in_flight.discard(scope)

    def record(self, claim: Claim, request: bytes, payment_id: str, refund_id: str = "") -> KeyRecord:
        """The IN_FLIGHT row of a :data:`NEW` claim (write it, :func:`~.store.insert_key`, with the call's first
        record, before anything is asked of another service)."""
        at_ms = int(self._clock() * 1000)
        merchant_id, operation, key = claim.scope
        return KeyRecord(merchant_id, operation, key, claim.request_hash, IN_FLIGHT, payment_id, refund_id, request,
                         None, at_ms, at_ms)

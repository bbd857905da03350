"""The gateway's calls to the vault, the fraud service and the acquirers, as the domain sees them.

Each client wraps the service's gRPC stub (``vault_pb2_grpc.CardVaultServiceStub``, ``fraud_pb2_grpc.FraudServiceStub``,
``acquirer_pb2_grpc.AcquirerServiceStub``), passes an explicit ``timeout=`` on every call (the runtime channel's
default deadline is 500 ms) and turns gRPC errors into what the domain decides on:

- the vault: NOT_FOUND → :class:`~services.runtime.errors.NotFound` naming ``card_token``; INVALID_ARGUMENT passed
  through; anything else :class:`DependencyUnavailable`;
- the fraud service: any error :class:`DependencyUnavailable` (the domain fails open or not);
- an acquirer's Authorize / Capture / Refund / Void: FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT →
  :class:`Refused` (it answered and did nothing); UNAVAILABLE failed fast by the mesh channel's own circuit breaker
  ("circuit open to …") → :class:`NotSent` (nothing left the process); anything else (UNAVAILABLE,
  DEADLINE_EXCEEDED, CANCELLED, …) → :class:`OutcomeUnknown`: the request may or may not have been processed there;
- an acquirer's CloseBatch / GetSettlementFile: any error :class:`DependencyUnavailable`.

:class:`Unavailable` is the gateway's "answer UNAVAILABLE: retry later" (the servicers map it).
"""

from __future__ import annotations

from typing import Protocol

import grpc

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import (
    acquirer_pb2,
    acquirer_pb2_grpc,
    fraud_pb2,
    fraud_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

from ...runtime.errors import NotFound, dependency_error

#: The details of the runtime channel breaker's fast failure (services/runtime/circuit_breaker.py ``rejection``).
CHANNEL_BREAKER_DETAILS = "circuit open to "


class Unavailable(Exception):
    """The call cannot be served now (a dependency or the store failed): UNAVAILABLE, retry with the same key."""


class DependencyUnavailable(Unavailable):
    """A service the gateway calls could not answer."""


class AcquirerError(Exception):
    """An acquirer call failed with ``code`` (a ``grpc.StatusCode``) and ``details``."""

    def __init__(self, acquirer: str, code: grpc.StatusCode, details: str) -> None:
        self.acquirer = acquirer
        self.code = code
        self.details = details
        super().__init__(f"{acquirer} answered {code.name}: {details}")


class Refused(AcquirerError):
    """The acquirer answered that it did not do it (FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT): nothing held."""


class NotSent(AcquirerError):
    """The mesh channel's circuit breaker failed the call fast: it never left the process."""


class OutcomeUnknown(AcquirerError):
    """No answer (UNAVAILABLE, DEADLINE_EXCEEDED, …): the acquirer may or may not have processed the request."""


# -- what the domain needs ---------------------------------------------------------------------------------------------

class Vault(Protocol):
    """CardVaultService.DetokenizeCard (errors as the module docstring says)."""

    async def detokenize(self, merchant_id: str, card_token: str) -> vault_pb2.DetokenizeCardResponse: ...


class Fraud(Protocol):
    """FraudService.ScorePayment (any failure: :class:`DependencyUnavailable`)."""

    async def score(self, request: fraud_pb2.ScorePaymentRequest) -> fraud_pb2.ScorePaymentResponse: ...


class Acquirer(Protocol):
    """One acquirer's AcquirerService, ``name`` its topology name (errors as the module docstring says)."""

    name: str

    async def authorize(self, request: acquirer_pb2.AcquirerServiceAuthorizeRequest) -> acquirer_pb2.Authorization: ...

    async def capture(self, reference: str, amount_minor: int) -> acquirer_pb2.Authorization: ...

    async def refund(self, reference: str, refund_reference: str, amount_minor: int) -> acquirer_pb2.Authorization: ...

    async def void(self, reference: str, timeout_s: float | None = None) -> acquirer_pb2.Authorization: ...

    async def close_batch(self) -> acquirer_pb2.CloseBatchResponse: ...

    async def settlement_file(self, batch_id: str) -> list[acquirer_pb2.GetSettlementFileResponse]: ...


# -- over the stubs ----------------------------------------------------------------------------------------------------

class VaultClient:
    """:class:`Vault` over ``vault_pb2_grpc.CardVaultServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: vault_pb2_grpc.CardVaultServiceStub, timeout_s: float, name: str = "payments-vault"):
        self._stub = stub
        self._timeout_s = timeout_s
        self._name = name

    async def detokenize(self, merchant_id: str, card_token: str) -> vault_pb2.DetokenizeCardResponse:
        try:
            return await self._stub.DetokenizeCard(vault_pb2.DetokenizeCardRequest(
                merchant_id=merchant_id, card_token=card_token), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"card_token: no card {card_token} for merchant {merchant_id}") from None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise dependency_error(error) from None
            raise DependencyUnavailable(f"{self._name} could not detokenize the card ({error.code().name}: "
                                        f"{error.details()}); nothing is held, retry with the same key") from None


class FraudClient:
    """:class:`Fraud` over ``fraud_pb2_grpc.FraudServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: fraud_pb2_grpc.FraudServiceStub, timeout_s: float, name: str = "payments-fraud"):
        self._stub = stub
        self._timeout_s = timeout_s
        self._name = name

    async def score(self, request: fraud_pb2.ScorePaymentRequest) -> fraud_pb2.ScorePaymentResponse:
        try:
            return await self._stub.ScorePayment(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise DependencyUnavailable(f"{self._name} could not score the payment ({error.code().name}: "
                                        f"{error.details()})") from None


_REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
                       grpc.StatusCode.INVALID_ARGUMENT})


class AcquirerClient:
    """:class:`Acquirer` over ``acquirer_pb2_grpc.AcquirerServiceStub``: ``timeout_s`` per payment call,
    ``settlement_timeout_s`` for CloseBatch and for a whole GetSettlementFile stream."""

    def __init__(self, name: str, stub: acquirer_pb2_grpc.AcquirerServiceStub, timeout_s: float,
                 settlement_timeout_s: float) -> None:
        self.name = name
        self._stub = stub
        self._timeout_s = timeout_s
        self._settlement_timeout_s = settlement_timeout_s

    def _error(self, error: grpc.aio.AioRpcError) -> AcquirerError:
        code, details = error.code(), error.details() or ""
        if code in _REFUSALS:
            return Refused(self.name, code, details)
        if code == grpc.StatusCode.UNAVAILABLE and details.startswith(CHANNEL_BREAKER_DETAILS):
            return NotSent(self.name, code, details)
        return OutcomeUnknown(self.name, code, details)

    async def _call(self, method, request, timeout_s: float):
        try:
            return await method(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from None

    async def authorize(self, request: acquirer_pb2.AcquirerServiceAuthorizeRequest) -> acquirer_pb2.Authorization:
        return (await self._call(self._stub.Authorize, request, self._timeout_s)).authorization

    async def capture(self, reference: str, amount_minor: int) -> acquirer_pb2.Authorization:
        return (await self._call(self._stub.Capture, acquirer_pb2.AcquirerServiceCaptureRequest(
            reference=reference, amount_minor=amount_minor), self._timeout_s)).authorization

    async def refund(self, reference: str, refund_reference: str, amount_minor: int) -> acquirer_pb2.Authorization:
        return (await self._call(self._stub.Refund, acquirer_pb2.AcquirerServiceRefundRequest(
            reference=reference, refund_reference=refund_reference, amount_minor=amount_minor),
            self._timeout_s)).authorization

    async def void(self, reference: str, timeout_s: float | None = None) -> acquirer_pb2.Authorization:
        return (await self._call(self._stub.Void, acquirer_pb2.AcquirerServiceVoidRequest(reference=reference),
                                 timeout_s or self._timeout_s)).authorization

    async def close_batch(self) -> acquirer_pb2.CloseBatchResponse:
        try:
            return await self._stub.CloseBatch(acquirer_pb2.CloseBatchRequest(), timeout=self._settlement_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise DependencyUnavailable(f"{self.name} could not close its batch ({error.code().name}: "
                                        f"{error.details()})") from None

    async def settlement_file(self, batch_id: str) -> list[acquirer_pb2.GetSettlementFileResponse]:
        call = self._stub.GetSettlementFile(acquirer_pb2.GetSettlementFileRequest(batch_id=batch_id),
                                            timeout=self._settlement_timeout_s)
        try:
            return [line async for line in call]
        except grpc.aio.AioRpcError as error:
            raise DependencyUnavailable(f"{self.name} could not send settlement file {batch_id} "
                                        f"({error.code().name}: {error.details()})") from None


def money(currency_code: str, amount_minor: int) -> money_pb2.Money:
    """A ``casemesh.common.v1.Money``."""
    return money_pb2.Money(currency_code=currency_code, amount_minor=amount_minor)

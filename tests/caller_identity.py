"""The test identity for tests that call internal RPCs (docs/security.md, "Identities and authorization").

Servers accept ``spiffe://casemesh.local/test`` on every method only when
they opt in (``serve(..., allow_test_identity=True)`` or
``CASEMESH_ALLOW_TEST_IDENTITY=1``), never by default. A channel made with
:func:`identified_channel` carries a caller token of that identity, signed with the
mesh secret the servers hold (:data:`TEST_SECRET` for the in-process meshes of
tests/integration/conftest.py, ``Mesh.secret`` for a harness mesh).
"""

from __future__ import annotations

import grpc

from casemesh.services.runtime.authorization import ALLOW_TEST_IDENTITY_ENV
from casemesh.services.runtime.identity import TEST_IDENTITY, CallerToken, mint_token
from casemesh.services.runtime.secrets import SERVICE_TOKEN, Keyring, MeshSecret, secret_environment

#: The mesh secret of every in-process test mesh (random per test session).
TEST_SECRET = MeshSecret.generate()


class _WithToken:
    def __init__(self, token: CallerToken):
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return details._replace(metadata=(*(details.metadata or ()), *self._token.metadata()))


# grpc.aio files an interceptor under the first call kind it implements only: one class per kind.
class _UnaryUnary(_WithToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_WithToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_WithToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_WithToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


def identity_interceptors(secret: MeshSecret | Keyring = TEST_SECRET, identity: str = TEST_IDENTITY) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors (one per call kind) whose calls carry ``identity``'s token under ``secret`` (or these service-token keys)."""
    token = CallerToken(identity, secret if isinstance(secret, Keyring) else secret.keyring(SERVICE_TOKEN))
    return [kind(token) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def identified_channel(address: str, secret: MeshSecret | Keyring = TEST_SECRET, identity: str = TEST_IDENTITY, **kwargs) -> grpc.aio.Channel:
    """A plaintext channel to ``address`` whose calls carry ``identity`` (the test identity by default)."""
    return grpc.aio.insecure_channel(address, interceptors=identity_interceptors(secret, identity), **kwargs)


class _SyncWithToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                     grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The same for synchronous channels (``grpc.intercept_channel`` handles every kind with one object)."""

    def __init__(self, token: CallerToken):
        self._token = token

    def _details(self, details):
        return details._replace(metadata=(*(details.metadata or ()), *self._token.metadata()))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


def identified_sync_channel(address: str, secret: MeshSecret = TEST_SECRET, identity: str = TEST_IDENTITY) -> grpc.Channel:
    """A synchronous plaintext channel to ``address`` whose calls carry ``identity``."""
    token = CallerToken(identity, secret.keyring(SERVICE_TOKEN))
    return grpc.intercept_channel(grpc.insecure_channel(address), _SyncWithToken(token))


def caller_header(secret: MeshSecret, identity: str = TEST_IDENTITY) -> str:
    """``casemesh-caller: TOKEN`` for grpcurl's ``-H`` (a token valid for an hour)."""
    import time

    return f"casemesh-caller: {mint_token(identity, secret.keyring(SERVICE_TOKEN), int(time.time() * 1000))}"


def serve_environment(secret: MeshSecret = TEST_SECRET) -> dict[str, str]:
    """The environment of a ``casemesh serve`` subprocess holding ``secret`` that lets the test identity in."""
    return {**secret_environment(secret), ALLOW_TEST_IDENTITY_ENV: "1"}


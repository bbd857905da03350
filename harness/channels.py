"""The one way the harness opens a channel to the mesh: plaintext, or mTLS as the harness's identity.

Every place the harness talks to services under test (the driver's channels in
``run`` and ``capacity``, load worker processes, the embedded mesh's health
wait, ``replay``'s target, ``record``'s upstream) opens its channel with
:func:`open_mesh_channel`. With ``tls`` (a topology ``tls:`` section, as
``--tls DIR`` builds it) the channel presents the certificate of the
``harness`` identity (``spiffe://casemesh.local/harness``: DIR/harness.pem and
DIR/harness.key) and trusts the topology's CA, so it can reach servers that
require client certificates; without it the channel is plaintext. The
calibration echo server and the control stream are the harness's own local
servers and stay plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from casemesh.services.runtime.topology import TlsSettings

#: The harness's identity: its certificate is ``harness.pem`` in a ``casemesh certs init`` folder.
HARNESS_IDENTITY = "harness"


def open_mesh_channel(address: str, tls: TlsSettings | None = None, *, options: Sequence[tuple[str, Any]] = (),
                      identity: str = HARNESS_IDENTITY) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``address`` (``host:port``): mTLS as ``identity`` when ``tls`` is given, else plaintext.

    Must be called inside the running event loop. ``TlsError`` (a
    ``TopologyError``) when a certificate, key or CA file is unusable; the
    caller checks them first (:func:`check_tls`) to fail as a configuration error.
    """
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    from casemesh.services.runtime.tls import channel_credentials  # here: cryptography's x509 is ~0.1 s of start-up

    return grpc.aio.secure_channel(address, channel_credentials(tls, identity), options=list(options))


def check_tls(tls: TlsSettings | None, identities: Sequence[str] = (HARNESS_IDENTITY,)) -> None:
    """Load and check the files of ``identities`` under ``tls`` now; ``TlsError`` naming the first unusable one."""
    if tls is None:
        return
    from casemesh.services.runtime.tls import load_identity

    for name in identities:
        load_identity(tls, name)

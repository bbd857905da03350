"""Mutual TLS credentials from the topology's ``tls:`` section (docs/security.md, "mTLS").

Every casemesh process that has ``tls`` in its topology:

- serves with :func:`server_credentials`: its own certificate, and
  ``require_client_auth=True``, so a client must present a certificate issued
  by the topology's CA; a plaintext client or one without a certificate fails
  the handshake (``UNAVAILABLE`` on its side) and reaches no handler;
- calls with :func:`channel_credentials` of the *calling* service: the CA
  verifies the server (including gRPC's target-name check: the host the
  channel dials, e.g. ``127.0.0.1`` or a compose name, must be a SAN of the
  server's certificate), and the caller's certificate identifies it.

Files are found as ``tls.services[NAME].cert/key`` when given, else
``tls.dir/NAME.pem`` and ``tls.dir/NAME.key``; the CA bundle is ``tls.ca``,
else ``tls.dir/ca.pem``. Each is checked when loaded (:class:`TlsError`
names the identity, the field and the file): readable PEM, the key belongs to
the certificate, the certificate is within its validity and (a single
certificate, no chain) issued by a CA of the bundle. Source of the gRPC API:
``grpc.ssl_server_credentials`` / ``grpc.ssl_channel_credentials`` (grpcio).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from .topology import TlsSettings, TopologyError


class TlsError(TopologyError):
    """A certificate, key or CA file of ``tls:`` is missing or unusable; the message names the identity, field and file."""


def ca_file(tls: TlsSettings) -> Path:
    """The CA bundle's path: ``tls.ca``, else ``tls.dir/ca.pem``."""
    return Path(tls.ca) if tls.ca else Path(tls.dir or ".") / "ca.pem"


def identity_files(tls: TlsSettings, name: str) -> tuple[Path, Path]:
    """``(certificate, key)`` paths of identity ``name`` (a topology service, ``harness`` or ``test``).

    ``TlsError`` when ``tls`` has neither an explicit pair for ``name`` nor a ``dir``.
    """
    pair = tls.services.get(name)
    if pair is not None:
        return Path(pair.cert), Path(pair.key)
    if tls.dir is None:
        raise TlsError(f"tls.services.{name}: no certificate for {name!r}: give tls.services.{name}.cert and .key, or tls.dir")
    return Path(tls.dir) / f"{name}.pem", Path(tls.dir) / f"{name}.key"


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsError(f"{field}: cannot read {path}: {error.strerror or error}") from None


def load_identity(tls: TlsSettings, name: str) -> tuple[bytes, bytes, bytes]:
    """``(ca_pem, cert_pem, key_pem)`` of identity ``name``, checked (module docstring); ``TlsError`` otherwise."""
    cert_path, key_path = identity_files(tls, name)
    field = f"tls.services.{name}" if name in tls.services else "tls.dir"
    ca_pem = _read(ca_file(tls), "tls.ca" if tls.ca else "tls.dir")
    cert_pem, key_pem = _read(cert_path, f"{field} ({name} certificate)"), _read(key_path, f"{field} ({name} key)")
    try:
        cas = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        raise TlsError(f"{'tls.ca' if tls.ca else 'tls.dir'}: {ca_file(tls)} holds no PEM certificate") from None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TlsError(f"{field}: {cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise TlsError(f"{field}: {key_path} is not an unencrypted PEM private key ({error})") from None
    leaf = chain[0]
    if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TlsError(f"{field}: {key_path} is not the key of {cert_path}")
    now = dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise TlsError(f"{field}: {cert_path} is valid from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                       f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now")
    if len(chain) == 1 and not any(_issued_by(leaf, ca) for ca in cas):
        raise TlsError(f"{field}: {cert_path} is not issued by a CA of {ca_file(tls)} (a certificate of another set?)")
    return ca_pem, cert_pem, key_pem


def _issued_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def server_credentials(tls: TlsSettings, name: str) -> grpc.ServerCredentials:
    """Server credentials presenting ``name``'s certificate and requiring a client certificate from the CA."""
    ca_pem, cert_pem, key_pem = load_identity(tls, name)
    return grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True)


def channel_credentials(tls: TlsSettings, name: str) -> grpc.ChannelCredentials:
    """Channel credentials of caller ``name``: trust the CA, present ``name``'s certificate."""
    ca_pem, cert_pem, key_pem = load_identity(tls, name)
    return grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem)

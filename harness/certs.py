"""``casemesh certs init DIR``: a development CA and one certificate per mesh identity, for mTLS (docs/security.md).

Layout written into ``DIR`` (the layout a topology's ``tls: {dir: DIR}`` reads,
services/runtime/tls.py)::

    ca.pem            the CA certificate (every process trusts it)
    ca.key            the CA's private key (0600; only needed to issue more certificates)
    <name>.pem        a leaf certificate, one per name below
    <name>.key        its private key (PKCS#8 PEM, 0600)

Names: every service of ``services/catalog.py`` (``urlshortener``, ``video-edge``,
...), plus ``harness`` (the load generator) and ``test`` (tests calling
internal RPCs). Each leaf carries the identity as a SPIFFE-style URI SAN
(:func:`spiffe_id`: ``spiffe://casemesh.local/svc/<name>``,
``spiffe://casemesh.local/harness``, ``spiffe://casemesh.local/test``), and
the names callers dial it by: DNS ``localhost`` and ``<name>`` (the compose
service name), IP ``127.0.0.1`` and ``::1``. Keys are ECDSA P-256; the CA is
valid ``days + 30`` days, leaves ``days`` days (365 by default), both from 5
minutes before now (clock skew). Certificates are made with the
``cryptography`` library (X.509 builder), not by hand.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The SPIFFE trust domain of every casemesh identity.
TRUST_DOMAIN = "casemesh.local"
#: The identities that are not services: the harness and the tests' client.
HARNESS, TEST = "harness", "test"
#: Leaf validity by default (days); the CA lives 30 days longer.
DEFAULT_DAYS = 365
#: Longest leaf validity ``--days`` accepts (the CA/Browser Forum's old ceiling; a development CA needs no more).
MAX_DAYS = 825
_SKEW = dt.timedelta(minutes=5)


def spiffe_id(name: str) -> str:
    """The SPIFFE ID of identity ``name``: ``spiffe://casemesh.local/svc/<name>`` for a service, ``.../harness``, ``.../test``."""
    if name in (HARNESS, TEST):
        return f"spiffe://{TRUST_DOMAIN}/{name}"
    return f"spiffe://{TRUST_DOMAIN}/svc/{name}"


def default_names() -> list[str]:
    """Every service of the catalog, then ``harness`` and ``test``."""
    from casemesh.services.catalog import SERVICES

    return [*SERVICES, HARNESS, TEST]


@dataclass(frozen=True)
class CertSet:
    """What :func:`init_certs` wrote: the directory, the CA certificate's path and each identity's (cert, key) paths."""

    directory: Path
    ca: Path
    leaves: dict[str, tuple[Path, Path]]


class CertsError(ValueError):
    """The directory cannot take a certificate set (files already there, bad ``days``); the message names the path."""


def init_certs(directory: Path, names: Iterable[str] | None = None, *, days: int = DEFAULT_DAYS, force: bool = False) -> CertSet:
    """Write a development CA and one leaf per name (:func:`default_names` by default) into ``directory``.

    ``days``: leaf validity, 1..825. Raises :class:`CertsError` when
    ``directory`` already holds a ``ca.pem`` and ``force`` is false (a
    second set would not be trusted by processes holding the first), or when
    ``days`` is out of range; ``OSError`` when the files cannot be written.
    Keys are written 0600, certificates 0644; the directory is created 0700.
    """
    if not 1 <= days <= MAX_DAYS:
        raise CertsError(f"days: must be between 1 and {MAX_DAYS}, not {days}")
    directory = Path(directory)
    if (directory / "ca.pem").exists() and not force:
        raise CertsError(f"{directory / 'ca.pem'} exists: pass --force to replace the whole set (every process must then load the new one)")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "casemesh"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "casemesh development CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW).not_valid_after(now + dt.timedelta(days=days + 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "ca.key", _key_pem(ca_key), 0o600)
    _write(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    leaves: dict[str, tuple[Path, Path]] = {}
    for name in names if names is not None else default_names():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "casemesh"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            # Every identity both serves and calls (services call each other), so both usages.
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_sans(name)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        leaves[name] = (cert_path, key_path)
    return CertSet(directory=directory, ca=directory / "ca.pem", leaves=leaves)


def _sans(name: str) -> list[x509.GeneralName]:
    """The leaf's SANs: its SPIFFE ID (URI), the DNS names and loopback IPs callers dial it by."""
    dns = ["localhost"] + ([name] if name not in ("localhost",) else [])
    return [x509.UniformResourceIdentifier(spiffe_id(name)), *(x509.DNSName(d) for d in dns),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` created with ``mode`` (a key is never readable by others, not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(path, mode)  # the umask may have removed bits from a certificate's 0644

"""Which addresses a server may bind: plaintext stays on loopback unless the topology says otherwise.

A server whose topology address is not a loopback one (``0.0.0.0``, ``[::]``,
a LAN IP, a host name such as a compose service name) is reachable from the
network. Without ``tls:`` anyone there could call every RPC, internal ones
included, so :func:`check_binds` refuses it (:class:`BindRefused`, a
``TopologyError``, naming the service and the address) unless the topology
sets ``allow_insecure_public_bind: true``; then it logs one warning per
address. With ``tls:`` on, any address is allowed (clients need a
certificate from the CA). Loopback: ``localhost``, ``127.0.0.0/8``, ``::1``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from .topology import Topology, TopologyError

log = logging.getLogger("casemesh.runtime")


class BindRefused(TopologyError):
    """A plaintext server was asked to bind a non-loopback address."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` (``host:port``, ``[v6]:port``) binds only the loopback interface."""
    host = address.rpartition(":")[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it resolves to a network address
        return False


def check_binds(topology: Topology, services: Iterable[str], *, warn: bool = True) -> list[str]:
    """Check the addresses of ``services``; returns the plaintext public addresses allowed (each logged once when ``warn``).

    Raises :class:`BindRefused` for the first service whose address is not
    loopback while ``tls`` is off and ``allow_insecure_public_bind`` is false.
    """
    warned: list[str] = []
    if topology.tls is not None:
        return warned
    for name in services:
        address = topology.endpoint(name).address
        if is_loopback(address) or address in warned:
            continue
        if not topology.allow_insecure_public_bind:
            raise BindRefused(f"service {name}: refusing to serve plaintext on {address}, which is not a loopback address: "
                              "anyone who can reach it could call every RPC. Turn on tls: (casemesh certs init; docs/security.md), "
                              "bind 127.0.0.1, or set allow_insecure_public_bind: true in the topology")
        if warn:
            log.warning("service %s: serving plaintext on non-loopback %s (allow_insecure_public_bind: true): "
                        "anyone who can reach it can call every RPC", name, address)
        warned.append(address)
    return warned

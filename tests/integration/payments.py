"""Shared by the payment-gateway tests that run the services: the mesh, server-side faults, and cards as a merchant's
checkout page sends them.

:func:`payments_mesh` serves the payment services in the test's event loop: ``payments-psp-a`` in a server of its own
(a process of its own, as the runtime sees it) and ``payments-vault``, ``payments-fraud``, ``payments-psp-b`` and
``payments-gateway`` in another, both following one fault schedule file (services/runtime/faults.py, the file the
harness writes for ``casemesh run --fault``). :class:`Faults` writes that file: ``await faults.set(abort(...))``
returns once the fault is active, ``await faults.clear()`` once it is over. So a test can make one acquirer fail (the
gateway's failover, breakers and reversals) or the fraud service (the gateway failing open) and end it again, as the
payments profile's A/B does with ``--fault 'payments-psp-a:abort=UNAVAILABLE@50%'``.

Cards: :func:`card_number` draws a valid number of a brand (Luhn, stdnum), :data:`EXP_YEAR` is an expiry years ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stdnum import luhn

from casemesh.services.catalog import definitions
from casemesh.services.runtime.faults import FAULTS_ENV, SCHEDULE_VERSION, events_path
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .conftest import RunningMesh, free_port, start_mesh
from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests

PSP_A, PSP_B = "payments-psp-a", "payments-psp-b"
SERVICES = ["payments-vault", "payments-fraud", PSP_A, PSP_B, "payments-gateway"]
#: Served apart from the others, so a fault can target it alone (a fault names a process, and one server hosting both
#: acquirers would apply it to both).
APART = (PSP_A,)
ACQUIRER_SERVICE = "casemesh.payments.v1.AcquirerService"
FRAUD_SERVICE = "casemesh.payments.v1.FraudService"
#: Leading digits and length of a number of each brand (services/payments/contract.py ``card_brand``).
BRANDS = {"visa": ("4", 16), "mastercard": ("55", 16), "amex": ("37", 15)}
EXP_MONTH = 12
EXP_YEAR = time.gmtime().tm_year + 3
CVC = "123"


def card_number(brand: str = "visa") -> str:
    """A fresh valid card number of ``brand`` (``visa``, ``mastercard``, ``amex``): its prefix, random digits, and the
    Luhn check digit."""
    prefix, length = BRANDS[brand]
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def abort(name: str, service: str, process: str, code: str = "UNAVAILABLE", percent: float = 100.0) -> dict[str, Any]:
    """A schedule entry: every call of ``service`` (a full gRPC name) at topology name ``process`` ends ``code`` from
    now until :meth:`Faults.clear`."""
    return {"name": name, "service": service, "process": process, "method": None, "start_unix_s": time.time() - 1,
            "end_unix_s": None, "percent": percent, "abort": code, "delay": None}


class Faults:
    """The fault schedule file both servers of :func:`payments_mesh` follow (written atomically, as the harness
    does)."""

    def __init__(self, schedule: Path) -> None:
        self.schedule = schedule
        self.events = events_path(schedule)
        self.active: list[dict[str, Any]] = []

    def _write(self, faults: list[dict[str, Any]]) -> None:
        temporary = self.schedule.with_name(self.schedule.name + ".tmp")
        temporary.write_text(json.dumps({"version": SCHEDULE_VERSION, "faults": faults}))
        os.replace(temporary, self.schedule)

    def _switched(self, since: int, event: str, names: set[str]) -> bool:
        try:
            text = self.events.read_text()[since:]
        except FileNotFoundError:
            return False
        seen = {line["fault"] for line in map(json.loads, text.splitlines()) if line["event"] == event}
        return names <= seen

    def _size(self) -> int:
        try:
            return len(self.events.read_text())
        except FileNotFoundError:
            return 0

    async def set(self, *faults: dict[str, Any]) -> None:
        """Switch ``faults`` on (and any others off); returns once the servers report each one active."""
        since = self._size()
        self._write(list(faults))
        self.active = list(faults)
        names = {fault["name"] for fault in faults}
        await eventually(lambda: self._switched(since, "start", names), f"faults {sorted(names)} active")

    async def clear(self) -> None:
        """Switch every fault off; returns once the servers report each one ended."""
        since = self._size()
        names = {fault["name"] for fault in self.active}
        self._write([])
        self.active = []
        await eventually(lambda: self._switched(since, "end", names), f"faults {sorted(names)} ended")


@dataclass
class PaymentsMesh:
    """The running payment services: ``running`` opens channels to any of them, ``faults`` injects server faults."""

    running: RunningMesh
    faults: Faults


@contextlib.asynccontextmanager
async def payments_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                        ) -> AsyncIterator[PaymentsMesh]:
    """The payment services served in this event loop on 127.0.0.1 (their files in ``data_dir``, the fault schedule
    ``data_dir/faults.json``), with the tests' mesh secret and identity (tests/integration/conftest.py)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    schedule = data_dir / "faults.json"
    topology = Topology(services={name: Endpoint(address=f"127.0.0.1:{free_port()}") for name in SERVICES},
                        data_dir=str(data_dir), settings=settings or {}, server=ServerPolicy(grace_s=1))
    started: list[tuple[RunningMesh, asyncio.Event, asyncio.Task]] = []
    before = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = str(schedule)  # read once by each server as it starts
    try:
        for names in (list(APART), [name for name in SERVICES if name not in APART]):
            started.append(await start_mesh(definitions(names), topology))
    finally:
        if before is None:
            os.environ.pop(FAULTS_ENV, None)
        else:
            os.environ[FAULTS_ENV] = before
        if len(started) < 2:
            await _stop(started)
    try:
        yield PaymentsMesh(started[-1][0], Faults(schedule))
    finally:
        await _stop(started)


async def _stop(started: list[tuple[RunningMesh, asyncio.Event, asyncio.Task]]) -> None:
    for running, stop, task in reversed(started):  # the gateway first: it calls the acquirer served apart
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

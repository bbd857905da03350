"""Which process applies a scheduled server fault: the one its target names, when two serve the same gRPC service."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

from casemesh.services.runtime.faults import FaultWatch

SERVICE = "casemesh.payments.v1.AcquirerService"


def schedule(tmp_path, **extra):
    path = tmp_path / "schedule.json"
    now = time.time()
    fault = {"name": "abort:payments-psp-a", "service": SERVICE, "method": None, "start_unix_s": now - 1,
             "end_unix_s": now + 60, "percent": 100, "abort": "UNAVAILABLE", "delay": None, **extra}
    path.write_text(json.dumps({"version": 1, "faults": [fault]}))
    return path


async def active_on(path, names) -> bool:
    interceptor = SimpleNamespace(faults=None)
    watch = FaultWatch(interceptor, [SERVICE], path, names=names)
    watch.start()
    try:
        await asyncio.sleep(0.05)  # the switch runs on the loop (call_later with no delay)
        return interceptor.faults is not None and bool(watch.injector.active)
    finally:
        await watch.stop()


async def test_a_fault_targeting_one_process_skips_its_twin(tmp_path):
    path = schedule(tmp_path, process="payments-psp-a")
    assert await active_on(path, ["payments-psp-a"])
    assert not await active_on(path, ["payments-psp-b"])


async def test_a_schedule_without_a_process_reaches_every_process_serving_the_service(tmp_path):
    path = schedule(tmp_path)
    assert await active_on(path, ["payments-psp-a"]) and await active_on(path, ["payments-psp-b"])

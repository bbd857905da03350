"""payments-gateway's settlement (services/payments/gateway/settlement.py): a clean run reconciles with zero
discrepancies, and every discrepancy kind is reported when the fake acquirer's settlement file is tampered with
(unknown_reference, amount_mismatch, duplicate_line, wrong_acquirer, unsettled); one reconciliation at a time;
batches closed by a failed run are reconciled by the next; the JSON report is written atomically.

The gateway runs over fakes of the vault, the fraud service and the acquirers (tests/unit/test_payments_gateway.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from casemesh.payments.v1 import acquirer_pb2, payments_pb2
from casemesh.services.payments.gateway.clients import Unavailable
from casemesh.services.payments.gateway.settlement import (
    report_id_at,
    report_time,
    write_atomically,
)
from casemesh.services.runtime.errors import Aborted
from tests.unit.test_payments_gateway import (
    PSP_A,
    PSP_B,
    Env,
    authorize_request,
    capture_request,
    refund_request,
    rpc_error,
    sample,
    token,
)


@pytest.fixture
async def env(tmp_path):
    environment = Env(tmp_path)
    environment.vault.add(1)
    await environment.gateway.start()
    try:
        yield environment
    finally:
        await environment.close()


async def sale(env: Env, key: str, amount: int, *, at_b: bool = False) -> str:
    """A payment authorised and captured in full (at psp-b when ``at_b``: psp-a down for it); its id."""
    if at_b:
        env.a.script = ["down"]
    payment = (await env.gateway.authorize(authorize_request(key=key, amount=amount, capture=True))).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED
    assert payment.acquirer == (PSP_B if at_b else PSP_A)
    return payment.payment_id


async def reconcile(env: Env):
    """A reconciliation one second after what happened before it (the gateway's clock; the "unsettled" rule compares
    record times with the previous run's start), and one second before what follows."""
    env.clock_offset_s += 1
    report = await env.settlement.reconcile()
    env.clock_offset_s += 1
    return report


def kinds(report) -> list[tuple[str, str, int, int]]:
    return sorted((d.kind, d.acquirer, d.file_amount_minor, d.recorded_amount_minor) for d in report.discrepancies)


async def test_a_clean_run_reconciles_with_zero_discrepancies(env):
    gw = env.gateway
    first = await sale(env, "s1", 1_000)
    await sale(env, "s2", 2_500, at_b=True)
    auth = (await gw.authorize(authorize_request(key="s3", amount=700))).payment.payment_id
    await gw.capture(capture_request(auth, amount=600))
    await gw.refund(refund_request(first, amount=400))
    await gw.reverser.drain()
    ok = sample("casemesh_payments_gateway_reconciliations_total", {"outcome": "ok"})

    report = await reconcile(env)
    assert not report.discrepancies and report.pending == 0
    assert report.report_id.startswith("rec-") and len(report.report_id) == len("rec-20260101T000000Z")
    by_acquirer = {s.acquirer: s for s in report.acquirers}
    assert [s.acquirer for s in report.acquirers] == [PSP_A, PSP_B]
    a, b = by_acquirer[PSP_A], by_acquirer[PSP_B]
    assert (a.batch_id, a.lines, a.matched) == (f"{PSP_A}-000001", 3, 3)
    assert (b.batch_id, b.lines, b.matched) == (f"{PSP_B}-000001", 1, 1)
    assert [(m.currency_code, m.amount_minor) for m in a.gross] == [("USD", 1_000 + 600 - 400)]
    assert [(m.currency_code, m.amount_minor) for m in a.fees] == [("USD", 3 + 25 + 1 + 25)]
    assert sample("casemesh_payments_gateway_reconciliations_total", {"outcome": "ok"}) == ok + 1
    assert all(e.settled_batch for e in await gw.store.ledger_entries())

    path = Path(report.report_path)
    assert path == env.folder / "settlement" / f"{report.report_id}.json"
    saved = json.loads(path.read_text())
    assert saved["report_id"] == report.report_id and saved["discrepancies"] == []
    assert saved["acquirers"][0]["gross"] == {"USD": 1_200} and saved["pending"] == 0
    assert not list(path.parent.glob(".*.tmp"))

    # the next run: only what happened since, and a report id of its own
    await sale(env, "s4", 300)
    again = await reconcile(env)
    assert not again.discrepancies and again.report_id > report.report_id
    assert [(s.batch_id, s.lines, s.matched) for s in again.acquirers] == [
        (f"{PSP_A}-000002", 1, 1), (f"{PSP_B}-000002", 0, 0)]


async def test_every_discrepancy_kind_is_reported_when_the_file_is_tampered(env):
    gw = env.gateway
    mismatched = await sale(env, "s1", 1_000)
    duplicated = await sale(env, "s2", 2_000)
    moved = await sale(env, "s3", 3_000)
    dropped = await sale(env, "s4", 4_000)
    lines = {line.reference: line for line in env.a.open_lines}
    # amount_mismatch: the file says 999 for a capture of 1,000
    lines[f"{mismatched}.1"].amount.amount_minor = 999
    # duplicate_line: a capture settled twice
    env.a.open_lines.append(lines[f"{duplicated}.1"])
    # wrong_acquirer: psp-b settles a capture the gateway recorded at psp-a
    env.a.open_lines.remove(lines[f"{moved}.1"])
    env.b.open_lines.append(lines[f"{moved}.1"])
    # unknown_reference: a line the gateway never recorded
    stranger = acquirer_pb2.GetSettlementFileResponse()
    stranger.CopyFrom(lines[f"{duplicated}.1"])
    stranger.reference = "pay_" + "q" * 24 + ".1"
    env.a.open_lines.append(stranger)
    # unsettled: a capture in no file
    env.a.open_lines.remove(lines[f"{dropped}.1"])
    before = sample("casemesh_payments_gateway_settlement_discrepancies_total", {"kind": "duplicate_line"})

    report = await reconcile(env)
    assert kinds(report) == sorted([
        ("amount_mismatch", PSP_A, 999, 1_000), ("duplicate_line", PSP_A, 2_000, 2_000),
        ("unknown_reference", PSP_A, 2_000, 0), ("wrong_acquirer", PSP_B, 3_000, 3_000)])
    assert report.pending == 2  # the moved and the dropped captures, recorded after no earlier run
    by_acquirer = {s.acquirer: s for s in report.acquirers}
    assert (by_acquirer[PSP_A].lines, by_acquirer[PSP_A].matched) == (4, 1)
    assert sample("casemesh_payments_gateway_settlement_discrepancies_total", {"kind": "duplicate_line"}) == before + 1
    saved = json.loads(Path(report.report_path).read_text())
    assert sorted(d["kind"] for d in saved["discrepancies"]) == sorted(d.kind for d in report.discrepancies)

    # a second run: what no file settled across two cut-offs is "unsettled"; a later line of it is then matched
    second = await reconcile(env)
    assert kinds(second) == [("unsettled", PSP_A, 0, 3_000), ("unsettled", PSP_A, 0, 4_000)]
    env.a.open_lines.append(lines[f"{dropped}.1"])
    env.a.open_lines.append(lines[f"{mismatched}.1"])  # settled (with the wrong amount) already
    third = await reconcile(env)
    assert kinds(third) == [("duplicate_line", PSP_A, 999, 1_000), ("unsettled", PSP_A, 0, 3_000)]
    entries = {e.reference: e for e in await gw.store.ledger_entries()}
    assert entries[f"{dropped}.1"].settled_batch == f"{PSP_A}-000003"
    assert entries[f"{moved}.1"].settled_batch == ""


async def test_refund_lines_match_on_their_refund_reference(env):
    paid = await sale(env, "s1", 1_000)
    refund = await env.gateway.refund(refund_request(paid, amount=100))
    line = next(x for x in env.a.open_lines if x.kind == acquirer_pb2.SETTLEMENT_KIND_REFUND)
    assert line.refund_reference == refund.refund_id
    line.refund_reference = "re_" + "z" * 24
    report = await reconcile(env)
    assert [(d.kind, d.refund_reference) for d in report.discrepancies] == [("unknown_reference", "re_" + "z" * 24)]
    assert report.pending == 1


async def test_one_reconciliation_at_a_time(env):
    await sale(env, "s1", 1_000)
    gate = asyncio.Event()
    close = env.a.CloseBatch

    async def slow_close(request, timeout):
        await gate.wait()
        return await close(request, timeout)

    env.a.CloseBatch = slow_close
    first = asyncio.create_task(env.settlement.reconcile())
    await asyncio.sleep(0)
    with pytest.raises(Aborted, match="another reconciliation"):
        await reconcile(env)
    gate.set()
    assert not (await first).discrepancies


async def test_batches_closed_by_a_failed_run_are_reconciled_by_the_next(env):
    await sale(env, "s1", 1_000)
    await sale(env, "s2", 2_000, at_b=True)
    env.b.close_down = True
    unavailable = sample("casemesh_payments_gateway_reconciliations_total", {"outcome": "unavailable"})
    with pytest.raises(Unavailable):
        await reconcile(env)
    assert sample("casemesh_payments_gateway_reconciliations_total", {"outcome": "unavailable"}) == unavailable + 1
    assert env.a.batches  # psp-a's batch was closed
    env.b.close_down = False
    await sale(env, "s3", 500)
    report = await reconcile(env)
    assert not report.discrepancies
    assert [(s.acquirer, s.batch_id, s.matched) for s in report.acquirers] == [
        (PSP_A, f"{PSP_A}-000001", 1), (PSP_A, f"{PSP_A}-000002", 1), (PSP_B, f"{PSP_B}-000001", 1)]


async def test_an_unreadable_file_fails_the_run_and_the_next_reads_it(env):
    await sale(env, "s1", 1_000)
    get_file = env.a.GetSettlementFile
    env.a.GetSettlementFile = lambda request, timeout: _failing()
    with pytest.raises(Unavailable):
        await reconcile(env)
    env.a.GetSettlementFile = get_file
    report = await reconcile(env)
    assert not report.discrepancies and [s.matched for s in report.acquirers if s.acquirer == PSP_A] == [1, 0]


async def _failing():
    raise rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    yield  # pragma: no cover


async def test_an_unresolved_capture_is_reported_unsettled_after_two_runs(env):
    auth = (await env.gateway.authorize(authorize_request(key="a1", tok=token(1)))).payment.payment_id
    env.a.capture_down = True
    with pytest.raises(Unavailable):
        await env.gateway.capture(capture_request(auth))
    first = await reconcile(env)
    assert first.pending == 1 and not first.discrepancies  # recorded before the capture was confirmed
    second = await reconcile(env)
    assert kinds(second) == [("unsettled", PSP_A, 0, 1_000)]
    env.a.capture_down = False
    await env.gateway.capture(capture_request(auth))  # the retry finishes it; its line comes in the next batch
    third = await reconcile(env)
    assert not third.discrepancies and third.pending == 0


def test_report_ids_and_atomic_writes(tmp_path):
    assert report_id_at(0) == "rec-19700101T000000Z"
    assert report_time(report_id_at(1_767_225_600)) == 1_767_225_600
    path = tmp_path / "settlement" / "r.json"
    write_atomically(path, b"{}")
    write_atomically(path, b'{"a": 1}')
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in path.parent.iterdir()] == ["r.json"]

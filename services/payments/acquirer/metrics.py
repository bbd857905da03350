"""The simulated acquirers' own metrics (``casemesh_payments_acquirer_*``), labelled by ``acquirer`` (the topology
name, ``payments-psp-a``): both acquirers may share one process (``casemesh serve``) and so these collectors.

- ``casemesh_payments_acquirer_authorizations_total{acquirer,result}``: Authorize calls decided, once per reference
  (repeats not counted): ``approved``, ``declined`` (by the issuer: a test card, an expired card, or the random
  decline rate), ``refused`` (FAILED_PRECONDITION: the reference had been voided before it arrived, a late
  authorization refused);
- ``casemesh_payments_acquirer_captures_total{acquirer}`` and ``casemesh_payments_acquirer_refunds_total{acquirer}``:
  captures and refunds booked into the open batch (repeats not counted);
- ``casemesh_payments_acquirer_voids_total{acquirer,kind}``: voids recorded: ``release`` (an approved authorization
  released) or ``tombstone`` (a reference never seen, recorded VOIDED so a late Authorize is refused);
- ``casemesh_payments_acquirer_repeats_total{acquirer,rpc}``: calls answered from the ledger as a repeat (the same
  ``reference`` or ``refund_reference`` again: the gateway's retries), per RPC (``Authorize``, ``Capture``,
  ``Refund``, ``Void``);
- ``casemesh_payments_acquirer_issuer_latency_seconds{acquirer}`` (histogram): the simulated issuer round trip of
  each authorization decided (the lognormal draw), in seconds;
- ``casemesh_payments_acquirer_batches_closed_total{acquirer}``: settlement batches closed (files written);
- ``casemesh_payments_acquirer_write_seconds{acquirer}`` (histogram): one group commit to the ledger's SQLite file,
  fsync included, in seconds.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

AUTHORIZATION_RESULTS = ("approved", "declined", "refused")
VOID_KINDS = ("release", "tombstone")
REPEATED_RPCS = ("Authorize", "Capture", "Refund", "Void")

AUTHORIZATIONS = Counter("casemesh_payments_acquirer_authorizations", "Authorizations decided, once per reference: "
                         "approved, declined by the issuer, or refused (voided before it arrived).",
                         ["acquirer", "result"])
CAPTURES = Counter("casemesh_payments_acquirer_captures", "Captures booked into the open settlement batch.",
                   ["acquirer"])
REFUNDS = Counter("casemesh_payments_acquirer_refunds", "Refunds booked into the open settlement batch.",
                  ["acquirer"])
VOIDS = Counter("casemesh_payments_acquirer_voids", "Voids recorded: release (an approved authorization released) or "
                "tombstone (a reference never seen, recorded voided).", ["acquirer", "kind"])
REPEATS = Counter("casemesh_payments_acquirer_repeats", "Calls answered from the ledger as a repeat of an earlier "
                  "one with the same reference (or refund reference).", ["acquirer", "rpc"])
#: Seconds: the simulated issuer round trip, tens of ms by default, up to seconds in a slow profile.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0,
                   2.0, 5.0)
ISSUER_LATENCY_SECONDS = Histogram("casemesh_payments_acquirer_issuer_latency_seconds", "The simulated issuer round "
                                   "trip of each authorization decided, in seconds.", ["acquirer"],
                                   buckets=LATENCY_BUCKETS)
BATCHES_CLOSED = Counter("casemesh_payments_acquirer_batches_closed", "Settlement batches closed (files written).",
                         ["acquirer"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_payments_acquirer_write_seconds", "One group commit to the acquirer's ledger "
                          "file, fsync included, in seconds.", ["acquirer"], buckets=WRITE_BUCKETS)


class AcquirerMetrics:
    """The children of one acquirer (label lookups done once)."""

    def __init__(self, acquirer: str) -> None:
        self.acquirer = acquirer
        self._authorizations = {result: AUTHORIZATIONS.labels(acquirer, result) for result in AUTHORIZATION_RESULTS}
        self._voids = {kind: VOIDS.labels(acquirer, kind) for kind in VOID_KINDS}
        self._repeats = {rpc: REPEATS.labels(acquirer, rpc) for rpc in REPEATED_RPCS}
        self.captures = CAPTURES.labels(acquirer)
        self.refunds = REFUNDS.labels(acquirer)
        self.issuer_latency = ISSUER_LATENCY_SECONDS.labels(acquirer)
        self.batches_closed = BATCHES_CLOSED.labels(acquirer)
        self.write_seconds = WRITE_SECONDS.labels(acquirer)

    def authorization(self, result: str) -> None:
        """Count one authorization decided: ``result`` one of :data:`AUTHORIZATION_RESULTS`."""
        self._authorizations[result].inc()

    def void(self, kind: str) -> None:
        """Count one void recorded: ``kind`` one of :data:`VOID_KINDS`."""
        self._voids[kind].inc()

    def repeat(self, rpc: str) -> None:
        """Count one call of ``rpc`` (one of :data:`REPEATED_RPCS`) answered as a repeat."""
        self._repeats[rpc].inc()

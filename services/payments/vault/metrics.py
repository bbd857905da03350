"""payments-vault's own metrics (``casemesh_payments_vault_*``).

- ``casemesh_payments_vault_cards_tokenized_total{brand}``: cards stored by TokenizeCard (once on disk), by brand
  (``visa``, ``mastercard``, ``amex``, ``other``: services/payments/contract.py ``card_brand``);
- ``casemesh_payments_vault_detokenize_total{outcome}``: DetokenizeCard calls by outcome: ``ok``; ``not_found`` (no
  such token) and ``wrong_merchant`` (another merchant's token): both answered NOT_FOUND alike, told apart here
  only; ``invalid`` (INVALID_ARGUMENT); ``undecryptable`` (the card's key is no longer held, or the stored row failed
  authentication); ``unavailable`` (the store could not be read);
- ``casemesh_payments_vault_write_seconds`` (histogram): one group commit of new cards, fsync included.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BRANDS = ("visa", "mastercard", "amex", "other")
TOKENIZED = Counter("casemesh_payments_vault_cards_tokenized", "Cards stored by TokenizeCard (on disk), by brand.",
                    ["brand"])
DETOKENIZE_OUTCOMES = ("ok", "not_found", "wrong_merchant", "invalid", "undecryptable", "unavailable")
DETOKENIZE = Counter("casemesh_payments_vault_detokenize", "DetokenizeCard calls by outcome (not_found and "
                     "wrong_merchant are both answered NOT_FOUND).", ["outcome"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_payments_vault_write_seconds", "One group commit of new cards to the SQLite file, "
                          "fsync included, in seconds.", buckets=WRITE_BUCKETS)

_TOKENIZED = {brand: TOKENIZED.labels(brand) for brand in BRANDS}
_DETOKENIZE = {outcome: DETOKENIZE.labels(outcome) for outcome in DETOKENIZE_OUTCOMES}


def tokenized(brand: str) -> None:
    """Count one card stored, of ``brand`` (one of :data:`BRANDS`)."""
    _TOKENIZED[brand].inc()


def detokenized(outcome: str) -> None:
    """Count one DetokenizeCard under ``outcome`` (one of :data:`DETOKENIZE_OUTCOMES`)."""
    _DETOKENIZE[outcome].inc()

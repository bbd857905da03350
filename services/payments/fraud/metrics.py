"""payments-fraud's own metrics (``casemesh_payments_fraud_*``).

- ``casemesh_payments_fraud_decisions_total{decision}``: payments scored (counted once per ``payment_id``: a repeat
  answered from the cache is not counted here), by decision: ``allow``, ``review``, ``block``;
- ``casemesh_payments_fraud_rule_hits_total{rule}``: rules that fired, by rule: ``card_velocity``,
  ``card_testing``, ``amount_spike``, ``large_first_payment`` (once per payment scored);
- ``casemesh_payments_fraud_score`` (histogram): the score of each payment scored, 0 to 100;
- ``casemesh_payments_fraud_repeats_total``: ScorePayment calls for a payment_id already scored, answered with the
  first answer and counted nowhere else.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from .settings import RULES

DECISIONS = ("allow", "review", "block")
DECISIONS_TOTAL = Counter("casemesh_payments_fraud_decisions", "Payments scored (once per payment_id), by decision.",
                          ["decision"])
RULE_HITS = Counter("casemesh_payments_fraud_rule_hits", "Rules that fired on the payments scored, by rule.",
                    ["rule"])
SCORE = Histogram("casemesh_payments_fraud_score", "Fraud score of each payment scored, 0 (clean) to 100.",
                  buckets=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100))
REPEATS = Counter("casemesh_payments_fraud_repeats", "ScorePayment calls for a payment_id already scored (answered "
                  "with the first answer, counted nowhere else).")

_DECISIONS = {decision: DECISIONS_TOTAL.labels(decision) for decision in DECISIONS}
_RULES = {rule: RULE_HITS.labels(rule) for rule in RULES}


def scored(decision: str, score: int, rules: tuple[str, ...]) -> None:
    """Count one payment scored: its ``decision`` (one of :data:`DECISIONS`), ``score`` and the ``rules`` fired."""
    _DECISIONS[decision].inc()
    SCORE.observe(score)
    for rule in rules:
        _RULES[rule].inc()


def repeated() -> None:
    """Count one repeat of a payment_id already scored."""
    REPEATS.inc()

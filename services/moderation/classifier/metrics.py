"""moderation-classifier's own metrics (``casemesh_moderation_classifier_*``), seed 001 #26
(shared/seeds/001_58dfc580020147d2.txt line 50: "AI classifiers (BERT/ResNet), confidence routing").

- ``casemesh_moderation_classifier_seconds`` (histogram): one Classify's features and score, in seconds (the CPU the
  model costs per item, without gRPC);
- ``casemesh_moderation_classifier_probability`` (histogram): the violation probabilities given, in buckets of 0.05
  (how much of the traffic falls inside the pipeline's review band);
- ``casemesh_moderation_classifier_held_out_auc`` (gauge): the fitted model's area under the ROC curve on the
  held-out split, 0.5 (chance) to 1;
- ``casemesh_moderation_classifier_fit_seconds`` (gauge): how long the fit at start took (features, fit, evaluation),
  in seconds.
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

#: Seconds: a post's features and score take about 50 to 150 µs.
SECONDS_BUCKETS = (0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05)
#: 0.05, 0.10, ..., 1.0.
PROBABILITY_BUCKETS = tuple(round(0.05 * n, 2) for n in range(1, 21))

CLASSIFY_SECONDS = Histogram("casemesh_moderation_classifier_seconds", "One Classify's features and score, in "
                             "seconds.", buckets=SECONDS_BUCKETS)
PROBABILITY = Histogram("casemesh_moderation_classifier_probability", "Violation probabilities given by Classify.",
                        buckets=PROBABILITY_BUCKETS)
HELD_OUT_AUC = Gauge("casemesh_moderation_classifier_held_out_auc", "The model's area under the ROC curve on the "
                     "held-out split (0.5 chance, 1 perfect).")
FIT_SECONDS = Gauge("casemesh_moderation_classifier_fit_seconds", "How long the fit at start took, in seconds.")

"""The classifier's model: a logistic regression over the lexical features (:mod:`.features`), fitted at start on the
labelled corpus's training split and judged on its held-out split (seed 001 #26, shared/seeds/001_58dfc580020147d2.txt
line 50: "AI classifiers (BERT/ResNet), confidence routing": the probability it gives is what the pipeline routes on,
so it must be calibrated against labels, not hand-set).

- :func:`fit`: builds the features of ``corpus.split("train", training_items)``, fits scikit-learn's
  ``LogisticRegression`` (lbfgs, L2, C = 1; deterministic for the same items), and evaluates the area under the ROC
  curve (``sklearn.metrics.roc_auc_score``) on ``corpus.split("held_out", held_out_items)``, items it never saw. With
  the defaults (20,000 and 5,000) the AUC is about 0.94; fitting takes about a second of CPU, mostly VADER.
- :class:`Classifier`: scores one text with the fitted coefficients, ``sigmoid(coef · x + intercept)`` by one numpy
  dot product (a call of ``predict_proba`` costs tens of microseconds of validation per call; this is the same number
  to 1e-9, which tests/unit/test_moderation_classifier.py checks).
- ``model_version``: the first 12 hex digits of SHA-256 over the coefficients, the intercept (little-endian float64)
  and :data:`..corpus.CORPUS_SEED`: the same fit gives the same version on every start.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from .. import corpus
from .features import FEATURES, FeatureExtractor, Signals

__all__ = ["Classifier", "Model", "features_of", "fit", "model_version", "sigmoid"]


@dataclass(frozen=True)
class Model:
    """A fitted model (GetModelResponse): its version, what it was fitted and judged on, its held-out AUC (0.5 to 1),
    its coefficients in :data:`.features.FEATURES` order and intercept, and how long the fit took (seconds)."""

    version: str
    training_items: int
    held_out_items: int
    held_out_auc: float
    coefficients: tuple[float, ...]
    intercept: float
    fit_seconds: float
    features: tuple[str, ...] = FEATURES


def model_version(coefficients: Sequence[float], intercept: float, seed: int = corpus.CORPUS_SEED) -> str:
    """The short hash naming a model (module docstring)."""
    digest = hashlib.sha256(np.asarray(coefficients, dtype="<f8").tobytes())
    digest.update(struct.pack("<d", intercept))
    digest.update(str(seed).encode())
    return digest.hexdigest()[:12]


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def features_of(items: Sequence[corpus.LabelledItem], extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
    """The feature matrix (one row per item) and the labels (True: violating) of ``items``."""
    x = np.array([extractor.signals(item.text).vector() for item in items], dtype=np.float64)
    y = np.array([item.violating for item in items], dtype=bool)
    return x.reshape(len(items), len(FEATURES)), y


class Classifier:
    """Scores texts with a fitted :class:`Model`'s coefficients (module docstring); pure CPU, no I/O."""

    def __init__(self, model: Model, extractor: FeatureExtractor) -> None:
        self.model = model
        self._extractor = extractor
        self._coefficients = np.asarray(model.coefficients, dtype=np.float64)
        self._intercept = float(model.intercept)

    def score(self, vector: Sequence[float]) -> float:
        """The violation probability (0 to 1) of one feature vector (:meth:`.features.Signals.vector`)."""
        return sigmoid(float(np.dot(self._coefficients, vector)) + self._intercept)

    def classify(self, text: str) -> tuple[float, Signals]:
        """The violation probability of ``text`` (0 to 1) and the signals it was made of."""
        signals = self._extractor.signals(text)
        return self.score(signals.vector()), signals


def fit(training_items: int, held_out_items: int, extractor: FeatureExtractor,
        seed: int = corpus.CORPUS_SEED) -> tuple[Classifier, LogisticRegression]:
    """Fit on ``training_items`` items of the training split and evaluate on ``held_out_items`` of the held-out one
    (both of corpus seed ``seed``); the classifier and scikit-learn's fitted estimator. CPU-bound for about a second
    at the defaults: call it in a thread. ``ValueError`` when a split holds one class only (a few items)."""
    started = time.perf_counter()
    x, y = features_of(corpus.split("train", training_items, seed), extractor)
    estimator = LogisticRegression().fit(x, y)
    coefficients = tuple(float(c) for c in estimator.coef_[0])
    intercept = float(estimator.intercept_[0])
    held_x, held_y = features_of(corpus.split("held_out", held_out_items, seed), extractor)
    probe = Classifier(Model("", training_items, held_out_items, 0.0, coefficients, intercept, 0.0), extractor)
    auc = float(roc_auc_score(held_y, [probe.score(row) for row in held_x]))
    model = Model(model_version(coefficients, intercept, seed), training_items, held_out_items, auc, coefficients,
                  intercept, time.perf_counter() - started)
    return Classifier(model, extractor), estimator

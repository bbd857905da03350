"""moderation-classifier's features and model (services/moderation/classifier/{features,model}.py), without gRPC: the
features of known texts (leetspeak undone, masks not, the profanity cap, second-person share, targeted negativity), a
fit that is the same on every run, the numpy score equal to scikit-learn's predict_proba, and an AUC on the held-out
split well above chance. Fitted on 2,000 items (the service's default is 20,000) to stay fast; speed is not asserted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from casemesh.services.moderation import corpus
from casemesh.services.moderation.classifier import features
from casemesh.services.moderation.classifier.model import fit, model_version, sigmoid

TRAINING_ITEMS = 2_000
HELD_OUT_ITEMS = 1_000


@pytest.fixture(scope="module")
def fitted():
    return fit(TRAINING_ITEMS, HELD_OUT_ITEMS, features.extractor())


def test_the_profanity_signal_undoes_leetspeak_but_not_masks():
    signals = features.extractor().signals
    assert signals("the weather is nice today").profanity_hits == 0
    assert signals("what a shit day").profanity_hits == 1
    assert signals("what a sh1t day").profanity_hits == 1
    assert signals("what a $H1T day").profanity_hits == 1  # lower-cased first
    assert signals("what a sh*t day").profanity_hits == 0  # a masked letter is not undone
    assert signals("a scunthorpe class assessment").profanity_hits == 0  # whole words only, not substrings
    many = signals("shit shit shit shit shit")
    assert many.profanity_hits == 5 and many.vector()[0] == features.MAX_PROFANITY_HITS


def test_second_person_and_valence_signals():
    signals = features.extractor().signals
    addressed = signals("you are a horrible awful person and your work is garbage")
    assert math.isclose(addressed.second_person_share, 2 / 11)
    assert 0 < addressed.negative_valence <= 1 and -1 <= addressed.compound_valence < 0
    vector = addressed.vector()
    assert len(vector) == len(features.FEATURES) == 5
    assert vector[4] == addressed.negative_valence  # negativity aimed at someone
    unaddressed = signals("this horrible awful traffic is garbage")
    assert unaddressed.second_person_share == 0 and unaddressed.negative_valence > 0
    assert unaddressed.vector()[4] == 0.0
    assert signals("").second_person_share == 0.0 and signals("").profanity_hits == 0
    assert signals("what a lovely wonderful day").compound_valence > 0.5


def test_the_fit_is_the_same_on_every_run(fitted):
    classifier, _ = fitted
    again, _ = fit(TRAINING_ITEMS, HELD_OUT_ITEMS, features.extractor())
    assert again.model.coefficients == classifier.model.coefficients
    assert again.model.intercept == classifier.model.intercept
    assert again.model.version == classifier.model.version
    assert again.model.held_out_auc == classifier.model.held_out_auc
    model = classifier.model
    assert (model.training_items, model.held_out_items, model.features) == (TRAINING_ITEMS, HELD_OUT_ITEMS,
                                                                           features.FEATURES)
    assert len(model.version) == 12 and model.version == model_version(model.coefficients, model.intercept)
    assert model_version(model.coefficients, model.intercept, seed=corpus.CORPUS_SEED + 1) != model.version
    assert model.fit_seconds > 0


def test_the_numpy_score_equals_predict_proba(fitted):
    classifier, estimator = fitted
    texts = [item.text for item in corpus.split("held_out", 300)] + [
        "you are a stupid worthless idiot", "the weather is nice today", "i know where you live", "x" * 5_000]
    vectors = np.array([features.extractor().signals(text).vector() for text in texts])
    expected = estimator.predict_proba(vectors)[:, 1]
    for text, vector, probability in zip(texts, vectors, expected, strict=True):
        assert abs(classifier.score(vector) - probability) < 1e-9
        assert abs(classifier.classify(text)[0] - probability) < 1e-9


def test_the_model_separates_the_held_out_split(fitted):
    from sklearn.metrics import roc_auc_score

    classifier, _ = fitted
    assert classifier.model.held_out_auc > 0.85
    # judged again on held-out items it was not evaluated on at fit time (the next 2,000 of the split)
    items = corpus.split("held_out", HELD_OUT_ITEMS + 2_000)[HELD_OUT_ITEMS:]
    scores = [classifier.classify(item.text)[0] for item in items]
    assert roc_auc_score([item.violating for item in items], scores) > 0.85
    assert classifier.classify("you are a stupid worthless idiot, shut up")[0] > 0.8
    assert classifier.classify("the museum opens at nine on weekdays")[0] < 0.2


def test_sigmoid_is_stable_at_the_extremes():
    assert sigmoid(0) == 0.5
    assert sigmoid(800) == 1.0 and sigmoid(-800) == 0.0
    assert math.isclose(sigmoid(2) + sigmoid(-2), 1.0)

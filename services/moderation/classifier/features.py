"""The classifier's features: what a text is made of, as numbers (seed 001 #26, shared/seeds/001_58dfc580020147d2.txt
line 50: "AI classifiers (BERT/ResNet)"; here a documented lexical model, services/moderation/corpus.py says why).

Per text, in :data:`FEATURES` order:

1. ``profanity_hits``: words of better-profanity's list in the text, at most 3. Words are the runs of
   ``[a-z0-9@$*']`` of the lower-cased text; each is compared after undoing the usual leetspeak (``1→i 0→o 3→e 4→a
   @→a $→s 5→s``), so ``sh1t`` counts and ``f*ck`` (a masked letter) does not;
2. ``negative_valence``: VADER's ``neg`` share, 0 to 1 (vaderSentiment's ``SentimentIntensityAnalyzer``, Hutto and
   Gilbert, ICWSM 2014; one analyzer per process, built once: loading its lexicon takes about 50 ms);
3. ``compound_valence``: VADER's ``compound``, -1 to 1;
4. ``second_person_share``: share of the words that address someone (:data:`..corpus.SECOND_PERSON`), 0 to 1;
5. ``targeted_negativity``: ``negative_valence`` when the text addresses someone, else 0 (hostility aimed at a
   person is what separates harassment from a complaint).

:class:`Signals` is what ClassifyResponse.signals reports (the raw profanity count, not capped).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from .. import corpus

__all__ = ["FEATURES", "MAX_PROFANITY_HITS", "FeatureExtractor", "Signals", "extractor"]

#: The feature names, in coefficient order (GetModelResponse.features).
FEATURES = ("profanity_hits", "negative_valence", "compound_valence", "second_person_share", "targeted_negativity")
#: Profanity hits beyond this add nothing (a rant is not more violating per swear word).
MAX_PROFANITY_HITS = 3
_WORD = re.compile(r"[a-z0-9@$*']+")
_LEET = str.maketrans({"1": "i", "0": "o", "3": "e", "4": "a", "@": "a", "$": "s", "5": "s"})


class Signals(NamedTuple):
    """A text's signals (ClassifyResponse.signals): profanity words found (not capped), VADER's negative share (0 to
    1) and compound valence (-1 to 1), and the share of words addressing someone (0 to 1)."""

    profanity_hits: int
    negative_valence: float
    compound_valence: float
    second_person_share: float

    def vector(self) -> tuple[float, float, float, float, float]:
        """The model's input, in :data:`FEATURES` order."""
        targeted = self.negative_valence if self.second_person_share > 0 else 0.0
        return (float(min(self.profanity_hits, MAX_PROFANITY_HITS)), self.negative_valence, self.compound_valence,
                self.second_person_share, targeted)


class FeatureExtractor:
    """VADER's analyzer and the profanity word set, built once; :meth:`signals` is pure CPU (about 50 to 150 µs for a
    post of 6 to 24 words)."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._profanity = frozenset(corpus.lexicons().profanity)

    def signals(self, text: str) -> Signals:
        """The signals of ``text`` (any string; an empty one has no words)."""
        words = _WORD.findall(text.lower())
        hits = sum(1 for word in words if word.translate(_LEET) in self._profanity)
        addressed = sum(1 for word in words if word in corpus.SECOND_PERSON)
        scores = self._vader.polarity_scores(text)
        return Signals(hits, float(scores["neg"]), float(scores["compound"]), addressed / max(1, len(words)))


@functools.cache
def extractor() -> FeatureExtractor:
    """The process's one extractor."""
    return FeatureExtractor()

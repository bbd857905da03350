"""The labelled corpus of the content moderation case study: the training split the classifier is fitted on, and the
held-out split the workload posts and the threshold A/B scores (part of the contract: both sides import it).

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "AI classifiers (BERT/ResNet), confidence routing,
human review"). The issue asked for a labelled text dataset shipped in a PyPI package, or a documented lexical model
when none is installable. None is: the packages that ship moderation data offline ship a word list
(``better-profanity``) or a fitted model without its data (``alt-profanity-check``), and scikit-learn, nltk and
Hugging Face ``datasets`` download their corpora at run time, which this tool's machines cannot. So the classifier is
a lexical model (services/moderation/classifier/) and this module builds the labelled items it is fitted and judged
on, deterministically, from three packaged lexicons:

- neutral words: wordfreq's most frequent English words (``top_n_list("en", 4000)``), lower-case letters only, minus
  every word of the two lists below, drawn by rank (Zipf);
- valence: the VADER lexicon (vaderSentiment's ``vader_lexicon.txt``: 7,500 tokens each rated -4 to +4 by ten human
  raters, Hutto and Gilbert, ICWSM 2014): words rated at most -2.0 are *hostile*, -2.0 to -1.0 *negative*, at least
  +2.0 *positive*;
- profanity: better-profanity's word list (``profanity_wordlist.txt``, 944 entries; single words of letters only).

Every item is 6 to 24 words. Its category fixes its label and what goes into it (shares of the corpus):

================  ======  =========  =====================================================================
category          share   label      content
================  ======  =========  =====================================================================
neutral           0.48    benign     neutral words only
positive          0.12    benign     one or two positive words
complaint         0.14    benign     one or two negative words; addresses the reader ("you") in a third
casual_profanity  0.08    benign     one profanity word, nobody addressed
harassment        0.11    violating  addresses someone, one to three hostile words, profanity in half
obfuscated        0.04    violating  harassment whose profanity is masked ("f*ck", "sh1t")
veiled            0.03    violating  a threat in plain words ("i know where you live"), no lexicon word
================  ======  =========  =====================================================================

and :data:`LABEL_NOISE` (2%) of the labels are then flipped, as annotators disagree on real data. So a lexical model
can separate most items but not all: masked profanity, veiled threats, reader-addressed complaints and the label noise
are its errors, and the confidence band between auto-approve and auto-remove is what sends them to humans.

Splits (:func:`split`) are reproducible from their name and :data:`CORPUS_SEED`: ``train`` (the classifier's) and
``held_out`` (never trained on: the workload's posts, the A/B's error rates); :class:`Labels` looks an item's label up
by its text.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import wordfreq

__all__ = [
    "CATEGORIES", "CORPUS_SEED", "LABEL_NOISE", "SECOND_PERSON", "LabelledItem", "Labels", "Lexicons", "lexicons",
    "split",
]

Split = Literal["train", "held_out"]

#: The corpus's seed: the splits and the classifier's fit depend on nothing else.
CORPUS_SEED = 26
#: Share of labels flipped after generation (annotator disagreement).
LABEL_NOISE = 0.02
#: Words that address the reader (the classifier's targeting signal).
SECOND_PERSON = frozenset({"you", "your", "you're", "yourself", "u", "ur", "youre"})
#: Category → (share of the corpus, violating).
CATEGORIES: dict[str, tuple[float, bool]] = {
    "neutral": (0.48, False),
    "positive": (0.12, False),
    "complaint": (0.14, False),
    "casual_profanity": (0.08, False),
    "harassment": (0.11, True),
    "obfuscated": (0.04, True),
    "veiled": (0.03, True),
}
#: Threats and insults in plain words: no word of them is hostile in VADER or on the profanity list.
VEILED = (
    "i know where you live", "watch your back", "people like you should disappear", "nobody would miss you",
    "go back where you came from", "you will see what happens", "someone should teach you a lesson",
    "we are coming for you", "you do not deserve to be here", "everyone at your school will know",
)
_NEUTRAL_WORDS = 4_000
_MASKS = {"a": ("*", "4", "@"), "e": ("*", "3"), "i": ("*", "1"), "o": ("*", "0"), "u": ("*",), "s": ("$", "5")}


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One labelled item: its text, whether it violates the policy (after label noise), its category."""

    text: str
    violating: bool
    category: str


@dataclass(frozen=True)
class Lexicons:
    """The three word lists the corpus is drawn from (module docstring)."""

    neutral: tuple[str, ...]
    neutral_cumulative: tuple[float, ...]
    hostile: tuple[str, ...]
    negative: tuple[str, ...]
    positive: tuple[str, ...]
    profanity: tuple[str, ...]


@functools.cache
def lexicons() -> Lexicons:
    """The word lists, read once from wordfreq, vaderSentiment and better-profanity's packaged files."""
    valence: dict[str, float] = {}
    for line in resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text("utf-8").splitlines():
        token, _, rest = line.partition("\t")
        if token and rest:
            valence[token] = float(rest.split("\t", 1)[0])
    profanity = sorted({w.strip().lower() for w in resources.files("better_profanity").joinpath(
        "profanity_wordlist.txt").read_text("utf-8").splitlines() if w.strip().isalpha()})
    banned = set(valence) | set(profanity) | SECOND_PERSON
    neutral = tuple(w for w in wordfreq.top_n_list("en", _NEUTRAL_WORDS)
                    if w.isascii() and w.isalpha() and w.islower() and len(w) > 1 and w not in banned)
    # Zipf by rank: weight 1/rank.
    cumulative = tuple(itertools.accumulate(1 / rank for rank in range(1, len(neutral) + 1)))
    words = sorted(w for w in valence if w.isascii() and w.isalpha() and w not in profanity)
    return Lexicons(
        neutral=neutral, neutral_cumulative=cumulative,
        hostile=tuple(w for w in words if valence[w] <= -2.0),
        negative=tuple(w for w in words if -2.0 < valence[w] <= -1.0),
        positive=tuple(w for w in words if valence[w] >= 2.0),
        profanity=tuple(profanity))


def _neutral(rng: random.Random, lex: Lexicons, count: int) -> list[str]:
    top = lex.neutral_cumulative[-1]
    return [lex.neutral[bisect.bisect_left(lex.neutral_cumulative, rng.random() * top)] for _ in range(count)]


def _insert(rng: random.Random, words: list[str], extra: list[str]) -> list[str]:
    for word in extra:
        words.insert(rng.randint(0, len(words)), word)
    return words


def _mask(rng: random.Random, word: str) -> str:
    positions = [i for i, c in enumerate(word) if c in _MASKS]
    if not positions:
        return word[0] + "*" * (len(word) - 1)
    i = rng.choice(positions)
    return word[:i] + rng.choice(_MASKS[word[i]]) + word[i + 1:]


def _address(rng: random.Random) -> list[str]:
    return [rng.choice(("you", "you", "your", "you're", "u", "yourself"))]


def _words(rng: random.Random, lex: Lexicons, category: str) -> list[str]:
    words = _neutral(rng, lex, rng.randint(5, 18))
    if category == "positive":
        return _insert(rng, words, rng.sample(lex.positive, rng.randint(1, 2)))
    if category == "complaint":
        extra = rng.sample(lex.negative, rng.randint(1, 2))
        return _insert(rng, words, extra + (_address(rng) if rng.random() < 1 / 3 else []))
    if category == "casual_profanity":
        return _insert(rng, words, [rng.choice(lex.profanity)])
    if category in ("harassment", "obfuscated"):
        extra = _address(rng) + rng.sample(lex.hostile, rng.randint(1, 3))
        if category == "obfuscated":
            extra.append(_mask(rng, rng.choice(lex.profanity)))
        elif rng.random() < 0.5:
            extra.append(rng.choice(lex.profanity))
        return _insert(rng, words, extra)
    if category == "veiled":
        return _insert(rng, words[:rng.randint(2, 8)], [rng.choice(VEILED)])
    return words


def split(name: Split, size: int, seed: int = CORPUS_SEED) -> list[LabelledItem]:
    """``size`` labelled items of split ``name`` (``train`` or ``held_out``), the same on every call and machine for
    the same ``seed``; categories drawn by their shares, :data:`LABEL_NOISE` of the labels flipped. ``ValueError``
    for another split name or a negative size."""
    if name not in ("train", "held_out"):
        raise ValueError(f"unknown split {name!r} (train or held_out)")
    if size < 0:
        raise ValueError("size must be 0 or more")
    rng = random.Random(f"casemesh-moderation:{seed}:{name}")
    lex = lexicons()
    names = list(CATEGORIES)
    shares = [CATEGORIES[c][0] for c in names]
    items = []
    for category in rng.choices(names, weights=shares, k=size):
        violating = CATEGORIES[category][1]
        if rng.random() < LABEL_NOISE:
            violating = not violating
        items.append(LabelledItem(" ".join(_words(rng, lex, category)), violating, category))
    return items


class Labels:
    """The label of each item of a split, by text (the workload's ground truth for items it did not post itself)."""

    def __init__(self, items: list[LabelledItem]) -> None:
        self._by_text = {item.text: item for item in items}

    def __len__(self) -> int:
        return len(self._by_text)

    def get(self, text: str) -> LabelledItem | None:
        """The item with this text, or ``None`` (not of the split)."""
        return self._by_text.get(text)

"""Duplicate pages within one crawl: exact copies by the MD5 of their text, near copies by a 64-bit SimHash.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | ... deduplication (MD5/Simhash)").
SimHash is Charikar's fingerprint ("Similarity Estimation Techniques from Rounding Algorithms", STOC 2002) as Manku,
Jain and Das Sarma use it for crawling ("Detecting Near-Duplicates for Web Crawling", WWW 2007): each feature (here
the page's word shingles of 1 and 2 consecutive lower-case words, Broder's w-shingling: :data:`SHINGLE_WIDTHS`) is
hashed to 64 bits, the bits vote, and two pages whose fingerprints differ in at most k bits (k = 3 for 64 bits,
Manku et al.'s choice) are near duplicates. The ``simhash`` library computes the fingerprints, and its ``SimhashIndex`` finds one within k bits
without comparing against every page: it splits the 64 bits into k + 1 blocks and buckets each fingerprint by each
block (two fingerprints within k bits agree on at least one block, the pigeonhole argument of Manku et al.'s
tables).

The page text is the visible text of the page body (:mod:`.parse`), title excluded: a copy under another title is
still a copy. A page with no words has no near-duplicate check (its MD5 still catches exact copies).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re

from simhash import Simhash, SimhashIndex

#: Fingerprint width, in bits.
FINGERPRINT_BITS = 64
#: Shingle widths, in words. Measured on the default synthetic web (10,000 pages of 250 words, 1,000 near copies with
#: one word changed, every page against every other through a SimhashIndex with k = 3): words and word pairs catch
#: 956 near copies with no false match; word pairs alone 819; 3-word shingles 691 of 1,000 (a changed word changes
#: three features); single words alone 994, but 18 false matches and crowded index buckets (Zipfian text makes bags
#: of words alike).
SHINGLE_WIDTHS = (1, 2)
_WORDS = re.compile(r"\w+")
#: The index's logger: quiet below ERROR (the library logs every index made, and a warning at every lookup of a bucket
#: of over 200 fingerprints).
_INDEX_LOG = logging.getLogger("casemesh.crawler.simhash")
_INDEX_LOG.setLevel(logging.ERROR)


class Duplicate(enum.Enum):
    """What a page is to the pages of the crawl seen before it."""

    NONE = "none"
    EXACT = "exact"
    NEAR = "near"


def text_md5(text: str) -> bytes:
    """The MD5 digest of ``text`` (UTF-8): the exact-copy key."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()


def shingles(text: str, widths: tuple[int, ...] = SHINGLE_WIDTHS) -> list[str]:
    """The shingles of each width in ``widths`` of ``text``'s lower-case words, repeats kept (a shingle twice in the
    text weighs twice); none when the text has no words."""
    words = _WORDS.findall(text.lower())
    return [" ".join(words[i:i + width]) for width in widths for i in range(len(words) - width + 1)]


def fingerprint(text: str) -> Simhash | None:
    """The 64-bit SimHash of ``text``'s shingles, or ``None`` for a text without words."""
    features = shingles(text)
    return Simhash(features, f=FINGERPRINT_BITS) if features else None


class Deduplicator:
    """The pages of one crawl seen so far: :meth:`check` says whether a page duplicates one and remembers it if not.

    ``near``: look for near duplicates (SimHash within ``distance`` bits) as well as exact ones; ``False`` is the
    A/B switch's MD5-only crawler.
    """

    def __init__(self, near: bool = True, distance: int = 3) -> None:
        self._near = near
        self._digests: set[bytes] = set()
        self._index = SimhashIndex([], f=FINGERPRINT_BITS, k=distance, log=_INDEX_LOG) if near else None
        self._count = 0

    def check(self, text: str) -> Duplicate:
        """EXACT when a page of the same text was seen, NEAR when one's fingerprint is within the distance (only with
        ``near``), else NONE, and the page is remembered (a duplicate is not: its original stands for it)."""
        digest = text_md5(text)
        if digest in self._digests:
            return Duplicate.EXACT
        simhash = fingerprint(text) if self._index is not None else None
        if simhash is not None and self._index.get_near_dups(simhash):
            return Duplicate.NEAR
        self._digests.add(digest)
        if simhash is not None:
            self._count += 1
            self._index.add(str(self._count), simhash)
        return Duplicate.NONE

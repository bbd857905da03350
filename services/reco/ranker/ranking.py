"""The ranking stage: seed 003's weighted merge of candidate sources, already-seen items removed, cut to a limit.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt, "Recommendation System",
``getRecommendations``, step 6 "Merge & rank" and step 7 "Remove already
watched")::

    mergeAndRank([{ items: theirWatches, weight: 0.4 },   // Collaborative
                  { items: contentMatches, weight: 0.3 }, // Content-based
                  { items: trending, weight: 0.2 },       // Trending
                  { items: await getNewReleases(), weight: 0.1 }])  // New
    ... .filter(item => !watchHistory.includes(item.id)).slice(0, limit)

Here a candidate's score is Σ weight[source] × the source's score for it
(each source's scores are normalised to 0..1 by reco-candidates, so the
weights mean what the seed's do). The sources and default weights are
:data:`DEFAULT_WEIGHTS`: collaborative (item co-occurrence) 0.4, embedding
0.3 in the seed's "content-based" slot (the two-tower / matrix-factorisation
nearest neighbours are this case study's content-like similarity; there is
no item metadata to match genres on), trending 0.2. The seed's fourth source,
"new releases" at 0.1, does not exist here: items have no release date in
the contract, so its weight is simply absent (the scores are not rescaled;
a top score is 0.9, not 1.0).

A weight of 0 turns its source off: it adds nothing, it is not listed among
a recommendation's sources, and an item only it proposed is left out.
Sources with no weight (``CANDIDATE_SOURCE_UNSPECIFIED``, unknown values)
count as 0. Ties in score are broken by item id, ascending, so the same pool
always ranks the same way. reco-candidates already leaves out items the user
interacted with; :func:`rank` removes ``exclude`` (the user's recent items)
again, defensively: it costs a set lookup per candidate.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence

from casemesh.reco.v1 import candidates_pb2

__all__ = ["COLLABORATIVE", "EMBEDDING", "TRENDING", "DEFAULT_WEIGHTS", "Ranked", "rank"]

COLLABORATIVE = candidates_pb2.CANDIDATE_SOURCE_COLLABORATIVE
EMBEDDING = candidates_pb2.CANDIDATE_SOURCE_EMBEDDING
TRENDING = candidates_pb2.CANDIDATE_SOURCE_TRENDING

#: Seed 003's weights: collaborative 0.4, content 0.3 (here: embedding), trending 0.2 (no "new releases" 0.1 source).
DEFAULT_WEIGHTS: Mapping[int, float] = {COLLABORATIVE: 0.4, EMBEDDING: 0.3, TRENDING: 0.2}

#: One ranked item: ``(item_id, score, sources)``; ``sources`` are the contributing ones, ascending by enum value.
Ranked = tuple[str, float, tuple[int, ...]]


def rank(candidates: Iterable[tuple[str, Sequence[int], Sequence[float]]], weights: Mapping[int, float], limit: int,
         exclude: Collection[str] = ()) -> list[Ranked]:
    """The best ``limit`` of ``candidates`` ``(item_id, sources, scores)``, best first, by Σ weight × score.

    ``sources`` and ``scores`` are parallel (as in the Candidate message). An
    item listed twice has its sources merged (the higher score of a source
    counts). Items in ``exclude`` and items no positively weighted source
    proposed are left out. Ties in score go to the smaller item id.
    ``ValueError`` for a negative weight or ``sources``/``scores`` of
    different lengths.
    """
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be at least 0: {dict(weights)}")
    if limit < 1:
        return []
    excluded = exclude if isinstance(exclude, (set, frozenset)) else set(exclude)
    merged: dict[str, dict[int, float]] = {}
    for item_id, sources, scores in candidates:
        if len(sources) != len(scores):
            raise ValueError(f"candidate {item_id!r}: {len(sources)} sources but {len(scores)} scores")
        if item_id in excluded:
            continue
        for source, score in zip(sources, scores):
            if weights.get(source, 0.0) > 0:
                held = merged.setdefault(item_id, {})
                if source not in held or score > held[source]:
                    held[source] = score
    scored = []
    for item_id, by_source in merged.items():
        sources = tuple(sorted(by_source))  # summed in one order, so equal inputs give equal floats
        scored.append((item_id, sum(weights[s] * by_source[s] for s in sources), sources))
    return heapq.nsmallest(limit, scored, key=lambda r: (-r[1], r[0]))

"""Settings of ``reco-ranker`` (the topology's ``settings: {reco-ranker: {...}}``); unknown keys are refused.

``pool_size`` is the case study's A/B switch: ``casemesh run PROFILE --set
reco-ranker.pool_size=50`` against ``=1000``. ``weights`` is a mapping; set
it whole or in part with a YAML flow mapping, e.g. ``--set
'reco-ranker.weights={trending: 0}'`` (the sources not named keep their
defaults).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..limits import MAX_POOL_SIZE, MAX_RECENT
from .ranking import COLLABORATIVE, EMBEDDING, TRENDING


class SourceWeights(BaseModel):
    """Each candidate source's weight in the ranking score (seed 003's merge; 0 turns a source off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collaborative: float = Field(default=0.4, ge=0, le=1_000,
                                 description="Item co-occurrence (collaborative filtering); seed 003: 0.4.")
    embedding: float = Field(default=0.3, ge=0, le=1_000,
                             description="Embedding nearest neighbours, in seed 003's content-based slot: 0.3.")
    trending: float = Field(default=0.2, ge=0, le=1_000, description="Trending items; seed 003: 0.2.")

    @model_validator(mode="after")
    def _one_source_on(self) -> SourceWeights:
        if not (self.collaborative or self.embedding or self.trending):
            raise ValueError("at least one weight must be above 0 (with every source off nothing is recommended)")
        return self

    def by_source(self) -> Mapping[int, float]:
        """The weights keyed by CandidateSource value, as :func:`.ranking.rank` takes them."""
        return {COLLABORATIVE: self.collaborative, EMBEDDING: self.embedding, TRENDING: self.trending}


class RankerSettings(BaseModel):
    """reco-ranker's knobs; ``pool_size`` is the case study's A/B switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool_size: int = Field(
        default=200, ge=1, le=MAX_POOL_SIZE,
        description="Candidates asked of reco-candidates per request when the request's pool_size is 0: THE A/B "
                    "SWITCH of this case study. A larger pool finds more of the items the user will like (recall@k) "
                    "and costs latency in candidate generation, the transfer and the ranking; a smaller one is "
                    "fast and misses them.",
    )
    recent_signals: int = Field(
        default=50, ge=0, le=MAX_RECENT,
        description="The user's newest interactions read from reco-signals and sent to reco-candidates as real-time "
                    "signals (seed 001 #19). 0 skips the call: recommendations then reflect only the trained model.",
    )
    weights: SourceWeights = Field(default_factory=SourceWeights,
                                   description="Each candidate source's weight in the ranking score.")
    call_timeout_ms: float = Field(default=1000.0, gt=0, le=60_000,
                                   description="Deadline of each call to reco-signals and reco-candidates, in ms.")

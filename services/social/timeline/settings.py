"""Settings of ``social-timeline`` (the topology's ``settings: {social-timeline: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..limits import TIMELINE_CAPACITY


class TimelineSettings(BaseModel):
    """social-timeline's knobs; ``celebrity_threshold`` is the case study's A/B switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    celebrity_threshold: int = Field(
        default=100, ge=0,
        description="Followers from which a user is a celebrity: their tweets are not pushed (fan-out on write) but "
                    "pulled by readers (fan-out on read). 0: pure pull; above the largest follower count (e.g. "
                    "1000000000): pure push. The seeds' threshold is 10K followers among 500M users; scaled to the "
                    "harness's 2,000-user graph, 100 makes its top 1.7% celebrities (docs/case-studies/social-feed.md).",
    )
    timeline_capacity: int = Field(
        default=TIMELINE_CAPACITY, ge=1, le=100_000,
        description="Tweet IDs kept per home-timeline cache (seed 003: 800).",
    )
    call_timeout_ms: float = Field(default=2000.0, gt=0, le=60_000,
                                   description="Deadline of each call to social-graph and social-tweets, in ms.")

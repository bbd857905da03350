"""Settings of ``reco-candidates`` (the topology's ``settings: {reco-candidates: {...}}``); unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..limits import MAX_FACTORS, MAX_ITERATIONS


class CandidateSettings(BaseModel):
    """reco-candidates' knobs: the model's training parameters (TrainModel's 0 means these) and the export deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: int = Field(
        default=32, ge=1, le=MAX_FACTORS,
        description="Embedding size (dimensions of each user and item embedding, a count) when TrainModel's `factors` "
                    "is 0. Training costs O(interactions × factors² + (users + items) × factors³) per iteration.",
    )
    iterations: int = Field(
        default=10, ge=1, le=MAX_ITERATIONS,
        description="ALS iterations (each solves every item, then every user; a count) when TrainModel's "
                    "`iterations` is 0.",
    )
    regularization: float = Field(
        default=0.05, gt=0, le=1_000,
        description="ALS L2 regularisation λ (dimensionless, added to every system's diagonal; Hu, Koren & Volinsky "
                    "2008).",
    )
    alpha: float = Field(
        default=10.0, ge=0, le=10_000,
        description="Confidence scale (dimensionless): confidence c = 1 + alpha × r, r the summed interaction "
                    "weights of a user and an item (VIEW 1, LIKE 4). 0 treats every interaction alike.",
    )
    seed: int = Field(default=42, ge=0, description="Seed of the embeddings' random start (training is deterministic "
                                                    "for a seed and a set of interactions).")
    export_timeout_ms: float = Field(
        default=60_000.0, gt=0, le=3_600_000,
        description="Deadline of the SignalService.ExportInteractions stream that reads the training set, in ms "
                    "(a shorter deadline of the TrainModel call itself applies instead).",
    )
    train_on_start: bool = Field(
        default=True,
        description="Train a model as soon as the service starts, when reco-signals holds interactions (retried with "
                    "backoff while reco-signals is unreachable): a restarted reco-candidates serves again without "
                    "waiting for the next TrainModel. Nothing recorded yet: the first TrainModel call trains.",
    )

"""Settings of ``moderation-classifier`` (topology ``settings.moderation-classifier``); unknown keys are refused.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |").

- ``training_items`` 20,000 (200 to 200,000): labelled items of the corpus's ``train`` split the model is fitted on at
  start (about a second of CPU per 20,000; fewer in tests);
- ``held_out_items`` 5,000 (200 to 200,000): items of the ``held_out`` split the fitted model is judged on
  (GetModelResponse.held_out_auc), never trained on.

The confidence band (where items go to human review) is the pipeline's (``moderation-pipeline.approve_below``,
``remove_above``), not this service's: the classifier only gives the probability.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClassifierSettings(BaseModel):
    """moderation-classifier's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training_items: int = Field(default=20_000, ge=200, le=200_000, description=(
        "Labelled items of the corpus's train split the model is fitted on at start."))
    held_out_items: int = Field(default=5_000, ge=200, le=200_000, description=(
        "Labelled items of the held-out split the model is judged on (AUC), never trained on."))

"""moderation-classifier through real gRPC, served by the runtime (DEFINITION and its settings; the model fitted in
``start``): Classify and GetModel open to anyone, INVALID_ARGUMENT naming ``text``, the model described as fitted (the
same version and coefficients as a local fit with the same settings), and a score equal to the local model's."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casemesh.moderation.v1 import classifier_pb2, classifier_pb2_grpc
from casemesh.services.moderation.classifier import features
from casemesh.services.moderation.classifier.model import fit
from casemesh.services.moderation.classifier.service import DEFINITION, NAME
from casemesh.services.moderation.classifier.settings import ClassifierSettings

from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
TRAINING_ITEMS = 2_000
HELD_OUT_ITEMS = 1_000


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "moderation-classifier" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.moderation.v1.ClassifierService",)
    assert DEFINITION.access.public == {"Classify", "GetModel"} and not DEFINITION.access.internal
    assert DEFINITION.settings_model is ClassifierSettings
    assert ClassifierSettings().training_items == 20_000 and ClassifierSettings().held_out_items == 5_000
    with pytest.raises(ValueError):
        ClassifierSettings(training_items=199)
    with pytest.raises(ValueError):
        ClassifierSettings(threshold=0.5)


async def test_the_classifier_through_the_runtime():
    topology = loopback_topology([NAME], settings={NAME: {"training_items": TRAINING_ITEMS,
                                                          "held_out_items": HELD_OUT_ITEMS}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        stub = classifier_pb2_grpc.ClassifierServiceStub(running.anonymous_channel(NAME))
        local, _ = fit(TRAINING_ITEMS, HELD_OUT_ITEMS, features.extractor())

        model = await stub.GetModel(classifier_pb2.GetModelRequest(), timeout=WAIT_S)
        assert (model.model_version, model.training_items, model.held_out_items) == (
            local.model.version, TRAINING_ITEMS, HELD_OUT_ITEMS)
        assert list(model.features) == list(features.FEATURES)
        assert list(model.coefficients) == list(local.model.coefficients)
        assert model.intercept == local.model.intercept
        assert 0.85 < model.held_out_auc <= 1.0

        for text in ("you are a stupid worthless idiot, shut up", "the museum opens at nine on weekdays",
                     "what a sh1t day", "x" * 5_000):
            answer = await stub.Classify(classifier_pb2.ClassifyRequest(text=text), timeout=WAIT_S)
            probability, signals = local.classify(text)
            assert answer.model_version == model.model_version
            assert abs(answer.violation_probability - probability) < 1e-12
            assert (answer.signals.profanity_hits, answer.signals.negative_valence, answer.signals.compound_valence,
                    answer.signals.second_person_share) == tuple(signals)
        hostile = await stub.Classify(classifier_pb2.ClassifyRequest(text="you are a stupid worthless idiot"),
                                      timeout=WAIT_S)
        assert hostile.violation_probability > 0.8 and hostile.signals.second_person_share > 0

        for request in (classifier_pb2.ClassifyRequest(), classifier_pb2.ClassifyRequest(text="x" * 5_001)):
            code, details = await _code(stub.Classify(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("text:"), details
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

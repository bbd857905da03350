"""``casemesh.moderation.v1.ClassifierService`` (topology name ``moderation-classifier``): the violation probability of
a text.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). A thin servicer over
:class:`.model.Classifier` (the lexical features of :mod:`.features`, a logistic regression fitted when the service
starts, :func:`.model.fit`, in a worker thread, before the server takes calls); input rules in :mod:`.validation`.
Stateless: no file, no other service called; every answer depends only on the text and the model version, which is
the same on every start with the same settings.

RPCs and status codes (protos/casemesh/moderation/v1/classifier.proto), both public:

- Classify: INVALID_ARGUMENT naming ``text`` (1 to 5,000 characters). About 50 to 150 µs of CPU per call.
- GetModel: none.

Settings: :class:`.settings.ClassifierSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from casemesh.moderation.v1 import classifier_pb2, classifier_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import Unavailable
from . import features, metrics, validation
from .model import Classifier, fit
from .settings import ClassifierSettings

log = logging.getLogger("casemesh.moderation.classifier.service")

NAME = "moderation-classifier"
FULL_NAME = classifier_pb2.DESCRIPTOR.services_by_name["ClassifierService"].full_name
#: Methods anyone may call (the pipeline, trust-and-safety tools, the harness).
PUBLIC_METHODS = frozenset({"Classify", "GetModel"})


class ClassifierServicer(classifier_pb2_grpc.ClassifierServiceServicer):
    """Validates each request (:mod:`.validation`) and asks :class:`.model.Classifier`; ``classifier`` is set once the
    model is fitted (UNAVAILABLE before, which the runtime never lets happen: it serves after ``start``)."""

    def __init__(self) -> None:
        self.classifier: Classifier | None = None

    def _fitted(self) -> Classifier:
        if self.classifier is None:
            raise Unavailable("the model is not fitted yet")
        return self.classifier

    async def Classify(self, request: classifier_pb2.ClassifyRequest,
                       context: grpc.aio.ServicerContext) -> classifier_pb2.ClassifyResponse:
        text = validation.classify(request)
        classifier = self._fitted()
        started = time.perf_counter()
        probability, signals = classifier.classify(text)
        metrics.CLASSIFY_SECONDS.observe(time.perf_counter() - started)
        metrics.PROBABILITY.observe(probability)
        return classifier_pb2.ClassifyResponse(
            violation_probability=probability, model_version=classifier.model.version,
            signals=classifier_pb2.Signals(profanity_hits=signals.profanity_hits,
                                           negative_valence=signals.negative_valence,
                                           compound_valence=signals.compound_valence,
                                           second_person_share=signals.second_person_share))

    async def GetModel(self, request: classifier_pb2.GetModelRequest,
                       context: grpc.aio.ServicerContext) -> classifier_pb2.GetModelResponse:
        model = self._fitted().model
        return classifier_pb2.GetModelResponse(
            model_version=model.version, training_items=model.training_items, held_out_items=model.held_out_items,
            held_out_auc=model.held_out_auc, features=model.features, coefficients=model.coefficients,
            intercept=model.intercept)


class ClassifierComponent:
    """The servicer, and the fit at start (in a worker thread, so the loop is blocked only by the GIL's turns)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, ClassifierSettings)
        self.servicer = ClassifierServicer()

    def register(self, server: grpc.aio.Server) -> None:
        classifier_pb2_grpc.add_ClassifierServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        classifier, _ = await asyncio.to_thread(fit, self.settings.training_items, self.settings.held_out_items,
                                                features.extractor())
        model = classifier.model
        metrics.HELD_OUT_AUC.set(model.held_out_auc)
        metrics.FIT_SECONDS.set(model.fit_seconds)
        self.servicer.classifier = classifier
        log.info("%s: model %s fitted on %d items in %.2f s, held-out AUC %.4f on %d items", NAME, model.version,
                 model.training_items, model.fit_seconds, model.held_out_auc, model.held_out_items)

    async def stop(self) -> None:
        pass


async def build(context: RuntimeContext) -> ClassifierComponent:
    return ClassifierComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=ClassifierSettings,
    access=Access(public=PUBLIC_METHODS),
)

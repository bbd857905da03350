"""``casemesh.reco.v1.CandidateService`` (topology name ``reco-candidates``): candidate generation.

Seed 001 (shared/seeds/001_58dfc580020147d2.txt) #19 "Recommendation Engine"
("Collaborative filtering, two-tower embeddings, candidate generation,
real-time signals | 100M users, Netflix/YouTube") and seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), Netflix ``getRecommendations``
(collaborative, content and trending sources; already-watched items removed).
The model is :class:`.model.CandidateModel` (pure numpy):

- **TrainModel** streams every interaction from ``reco-signals``
  (SignalService.ExportInteractions), weighs each by :data:`.model.CONFIDENCE`
  (VIEW 1, LIKE 4) and fits, in a worker thread (``asyncio.to_thread``), item
  co-occurrence (cosine similarity: collaborative filtering) and
  implicit-feedback ALS embeddings (Hu, Koren & Volinsky 2008; the seed's two
  towers as one user and one item embedding table) plus item popularity. The
  event loop keeps answering GetCandidates with the old model meanwhile; the
  new model and its version replace the old in one assignment.

  Concurrent calls are coalesced, one training at a time: trainings run one
  after the other (an ``asyncio.Lock``), and a call that arrives while a
  training with the same ``(factors, iterations)`` is queued but not yet
  started joins it and gets its result, so every call's training begins after
  the call arrived (its export sees every interaction recorded before it) and
  a burst of calls costs at most one running and one queued training per
  parameter pair. A training runs as its own task: a caller that gives up
  (deadline, cancel) does not stop it, and the model it makes is still
  swapped in. The export is bounded by ``export_timeout_ms`` and by the
  deadline of the call that started the training.
- **GetCandidates** asks the model in use for up to ``pool_size`` candidates
  from three sources (collaborative, embedding, trending), each score
  normalised to 0..1 within its source; ``recent_item_ids`` count as
  interactions at once (the real-time signal) and nothing the user interacted
  with is returned. It runs on the event loop: well under 5 ms for 2,000
  items and a pool of 200 (docs in the model).
- **GetModelStatus** describes the model in use.
- **At start** (``train_on_start``, on by default) the service trains once in
  the background when reco-signals holds interactions, so a restarted
  reco-candidates serves again by itself; until then GetCandidates answers
  FAILED_PRECONDITION.

Status codes: INVALID_ARGUMENT naming the field (``factors``, ``iterations``,
``user_id``, ``recent_item_ids``, ``recent_item_ids[i]``, ``pool_size``);
FAILED_PRECONDITION when TrainModel finds no interactions and when
GetCandidates is called before the first training ("no model trained yet");
RESOURCE_EXHAUSTED when the interactions name more users × items or items
than the model's memory caps (:data:`.model.MAX_MATRIX_CELLS`,
:data:`.model.MAX_ITEMS`); UNAVAILABLE or DEADLINE_EXCEEDED
when reco-signals fails. Settings: :class:`.settings.CandidateSettings`.
Metrics beyond the gRPC ones: ``casemesh_reco_candidates_pool`` (histogram:
candidates returned per call), ``casemesh_reco_model_train_seconds``
(histogram: export + fit of one training), ``casemesh_reco_model_version``
(gauge: the version in use, 0 before the first training),
``casemesh_reco_candidates_by_source_total{source}`` (counter: candidates
returned that a source proposed, ``collaborative|embedding|trending``; an
item proposed by two sources counts once for each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge, Histogram

from casemesh.reco.v1 import candidates_pb2 as pb
from casemesh.reco.v1 import candidates_pb2_grpc as pb_grpc
from casemesh.reco.v1 import signals_pb2, signals_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, dependency_error
from ...runtime.metrics import LATENCY_BUCKETS_S
from ..limits import MAX_FACTORS, MAX_ITERATIONS, MAX_POOL_SIZE
from ..validation import optional_count, validate_id, validate_ids
from .model import COLLABORATIVE, CONFIDENCE, EMBEDDING, SOURCES, TRENDING, CandidateModel, train
from .settings import CandidateSettings

log = logging.getLogger("casemesh.reco.candidates")

NAME = "reco-candidates"
FULL_NAME = pb.DESCRIPTOR.services_by_name["CandidateService"].full_name

POOL = Histogram("casemesh_reco_candidates_pool", "Candidates returned by one GetCandidates call.",
                 buckets=(0, 10, 50, 100, 200, 500, 1000, 2000, 5000))
TRAIN_SECONDS = Histogram("casemesh_reco_model_train_seconds",
                          "Seconds one model training took: reading every interaction and fitting the model.",
                          buckets=(*LATENCY_BUCKETS_S, 30.0, 60.0, 120.0, 300.0, 600.0))
MODEL_VERSION = Gauge("casemesh_reco_model_version", "Version of the candidate model in use (0 before the first training).")
BY_SOURCE = Counter("casemesh_reco_candidates_by_source",
                    "Candidates returned that a source proposed (an item of two sources counts for each).", ["source"])
for _source in SOURCES:
    BY_SOURCE.labels(_source)

#: Model source name → the contract's enum value.
SOURCE_ENUM = {COLLABORATIVE: pb.CANDIDATE_SOURCE_COLLABORATIVE, EMBEDDING: pb.CANDIDATE_SOURCE_EMBEDDING,
               TRENDING: pb.CANDIDATE_SOURCE_TRENDING}


@dataclass(frozen=True)
class LoadedModel:
    """The model in use and what GetModelStatus says of it; replaced as a whole (one assignment) by each training."""

    model: CandidateModel
    version: int
    train_time: datetime
    train_ms: float


class ModelTrainer:
    """Trains models from the signal log, one at a time, coalescing calls; holds the model in use (``loaded``)."""

    def __init__(self, signals: signals_pb2_grpc.SignalServiceStub, settings: CandidateSettings) -> None:
        self._signals = signals
        self._settings = settings
        self.loaded: LoadedModel | None = None
        self._lock = asyncio.Lock()
        #: Trainings queued behind the lock and not yet started, by (factors, iterations): new calls join these.
        self._queued: dict[tuple[int, int], asyncio.Task[LoadedModel]] = {}
        self._tasks: set[asyncio.Task[LoadedModel]] = set()

    async def train(self, factors: int, iterations: int) -> LoadedModel:
        """A model trained on every interaction recorded before this call (joining a queued training of the same parameters)."""
        key = (factors, iterations)
        task = self._queued.get(key)
        if task is None:
            task = self._queued[key] = asyncio.create_task(self._run(key), name=f"{NAME}-train")
            self._tasks.add(task)
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: tuple[int, int], task: asyncio.Task[LoadedModel]) -> None:
        self._tasks.discard(task)
        if self._queued.get(key) is task:  # cancelled before it started
            del self._queued[key]
        # Read its exception, so a training whose callers all gave up logs no "exception was never retrieved".
        if not task.cancelled() and task.exception() is not None:
            log.debug("a candidate-model training failed: %r", task.exception())

    async def close(self) -> None:
        """Cancel trainings queued or running (a fit already in its worker thread finishes there, unused)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, key: tuple[int, int]) -> LoadedModel:
        async with self._lock:
            self._queued.pop(key, None)  # from here on, new calls queue another training
            factors, iterations = key
            started = time.perf_counter()
            interactions = await self._export()
            if not interactions:
                raise FailedPrecondition("no interactions to train on: record some with SignalService.RecordInteractions")
            s = self._settings
            try:
                model = await asyncio.to_thread(train, interactions, factors=factors, iterations=iterations,
                                                regularization=s.regularization, alpha=s.alpha, seed=s.seed)
            except ValueError as error:  # the model's memory caps (users × items, items)
                raise ResourceExhausted(f"cannot train on these interactions: {error}") from None
            elapsed = time.perf_counter() - started
            version = 1 if self.loaded is None else self.loaded.version + 1
            self.loaded = LoadedModel(model, version, datetime.now(timezone.utc), elapsed * 1000)
            TRAIN_SECONDS.observe(elapsed)
            MODEL_VERSION.set(version)
            stats = model.stats
            log.info("trained candidate model %d on %d interactions (%d users, %d items, %d factors) in %.2f s",
                     version, stats.interactions, stats.users, stats.items, stats.factors, elapsed)
            return self.loaded

    async def _export(self) -> list[tuple[str, str, int]]:
        """Every interaction as ``(user, item, confidence)``; kinds without a confidence are skipped."""
        out: list[tuple[str, str, int]] = []
        skipped = 0
        try:
            # wait_for_ready: a channel still reconnecting (reco-signals starting, or restarted) makes the export
            # wait for it within the deadline instead of failing at once with UNAVAILABLE.
            stream = self._signals.ExportInteractions(signals_pb2.ExportInteractionsRequest(),
                                                      timeout=self._settings.export_timeout_ms / 1000,
                                                      wait_for_ready=True)
            async for batch in stream:
                for interaction in batch.interactions:
                    weight = CONFIDENCE.get(interaction.kind)
                    if weight is None:
                        skipped += 1
                    else:
                        out.append((interaction.user_id, interaction.item_id, weight))
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        if skipped:
            log.warning("skipped %d exported interactions of an unknown kind", skipped)
        return out


class CandidateServicer(pb_grpc.CandidateServiceServicer):
    """Validates, then trains through the :class:`ModelTrainer` or asks its model in use."""

    def __init__(self, trainer: ModelTrainer, settings: CandidateSettings) -> None:
        self._trainer = trainer
        self._settings = settings

    async def TrainModel(self, request: pb.TrainModelRequest, context: grpc.aio.ServicerContext) -> pb.TrainModelResponse:
        factors = optional_count("factors", request.factors, default=self._settings.factors, most=MAX_FACTORS)
        iterations = optional_count("iterations", request.iterations, default=self._settings.iterations,
                                    most=MAX_ITERATIONS)
        loaded = await self._trainer.train(factors, iterations)
        stats = loaded.model.stats
        return pb.TrainModelResponse(model_version=loaded.version, users=stats.users, items=stats.items,
                                     interactions=stats.interactions, train_ms=loaded.train_ms)

    async def GetCandidates(self, request: pb.GetCandidatesRequest, context: grpc.aio.ServicerContext) -> pb.GetCandidatesResponse:
        user = validate_id("user_id", request.user_id)
        recent = validate_ids("recent_item_ids", request.recent_item_ids)
        if not 1 <= request.pool_size <= MAX_POOL_SIZE:
            raise InvalidArgument("pool_size", f"must be 1 to {MAX_POOL_SIZE:,}, not {request.pool_size}")
        loaded = self._trainer.loaded  # one read: the model and its version belong together
        if loaded is None:
            raise FailedPrecondition("no model trained yet: call CandidateService.TrainModel")
        pool = loaded.model.candidates(user, recent, request.pool_size)
        response = pb.GetCandidatesResponse(model_version=loaded.version)
        counts = dict.fromkeys(SOURCES, 0)
        for item_id, scores in pool:
            response.candidates.add(item_id=item_id, sources=[SOURCE_ENUM[s] for s in scores],
                                    scores=list(scores.values()))
            for source in scores:
                counts[source] += 1
        POOL.observe(len(pool))
        for source, count in counts.items():
            if count:
                BY_SOURCE.labels(source).inc(count)
        return response

    async def GetModelStatus(self, request: pb.GetModelStatusRequest, context: grpc.aio.ServicerContext) -> pb.GetModelStatusResponse:
        loaded = self._trainer.loaded
        if loaded is None:
            return pb.GetModelStatusResponse()
        stats = loaded.model.stats
        when = Timestamp()
        when.FromDatetime(loaded.train_time)
        return pb.GetModelStatusResponse(model_version=loaded.version, users=stats.users, items=stats.items,
                                         interactions=stats.interactions, factors=stats.factors, train_time=when)


class CandidateComponent:
    """The servicer and the trainer holding the model in use (in memory: a restarted service trains again at start,
    ``train_on_start``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, CandidateSettings)
        signals = signals_pb2_grpc.SignalServiceStub(context.channel("reco-signals"))
        self.trainer = ModelTrainer(signals, self.settings)
        self.servicer = CandidateServicer(self.trainer, self.settings)
        self._starting: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_CandidateServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        MODEL_VERSION.set(0)
        if self.settings.train_on_start:
            self._starting = asyncio.create_task(self._train_on_start(), name=f"{NAME}-train-on-start")

    async def _train_on_start(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self.trainer.train(self.settings.factors, self.settings.iterations)
                return
            except FailedPrecondition:  # nothing recorded yet
                return
            except Exception as error:  # noqa: BLE001 - reco-signals not up yet, or restarting: try again
                log.warning("training at start failed (%s); retrying in %.1f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        await self.trainer.close()


async def build(context: RuntimeContext) -> CandidateComponent:
    return CandidateComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("reco-signals",), build=build,
    settings_model=CandidateSettings,
    # TrainModel is public because the harness seeds through the public API (interactions via SignalService, then
    # TrainModel), as an operator's batch job would; concurrent calls coalesce (see the module docstring), so callers
    # cannot pile up trainings. GetModelStatus is public (read-only). GetCandidates is internal: the ranker's stage.
    access=Access(public={"TrainModel", "GetModelStatus"}, internal={"GetCandidates": ("reco-ranker",)}),
)

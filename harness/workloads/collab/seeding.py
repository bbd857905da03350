"""Seeding the collab workload through the public API: documents with some text, and who edits which.

``documents`` ordinary documents and, with ``hot_editors`` > 0, one hot
document are created with DocumentService.CreateDocument (IDs chosen here:
``c<run>-hot``, ``c<run>-0001`` ..., where ``<run>`` is random per seeding so
that a data directory kept from an earlier run never answers ALREADY_EXISTS),
each holding ``initial_chars`` of text. Editors ``e0001`` ... are then
assigned: the first ``hot_editors`` to the hot document (the fan-out case: a
live document that many people type into at once), the rest round-robin over
the ordinary ones (a few editors each).

Each editor also gets an editor server: within a document its editors
alternate between ``collab-editor-1`` and ``collab-editor-2`` (the first on
1, the second on 2, ...), so every document with two editors or more has
editors on both servers and every edit crosses from one server to the
other through collab-documents' watch.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from casemesh.collab.v1 import documents_pb2
from casemesh.services.collab.contract import MAX_EDITORS_PER_DOCUMENT, MAX_INITIAL_TEXT_BYTES

from ..base import Caller, Params

DOCUMENTS = "collab-documents"
#: The editor servers an editor may connect to (client-side choice, alternating within a document).
EDITOR_SERVERS = ("collab-editor-1", "collab-editor-2")
#: The letters of seeded and typed text: lower-case ASCII and spaces (one UTF-8 byte per character).
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class SeedParams(Params):
    """The documents and their editors."""

    editors: int = Field(default=200, ge=2, le=20_000,
                         description="simulated editors, each holding one Edit stream on one document for the run")
    documents: int = Field(default=44, ge=1, le=10_000,
                           description="ordinary documents, whose editors (all but the hot document's) are spread round-robin")
    hot_editors: int = Field(default=24, ge=0, le=MAX_EDITORS_PER_DOCUMENT,
                             description="editors of the one hot document (0: no hot document)")
    initial_chars: int = Field(default=3000, ge=0, le=MAX_INITIAL_TEXT_BYTES,
                               description="characters of text each document is created with (about one page at 3,000)")
    text_seed: int = Field(default=1, ge=0, description="random seed of the initial text (same seed, same text)")
    concurrency: int = Field(default=16, ge=1, le=1024, description="seeding calls in flight")
    connect_concurrency: int = Field(default=32, ge=1, le=10_000,
                                     description="editors joining at once when the run opens its streams (per load process)")

    @model_validator(mode="after")
    def _fits(self) -> SeedParams:
        if self.hot_editors == 1:
            raise ValueError("hot_editors must be 0 (no hot document) or at least 2")
        ordinary = self.editors - self.hot_editors
        if ordinary < 2 * self.documents:
            raise ValueError(f"editors ({self.editors}) minus hot_editors ({self.hot_editors}) must be at least twice "
                             f"documents ({self.documents}): every document needs an editor on each editor server")
        if -(-ordinary // self.documents) > MAX_EDITORS_PER_DOCUMENT:
            raise ValueError(f"more than {MAX_EDITORS_PER_DOCUMENT} editors per document (the contract's limit): "
                             f"raise documents")
        return self


@dataclass(frozen=True)
class EditorPlan:
    """One simulated editor: its user ID, its document and its editor server (an index into ``EDITOR_SERVERS``)."""

    index: int
    user: str
    document: str
    server: int


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes)."""

    #: Every editor, in index order (``editors[i].index == i``).
    editors: list[EditorPlan]
    #: Every document, the hot one first when there is one.
    documents: list[str]
    #: The hot document's ID (``None`` without one).
    hot: str | None = None
    #: document → the user IDs of its editors.
    members: dict[str, list[str]] = field(default_factory=dict)


def initial_text(chars: int, rng: random.Random) -> str:
    """``chars`` characters of word-like text: runs of 1-10 letters separated by single spaces."""
    words: list[str] = []
    length = 0
    while length <= chars:  # length counts a space after every word: one more than the joined text
        word = "".join(rng.choices(ALPHABET, k=rng.randint(1, 10)))
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def plan(params: SeedParams, run_id: str) -> State:
    """The documents and the editors' assignment (no call): see the module docstring."""
    ordinary = [f"c{run_id}-{i:04d}" for i in range(1, params.documents + 1)]
    hot = f"c{run_id}-hot" if params.hot_editors else None
    documents = ([hot] if hot else []) + ordinary
    members: dict[str, list[str]] = {d: [] for d in documents}
    editors: list[EditorPlan] = []
    for index in range(params.editors):
        user = f"e{index + 1:04d}"
        document = hot if hot is not None and index < params.hot_editors else ordinary[(index - params.hot_editors) % len(ordinary)]
        server = len(members[document]) % len(EDITOR_SERVERS)
        members[document].append(user)
        editors.append(EditorPlan(index, user, document, server))
    return State(editors=editors, documents=documents, hot=hot, members=members)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create every document (CreateDocument) with its initial text; returns the :class:`State`."""
    state = plan(params, f"{random.Random().getrandbits(32):08x}")
    text_rng = random.Random(params.text_seed)
    texts = {document: initial_text(params.initial_chars, text_rng) for document in state.documents}
    limit = asyncio.Semaphore(params.concurrency)

    async def create(document: str) -> None:
        async with limit:
            await call(DOCUMENTS, "CreateDocument", documents_pb2.CreateDocumentRequest(
                document_id=document, title=f"document {document}", initial_text=texts[document]))

    await asyncio.gather(*(create(d) for d in state.documents))
    return state

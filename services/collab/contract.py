"""The collaborative-documents contract's rules that clients and servers both apply (part of the contract: protos/casemesh/collab/v1).

The protos quote each rule in their field comments; a client in another
language applies the same ones. This module is imported by the collab
services and by the collab workload alike, and by nothing else of either side.

- Document, user and session IDs: 1 to 64 characters of ``[A-Za-z0-9_-]``
  (:data:`ID_PATTERN`).
- :data:`TEXT_NAME`: a document's text is the Yjs ``Y.Text`` named
  ``content`` of its ``Y.Doc``; both sides read and write that one shared type
  (a Yjs client opens it with ``doc.getText("content")``).
- :data:`MAX_TITLE_CHARS` (200) and :data:`MAX_INITIAL_TEXT_BYTES` (1 MiB) for
  CreateDocument.
- :data:`MAX_UPDATE_BYTES`: one update is 1 to 262,144 bytes (a paste of a
  few pages; gRPC's default message limit is 4 MiB).
- :data:`MAX_DOCUMENT_STATE_BYTES`: a document's whole encoded state stops
  growing at 3 MiB (``RESOURCE_EXHAUSTED``): a new editor receives it whole in
  one ``joined`` frame, which must stay under gRPC's default 4 MiB receive
  limit with room for the awareness states. Google Docs stops a document at
  1.02 million characters (Google Docs Editors Help, "Files you can store in
  Google Drive"); a Yjs state of that much typed text is 1-3 MiB.
- :data:`MAX_AWARENESS_BYTES`: one awareness update is 1 to 4,096 bytes.
- :data:`MAX_ORIGIN_CHARS`: an update's ``origin`` tag is at most 64 printable
  ASCII characters (:func:`valid_origin`).
- :data:`MAX_EDITORS_PER_DOCUMENT`: 100 editors at once per document, Google
  Docs' own limit ("up to 100 people with edit or comment permissions can work
  on a file at the same time", Google Docs Editors Help, "Share files from
  Google Drive").
- :data:`HEARTBEAT_INTERVAL_MS` (15 s) and :data:`SESSION_TIMEOUT_MS` (30 s):
  y-protocols' awareness renews a client's state every 15 s and drops it as
  outdated after 30 s (``outdatedTimeout``); an editor session silent for
  30 s is ended the same way.
"""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TEXT_NAME = "content"
MAX_TITLE_CHARS = 200
MAX_INITIAL_TEXT_BYTES = 1_048_576
MAX_UPDATE_BYTES = 262_144
MAX_DOCUMENT_STATE_BYTES = 3_145_728
MAX_AWARENESS_BYTES = 4_096
MAX_ORIGIN_CHARS = 64
MAX_EDITORS_PER_DOCUMENT = 100
HEARTBEAT_INTERVAL_MS = 15_000
SESSION_TIMEOUT_MS = 30_000

_ORIGIN = re.compile(r"[\x20-\x7e]{0,%d}" % MAX_ORIGIN_CHARS)


def valid_id(value: str) -> bool:
    """Whether ``value`` is a valid document, user or session ID (1 to 64 of ``[A-Za-z0-9_-]``)."""
    return ID_PATTERN.fullmatch(value) is not None


def valid_origin(value: str) -> bool:
    """Whether ``value`` is a valid update ``origin`` tag: 0 to 64 printable ASCII characters."""
    return _ORIGIN.fullmatch(value) is not None

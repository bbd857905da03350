"""Raw uploads on disk: append in order, fsync before acknowledging, resume by offset.

Seed 004 ("Clarify Requirements"): "Uploaded source videos must never be
lost (no data loss SLA)"; and the "direct PUT (pre-signed)" upload of the
write plane, made resumable the way object stores' resumable uploads are
(the client asks how many bytes are stored and continues from there).

Layout under the store's folder, one pair of files per object::

    raw/{video_id}.data   the bytes, written at their offsets (os.pwrite)
    raw/{video_id}.json   {"video_id", "key", "expected_size_bytes"[, "sha256_hex"]}

The ``.json`` metadata is written when an upload is opened (atomically: a
temporary file, fsync, rename, fsync of the folder) and rewritten with the
object's SHA-256 once every declared byte is stored. Bytes are written as
chunks arrive and fsynced by :meth:`RawObjectStore.sync`, which the servicer
calls before it acknowledges (and when a stream ends in error), so what was
acknowledged survives a crash or restart. After a restart an object is loaded
lazily on first use: its stored size is the ``.data`` file's size (chunks are
only ever written in order, so the file never has holes), and the running
SHA-256 of an unfinished upload is rebuilt by reading the file once.

Sizes are capped on every write, not only at InitiateUpload: a token (even a
validly signed or self-minted one) that declares more than the store's
``max_object_bytes`` (default 256 MiB, services/video/limits.py) opens
nothing (``InvalidArgument`` naming ``upload_token``, no file created), and a
chunk that would end past the declared size or that maximum is refused whole
(``InvalidArgument`` naming ``data``, none of its bytes written). The code is
INVALID_ARGUMENT, as for ``file_size_bytes`` at InitiateUpload: the request
itself is wrong, whatever the store's state, and retrying it cannot succeed.
Once an object is complete its token no longer works: opening it again
(UploadObject, GetUploadOffset) is ``FailedPrecondition`` (the state, not the
request, is what refuses it: the upload is done, call CompleteUpload).

Blocking file work runs in the default thread pool (``asyncio.to_thread``),
never on the event loop; hashlib releases the GIL on large buffers. One
``asyncio.Lock`` per object serialises its appends, so concurrent streams on
one upload cannot interleave (the loser gets an offset error).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

from ..limits import DEFAULT_MAX_FILE_BYTES
from ..tokens import UploadGrant
from .files import fsync_file, pwrite_all, write_atomically

#: Largest chunk accepted by UploadObject and returned by ReadObject, in bytes (storage.proto: 1 MiB).
MAX_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """A raw object's state: bytes stored, bytes declared, and the SHA-256 (lowercase hex) of the stored bytes."""

    key: str
    size_bytes: int
    expected_size_bytes: int
    sha256_hex: str

    @property
    def complete(self) -> bool:
        return self.size_bytes == self.expected_size_bytes


class _RawObject:
    """In-memory state of one object: stored size, running hash (``None`` until rebuilt after a restart)."""

    __slots__ = ("video_id", "key", "expected", "stored", "synced", "hasher", "sha256_hex", "lock")

    def __init__(self, video_id: str, key: str, expected: int, stored: int, sha256_hex: str | None):
        self.video_id = video_id
        self.key = key
        self.expected = expected
        self.stored = stored
        self.synced = stored
        self.hasher: hashlib._Hash | None = hashlib.sha256() if stored == 0 else None
        self.sha256_hex = sha256_hex
        self.lock = asyncio.Lock()


def _hash_file(path: Path, size: int) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        left = size
        while left > 0:
            block = f.read(min(left, 4 * MAX_CHUNK_BYTES))
            if not block:
                raise OSError(f"{path} is shorter than {size} bytes")
            hasher.update(block)
            left -= len(block)
    return hasher


def _write_and_hash(path: Path, offset: int, data: bytes, hasher: hashlib._Hash) -> None:
    pwrite_all(path, offset, data)
    hasher.update(data)


class RawObjectStore:
    """Raw objects keyed ``raw/{video_id}`` under ``root`` (created if missing).

    ``max_object_bytes`` (> 0) is the largest object accepted, in bytes.
    Single event loop. Errors: ``InvalidArgument`` (``upload_token``
    declaring more than ``max_object_bytes``, ``offset_bytes``, ``data``),
    ``FailedPrecondition`` (upload complete, or a token that disagrees with
    the stored declaration), ``NotFound`` (unknown key).
    """

    def __init__(self, root: Path, max_object_bytes: int = DEFAULT_MAX_FILE_BYTES):
        if max_object_bytes <= 0:
            raise ValueError(f"max_object_bytes must be > 0 (got {max_object_bytes})")
        self.root = Path(root) / "raw"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_object_bytes = max_object_bytes
        self._objects: dict[str, _RawObject] = {}

    def _paths(self, video_id: str) -> tuple[Path, Path]:
        return self.root / f"{video_id}.data", self.root / f"{video_id}.json"

    def _load(self, video_id: str) -> _RawObject | None:
        """The object of ``video_id`` from memory, else from disk (after a restart), else ``None``."""
        obj = self._objects.get(video_id)
        if obj is not None:
            return obj
        data_path, meta_path = self._paths(video_id)
        try:
            meta = json.loads(meta_path.read_bytes())
            stored = data_path.stat().st_size
        except FileNotFoundError:
            return None
        expected = int(meta["expected_size_bytes"])
        sha = meta.get("sha256_hex") if stored == expected else None
        obj = self._objects[video_id] = _RawObject(video_id, meta["key"], expected, min(stored, expected), sha)
        return obj

    async def open(self, grant: UploadGrant) -> _RawObject:
        """The object ``grant`` names, created (empty, durable metadata) on first use.

        ``InvalidArgument`` naming ``upload_token`` (nothing created) when the
        grant declares more than ``max_object_bytes``; ``FailedPrecondition``
        when the object exists with another declared size, or is complete
        (a completed upload's token no longer works).
        """
        if grant.size_bytes > self.max_object_bytes:
            raise InvalidArgument(
                "upload_token", f"declares {grant.size_bytes} bytes, more than this store's largest object "
                                f"({self.max_object_bytes} bytes)")
        obj = self._load(grant.video_id)
        if obj is None:
            data_path, meta_path = self._paths(grant.video_id)
            meta = json.dumps({"video_id": grant.video_id, "key": grant.key, "expected_size_bytes": grant.size_bytes}).encode()

            def create() -> None:
                pwrite_all(data_path, 0, b"")
                write_atomically(meta_path, meta)  # also fsyncs the folder: both entries are durable

            await asyncio.to_thread(create)
            obj = self._objects.get(grant.video_id)  # another call may have created it meanwhile
            if obj is None:
                obj = self._objects[grant.video_id] = _RawObject(grant.video_id, grant.key, grant.size_bytes, 0, None)
        if obj.expected != grant.size_bytes:
            raise FailedPrecondition(
                f"{obj.key} was opened with a declared size of {obj.expected} bytes, the token says {grant.size_bytes}")
        if obj.stored == obj.expected:
            raise FailedPrecondition(
                f"upload of {obj.key} is already complete ({obj.expected} bytes): its token no longer works; "
                "call CompleteUpload")
        return obj

    async def append(self, obj: _RawObject, offset_bytes: int, data: bytes) -> int:
        """Write ``data`` at ``offset_bytes``, which must equal the bytes stored; returns the new stored size.

        Not yet durable: call :meth:`sync` before acknowledging. Raises
        ``FailedPrecondition`` when the upload is already complete,
        ``InvalidArgument`` naming ``data`` (empty, over 1 MiB, past the
        declared size or ``max_object_bytes``; none of it written) or ``offset_bytes`` (negative or not the expected
        offset, which the message gives).
        """
        if not data:
            raise InvalidArgument("data", "must not be empty")
        if len(data) > MAX_CHUNK_BYTES:
            raise InvalidArgument("data", f"must be at most {MAX_CHUNK_BYTES} bytes (got {len(data)})")
        if offset_bytes < 0:
            raise InvalidArgument("offset_bytes", f"must be >= 0 (got {offset_bytes})")
        async with obj.lock:
            if obj.stored == obj.expected:
                raise FailedPrecondition(f"upload of {obj.key} is already complete ({obj.expected} bytes)")
            if offset_bytes != obj.stored:
                raise InvalidArgument(
                    "offset_bytes", f"chunks must arrive in order: expected offset {obj.stored} (got {offset_bytes})")
            if offset_bytes + len(data) > obj.expected:
                raise InvalidArgument(
                    "data", f"chunk ends at byte {offset_bytes + len(data)}, beyond the declared size of {obj.expected} bytes")
            if offset_bytes + len(data) > self.max_object_bytes:  # an object declared before the limit was lowered
                raise InvalidArgument(
                    "data", f"chunk ends at byte {offset_bytes + len(data)}, beyond this store's largest object "
                            f"({self.max_object_bytes} bytes)")
            data_path, _ = self._paths(obj.video_id)
            if obj.hasher is None:  # first append after a restart: rebuild the running hash
                obj.hasher = await asyncio.to_thread(_hash_file, data_path, obj.stored)
            await asyncio.to_thread(_write_and_hash, data_path, offset_bytes, data, obj.hasher)
            obj.stored += len(data)
            return obj.stored

    async def sync(self, obj: _RawObject) -> int:
        """Make every stored byte of ``obj`` durable (fsync); on completion record its SHA-256 durably too.

        Returns the bytes that were not durable before (0 when nothing changed).
        """
        async with obj.lock:
            new = obj.stored - obj.synced
            if new == 0:
                return 0
            data_path, meta_path = self._paths(obj.video_id)
            await asyncio.to_thread(fsync_file, data_path)
            obj.synced = obj.stored
            if obj.stored == obj.expected and obj.sha256_hex is None and obj.hasher is not None:
                obj.sha256_hex = obj.hasher.hexdigest()
                obj.hasher = None
                meta = json.dumps({"video_id": obj.video_id, "key": obj.key, "expected_size_bytes": obj.expected,
                                   "sha256_hex": obj.sha256_hex}).encode()
                await asyncio.to_thread(write_atomically, meta_path, meta)
            return new

    def _require(self, video_id: str, key: str) -> _RawObject:
        obj = self._load(video_id)
        if obj is None:
            raise NotFound(f"no object {key!r}")
        return obj

    async def stat(self, video_id: str) -> ObjectStat:
        """Size, declared size and SHA-256 of ``raw/{video_id}``; ``NotFound`` when never opened."""
        obj = self._require(video_id, f"raw/{video_id}")
        async with obj.lock:
            if obj.sha256_hex is not None:
                sha = obj.sha256_hex
            else:
                if obj.hasher is None:
                    obj.hasher = await asyncio.to_thread(_hash_file, self._paths(video_id)[0], obj.stored)
                sha = obj.hasher.hexdigest()
            return ObjectStat(obj.key, obj.stored, obj.expected, sha)

    async def read(self, video_id: str, chunk_bytes: int = MAX_CHUNK_BYTES) -> AsyncIterator[tuple[int, bytes]]:
        """``(offset, chunk)`` pairs of the stored bytes of ``raw/{video_id}`` (as stored when the read starts).

        ``NotFound`` (raised before the first chunk) when never opened.
        """
        obj = self._require(video_id, f"raw/{video_id}")
        size = obj.stored
        data_path, _ = self._paths(video_id)
        f = await asyncio.to_thread(data_path.open, "rb")
        try:
            offset = 0
            while offset < size:
                chunk = await asyncio.to_thread(f.read, min(chunk_bytes, size - offset))
                if not chunk:
                    raise OSError(f"{data_path} ended at {offset} of {size} bytes")
                yield offset, chunk
                offset += len(chunk)
        finally:
            f.close()

    def offset(self, obj: _RawObject) -> tuple[int, int]:
        """``(stored bytes, declared bytes)`` of an open object: where to resume."""
        return obj.stored, obj.expected

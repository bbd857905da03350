"""What collab-documents' snapshots buy: the time to rebuild a document at start, with and without them.

Usage::

    .venv/bin/python benchmarks/collab_snapshots.py [--updates 20000] [--every 200,0]

For each ``snapshot_every_updates`` value (0: never) a fresh on-disk store (services/collab/documents/: DocumentStore
over a DocumentJournal in a temporary directory) gets one document typed into by one replica, ``--updates`` updates
of one character each at random positions (about a tenth deletions), each applied through ``apply_update`` as the
editor servers' ApplyUpdate does, durably. The store is then stopped and a new one started on the same files: the
start rebuilds the document from its latest snapshot and the updates after it (or, without snapshots, from every
update). Reported per value: the rebuild time (ms), the log rows left, and the text's length, which must be the same
for every value. No network: the store is driven in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pycrdt

from casemesh.services.collab.contract import TEXT_NAME
from casemesh.services.collab.documents.journal import DocumentJournal
from casemesh.services.collab.documents.store import DocumentStore


def typing(count: int, seed: int = 1) -> list[bytes]:
    """``count`` one-keystroke Yjs updates of one replica (one in ten deletes a character)."""
    rng = random.Random(seed)
    doc = pycrdt.Doc()
    text = doc.get(TEXT_NAME, type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for _ in range(count):
        if len(text) > 0 and rng.random() < 0.1:
            del text[rng.randrange(len(text))]
        else:
            text.insert(rng.randint(0, len(text)), rng.choice("abcdefghij "))
    return updates


async def measure(folder: Path, every: int, updates: list[bytes]) -> tuple[float, int, int]:
    journal = DocumentJournal(folder)
    store = DocumentStore(journal, snapshot_every_updates=every)
    await store.start()
    await store.create("doc", "benchmark")
    for update in updates:
        await store.apply_update("doc", update)
    await store.stop()
    journal.close()
    with sqlite3.connect(next(folder.rglob("*.sqlite3"))) as db:
        rows = db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
    journal = DocumentJournal(folder)
    store = DocumentStore(journal, snapshot_every_updates=every)
    started = time.perf_counter()
    await store.start()
    rebuild_s = time.perf_counter() - started
    length = len(store.get("doc").info.text)
    await store.stop()
    journal.close()
    return rebuild_s, rows, length


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--every", default="200,0", help="comma-separated snapshot_every_updates values (0: never)")
    args = parser.parse_args()
    updates = typing(args.updates)
    print(f"{len(updates):,} one-keystroke updates", file=sys.stderr)
    print("| snapshot_every_updates | rebuild at start | update rows in the log | text length |")
    print("|---:|---:|---:|---:|")
    for every in (int(v) for v in args.every.split(",")):
        with tempfile.TemporaryDirectory(prefix="casemesh-collab-snapshots-") as tmp:
            rebuild_s, rows, length = asyncio.run(measure(Path(tmp), every, updates))
        print(f"| {every or 'never'} | {rebuild_s * 1000:,.0f} ms | {rows:,} | {length:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

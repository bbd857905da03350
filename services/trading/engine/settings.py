"""Settings of ``trading-engine`` (topology ``settings.trading-engine``); unknown keys are refused.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). Every order is acknowledged only once its
events are on disk (:mod:`.journal`); how the engine gets them there is the case study's A/B switch:

- ``commit`` "group": the matching thread (the event loop) only appends each order's events to an in-memory buffer
  and goes on matching; one writer thread repeatedly takes everything buffered, writes it with one ``write`` and one
  ``fdatasync``, and then acknowledges every order of that batch (group commit, as databases' write-ahead logs and
  the LMAX Disruptor's journaller do: the cost of one disk flush is shared by every order that arrived during the
  previous one). "per_order": each order's events are written and ``fdatasync``-ed on the matching thread itself
  before the next order is matched: what "fsync every order" costs a single-threaded engine (one flush per order,
  and no matching while it waits). ``casemesh run PROFILE --set trading-engine.commit=per_order``.

StreamEvents (catch-up, then live):

- ``recent_events`` 100,000: the newest durable events kept in memory (serialized, about 100 bytes each: about
  10 MB) so that a subscriber resuming from a recent sequence number is served without reading the file; older ones
  are read back from the log;
- ``index_every`` 1,000: the log's sparse index keeps the byte offset of every ``index_every``-th record, so a
  catch-up from an old sequence number reads at most that many records before the first one it wants (1 M events:
  1,000 offsets);
- ``stream_queue_events`` 10,000: live events buffered per subscriber; a subscriber that falls this far behind is
  dropped (RESOURCE_EXHAUSTED: it reconnects from the last sequence number it has and catches up from the log).

Latency:

- ``gc_freeze_orders`` 20,000: every this many accepted orders (and once after the replay at start) the engine moves
  every object the garbage collector tracks into its permanent generation (``gc.collect(1)``, then ``gc.freeze()``,
  as the runtime does once at start). The engine keeps every order it accepted, so without it each full collection
  scans all of them: in a 300,000-order run here the longest full collection paused the matching thread 176 to
  620 ms, 18 to 60 times the 10 ms SLO; with
  it a collection scans only what was allocated since the last freeze. 0: never (the collector's default
  behaviour). Cyclic garbage alive at a freeze is never collected: a little memory, not a leak per order.
- ``gil_switch_interval_ms`` 0.5: the interpreter's thread switch interval (``sys.setswitchinterval``) while the
  engine runs (restored when it stops). After its ``fdatasync`` the group-commit writer thread needs the GIL to hand
  the batch back to the event loop; under load the loop holds it, and the writer waits up to the interval (Python's
  default 5 ms) for it. Measured here with the loop saturated: that hand-off took 4 to 6 ms at the 99th percentile
  with 5 ms, 1.5 to 2 ms with 0.5 ms, a large share of a 10 ms budget. 0: leave the interpreter's setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The commit modes (``commit``): group commit by a writer thread, or a flush per order on the matching thread.
COMMIT_MODES = ("group", "per_order")


class EngineSettings(BaseModel):
    """trading-engine's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commit: Literal["group", "per_order"] = Field(default="group", description=(
        "group: a writer thread flushes everything buffered with one fdatasync (group commit); per_order: each "
        "order's events are flushed on the matching thread before the next order is matched (the A/B switch)."))
    recent_events: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Newest durable events kept in memory for StreamEvents catch-up (older ones are read from the log)."))
    index_every: int = Field(default=1_000, ge=1, le=1_000_000, description=(
        "Records between two entries of the log's sparse sequence -> byte offset index."))
    stream_queue_events: int = Field(default=10_000, ge=1, le=1_000_000, description=(
        "Live events buffered per StreamEvents subscriber; one that falls further behind is dropped "
        "(RESOURCE_EXHAUSTED)."))
    gc_freeze_orders: int = Field(default=20_000, ge=0, le=100_000_000, description=(
        "Accepted orders between two gc.freeze() calls that keep the ever-growing order population out of the "
        "garbage collector's scans; 0: never."))
    gil_switch_interval_ms: float = Field(default=0.5, ge=0, le=100, description=(
        "sys.setswitchinterval while the engine runs, in ms (how long the writer thread may wait for the GIL); 0: "
        "the interpreter's own."))

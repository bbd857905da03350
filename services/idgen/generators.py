"""ID generators behind casemesh.idgen.v1 LeaseIds: a dense counter and Snowflake.

Sources:

- Counter: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt,
  "Short URL Generation"): "Use distributed counter service for unique IDs",
  encoded in base62; dense IDs keep codes at 7 characters (62^7 = 3.5e12,
  "Short URL length").
- Snowflake: Twitter case study (shared/seeds/003_1dfe16d8ccfde9ed.txt,
  "4. Snowflake ID for Tweet IDs"): 64 bits = 41-bit timestamp, 10-bit machine
  ID, 12-bit sequence; roughly sortable by time, no coordination between
  workers.

Both ``lease`` methods are synchronous (no ``await``), so on one event loop a
lease is atomic without a lock. Their state is in memory; what survives a
restart is the durable high-water mark of :mod:`.high_water`, from which the
service resumes them (``CounterGenerator(start=mark + 1)``,
``SnowflakeGenerator.resume_after(mark_ms)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from casemesh.services.runtime.errors import ResourceExhausted

#: The casemesh epoch, 2026-01-01T00:00:00Z, in Unix milliseconds.
CASEMESH_EPOCH_MS = 1_767_225_600_000

#: Largest counter ID by default: 62^7 - 1, the largest with a 7-character base62 code.
COUNTER_MAXIMUM = 62**7 - 1

TIMESTAMP_BITS = 41
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1  # ms since the epoch: about 69.7 years
MAX_WORKER_ID = (1 << WORKER_BITS) - 1  # 1023
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1  # 4095: 4096 IDs per millisecond per worker
WORKER_SHIFT = SEQUENCE_BITS  # bits 21..12
TIMESTAMP_SHIFT = SEQUENCE_BITS + WORKER_BITS  # bits 62..22


def wall_clock_ms() -> int:
    """Current Unix time in milliseconds (the default Snowflake clock)."""
    return time.time_ns() // 1_000_000


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1 (got {count})")


class CounterGenerator:
    """Dense IDs ``start, start + 1, ...`` up to ``maximum`` inclusive (``start = maximum + 1``: none left).

    The default maximum, 62^7 - 1, is the largest ID that has a 7-character
    base62 code.
    """

    def __init__(self, start: int = 1, maximum: int = COUNTER_MAXIMUM) -> None:
        if start < 0 or maximum < start - 1:
            raise ValueError(f"need 0 <= start <= maximum + 1 (got start={start}, maximum={maximum})")
        self._next = start
        self.maximum = maximum

    @property
    def next_id(self) -> int:
        """The first ID the next lease will return."""
        return self._next

    def lease(self, count: int) -> list[tuple[int, int]]:
        """``count`` fresh IDs as one run ``[(start, count)]``.

        All or nothing: raises ResourceExhausted (and hands out nothing) when
        the run would pass ``maximum``.
        """
        _check_count(count)
        start = self._next
        if start + count - 1 > self.maximum:
            raise ResourceExhausted(
                f"counter ID space exhausted: {self.maximum - start + 1} IDs left, {count} asked"
            )
        self._next = start + count
        return [(start, count)]


class SnowflakeGenerator:
    """Snowflake IDs of one worker: ``ms << 22 | worker_id << 12 | sequence``.

    Bit 63 is zero; bits 62..22 are milliseconds since ``epoch_ms`` (41 bits,
    about 69 years); bits 21..12 the worker ID (0..1023); bits 11..0 the
    sequence within the millisecond (0..4095). ``clock_ms()`` returns Unix
    milliseconds; IDs of one generator strictly increase.

    Departures from Twitter's Snowflake, both so that a lease never blocks
    the event loop and never repeats an ID:

    - Sequence overflow (more than 4096 IDs in one millisecond) moves on to the
      next millisecond at once instead of spinning until the clock gets there;
      the IDs' timestamps run ahead of the clock by at most
      ``count / 4096`` ms per lease and the clock catches up.
    - When the clock goes backwards (NTP step), the generator keeps using its
      last timestamp (continuing its sequence, then moving forward logically)
      instead of failing, until the clock passes it again.

    Raises ResourceExhausted once the timestamp would not fit in 41 bits, and
    RuntimeError when the clock reads before the epoch (a misconfigured clock).
    """

    def __init__(
        self,
        worker_id: int,
        clock_ms: Callable[[], int] = wall_clock_ms,
        epoch_ms: int = CASEMESH_EPOCH_MS,
    ) -> None:
        if not 0 <= worker_id <= MAX_WORKER_ID:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER_ID} (got {worker_id})")
        self.worker_id = worker_id
        self._clock_ms = clock_ms
        self.epoch_ms = epoch_ms
        self._last_ms = -1  # timestamp (ms since epoch) of the latest ID handed out
        self._next_seq = 0  # sequence of the next ID within _last_ms (4096 = used up)

    def resume_after(self, ms_since_epoch: int) -> None:
        """Never hand out an ID with a timestamp at or before ``ms_since_epoch`` (a restart's high-water mark).

        The next lease uses ``max(clock, ms_since_epoch + 1)``: if the clock
        reads earlier (it went backwards across the restart, or the previous
        process ran ahead of it), IDs carry on logically from the mark.
        """
        if ms_since_epoch > self._last_ms:
            self._last_ms, self._next_seq = ms_since_epoch, MAX_SEQUENCE + 1

    @property
    def last_ms(self) -> int:
        """Timestamp (ms since the epoch) of the latest ID handed out; -1 before the first lease."""
        return self._last_ms

    def lease(self, count: int) -> list[tuple[int, int]]:
        """``count`` fresh IDs as runs ``[(first_id, n), ...]``, one per millisecond used.

        Each run holds at most 4096 consecutive IDs; the runs increase and the
        counts add up to ``count``. A lease continues the sequence of the
        previous one when both fall in the same millisecond.
        """
        _check_count(count)
        now = self._clock_ms() - self.epoch_ms
        if now < 0 and self._last_ms < 0:
            raise RuntimeError(f"clock reads {-now} ms before the epoch {self.epoch_ms}")
        if now > self._last_ms:
            ms, seq = now, 0
        else:  # same millisecond, or the clock went backwards: carry on logically
            ms, seq = self._last_ms, self._next_seq
        base = self.worker_id << WORKER_SHIFT
        ranges: list[tuple[int, int]] = []
        remaining = count
        while remaining:
            if seq > MAX_SEQUENCE:
                ms, seq = ms + 1, 0
            if ms > MAX_TIMESTAMP:
                raise ResourceExhausted(
                    "Snowflake ID space exhausted: the 41-bit timestamp ran out"
                )
            n = min(remaining, MAX_SEQUENCE + 1 - seq)
            ranges.append(((ms << TIMESTAMP_SHIFT) | base | seq, n))
            seq += n
            remaining -= n
        # Commit only after the whole lease fitted: a failed lease changes nothing.
        self._last_ms, self._next_seq = ms, seq
        return ranges

    @staticmethod
    def compose(ms_since_epoch: int, worker_id: int, sequence: int) -> int:
        """The ID of (milliseconds since the epoch, worker ID, sequence); ValueError when a part does not fit."""
        if not 0 <= ms_since_epoch <= MAX_TIMESTAMP:
            raise ValueError(f"ms_since_epoch must be in 0..{MAX_TIMESTAMP}")
        if not 0 <= worker_id <= MAX_WORKER_ID:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER_ID}")
        if not 0 <= sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence must be in 0..{MAX_SEQUENCE}")
        return (ms_since_epoch << TIMESTAMP_SHIFT) | (worker_id << WORKER_SHIFT) | sequence

    @staticmethod
    def decompose(id: int) -> tuple[int, int, int]:
        """Split an ID into (milliseconds since the epoch, worker ID, sequence).

        Unix milliseconds of the ID: ``ms_since_epoch + CASEMESH_EPOCH_MS``.
        ValueError for an ID outside ``0 .. 2^63 - 1``.
        """
        if not 0 <= id < 1 << 63:
            raise ValueError(f"a Snowflake ID is a non-negative 63-bit integer (got {id})")
        return (
            id >> TIMESTAMP_SHIFT,
            (id >> WORKER_SHIFT) & MAX_WORKER_ID,
            id & MAX_SEQUENCE,
        )


def decompose(id: int) -> tuple[int, int, int]:
    """Module-level alias of :meth:`SnowflakeGenerator.decompose`."""
    return SnowflakeGenerator.decompose(id)

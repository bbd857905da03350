/**
 * ID generators behind casemesh.idgen.v1 LeaseIds: a dense counter and Snowflake.
 *
 * The same layouts and rules as the Python implementation (services/idgen/generators.py):
 * - Counter: dense IDs start, start + 1, ... up to `maximum` (default 62^7 - 1, the largest ID with a
 *   7-character base62 code); a lease is one run, all or nothing.
 * - Snowflake: bit 63 zero, bits 62..22 milliseconds since the casemesh epoch (2026-01-01T00:00:00Z),
 *   bits 21..12 the worker ID (0..1023), bits 11..0 the sequence within the millisecond (0..4095).
 *   Sequence overflow moves to the next millisecond at once (no spinning); a clock that goes backwards
 *   is ignored until it passes the last timestamp handed out.
 *
 * IDs are bigint (64-bit values do not fit a JavaScript number). Both `lease` methods are synchronous,
 * so on Node's one thread a lease is atomic.
 */

/** The casemesh epoch, 2026-01-01T00:00:00Z, in Unix milliseconds. */
export const CASEMESH_EPOCH_MS = 1_767_225_600_000;
/** Largest counter ID by default: 62^7 - 1. */
export const COUNTER_MAXIMUM = 62n ** 7n - 1n;

export const TIMESTAMP_BITS = 41n;
export const WORKER_BITS = 10n;
export const SEQUENCE_BITS = 12n;
/** Largest timestamp (ms since the epoch) that fits in 41 bits. */
export const MAX_TIMESTAMP = 2 ** 41 - 1;
export const MAX_WORKER_ID = 1023;
export const MAX_SEQUENCE = 4095;
const WORKER_SHIFT = SEQUENCE_BITS;
const TIMESTAMP_SHIFT = SEQUENCE_BITS + WORKER_BITS;

/** A run of consecutive IDs: [first ID, how many]. */
export type Run = [bigint, number];

/** A layout's ID space is used up (RESOURCE_EXHAUSTED). */
export class ResourceExhausted extends Error {}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be at least 1 (got ${count})`);
  }
}

/** Dense IDs `start, start + 1, ...` up to `maximum` inclusive (`start = maximum + 1`: none left). */
export class CounterGenerator {
  private next: bigint;

  constructor(start: bigint = 1n, readonly maximum: bigint = COUNTER_MAXIMUM) {
    if (start < 0n || maximum < start - 1n) {
      throw new RangeError(`need 0 <= start <= maximum + 1 (got start=${start}, maximum=${maximum})`);
    }
    this.next = start;
  }

  /** The first ID the next lease will return. */
  get nextId(): bigint {
    return this.next;
  }

  /** `count` fresh IDs as one run; ResourceExhausted (and nothing handed out) when it would pass `maximum`. */
  lease(count: number): Run[] {
    checkCount(count);
    const start = this.next;
    if (start + BigInt(count) - 1n > this.maximum) {
      throw new ResourceExhausted(
        `counter ID space exhausted: ${this.maximum - start + 1n} IDs left, ${count} asked`,
      );
    }
    this.next = start + BigInt(count);
    return [[start, count]];
  }
}

/** Current Unix time in milliseconds (the default Snowflake clock). */
export function wallClockMs(): number {
  return Date.now();
}

/** Snowflake IDs of one worker: `ms << 22 | workerId << 12 | sequence`; IDs of one generator strictly increase. */
export class SnowflakeGenerator {
  private lastMsValue = -1; // timestamp (ms since the epoch) of the latest ID handed out
  private nextSeq = 0; // sequence of the next ID within lastMs (4096 = used up)

  constructor(
    readonly workerId: number,
    private readonly clockMs: () => number = wallClockMs,
    readonly epochMs: number = CASEMESH_EPOCH_MS,
  ) {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER_ID) {
      throw new RangeError(`worker_id must be in 0..${MAX_WORKER_ID} (got ${workerId})`);
    }
  }

  /** Never hand out an ID with a timestamp at or before `msSinceEpoch` (a restart's high-water mark). */
  resumeAfter(msSinceEpoch: number): void {
    if (msSinceEpoch > this.lastMsValue) {
      this.lastMsValue = msSinceEpoch;
      this.nextSeq = MAX_SEQUENCE + 1;
    }
  }

  /** Timestamp (ms since the epoch) of the latest ID handed out; -1 before the first lease. */
  get lastMs(): number {
    return this.lastMsValue;
  }

  /** `count` fresh IDs as runs, one per millisecond used (at most 4096 IDs each), increasing. */
  lease(count: number): Run[] {
    checkCount(count);
    const now = this.clockMs() - this.epochMs;
    if (now < 0 && this.lastMsValue < 0) {
      throw new Error(`clock reads ${-now} ms before the epoch ${this.epochMs}`);
    }
    let ms: number;
    let seq: number;
    if (now > this.lastMsValue) {
      ms = now;
      seq = 0;
    } else {
      ms = this.lastMsValue;
      seq = this.nextSeq;
    }
    const base = BigInt(this.workerId) << WORKER_SHIFT;
    const runs: Run[] = [];
    let remaining = count;
    while (remaining > 0) {
      if (seq > MAX_SEQUENCE) {
        ms += 1;
        seq = 0;
      }
      if (ms > MAX_TIMESTAMP) {
        throw new ResourceExhausted("Snowflake ID space exhausted: the 41-bit timestamp ran out");
      }
      const n = Math.min(remaining, MAX_SEQUENCE + 1 - seq);
      runs.push([(BigInt(ms) << TIMESTAMP_SHIFT) | base | BigInt(seq), n]);
      seq += n;
      remaining -= n;
    }
    // Commit only after the whole lease fitted: a failed lease changes nothing.
    this.lastMsValue = ms;
    this.nextSeq = seq;
    return runs;
  }

  /** Split an ID into [ms since the epoch, worker ID, sequence]. */
  static decompose(id: bigint): [number, number, number] {
    if (id < 0n || id >= 1n << 63n) {
      throw new RangeError(`a Snowflake ID is a non-negative 63-bit integer (got ${id})`);
    }
    return [
      Number(id >> TIMESTAMP_SHIFT),
      Number((id >> WORKER_SHIFT) & BigInt(MAX_WORKER_ID)),
      Number(id & BigInt(MAX_SEQUENCE)),
    ];
  }
}

/**
 * Durable high-water marks: a restarted idgen never hands out an ID twice (services/idgen/high_water.py).
 *
 * The same files as the Python implementation, so either implementation resumes above the other's
 * marks: `DATA_DIR/idgen/counter.mark` (the highest counter ID covered) and
 * `DATA_DIR/idgen/snowflake-WORKER.mark` (the highest Snowflake timestamp covered, ms since the epoch),
 * each one decimal integer and a newline, replaced atomically: written to `PATH.tmp`, fsynced, renamed
 * over the old file, the folder fsynced. Run one idgen process per data folder.
 */

import { readFileSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname, basename, join } from "node:path";

import type { Run } from "./generators.js";

/** The mark file exists but does not hold a non-negative integer; the message names the file. */
export class MarkFileError extends Error {}

/** A non-negative integer kept durably in one file. */
export class HighWaterMark {
  constructor(readonly path: string) {}

  /** The stored mark, `null` when the file does not exist; MarkFileError when it is not a non-negative integer. */
  load(): bigint | null {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    const trimmed = text.trim();
    // Python's int() also accepts a sign and underscores; the files are written without either.
    if (!/^\+?[0-9](_?[0-9])*$/.test(trimmed)) {
      throw new MarkFileError(`${this.path}: expected one non-negative integer, got ${JSON.stringify(text.slice(0, 40))}`);
    }
    return BigInt(trimmed.replace(/[+_]/g, ""));
  }

  /** Replace the mark with `value` durably: fsynced (file and folder) before the promise resolves. */
  async store(value: bigint): Promise<void> {
    const tmp = join(dirname(this.path), basename(this.path) + ".tmp");
    const file = await open(tmp, "w", 0o644);
    try {
      await file.writeFile(`${value}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const folder = await open(dirname(this.path), "r");
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }
}

/** The layout's generator, as DurableLeases uses it. */
export interface Generator {
  lease(count: number): Run[];
}

/**
 * Leases of `generator` that are durable before they are returned.
 *
 * `top(runs)` is the value a lease must have covered (the last counter ID, or the last Snowflake
 * timestamp); `ceiling` what the mark covers now (the loaded mark, or -1); `limit` caps a new mark.
 * When a lease's top is above the ceiling, the mark becomes `min(top + reserve, limit)` and is fsynced
 * before the lease returns. Leases are serialised (a promise chain), so none returns IDs that a pending
 * write has not yet covered. A lease whose mark cannot be written rejects with the file system's error,
 * and its IDs are skipped, never handed out.
 */
export class DurableLeases {
  writes = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly generator: Generator,
    readonly mark: HighWaterMark,
    private readonly top: (runs: Run[]) => bigint,
    public ceiling: bigint,
    private readonly reserve: bigint,
    private readonly limit: bigint,
  ) {
    if (reserve < 0n) throw new RangeError(`reserve must be at least 0 (got ${reserve})`);
  }

  /** `count` IDs as runs, covered by the durable mark. */
  lease(count: number): Promise<Run[]> {
    const result = this.tail.then(async () => {
      const runs = this.generator.lease(count);
      const top = this.top(runs);
      if (top > this.ceiling) {
        const next = top + this.reserve < this.limit ? top + this.reserve : this.limit;
        await this.mark.store(next);
        this.ceiling = next;
        this.writes += 1;
      }
      return runs;
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}


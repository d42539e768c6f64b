/**
 * Live delivery before history, within one coordinator process: a backfill batch starts only while no live batch
 * is being derived and the live batches are not behind (their newest record was less than `lagBudgetMs` old when
 * their derivation began), so a backfill takes what live delivery leaves of the machine — its own CPU, and, since
 * the backfill's subscriber materializes only what the backfill produces, that sink's PostgreSQL work too —
 * instead of sharing it evenly (which made live delivery fall behind for as long as the backfill ran). A live
 * batch then waits at most for the backfill batch in progress on its partition (the partition lock); backfill
 * batches are kept small for that ({@link BACKFILL_FETCH_BOUNDS}). Under a live load that never pauses, a backfill
 * waits: it is the part that can.
 */
export class LiveFirst {
  private liveBatches = 0;
  private waiters: (() => void)[] = [];
  /** When the last live batch began, and how old its newest record was then (ms). */
  private lastLive = { at: 0, ageMs: 0 };

  private readonly lagBudgetMs: number;

  /** @param lagBudgetMs how far behind live batches may be before backfill batches wait. */
  constructor(lagBudgetMs = 100) {
    this.lagBudgetMs = lagBudgetMs;
  }

  /**
   * Runs one live batch's work, counted as live while it runs. `newestAt`: when its newest record was produced
   * (the Kafka timestamp, ms).
   */
  async live<T>(newestAt: number, work: () => Promise<T>): Promise<T> {
    this.liveBatches++;
    const now = Date.now();
    this.lastLive = { at: now, ageMs: Number.isFinite(newestAt) ? now - newestAt : 0 };
    try {
      return await work();
    } finally {
      this.liveBatches--;
      if (this.liveBatches === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Whether live delivery is behind: its last batch, begun within the last second, was over budget. */
  private behind(): boolean {
    return Date.now() - this.lastLive.at < 1_000 && this.lastLive.ageMs > this.lagBudgetMs;
  }

  /**
   * Resolves once no live batch is in progress and live delivery is not behind, or once `running()` says the
   * waiting consumer is stopping. Calls `heartbeat` every `heartbeatMs` while it waits, so that waiting does not
   * cost the consumer its place in the group.
   */
  async quiet(heartbeat: () => Promise<void>, running: () => boolean, heartbeatMs = 1_000): Promise<void> {
    let lastBeat = Date.now();
    while (running() && (this.liveBatches > 0 || this.behind())) {
      await new Promise<void>((resolve) => {
        // busy: woken when the last live batch ends; behind: looked at again shortly
        const timer = setTimeout(resolve, this.liveBatches > 0 ? heartbeatMs : 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (Date.now() - lastBeat >= heartbeatMs) {
        await heartbeat();
        lastBeat = Date.now();
      }
    }
  }
}

/**
 * The backfill consumer's fetch bounds: a quarter of SOURCE_FETCH_BOUNDS (infra/kafka/batch-loop.ts), so that a
 * live batch waiting for a backfill batch on the same partition waits for a few hundred records, not thousands.
 * A producer's record batch larger than this still arrives whole.
 */
export const BACKFILL_FETCH_BOUNDS = { maxBytesPerPartition: 65_536, maxBytes: 524_288 } as const;

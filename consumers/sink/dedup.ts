import type { Redis } from '../../infra/redis/client.ts';
import type { Logger } from '../../infra/logging/logger.ts';

export interface DeduplicatorOptions {
  /**
   * How long one Redis call may take, in milliseconds, before it counts as failed and the batch goes on
   * without it (a Redis that hangs must not stall the sink). Default 1000.
   */
  timeoutMs?: number;
}

export const DEDUP_DEFAULTS = { timeoutMs: 1_000 } as const;

/** `SET <key> 1 EX <ttl> NX` for every key; ARGV[1] is the TTL in seconds. */
const REMEMBER = `for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'EX', ARGV[1], 'NX') end
return #KEYS`;

/**
 * Redis-backed memory of applied event ids. It only saves work: the version guard in PostgreSQL keeps the
 * result correct whether Redis answers or not, so a Redis failure degrades to "nothing seen" with one
 * warning per outage. Ids are remembered after the database commit, never before (a crash in between must
 * not hide an event).
 */
export class Deduplicator {
  /** Calls (lookups or writes) that failed or timed out since this instance was made. */
  failures = 0;
  private warned = false;
  private readonly timeoutMs: number;

  private readonly redis: Redis | null;
  private readonly namespace: string;
  private readonly ttlSeconds: number;
  private readonly log: Logger;
  private readonly options: DeduplicatorOptions;

  constructor(
    redis: Redis | null,
    namespace: string,
    ttlSeconds: number,
    log: Logger,
    options: DeduplicatorOptions = {},
  ) {
    this.redis = redis;
    this.namespace = namespace;
    this.ttlSeconds = ttlSeconds;
    this.log = log;
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? DEDUP_DEFAULTS.timeoutMs;
  }

  /** False when no Redis was given: every lookup answers "nothing seen". */
  get enabled(): boolean {
    return this.redis !== null;
  }

  /**
   * The same Redis under a narrower namespace (`<namespace>:<suffix>`), e.g. per table instance, so that
   * ids remembered for one copy of the data never make another copy skip them.
   */
  scoped(suffix: string): Deduplicator {
    return new Deduplicator(
      this.redis,
      `${this.namespace}:${suffix}`,
      this.ttlSeconds,
      this.log,
      this.options,
    );
  }

  /**
   * `dedup:{<namespace>}:<eventId>`. The braces are a Redis Cluster hash tag: every key of one namespace (one
   * table instance) lives in one slot, so a batch's MGET and script stay single-slot commands on a cluster,
   * while different sinks spread over the cluster's nodes.
   */
  private key(eventId: string): string {
    return `dedup:{${this.namespace}}:${eventId}`;
  }

  /** The ids of this list that were applied before. */
  async seen(eventIds: string[]): Promise<Set<string>> {
    if (!this.redis || eventIds.length === 0) return new Set();
    const redis = this.redis;
    try {
      const flags = await this.bounded(redis.mget(eventIds.map((id) => this.key(id))));
      this.recovered();
      return new Set(eventIds.filter((_, index) => flags[index] !== null));
    } catch (error) {
      this.degraded(error);
      return new Set();
    }
  }

  /** Remembers applied ids for the TTL: one `SET key 1 EX ttl NX` each, run by one script call per batch. */
  async remember(eventIds: string[]): Promise<void> {
    if (!this.redis || eventIds.length === 0) return;
    try {
      // One command carrying every key instead of a pipeline of thousands: the client-side cost of a
      // command dominated the sink's Redis time. The keys are declared as KEYS, as Redis Cluster requires.
      await this.bounded(
        this.redis.eval(REMEMBER, eventIds.length, ...eventIds.map((id) => this.key(id)), this.ttlSeconds),
      );
      this.recovered();
    } catch (error) {
      this.degraded(error);
    }
  }

  private async bounded<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`redis did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([call, timeout]);
    } finally {
      clearTimeout(timer);
      call.catch(() => undefined); // a late failure of an abandoned call is not unhandled
    }
  }

  private degraded(error: unknown): void {
    this.failures++;
    if (!this.warned)
      this.log.warn({ err: error }, 'redis dedup unavailable; continuing on the version guard alone');
    this.warned = true;
  }

  private recovered(): void {
    if (this.warned) this.log.info('redis dedup available again');
    this.warned = false;
  }
}

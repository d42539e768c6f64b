import type { RedisClient } from '../../infra/redis/client.ts';
import type { Logger } from '../../infra/logging/logger.ts';

export interface DeduplicatorOptions {
  /**
   * How long one Redis call may take, in milliseconds, before it counts as failed and the batch goes on
   * without it (a Redis that hangs must not stall the sink). Default 1000.
   */
  timeoutMs?: number;
  /**
   * Over how many hash slots one namespace's keys spread (a hash tag per group): on a Redis Cluster, one
   * sink's ids and load share out over the nodes instead of filling the one node of a single slot, while each
   * command stays inside one slot. A batch costs one MGET and one script call per group it touches, sent at
   * once. Changing it changes the key names: ids remembered before are forgotten (costs work, never
   * correctness). Default 16.
   */
  slotGroups?: number;
}

export const DEDUP_DEFAULTS = { timeoutMs: 1_000, slotGroups: 16 } as const;

/** FNV-1a (32-bit) of a string's UTF-16 code units: spreads UUIDv7 ids, whose first digits are a clock. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

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
  private readonly slotGroups: number;

  private readonly redis: RedisClient | null;
  private readonly namespace: string;
  private readonly ttlSeconds: number;
  private readonly log: Logger;
  private readonly options: DeduplicatorOptions;

  constructor(
    redis: RedisClient | null,
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
    this.slotGroups = options.slotGroups ?? DEDUP_DEFAULTS.slotGroups;
    if (!Number.isInteger(this.slotGroups) || this.slotGroups < 1)
      throw new RangeError(`slotGroups must be a positive integer, not ${this.slotGroups}`);
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
   * `dedup:{<namespace>/<group>}:<eventId>`, the group a hash of the id ({@link DeduplicatorOptions.slotGroups}).
   * The braces are a Redis Cluster hash tag: the keys of one group share a slot, so each MGET and script call
   * below stays a single-slot command on a cluster, and the groups of one namespace spread over its nodes.
   */
  private key(group: number, eventId: string): string {
    return `dedup:{${this.namespace}/${group}}:${eventId}`;
  }

  /** The ids by group, each group's keys beside them, in the order given. */
  private grouped(eventIds: string[]): { ids: string[]; keys: string[] }[] {
    const groups = new Map<number, { ids: string[]; keys: string[] }>();
    for (const id of eventIds) {
      const group = fnv1a(id) % this.slotGroups;
      let entry = groups.get(group);
      if (!entry) groups.set(group, (entry = { ids: [], keys: [] }));
      entry.ids.push(id);
      entry.keys.push(this.key(group, id));
    }
    return [...groups.values()];
  }

  /**
   * The ids of this list that were applied before. A group whose call failed (its node down, a timeout) answers
   * "nothing seen" for its ids; the others still answer.
   */
  async seen(eventIds: string[]): Promise<Set<string>> {
    if (!this.redis || eventIds.length === 0) return new Set();
    const redis = this.redis;
    const groups = this.grouped(eventIds);
    const answers = await Promise.allSettled(groups.map(({ keys }) => this.bounded(redis.mget(keys))));
    const seen = new Set<string>();
    answers.forEach((answer, index) => {
      if (answer.status !== 'fulfilled') return;
      groups[index]!.ids.forEach((id, at) => {
        if (answer.value[at] !== null) seen.add(id);
      });
    });
    this.settled(answers);
    return seen;
  }

  /**
   * Remembers applied ids for the TTL: one `SET key 1 EX ttl NX` each, run by one script call per group. A
   * group whose call failed is not remembered (its ids cost a version-guarded write if they come again).
   */
  async remember(eventIds: string[]): Promise<void> {
    if (!this.redis || eventIds.length === 0) return;
    const redis = this.redis;
    // One command carrying every key of a group instead of a pipeline of thousands: the client-side cost of a
    // command dominated the sink's Redis time. The keys are declared as KEYS, as Redis Cluster requires.
    const answers = await Promise.allSettled(
      this.grouped(eventIds).map(({ keys }) =>
        this.bounded(redis.eval(REMEMBER, keys.length, ...keys, this.ttlSeconds)),
      ),
    );
    this.settled(answers);
  }

  /** One failure counted (and warned once per outage) for a call of which any group failed. */
  private settled(answers: PromiseSettledResult<unknown>[]): void {
    const failed = answers.find((answer) => answer.status === 'rejected');
    if (failed) this.degraded(failed.reason);
    else this.recovered();
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

import type { Redis } from '../../infra/redis/client.ts';
import type { Logger } from '../../infra/logging/logger.ts';

/**
 * Redis-backed memory of applied event ids. It only saves work: the version guard in PostgreSQL keeps the
 * result correct whether Redis answers or not, so a Redis failure degrades to "nothing seen" with a warning.
 * Ids are remembered after the database commit, never before (a crash in between must not hide an event).
 */
export class Deduplicator {
  private warned = false;

  constructor(
    private readonly redis: Redis | null,
    private readonly namespace: string,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  private key(eventId: string): string {
    return `dedup:${this.namespace}:${eventId}`;
  }

  /** The ids of this list that were applied before. */
  async seen(eventIds: string[]): Promise<Set<string>> {
    if (!this.redis || eventIds.length === 0) return new Set();
    try {
      const flags = await this.redis.mget(eventIds.map((id) => this.key(id)));
      this.recovered();
      return new Set(eventIds.filter((_, index) => flags[index] !== null));
    } catch (error) {
      this.degraded(error);
      return new Set();
    }
  }

  async remember(eventIds: string[]): Promise<void> {
    if (!this.redis || eventIds.length === 0) return;
    try {
      const pipeline = this.redis.pipeline();
      for (const id of eventIds) pipeline.set(this.key(id), '1', 'EX', this.ttlSeconds, 'NX');
      await pipeline.exec();
      this.recovered();
    } catch (error) {
      this.degraded(error);
    }
  }

  private degraded(error: unknown): void {
    if (!this.warned)
      this.log.warn({ err: error }, 'redis dedup unavailable; continuing on the version guard alone');
    this.warned = true;
  }

  private recovered(): void {
    if (this.warned) this.log.info('redis dedup available again');
    this.warned = false;
  }
}

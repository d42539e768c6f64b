import { Redis } from 'ioredis';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';

export type { Redis };

export interface RedisOptions {
  url: string;
  /** Every key this client writes starts with it: one per deployment, per test. */
  keyPrefix: string;
  /**
   * What a Redis that does not answer at start means: `fail` (LT_REDIS_UNREACHABLE), or `degrade`: a warning on
   * `log`, and the client keeps reconnecting in the background while its users run without it (the sinks'
   * version guard keeps them correct; Redis only saves work). @default 'fail'
   */
  whenUnreachable?: 'fail' | 'degrade';
  /** Where `degrade` says so. */
  log?: Logger;
}

/** Connects eagerly so that a Redis that is down is reported at start, not at the first event. */
export async function createRedis({
  url,
  keyPrefix,
  whenUnreachable = 'fail',
  log,
}: RedisOptions): Promise<Redis> {
  const redis = new Redis(url, {
    keyPrefix,
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  redis.on('error', () => {
    /* reported through command failures; the sink degrades to the version guard */
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (cause) {
    if (whenUnreachable === 'degrade') {
      log?.warn(
        { url, err: cause },
        'Redis is unreachable at start: running on the version guard alone, reconnecting in the background',
      );
      return redis; // ioredis retries the connection by its retryStrategy; commands fail fast meanwhile
    }
    redis.disconnect();
    throw new LtError('LT_REDIS_UNREACHABLE', `cannot reach Redis at ${url}: ${(cause as Error).message}`, {
      cause,
      hint: 'start Redis (redis-server --daemonize yes --port 6379 --save "") or set REDIS_URL',
    });
  }
  return redis;
}

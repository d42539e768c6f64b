import { Redis } from 'ioredis';
import { LtError } from '../errors.ts';

export type { Redis };

export interface RedisOptions {
  url: string;
  /** Every key this client writes starts with it: one per deployment, per test. */
  keyPrefix: string;
}

/** Connects eagerly so that a Redis that is down is reported at start, not at the first event. */
export async function createRedis({ url, keyPrefix }: RedisOptions): Promise<Redis> {
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
    redis.disconnect();
    throw new LtError('LT_REDIS_UNREACHABLE', `cannot reach Redis at ${url}: ${(cause as Error).message}`, {
      cause,
      hint: 'start Redis (redis-server --daemonize yes --port 6379 --save "") or set REDIS_URL',
    });
  }
  return redis;
}

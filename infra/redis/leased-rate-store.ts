import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from './client.ts';

/*
 * A store for @fastify/rate-limit that counts in Redis, as its own RedisStore does, but takes the numbers of a
 * busy caller in blocks ("leases") instead of one round trip per request. Per key and window Redis holds one
 * counter; `INCRBY n` hands this instance the numbers c-n+1 … c, which it gives out to its next requests
 * locally. Every number is counted in Redis before it is used, so across instances a caller never gets more
 * than `max` in a window; numbers an instance leased but did not use are lost for that window (the caller may be
 * refused up to one unused lease per instance early). Once a caller is over its limit, its leased numbers are
 * all above `max`, so its refusals cost no round trip either until the window ends.
 *
 * The lease grows with the caller's rate: enough numbers for `leaseMs` of its calls in the previous second, at
 * least 1 (so a quiet caller is counted exactly, one round trip a call) and at most `maxLeaseFraction` of `max`.
 */

/** `INCRBY n` on the window's counter; a new counter (or one without expiry) gets the window. → [counter, pttl] */
const LEASE = `
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
`;

/** How {@link leasedRedisStore} leases. */
export interface LeasedRateStoreOptions {
  redis: Redis;
  /** Prefix of the counters' keys (after the client's own keyPrefix). */
  nameSpace: string;
  /** A lease covers about this long of the caller's calls at its rate of the previous second. @default 100 */
  leaseMs?: number;
  /** Largest lease, as a fraction of the limit (at least 1). @default 0.05 */
  maxLeaseFraction?: number;
  /** The clock, in milliseconds. @default Date.now */
  now?: () => number;
}

type Answer = (error: Error | null, result?: { current: number; ttl: number }) => void;

interface Lease {
  windowEnd: number;
  next: number;
  last: number;
}

interface Rate {
  second: number;
  count: number;
  previous: number;
}

interface Counter {
  lease?: Lease;
  rate: Rate;
  waiting: Answer[];
  asking: boolean;
}

interface LeaseRedis extends Redis {
  ltRateLease(key: string, count: number, windowMs: number): Promise<[number, number]>;
}

/** A store class for `@fastify/rate-limit`'s `store` option. */
export function leasedRedisStore(options: LeasedRateStoreOptions): FastifyRateLimitStoreCtor {
  const { redis, nameSpace, leaseMs = 100, maxLeaseFraction = 0.05, now = Date.now } = options;
  if (!('ltRateLease' in redis)) redis.defineCommand('ltRateLease', { numberOfKeys: 1, lua: LEASE });
  const leasing = redis as LeaseRedis;
  const counters = new Map<string, Counter>();

  const leaseSize = (counter: Counter, max: number): number => {
    const bound = Math.max(1, Math.floor(max * maxLeaseFraction));
    return Math.min(bound, Math.max(1, Math.ceil((counter.rate.previous * leaseMs) / 1000)));
  };

  /** Hands out numbers of the current lease to the waiting requests; asks Redis for more when they run out. */
  const serve = (key: string, counter: Counter, timeWindow: number, max: number): void => {
    const at = now();
    const lease = counter.lease;
    while (counter.waiting.length > 0 && lease && lease.windowEnd > at && lease.next <= lease.last) {
      const answer = counter.waiting.shift()!;
      answer(null, { current: lease.next++, ttl: lease.windowEnd - at });
    }
    if (counter.waiting.length === 0 || counter.asking) return;
    counter.asking = true;
    const size = Math.max(leaseSize(counter, max), Math.min(counter.waiting.length, max));
    leasing.ltRateLease(`${nameSpace}${key}`, size, timeWindow).then(
      ([count, ttl]) => {
        counter.asking = false;
        counter.lease = { windowEnd: now() + ttl, next: count - size + 1, last: count };
        serve(key, counter, timeWindow, max);
      },
      (error: unknown) => {
        counter.asking = false;
        const failed = counter.waiting.splice(0);
        for (const answer of failed) answer(error instanceof Error ? error : new Error(String(error)));
      },
    );
  };

  return class LeasedRedisStore implements FastifyRateLimitStore {
    incr(key: string, answer: Answer, timeWindow: number, max: number): void {
      const at = now();
      let counter = counters.get(key);
      if (!counter) {
        if (counters.size > 10_000) counters.clear();
        counter = {
          rate: { second: Math.floor(at / 1000), count: 0, previous: 0 },
          waiting: [],
          asking: false,
        };
        counters.set(key, counter);
      }
      const second = Math.floor(at / 1000);
      if (second !== counter.rate.second) {
        counter.rate.previous = second === counter.rate.second + 1 ? counter.rate.count : 0;
        counter.rate = { second, count: 0, previous: counter.rate.previous };
      }
      counter.rate.count += 1;
      counter.waiting.push(answer);
      serve(key, counter, timeWindow, max);
    }

    child(): FastifyRateLimitStore {
      throw new Error('the leased rate-limit store has no per-route children');
    }
  };
}

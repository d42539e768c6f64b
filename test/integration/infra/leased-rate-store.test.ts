import type { FastifyRateLimitStore } from '@fastify/rate-limit';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from '../../../infra/redis/client.ts';
import { leasedRedisStore } from '../../../infra/redis/leased-rate-store.ts';
import { testRedis, uniqueName } from '../../helpers/services.ts';

const WINDOW = 60_000;
let redis: Redis;

beforeAll(async () => {
  redis = await testRedis();
});

/** A store on its own name space with a clock the test moves; `incr` as a promise of the number handed out. */
function store(nameSpace: string, clock: { at: number }, maxLeaseFraction = 0.05) {
  const Store = leasedRedisStore({ redis, nameSpace, now: () => clock.at, maxLeaseFraction });
  const instance: FastifyRateLimitStore = new Store({});
  return (key: string, max: number): Promise<number> =>
    new Promise((resolve, reject) =>
      instance.incr(key, (error, result) => (error ? reject(error) : resolve(result!.current)), WINDOW, max),
    );
}

async function counted(nameSpace: string, key: string): Promise<number> {
  return Number(await redis.get(`${nameSpace}${key}`));
}

describe('leased rate-limit store', () => {
  it('counts a quiet caller exactly: one number a call, the one past the limit refused', async () => {
    const nameSpace = `${uniqueName('rate-')}:`;
    const clock = { at: 1_000_000 };
    const incr = store(nameSpace, clock);
    const numbers: number[] = [];
    for (let i = 0; i < 4; i++) {
      numbers.push(await incr('agency.UBND-HN', 3));
      clock.at += 500; // two calls a second
    }
    expect(numbers).toEqual([1, 2, 3, 4]); // 4 > 3: the plugin refuses it
    expect(await counted(nameSpace, 'agency.UBND-HN')).toBe(4);
    expect(await redis.pttl(`${nameSpace}agency.UBND-HN`)).toBeGreaterThan(0);
  });

  it('leases a busy caller’s numbers in blocks, counted in Redis before they are handed out', async () => {
    const nameSpace = `${uniqueName('rate-')}:`;
    const clock = { at: 2_000_000 };
    const incr = store(nameSpace, clock);
    for (let i = 0; i < 500; i++) {
      await incr('agency.UBND-HN', 100_000);
      clock.at += 2; // 500 calls a second
    }
    expect(await counted(nameSpace, 'agency.UBND-HN')).toBe(500);
    const next: number[] = [];
    for (let i = 0; i < 10; i++) next.push(await incr('agency.UBND-HN', 100_000));
    expect(next).toEqual([501, 502, 503, 504, 505, 506, 507, 508, 509, 510]);
    // 100 ms of 500 calls a second leased at once: Redis counts them all, this instance hands them out
    expect(await counted(nameSpace, 'agency.UBND-HN')).toBe(550);
  });

  it('never hands out more than the limit across two instances', async () => {
    const nameSpace = `${uniqueName('rate-')}:`;
    const clock = { at: 3_000_000 };
    const max = 1_200; // crossed in the second second, when both instances lease blocks
    const one = store(nameSpace, clock, 0.25);
    const two = store(nameSpace, clock, 0.25);
    const numbers: number[] = [];
    for (let i = 0; i < 1_500; i++) {
      numbers.push(await (i % 3 === 0 ? one : two)('agency.BHXH', max));
      clock.at += 1;
    }
    const allowed = numbers.filter((number) => number <= max);
    expect(new Set(numbers).size).toBe(numbers.length); // every number handed out once
    expect(allowed.length).toBeLessThanOrEqual(max);
    expect(allowed.length).toBeGreaterThanOrEqual(max - 2 * 300); // at most one unused lease per instance lost
    expect(allowed.length).toBeLessThan(1_500); // the rest refused
    // every number was counted in Redis before it was handed out
    expect(await counted(nameSpace, 'agency.BHXH')).toBeGreaterThanOrEqual(Math.max(...numbers));
  });

  it('starts counting again when the window has ended', async () => {
    const nameSpace = `${uniqueName('rate-')}:`;
    const clock = { at: 4_000_000 };
    const incr = store(nameSpace, clock);
    expect([await incr('agency.BTC', 2), await incr('agency.BTC', 2), await incr('agency.BTC', 2)]).toEqual([
      1, 2, 3,
    ]);
    await redis.del(`${nameSpace}agency.BTC`); // what its expiry does at the end of the window
    clock.at += WINDOW;
    expect(await incr('agency.BTC', 2)).toBe(1);
  });

  it('fails every waiting call when Redis does not answer', async () => {
    const broken = await testRedis();
    const Store = leasedRedisStore({ redis: broken, nameSpace: `${uniqueName('rate-')}:` });
    const instance = new Store({});
    broken.disconnect();
    const outcome = await new Promise<Error | null>((resolve) =>
      instance.incr('agency.BTP', (error) => resolve(error), WINDOW, 10),
    );
    expect(outcome).toBeInstanceOf(Error);
  });
});

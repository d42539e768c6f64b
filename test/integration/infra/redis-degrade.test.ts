import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { LtError } from '../../../infra/errors.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { createRedis } from '../../../infra/redis/client.ts';
import { log } from '../../helpers/services.ts';

describe('a service whose Redis is down at start', () => {
  const stops: (() => void)[] = [];
  afterAll(() => stops.forEach((stop) => stop()));

  it('fails at start by default, naming Redis and what to do', async () => {
    const port = await freePort();
    const refused = await createRedis({ url: `redis://127.0.0.1:${port}`, keyPrefix: 't:' }).catch((e) => e);
    expect(refused).toBeInstanceOf(LtError);
    expect(refused).toMatchObject({
      code: 'LT_REDIS_UNREACHABLE',
      hint: expect.stringContaining('redis-server'),
    });
  });

  it('with whenUnreachable "degrade" starts without it, and uses it once a Redis answers there (one the test starts)', async () => {
    const port = await freePort();
    const redis = await createRedis({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: 't:',
      whenUnreachable: 'degrade',
      log,
    });
    stops.push(() => redis.disconnect());
    expect(redis.status).not.toBe('ready');
    await expect(redis.set('k', 'v')).rejects.toThrow(); // fails fast: no queue of commands in memory
    const server: ChildProcess = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    stops.push(() => server.kill('SIGKILL'));
    await expect.poll(() => redis.status, { timeout: 15_000, interval: 100 }).toBe('ready');
    await redis.set('k', 'v');
    expect(await redis.get('k')).toBe('v');
  });
});

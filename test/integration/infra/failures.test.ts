import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLtError } from '../../../infra/errors.ts';
import { checkJavaAndMaven, freePort, startLocalBroker } from '../../../infra/kafka/local-broker.ts';
import { createPool } from '../../../infra/postgres/pool.ts';
import { createRedis } from '../../../infra/redis/client.ts';
import { env, log } from '../../helpers/services.ts';

describe('set-up failures give one clear message', () => {
  it('says Java is missing when it is not on PATH', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => checkJavaAndMaven()).toThrow(expect.objectContaining({ code: 'LT_JAVA_MISSING' }));
    } finally {
      process.env.PATH = path;
    }
  });

  it('says which port is taken before starting a broker on it', async () => {
    const server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const failure = startLocalBroker({
        home: env.LIENTHONG_HOME,
        dataDir: mkdtempSync(join(tmpdir(), 'lt-b-')),
        port,
        log,
      });
      await expect(failure).rejects.toMatchObject({
        code: 'LT_PORT_TAKEN',
        message: expect.stringContaining(`port ${port}`),
      });
    } finally {
      server.close();
    }
  });

  it('shows the tail of the broker log when the broker dies while starting', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lt-b-'));
    mkdirSync(join(dataDir, 'segments'));
    // storage formatted for another node id: the broker refuses to start
    writeFileSync(
      join(dataDir, 'segments', 'meta.properties'),
      'version=1\nnode.id=7\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n',
    );
    const error = await startLocalBroker({ home: env.LIENTHONG_HOME, dataDir, log }).catch(
      (caught: unknown) => caught,
    );
    expect(isLtError(error, 'LT_KAFKA_START_FAILED')).toBe(true);
    expect((error as Error & { hint: string }).hint).toMatch(/broker\.log; the last lines were:\n/);
  }, 60_000);

  it('says PostgreSQL is unreachable and how to start it', async () => {
    const port = await freePort();
    await expect(
      createPool({ url: `postgresql://postgres@127.0.0.1:${port}/postgres` }),
    ).rejects.toMatchObject({
      code: 'LT_POSTGRES_UNREACHABLE',
      hint: expect.stringContaining('DATABASE_URL'),
    });
  });

  it('says Redis is unreachable and how to start it', async () => {
    const port = await freePort();
    await expect(createRedis({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:' })).rejects.toMatchObject({
      code: 'LT_REDIS_UNREACHABLE',
      hint: expect.stringContaining('REDIS_URL'),
    });
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../infra/config/options.ts';
import { listen } from '../../infra/http/server.ts';
import { startLocalCluster, type LocalCluster } from '../../infra/kafka/local-broker.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import { createRegistryServer } from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';
import { startOwnPostgres, startOwnRedis, type OwnPostgres, type OwnRedis } from './own-services.ts';
import { World, type RunReport, type ServiceName } from './pipeline.ts';
import { buildWorkload, type Workload } from './workload.ts';

/**
 * The fault suite (issue 9): each fault is injected in the middle of a stream of 50,000 events (creates,
 * relocations that move citizens in and out of UBND-HN's filter, deletes); then the NGDB and both subscriber
 * copies are compared by content checksum with what the stream says they must hold. Everything runs on
 * instances this suite starts: its own broker, Redis and PostgreSQL, on free ports.
 */
const env = readEnv();
const log = createLogger(process.env.LOG_LEVEL ?? 'silent');

interface Row extends RunReport {
  fault: string;
}
const rows: Row[] = [];

let pg: OwnPostgres;
let redis: OwnRedis;
let broker: LocalCluster;
let registryPool: Pool;
let registryUrl: string;
let closeRegistry: () => Promise<void>;
let seed = 9000;
const dataDirs: string[] = [];

function printRows(): void {
  const header = [
    'fault',
    'events',
    'lost',
    'applied twice',
    'checksums equal',
    'dead-lettered',
    'recover s',
    'services up',
  ];
  const lines = rows.map((row) => [
    row.fault,
    String(row.events),
    String(row.lost),
    String(row.appliedTwice),
    row.checksumsEqual ? 'yes' : `NO ${JSON.stringify(row.checksums)}`,
    Object.entries(row.deadLetters)
      .flatMap(([topic, codes]) =>
        Object.entries(codes).map(([code, count]) => `${topic.replace('lt.dlq.', '')}:${code}×${count}`),
      )
      .join(' ') || '—',
    row.recoverSeconds.toFixed(1),
    row.servicesRunning ? 'yes' : 'NO',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => line[column]!.length)),
  );
  const format = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ');
  console.log(
    `\nfault suite\n${format(header)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}\n${lines.map(format).join('\n')}\n`,
  );
}

/** Starts a world on `brokers`, publishes a workload with `fault` injected at its midpoint, reports. */
async function runFault(
  fault: string,
  inject: (world: World) => Promise<void>,
  options: { brokers?: string[]; afterPublish?: (world: World, workload: Workload) => Promise<number> } = {},
): Promise<Row> {
  const world = new World({
    name: fault,
    brokers: options.brokers ?? broker.brokers,
    databaseUrl: pg.url,
    redisUrl: redis.url,
    registryUrl,
    log,
  });
  try {
    await world.start();
    const workload = buildWorkload(seed++);
    await world.publish(workload, () => inject(world));
    const extra = (await options.afterPublish?.(world, workload)) ?? 0;
    const recoverSeconds = await world.drain();
    const row = { fault, ...(await world.report(workload, recoverSeconds, extra)) };
    rows.push(row);
    return row;
  } finally {
    await world.stop();
  }
}

/** Kills a service with SIGKILL once it is busy, and starts it again. */
const killAndRestart = (name: ServiceName) => async (world: World) => {
  const service = world.services.get(name)!;
  await service.kill('SIGKILL');
  await service.start();
};

function expectClean(row: Row): void {
  expect(row.lost, `${row.fault}: rows lost or wrong`).toBe(0);
  expect(row.appliedTwice, `${row.fault}: versions applied twice`).toBe(0);
  expect(row.checksumsEqual, `${row.fault}: checksums`).toBe(true);
  expect(row.servicesRunning, `${row.fault}: every service still running`).toBe(true);
  expect(row.crashes, `${row.fault}: services that ended unasked`).toBe(0);
}

describe('the fault suite', () => {
  beforeAll(async () => {
    [pg, redis] = await Promise.all([startOwnPostgres(), startOwnRedis()]);
    const dataDir = mkdtempSync(join(tmpdir(), 'lt-faults-kafka-'));
    dataDirs.push(dataDir);
    broker = await startLocalCluster({ home: env.LIENTHONG_HOME, dataDir, size: 1, log });
    registryPool = await createPool({ url: pg.url, schema: 'lt_registry', max: 4 });
    await migrate(registryPool, 'registry');
    const app = createRegistryServer(new RegistryStore(registryPool), log);
    registryUrl = await listen(app, 0, '127.0.0.1');
    closeRegistry = () => app.close();
  });

  afterAll(async () => {
    printRows();
    await closeRegistry?.().catch(() => undefined);
    await registryPool?.end().catch(() => undefined);
    await broker?.stop();
    await redis?.stop();
    await pg?.destroy();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('a subscriber sink killed mid-batch (SIGKILL) and restarted', async () => {
    expectClean(await runFault('subscriber sink killed', killAndRestart('sink-hn')));
  });

  it('Redis flushed', async () => {
    expectClean(
      await runFault('Redis flushed', async () => {
        const { Redis } = await import('ioredis');
        const client = new Redis(redis.url);
        await client.flushall();
        client.disconnect();
      }),
    );
  });
});

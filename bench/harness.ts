/**
 * What the end-to-end style benchmarks (e2e.ts, backfill.ts) share: the services (a fresh local broker, or
 * KAFKA_BROKERS), a registry served the secure way, fresh PostgreSQL schemas, child processes that print
 * `READY` and a `RESULT {json}` line (bench/e2e-service.ts, bench/publish-sdk.ts), and latency figures read from a
 * materialized table's `_occurred_at` / `_committed_at`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Kafka } from 'kafkajs';
import { readEnv, type Env } from '../infra/config/options.ts';
import { listen } from '../infra/http/server.ts';
import { createKafka } from '../infra/kafka/client.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { migrate, type MigrationSet } from '../infra/postgres/migrate.ts';
import { createPool, quoteIdent, type Pool } from '../infra/postgres/pool.ts';
import { SERVICE_NODE_FLAGS } from '../infra/node-flags.ts';
import { ensureServices, type Services } from '../infra/services.ts';
import { createRegistryServer, secureRegistryOptions } from '../schemas/registry/server.ts';
import { RegistryStore } from '../schemas/registry/store.ts';

export interface BenchPlatform {
  env: Env;
  services: Services;
  registryUrl: string;
  /** The bench's own client, as the broker's super user when security is on. */
  kafka: Kafka;
  /** A pool on a schema dropped and made anew, migrated with `set` when given; closed by `close`. */
  fresh: (schema: string, set?: MigrationSet) => Promise<Pool>;
  /** Environment of a child process: brokers, principal (or LIENTHONG_INSECURE=1), registry. */
  childEnv: Record<string, string | undefined>;
  close: () => Promise<void>;
}

export async function startBenchPlatform(name: string): Promise<BenchPlatform> {
  const env = readEnv();
  const log = createLogger('error');
  const services = await ensureServices({ env, log, brokerDir: name });
  const pools: Pool[] = [];
  const fresh = async (schema: string, set?: MigrationSet): Promise<Pool> => {
    const pool = await createPool({ url: env.DATABASE_URL, schema });
    pools.push(pool);
    await pool.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE; CREATE SCHEMA ${quoteIdent(schema)}`);
    if (set) await migrate(pool, set);
    return pool;
  };
  // served securely when the broker is (the registry knows the same principals)
  const registry = createRegistryServer(
    new RegistryStore(await fresh(`lt_${name.replace(/-/g, '_')}_registry`, 'registry')),
    log,
    services.admin ? secureRegistryOptions(env.LIENTHONG_HOME, '127.0.0.1') : {},
  );
  const registryUrl = await listen(registry);
  const kafka = createKafka({
    brokers: services.brokers,
    clientId: name,
    log,
    ...(services.admin ? { security: services.admin } : {}),
  });
  return {
    env,
    services,
    registryUrl,
    kafka,
    fresh,
    childEnv: {
      ...process.env,
      KAFKA_BROKERS: services.brokers.join(','),
      ...(services.admin ? { KAFKA_PRINCIPAL: services.admin.username } : { LIENTHONG_INSECURE: '1' }),
      SCHEMA_REGISTRY_URL: registryUrl,
    },
    close: async () => {
      await registry.close();
      for (const pool of pools) await pool.end();
      await services.stop();
    },
  };
}

export interface BenchChild {
  child: ChildProcess;
  /** Resolves when the child prints READY. */
  ready: Promise<void>;
  /** The child's `RESULT {json}` line once it exits 0; rejects with its output otherwise. */
  result: Promise<Record<string, unknown>>;
}

/**
 * Runs a bench script in its own process with the services' default Node flags, then BENCH_NODE_FLAGS (which
 * override them), and `--cpu-prof` into BENCH_CPU_PROF when set.
 */
export function runBenchChild(env: Record<string, string | undefined>, script: string): BenchChild {
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...profile, ...SERVICE_NODE_FLAGS, ...flags, script], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('READY')) markReady();
  });
  const result = new Promise<Record<string, unknown>>((resolve, reject) =>
    child.on('exit', (code) => {
      const line = output.split('\n').find((text) => text.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`${script} failed (exit ${code}):\n${output}`));
      else resolve(JSON.parse(line.slice(7)) as Record<string, unknown>);
    }),
  );
  return { child, ready, result };
}

export interface LatencyFigures {
  /** Rows whose latest event occurred in the window. */
  rows: number;
  /** Those rows over the span from the first commit to the last. */
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Figures of the rows of `table` whose latest event occurred in [since, until): rate and occurred → committed. */
export async function latencyFigures(
  pool: Pool,
  table: string,
  since: Date,
  until: Date = new Date(8.64e15),
): Promise<LatencyFigures> {
  const { rows } = await pool.query<{ n: string; span: number; p50: number; p99: number }>(
    `SELECT count(*) AS n, EXTRACT(EPOCH FROM max(_committed_at) - min(_committed_at)) AS span,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM _committed_at - _occurred_at)) * 1000 AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM _committed_at - _occurred_at)) * 1000 AS p99
       FROM ${quoteIdent(table)} WHERE _occurred_at >= $1 AND _occurred_at < $2`,
    [since, until],
  );
  const row = rows[0]!;
  return {
    rows: Number(row.n),
    eventsPerSecond: Math.round(Number(row.n) / Math.max(Number(row.span), 0.001)),
    p50Ms: Math.round(row.p50),
    p99Ms: Math.round(row.p99),
  };
}

/** Rows of `table` whose latest event occurred at or after `since`. */
export async function rowsSince(pool: Pool, table: string, since: Date): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${quoteIdent(table)} WHERE _occurred_at >= $1`,
    [since],
  );
  return Number(rows[0]?.n ?? 0);
}

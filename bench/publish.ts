// The publish benchmark (issue: Agent Node source side). Not a test: it prints figures.
//   npm run bench:publish                    # 200,000 events through each path
//   BENCH_EVENTS=50000 npm run bench:publish -- sdk
// Starts a local broker (or uses KAFKA_BROKERS), serves a registry, runs each path in its own process
// and prints events/s and that process's peak memory. Each path runs with the services' default Node flags
// (infra/node-flags.ts), as an Agent Node started by `lienthong agent` does.
import { spawn } from 'node:child_process';
import { readEnv } from '../infra/config/options.ts';
import { ensureTopics } from '../infra/kafka/admin.ts';
import { createKafka } from '../infra/kafka/client.ts';
import { topics } from '../infra/kafka/topics.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { listen } from '../infra/http/server.ts';
import { migrate } from '../infra/postgres/migrate.ts';
import { createPool, quoteIdent } from '../infra/postgres/pool.ts';
import { SERVICE_NODE_FLAGS } from '../infra/node-flags.ts';
import { ensureServices } from '../infra/services.ts';
import { createRegistryServer, secureRegistryOptions } from '../schemas/registry/server.ts';
import { publishBenchDataset } from './setup.ts';
import { RegistryStore } from '../schemas/registry/store.ts';

const PATHS: Record<string, string> = {
  sdk: 'bench/publish-sdk.ts',
  http: 'bench/publish-http.ts',
  outbox: 'bench/publish-outbox.ts',
};
const chosen = process.argv.slice(2).filter((arg) => arg in PATHS);
const runs = chosen.length > 0 ? chosen : Object.keys(PATHS);
const events = Number(process.env.BENCH_EVENTS ?? 200_000);

const env = readEnv();
const log = createLogger('error');
console.log(
  `publish benchmark: ${events} population.citizen events per path (${runs.join(', ')}); 2-core machine, broker local`,
);
const services = await ensureServices({ env, log, brokerDir: 'bench' });
const registryPool = await createPool({ url: env.DATABASE_URL, schema: 'lt_bench_registry' });
await registryPool.query('DROP SCHEMA lt_bench_registry CASCADE; CREATE SCHEMA lt_bench_registry');
await migrate(registryPool, 'registry');
// served securely when the broker is (the registry knows the same principals)
const registry = createRegistryServer(
  new RegistryStore(registryPool),
  log,
  services.admin ? secureRegistryOptions(env.LIENTHONG_HOME, '127.0.0.1') : {},
);
const registryUrl = await listen(registry);
const kafka = createKafka({
  brokers: services.brokers,
  clientId: 'bench',
  log,
  ...(services.admin ? { security: services.admin } : {}),
});

const results: Record<string, unknown>[] = [];
try {
  // A fresh broker is slow for its first tens of thousands of messages (JIT, new segments): warm it with an
  // unreported SDK run so that the first measured path is not penalised.
  for (const [path, warmup] of [['sdk', true] as const, ...runs.map((path) => [path, false] as const)]) {
    const datasetId = `bench-${warmup ? 'warmup' : path}-${Date.now()}.citizen`;
    const agentSchema = `lt_bench_agent_${path}`;
    const agentPool = await createPool({ url: env.DATABASE_URL, schema: agentSchema });
    await agentPool.query(
      `DROP SCHEMA ${quoteIdent(agentSchema)} CASCADE; CREATE SCHEMA ${quoteIdent(agentSchema)}`,
    );
    await migrate(agentPool, 'agent');
    await agentPool.end();
    await ensureTopics(kafka, [{ topic: topics.source(datasetId), partitions: 6 }]);
    await publishBenchDataset(registryUrl, services.admin, datasetId);
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, PATHS[path]!], {
      env: {
        ...process.env,
        KAFKA_BROKERS: services.brokers.join(','),
        ...(services.admin ? { KAFKA_PRINCIPAL: services.admin.username } : { LIENTHONG_INSECURE: '1' }),
        SCHEMA_REGISTRY_URL: registryUrl,
        BENCH_DATASET: datasetId,
        BENCH_AGENT_SCHEMA: agentSchema,
        BENCH_EVENTS: String(warmup ? Math.min(events, 50_000) : events),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number>((resolve) => child.on('exit', (exit) => resolve(exit ?? 1)));
    const line = output.split('\n').find((text) => text.startsWith('RESULT '));
    if (code !== 0 || !line) throw new Error(`path ${path} failed (exit ${code}):\n${output}`);
    const result = JSON.parse(line.slice(7)) as Record<string, unknown>;
    if (warmup) continue;
    results.push(result);
    console.log(
      `  ${path.padEnd(8)} ${String(result.eventsPerSecond).padStart(7)} events/s   ${Number(result.seconds).toFixed(1)} s   CPU ${result.cpuSeconds} s   peak RSS ${result.peakRssMb} MB`,
    );
  }
} finally {
  await registry.close();
  await registryPool.end();
  await services.stop();
}
console.log(JSON.stringify({ events, results }));

// One platform process of the end-to-end benchmark, run on its own so its peak memory is its own:
//   BENCH_ROLE=coordinator | ngdb | subscriber
// It runs until SIGTERM, then prints `RESULT {"role", "peakRssMb"}`.
import { NgdbSink } from '../consumers/ngdb/index.ts';
import { startSubscription } from '../consumers/subscription/index.ts';
import { untilStopped } from '../cli/until-stopped.ts';
import { describeError, type LtError } from '../infra/errors.ts';
import { readEnv } from '../infra/config/options.ts';
import { createKafka } from '../infra/kafka/client.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../infra/security/principals.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { createPool } from '../infra/postgres/pool.ts';
import { createRedis } from '../infra/redis/client.ts';
import { AgreementStore } from '../platform/agreements/index.ts';
import { Coordinator } from '../platform/coordinator/index.ts';
import { createRegistryClient } from '../schemas/registry/client.ts';
import { benchDictionary } from './setup.ts';
import { report, trackMemory } from './measure.ts';

const role = process.env.BENCH_ROLE!;
const memory = trackMemory();
const log = createLogger('error');
const databaseUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const { dictionary, datasetId } = benchDictionary(process.env.BENCH_DATASET!);
const only = { ...dictionary, datasets: new Map([[datasetId, dictionary.datasets.get(datasetId)!]]) };
const kafka = createKafka({
  brokers: process.env.KAFKA_BROKERS!.split(','),
  clientId: `bench-${role}`,
  log,
  security: kafkaSecurityFor(readEnv(), principals.admin, log), // KAFKA_PRINCIPAL from the bench
});
const registry = createRegistryClient({
  url: process.env.SCHEMA_REGISTRY_URL!,
  ...httpIdentityFor(readEnv(), principals.admin, log),
});
const redis = await createRedis({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  keyPrefix: `lt:bench:${Date.now()}:`,
});
let stop: () => Promise<unknown>;
let failed: Promise<LtError>;
if (role === 'coordinator') {
  const pool = await createPool({ url: databaseUrl, schema: 'lt_bench_platform' });
  const store = new AgreementStore(pool, only);
  const coordinator = new Coordinator({
    kafka,
    registry,
    dictionary: only,
    pool,
    loadAgreements: () => store.list(),
    log,
    refreshMs: 1000,
  });
  await coordinator.start();
  stop = () => coordinator.stop();
  failed = coordinator.failed;
} else if (role === 'ngdb') {
  const pool = await createPool({ url: databaseUrl, schema: 'lt_bench_ngdb' });
  const sink = new NgdbSink({
    kafka,
    registry,
    pool,
    dictionary: only,
    redis,
    log,
    // BENCH_FETCH_KB: the NGDB sink's kafkajs fetch bounds, per partition (and 8× that per request)
    ...(process.env.BENCH_FETCH_KB
      ? {
          maxBytesPerPartition: Number(process.env.BENCH_FETCH_KB) * 1024,
          maxBytes: Number(process.env.BENCH_FETCH_KB) * 8192,
        }
      : {}),
  });
  await sink.start();
  stop = () => sink.stop();
  failed = sink.failed;
} else {
  const subscription = await startSubscription(
    { agreement: process.env.BENCH_AGREEMENT!, dataset: datasetId },
    { kafka, registry, dictionary: only, databaseUrl, agency: 'BHXH', redis, log },
  );
  stop = () => subscription.stop();
  failed = subscription.sink.failed;
}
console.log('READY');
const failure = await untilStopped([failed]);
await stop();
if (failure) {
  console.error(`${role}: ${describeError(failure)}`);
  process.exit(1);
}
redis.disconnect();
report({ role, ...memory() });
process.exit(0);

import { NgdbSink } from '../../consumers/ngdb/index.ts';
import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { AgreementStore, SYSTEM_ACTOR } from '../../platform/agreements/index.ts';
import { Coordinator } from '../../platform/coordinator/index.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';
import {
  deadLetterDepthReader,
  kafkaCheck,
  PipelineMetrics,
  postgresCheck,
  redisCheck,
  registryCheck,
} from '../../infra/observability/index.ts';
import { topics } from '../../infra/kafka/topics.ts';
import { serveOps, type OpsFlags } from '../ops.ts';
import { untilStopped } from '../until-stopped.ts';

function required(): { brokers: string[]; registryUrl: string } {
  const env = readEnv();
  if (!env.KAFKA_BROKERS || !env.SCHEMA_REGISTRY_URL) {
    throw new LtError('LT_CONFIG_INVALID', 'platform services need KAFKA_BROKERS and SCHEMA_REGISTRY_URL', {
      hint: 'start a broker (`lienthong broker start`) and the dictionary (`lienthong dictionary serve`), then export both',
    });
  }
  return { brokers: env.KAFKA_BROKERS, registryUrl: env.SCHEMA_REGISTRY_URL };
}

/** `lienthong coordinator`: derives every active agreement's share stream until Ctrl-C. */
export async function runCoordinator(options: { schema: string } & OpsFlags): Promise<void> {
  const env = readEnv();
  const { brokers, registryUrl } = required();
  const log = createLogger(env.LOG_LEVEL);
  const dictionary = loadDictionary();
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema });
  await migrate(pool, 'platform');
  const kafka = createKafka({
    brokers,
    clientId: 'lienthong-coordinator',
    log,
    security: kafkaSecurityFor(env, principals.coordinator, log),
  });
  const store = new AgreementStore(pool, dictionary);
  const registry = createRegistryClient({
    url: registryUrl,
    ...httpIdentityFor(env, principals.coordinator, log),
  });
  const metrics = new PipelineMetrics();
  const depth = deadLetterDepthReader(kafka, () => [topics.deadLetter('coordinator')]);
  metrics.watchDeadLetterDepth(depth.read);
  const coordinator = new Coordinator({
    kafka,
    metrics,
    registry,
    dictionary,
    pool,
    loadAgreements: () => store.list(),
    resync: async (id, reason) => void (await store.resync(id, reason, SYSTEM_ACTOR)),
    deadLetterRetentionDays: env.LIENTHONG_DLQ_RETENTION_DAYS,
    log,
  });
  await coordinator.start();
  console.log(`coordinator running (agreements in PostgreSQL schema ${options.schema}). Ctrl-C stops it.`);
  const ops = await serveOps(
    'coordinator',
    { metrics, checks: [kafkaCheck(kafka), postgresCheck(pool), registryCheck(registry)], log },
    options,
  );
  const failure = await untilStopped([coordinator.failed]);
  await ops?.close();
  await depth.close();
  await coordinator.stop();
  await pool.end();
  if (failure) throw failure;
}

/** `lienthong ngdb`: keeps the National General Database (current state + history) until Ctrl-C. */
export async function runNgdb(options: { schema: string } & OpsFlags): Promise<void> {
  const env = readEnv();
  const { brokers, registryUrl } = required();
  const log = createLogger(env.LOG_LEVEL);
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema });
  const redis = await createRedis({
    url: env.REDIS_URL,
    cluster: env.REDIS_CLUSTER,
    keyPrefix: 'lt:ngdb:',
    whenUnreachable: 'degrade',
    log,
  });
  const kafka = createKafka({
    brokers,
    clientId: 'lienthong-ngdb',
    log,
    security: kafkaSecurityFor(env, principals.ngdb, log),
  });
  const registry = createRegistryClient({ url: registryUrl, ...httpIdentityFor(env, principals.ngdb, log) });
  const metrics = new PipelineMetrics();
  const depth = deadLetterDepthReader(kafka, () => [topics.deadLetter('ngdb')]);
  metrics.watchDeadLetterDepth(depth.read);
  const sink = new NgdbSink({
    kafka,
    metrics,
    registry,
    pool,
    dictionary: loadDictionary(),
    redis,
    deadLetterRetentionDays: env.LIENTHONG_DLQ_RETENTION_DAYS,
    log,
  });
  await sink.start();
  console.log(`NGDB sink running into PostgreSQL schema ${options.schema}. Ctrl-C stops it.`);
  const ops = await serveOps(
    'ngdb',
    {
      metrics,
      checks: [kafkaCheck(kafka), postgresCheck(pool), redisCheck(redis), registryCheck(registry)],
      log,
    },
    options,
  );
  const failure = await untilStopped([sink.failed]);
  await ops?.close();
  await depth.close();
  await sink.stop();
  redis.disconnect();
  await pool.end();
  if (failure) throw failure;
}

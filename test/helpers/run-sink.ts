/**
 * Runs one subscriber sink as its own process, for tests that SIGKILL it mid-batch:
 *
 *   LT_DATABASE_URL=… LT_SINK_SCHEMA=t_abc KAFKA_BROKERS=127.0.0.1:9092 LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen LT_TOPIC=lt.share.x LT_GROUP=lt.sink.x \
 *   REDIS_URL=redis://127.0.0.1:6379 LT_REDIS_PREFIX=lt-test:abc: node --import tsx test/helpers/run-sink.ts
 *
 * LT_DATASET is a test's isolated copy (test/helpers/datasets.ts) of the real dataset LT_DATASET_FROM.
 * Optional: LT_DEDUP_NAMESPACE, LT_MAX_BYTES_PER_PARTITION (small fetches: many batches),
 * LT_SESSION_TIMEOUT_MS (how soon a restarted sink can take over after this one is killed).
 * Logs go to stdout as pino JSON lines (`"msg":"sink started"` once it consumes); on SIGTERM/SIGINT it
 * stops cleanly and prints one line `{"msg":"sink stats",…}` with its counters.
 */
import { z } from 'zod';
import { Deduplicator, Sink } from '../../consumers/sink/index.ts';
import { describeError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { getDataset, loadDictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';

const EnvSchema = z.object({
  LT_DATABASE_URL: z.string().min(1, 'LT_DATABASE_URL is the subscriber database URL'),
  LT_SINK_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'LT_SINK_SCHEMA is a PostgreSQL schema name'),
  KAFKA_BROKERS: z
    .string()
    .transform((value) => value.split(',').map((broker) => broker.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'each broker must be host:port')).min(1)),
  LT_REGISTRY_URL: z.url('LT_REGISTRY_URL is the schema registry URL'),
  LT_DATASET: z.string().min(1),
  LT_DATASET_FROM: z.string().min(1),
  LT_TOPIC: z.string().min(1),
  LT_GROUP: z.string().min(1),
  REDIS_URL: z.string().min(1),
  LT_REDIS_PREFIX: z.string().min(1),
  LT_DEDUP_NAMESPACE: z.string().default('sink'),
  LT_MAX_BYTES_PER_PARTITION: z.coerce.number().int().positive().optional(),
  LT_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  LOG_LEVEL: z.string().default('info'),
});

async function main(): Promise<void> {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const dataset = { ...getDataset(loadDictionary(), env.LT_DATASET_FROM), id: env.LT_DATASET };
  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_SINK_SCHEMA, max: 4 });
  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.LT_REDIS_PREFIX });
  const sink = new Sink({
    kafka: createKafka({ brokers: env.KAFKA_BROKERS, clientId: `sink-${process.pid}`, log }),
    registry: createRegistryClient(env.LT_REGISTRY_URL),
    pool,
    dataset,
    topic: env.LT_TOPIC,
    groupId: env.LT_GROUP,
    dedup: new Deduplicator(redis, env.LT_DEDUP_NAMESPACE, 3_600, log),
    log,
    sessionTimeoutMs: env.LT_SESSION_TIMEOUT_MS,
    ...(env.LT_MAX_BYTES_PER_PARTITION === undefined
      ? {}
      : { maxBytesPerPartition: env.LT_MAX_BYTES_PER_PARTITION, maxBytes: env.LT_MAX_BYTES_PER_PARTITION }),
  });
  await sink.start();

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await sink.stop();
    log.info({ stats: sink.stats }, 'sink stats');
    redis.disconnect();
    await pool.end();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

main().catch((error: unknown) => {
  console.error(describeError(error));
  process.exit(1);
});

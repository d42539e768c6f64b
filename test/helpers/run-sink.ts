/**
 * Runs one subscriber sink as its own process, for tests that SIGKILL it mid-batch:
 *
 *   LT_DATABASE_URL=… LT_SINK_SCHEMA=t_abc KAFKA_BROKERS=127.0.0.1:9092 LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen LT_TOPIC=lt.share.x LT_GROUP=lt.sink.x \
 *   REDIS_URL=redis://127.0.0.1:6379 LT_REDIS_PREFIX=lt-test:abc: node test/helpers/run-sink.ts
 *
 * LT_DATASET is a test's isolated copy (test/helpers/datasets.ts) of the real dataset LT_DATASET_FROM.
 * Optional: LT_DEDUP_NAMESPACE, LT_MAX_BYTES_PER_PARTITION (small fetches: many batches),
 * LT_FIELDS (comma-separated: the agreement's projection, for a share topic), LT_OWNER (the subscriber agency,
 * whose lt.dlq.sink.<agency> gets the rejects), LT_REDIS_DEGRADE=1 (start and run while Redis is down),
 * LT_SESSION_TIMEOUT_MS (how soon a restarted sink can take over after this one is killed).
 * Logs go to stdout as pino JSON lines (`"msg":"sink started"` once it consumes); on SIGTERM/SIGINT it
 * stops cleanly and prints one line `{"msg":"sink stats",…}` with its counters.
 */
import { z } from 'zod';
import { Deduplicator, Sink } from '../../consumers/sink/index.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { projectDataset } from '../../schemas/model/projection.ts';
import {
  ChildEnvSchema,
  childClients,
  childDataset,
  runChild,
  schemaName,
  stopOnSignal,
} from './child-process.ts';

const EnvSchema = ChildEnvSchema.extend({
  LT_SINK_SCHEMA: schemaName('LT_SINK_SCHEMA'),
  LT_TOPIC: z.string().min(1),
  LT_GROUP: z.string().min(1),
  REDIS_URL: z.string().min(1),
  LT_REDIS_PREFIX: z.string().min(1),
  LT_DEDUP_NAMESPACE: z.string().default('sink'),
  LT_MAX_BYTES_PER_PARTITION: z.coerce.number().int().positive().optional(),
  LT_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  LT_FIELDS: z.string().optional(),
  LT_OWNER: z.string().optional(),
  LT_REDIS_DEGRADE: z.enum(['0', '1']).default('0'),
});

runChild(async () => {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const { dataset: full } = childDataset(env);
  const dataset = env.LT_FIELDS ? projectDataset(full, env.LT_FIELDS.split(',')) : full;
  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_SINK_SCHEMA, max: 4 });
  const redis = await createRedis({
    url: env.REDIS_URL,
    keyPrefix: env.LT_REDIS_PREFIX,
    ...(env.LT_REDIS_DEGRADE === '1' ? { whenUnreachable: 'degrade' as const, log } : {}),
  });
  const sink = new Sink({
    ...childClients(env, 'sink', log),
    pool,
    dataset,
    topic: env.LT_TOPIC,
    groupId: env.LT_GROUP,
    dedup: new Deduplicator(redis, env.LT_DEDUP_NAMESPACE, 3_600, log),
    ...(env.LT_OWNER === undefined ? {} : { owner: env.LT_OWNER }),
    log,
    sessionTimeoutMs: env.LT_SESSION_TIMEOUT_MS,
    ...(env.LT_MAX_BYTES_PER_PARTITION === undefined
      ? {}
      : { maxBytesPerPartition: env.LT_MAX_BYTES_PER_PARTITION, maxBytes: env.LT_MAX_BYTES_PER_PARTITION }),
  });
  await sink.start();

  stopOnSignal(async () => {
    await sink.stop();
    log.info({ stats: sink.stats }, 'sink stats');
    redis.disconnect();
    await pool.end();
  });
});

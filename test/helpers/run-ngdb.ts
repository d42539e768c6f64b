/**
 * Runs the NGDB sink as its own process, for tests that SIGKILL it mid-batch:
 *
 *   LT_DATABASE_URL=… LT_NGDB_SCHEMA=t_abc KAFKA_BROKERS=… LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen LT_GROUP=lt.ngdb.x \
 *   REDIS_URL=redis://… LT_REDIS_PREFIX=lt-test:abc: node test/helpers/run-ngdb.ts
 *
 * It materializes only the test's isolated dataset. Logs go to stdout as pino JSON lines
 * (`"msg":"ngdb sink running"` once started); on SIGTERM/SIGINT it stops cleanly.
 */
import { z } from 'zod';
import { NgdbSink } from '../../consumers/ngdb/index.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import {
  ChildEnvSchema,
  childClients,
  childDataset,
  runChild,
  schemaName,
  stopOnSignal,
} from './child-process.ts';

const EnvSchema = ChildEnvSchema.extend({
  LT_NGDB_SCHEMA: schemaName('LT_NGDB_SCHEMA'),
  LT_GROUP: z.string().min(1),
  REDIS_URL: z.string().min(1),
  LT_REDIS_PREFIX: z.string().min(1),
});

runChild(async () => {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const { dictionary, dataset } = childDataset(env);
  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_NGDB_SCHEMA, max: 6 });
  const redis = await createRedis({
    url: env.REDIS_URL,
    keyPrefix: env.LT_REDIS_PREFIX,
    whenUnreachable: 'degrade',
    log,
  });
  const sink = new NgdbSink({
    ...childClients(env, 'ngdb', log),
    pool,
    dictionary: { ...dictionary, datasets: new Map([[dataset.id, dataset]]) },
    redis,
    groupId: env.LT_GROUP,
    log,
  });
  await sink.start();
  log.info('ngdb sink running');
  stopOnSignal(async () => {
    await sink.stop();
    log.info({ stats: sink.stats }, 'ngdb sink stats');
    redis.disconnect();
    await pool.end();
  });
  const failure = await sink.failed;
  log.error({ err: failure }, 'ngdb sink stopped reading');
  process.exit(1);
});

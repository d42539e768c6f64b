/**
 * Runs one outbox relay as its own process, for tests that SIGKILL it mid-stream:
 *
 *   LT_DATABASE_URL=… LT_OUTBOX_SCHEMA=t_abc KAFKA_BROKERS=127.0.0.1:9092 LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen node test/helpers/run-outbox-relay.ts
 *
 * LT_DATASET is a test's isolated copy (test/helpers/datasets.ts) of the real dataset LT_DATASET_FROM.
 * Logs go to stdout as pino JSON lines; on SIGTERM/SIGINT it stops cleanly and prints one line
 * `{"msg":"outbox relay stats",…}` with its counters.
 */
import { z } from 'zod';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { OutboxRelay } from '../../producers/outbox/index.ts';
import { Publisher, VersionLedger } from '../../producers/publisher/index.ts';
import {
  ChildEnvSchema,
  childClients,
  childDataset,
  runChild,
  schemaName,
  stopOnSignal,
} from './child-process.ts';

const EnvSchema = ChildEnvSchema.extend({
  LT_OUTBOX_SCHEMA: schemaName('LT_OUTBOX_SCHEMA'),
  LT_AGENCY: z.string().default('BCA'),
  LT_BATCH_SIZE: z.coerce.number().int().positive().optional(),
  LT_POLL_MS: z.coerce.number().int().positive().optional(),
});

runChild(async () => {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const { dictionary } = childDataset(env);

  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_OUTBOX_SCHEMA, max: 4 });
  const { kafka, registry } = childClients(env, 'outbox-relay', log);
  const publisher = new Publisher({
    kafka,
    registry,
    dictionary,
    agency: env.LT_AGENCY,
    ledger: new VersionLedger(pool),
    log,
  });
  await publisher.connect();
  const relay = new OutboxRelay({
    pool,
    publisher,
    kafka,
    agency: env.LT_AGENCY,
    log,
    batchSize: env.LT_BATCH_SIZE,
    pollIntervalMs: env.LT_POLL_MS,
  });
  await relay.start();
  log.info({ role: relay.role, pid: process.pid }, 'outbox relay process started');

  stopOnSignal(async () => {
    await relay.stop();
    log.info({ stats: relay.stats }, 'outbox relay stats');
    await publisher.close();
    await pool.end();
  });
});

/**
 * Runs one outbox relay as its own process, for tests that SIGKILL it mid-stream:
 *
 *   LT_DATABASE_URL=… LT_OUTBOX_SCHEMA=t_abc KAFKA_BROKERS=127.0.0.1:9092 LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen npx tsx test/helpers/run-outbox-relay.ts
 *
 * LT_DATASET is a test's isolated copy (test/helpers/datasets.ts) of the real dataset LT_DATASET_FROM.
 * Logs go to stdout as pino JSON lines; on SIGTERM/SIGINT it stops cleanly and prints one line
 * `{"msg":"outbox relay stats",…}` with its counters.
 */
import { z } from 'zod';
import { describeError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { OutboxRelay } from '../../producers/outbox/index.ts';
import { Publisher, VersionLedger } from '../../producers/publisher/index.ts';
import { getDataset, loadDictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';

const EnvSchema = z.object({
  LT_DATABASE_URL: z.string().min(1, 'LT_DATABASE_URL is the agency database URL'),
  LT_OUTBOX_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'LT_OUTBOX_SCHEMA is a PostgreSQL schema name'),
  KAFKA_BROKERS: z
    .string()
    .transform((value) => value.split(',').map((broker) => broker.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'each broker must be host:port')).min(1)),
  LT_REGISTRY_URL: z.url('LT_REGISTRY_URL is the schema registry URL'),
  LT_DATASET: z.string().min(1),
  LT_DATASET_FROM: z.string().min(1),
  LT_AGENCY: z.string().default('BCA'),
  LT_BATCH_SIZE: z.coerce.number().int().positive().optional(),
  LT_POLL_MS: z.coerce.number().int().positive().optional(),
  LOG_LEVEL: z.string().default('info'),
});

async function main(): Promise<void> {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const real = loadDictionary();
  const datasets = new Map(real.datasets);
  datasets.set(env.LT_DATASET, { ...getDataset(real, env.LT_DATASET_FROM), id: env.LT_DATASET });
  const dictionary = { ...real, datasets };

  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_OUTBOX_SCHEMA, max: 4 });
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS, clientId: `outbox-relay-${process.pid}`, log });
  const publisher = new Publisher({
    kafka,
    registry: createRegistryClient(env.LT_REGISTRY_URL),
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

  // npx, tsx and node all receive a signal sent to the process group, and tsx relays it once more: the
  // first one stops the relay, later ones are ignored
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await relay.stop();
    log.info({ stats: relay.stats }, 'outbox relay stats');
    await publisher.close();
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
